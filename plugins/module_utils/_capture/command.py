# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The command a capture runs: its argv, the skip rules, the run with a timeout and the kill.

Standard library only (runs on targets).  ``_capture/capture.py`` names these for its callers.

``resolve_argv(cmd, argv, shell, chdir, environment) -> list``
``skip_reason(creates, removes, chdir) -> str | None``
``run_command(argv, chdir, environment, timeout, passthrough) -> CommandResult``
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import signal
import subprocess
import time


class CaptureError(Exception):
    """A capture problem; the message is one sentence."""


class CommandResult(object):
    def __init__(self, rc, stdout, stderr, timed_out, duration):
        self.rc, self.stdout, self.stderr = rc, stdout, stderr
        self.timed_out, self.duration = timed_out, duration


def _which(program, environment):
    path = (environment or {}).get("PATH") or os.environ.get("PATH") or os.defpath
    return shutil.which(program, path=path)


def resolve_argv(cmd=None, argv=None, shell=False, chdir=None, environment=None):
    """The argv to execute; CaptureError when the command is missing or not found."""
    if bool(cmd) == bool(argv):
        raise CaptureError("Exactly one of cmd or argv must be given.")
    if shell:
        line = cmd if cmd else " ".join(shlex.quote(a) for a in argv)
        return ["/bin/sh", "-c", line]
    if cmd:
        try:
            argv = shlex.split(cmd)
        except ValueError as exc:
            raise CaptureError("cmd cannot be split into words: %s." % exc)
        if not argv:
            raise CaptureError("cmd is empty.")
    argv = [str(a) for a in argv]
    program = argv[0]
    if "/" in program:
        full = program if os.path.isabs(program) else os.path.join(chdir or os.getcwd(), program)
        if not (os.path.isfile(full) and os.access(full, os.X_OK)):
            raise CaptureError("The command %s was not found or is not executable." % program)
    elif _which(program, environment) is None:
        raise CaptureError("The command %s was not found on the target's PATH." % program)
    return argv


def skip_reason(creates=None, removes=None, chdir=None):
    """Like ansible.builtin.command: why the run is skipped (None = run it)."""
    def expand(pattern):
        if chdir and not os.path.isabs(pattern):
            pattern = os.path.join(chdir, pattern)
        return pattern
    if creates and glob.glob(expand(creates)):
        return "skipped, since %s exists" % creates
    if removes and not glob.glob(expand(removes)):
        return "skipped, since %s does not exist" % removes
    return None


def _descendants(root_pid):
    """Every live process below ROOT_PID (from /proc), deepest last."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as handle:
                data = handle.read()
        except OSError:
            continue
        ppid = int(data.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            out.append(child)
            todo.append(child)
    return out


def kill_tree(proc):
    """SIGKILL the command's process group and every descendant that left it."""
    pids = _descendants(proc.pid)
    for sig_target in ([proc.pid] + pids):
        try:
            os.killpg(sig_target, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.kill(sig_target, signal.SIGKILL)
        except OSError:
            pass


def run_command(argv, chdir=None, environment=None, timeout=None, passthrough=False):
    """Run ARGV; PASSTHROUGH keeps the caller's stdin, stdout, stderr and terminal (an
    intercepted command behaves as typed: nothing is read back, stdout and stderr are "")."""
    env = dict(os.environ)
    if not passthrough:
        env.setdefault("DEBIAN_FRONTEND", "noninteractive")
    env.update(dict((str(k), str(v)) for k, v in (environment or {}).items()))
    start = time.monotonic()
    pipe = None if passthrough else subprocess.PIPE
    try:
        proc = subprocess.Popen(argv, cwd=chdir or None, env=env,
                                stdin=None if passthrough else subprocess.DEVNULL,
                                stdout=pipe, stderr=pipe,
                                start_new_session=not passthrough, close_fds=True)
    except OSError as exc:
        raise CaptureError("The command %s could not be started: %s." % (argv[0], exc.strerror))
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout or None)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_tree(proc)
        out, err = proc.communicate()
    except KeyboardInterrupt:  # the terminal's ^C reached the command too: wait for it
        out, err = proc.communicate()
    return CommandResult(proc.returncode, (out or b"").decode("utf-8", "replace"),
                         (err or b"").decode("utf-8", "replace"), timed_out, time.monotonic() - start)
