# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The capture run itself: snapshot, trace, run the command, diff, write the bundle.

Standard library only (runs on targets).  ``mo.fleet.capture`` is a thin wrapper around
``capture(options)``; every problem is raised as ``CaptureError`` with one sentence.

``resolve_argv(cmd, argv, shell, chdir, environment) -> list``
``skip_reason(creates, removes, chdir) -> str | None``
``run_command(argv, chdir, environment, timeout) -> CommandResult``
``capture(options, store=None) -> dict``
    OPTIONS keys: cmd, argv, shell, chdir, environment, name, roots, exclude, trace,
    timeout, config_roots, lock_timeout, inline_max, archive_dir, detach.  Returns rc, stdout,
    stderr, status, template, bundle {id, path, archive, sha256, size[, content]}, trace.
    ``detach(capture_id, state_before, state_after)``, called once the after-snapshot and
    state are read: True hands
    the rest to another process sharing the lock (host_cli's background finisher); the
    result then has ``detached: True``, ``bundle: {id}`` and no template.

Where the bundle archive goes: without ``inline_max`` it stays in the store's outbox and
the index records it (a later fetch).  With ``inline_max`` the caller takes it away now:
an archive of at most that many bytes comes back base64-encoded as ``bundle.content`` and
no archive file is left (``bundle.archive`` is None); a larger one is written to
``archive_dir`` (the caller's temporary directory) or else the outbox, for the caller to
fetch and delete.  The index records no archive in either case.
"""

from __future__ import annotations

import base64
import datetime
import errno
import functools
import glob
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tarfile
import threading
import time
import uuid

from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._capture import snapshot as snap
from ansible_collections.mo.fleet.plugins.module_utils._render import elfdeps
from ansible_collections.mo.fleet.plugins.module_utils._capture import trace as tr
from ansible_collections.mo.fleet.plugins.module_utils._capture.capture_index import CaptureDirectory, CaptureDirectoryError
from ansible_collections.mo.fleet.plugins.module_utils._common import names
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import atomic_write

TRACE_MODES = ("auto", "fanotify", "strace", "none")
# before-copies of config files held in memory up to this many bytes (the rest go to disk)
STASH_MEMORY = 64 * 1024 * 1024


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


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _snap_id(moment):
    return "MO-snap-%s-%03d" % (moment.strftime("%Y%m%d-%H%M%S"), moment.microsecond // 1000)


def _safe_name(name):
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name or "capture")[:64]


def os_release():
    info = {}
    try:
        with open("/etc/os-release", encoding="utf-8", errors="replace", newline="") as handle:
            for line in handle.read(65536).split("\n"):  # as systemd reads it: lines end at \n only
                if "=" in line:
                    key, value = line.split("=", 1)
                    info[key] = value.strip('"')
    except OSError:
        pass
    return info


def _one_line(value):
    """VALUE (from the target's own files) as one printable line of at most 256 characters."""
    return None if value is None else snap.printable_path(str(value))[:256]


def _system():
    info = os_release()
    return {"id": _one_line(info.get("ID")), "version_id": _one_line(info.get("VERSION_ID")),
            "pretty_name": _one_line(info.get("PRETTY_NAME")), "machine": _one_line(platform.machine()),
            "kernel": _one_line(platform.release())}


def _make_archive(bundle_dir, archive):
    with tarfile.open(archive, "w:gz", compresslevel=1, format=tarfile.PAX_FORMAT) as tar:
        for name in (tpl.BUNDLE_TEMPLATE, tpl.BUNDLE_FILES, tpl.BUNDLE_BEFORE):
            path = os.path.join(bundle_dir, name)
            if os.path.lexists(path):
                tar.add(path, arcname=name)


def _place_archive(archive_tmp, capture_id, options, store):
    """Put the finished archive where OPTIONS say; return (path or None, base64 text or None,
    whether the index records it) - see the module docstring."""
    inline_max = int(options.get("inline_max") or 0)
    if not inline_max:
        archive = os.path.join(store.outbox, capture_id + ".tar.gz")
        os.rename(archive_tmp, archive)
        return archive, None, True
    if os.path.getsize(archive_tmp) <= inline_max:
        with open(archive_tmp, "rb") as fh:
            content = base64.b64encode(fh.read()).decode("ascii")
        return None, content, False  # archive_tmp goes with the work directory
    archive = os.path.join(options.get("archive_dir") or store.outbox, capture_id + ".tar.gz")
    shutil.move(archive_tmp, archive)  # a rename unless the directory is on another filesystem
    if options.get("archive_dir"):
        give_to_fetcher(archive, options["archive_dir"])
    return archive, None, False


def give_to_fetcher(archive: str, archive_dir: str) -> None:
    """ARCHIVE, in the caller's ARCHIVE_DIR, goes to that directory's owner: the directory is
    the login user's Ansible tmp directory, and that user fetches the archive (file transfers
    never become) while the module runs as root."""
    owner = os.stat(archive_dir)
    os.chown(archive, owner.st_uid, owner.st_gid)


def normalize_roots(roots, field):
    out = []
    for root in roots:
        try:
            out.append(tpl.normalize_path(root))
        except tpl.TemplateError as exc:
            raise CaptureError("%s: %s" % (field, exc))
    return out


class _Background(object):
    """Run FUNC in a thread; result() waits and re-raises its exception."""

    def __init__(self, func):
        self._value = None
        self._error = None
        self._thread = threading.Thread(target=self._run, args=(func,))
        self._thread.daemon = True
        self._thread.start()

    def _run(self, func):
        try:
            self._value = func()
        except BaseException as exc:  # handed to the caller in result()
            self._error = exc

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _trace_marks(before):
    return [path for _dev, path in sorted(before.devices.items())]


def capture(options, store=None):
    """Run one capture (see module docstring); raises CaptureError."""
    began = time.monotonic()
    store = store or CaptureDirectory()
    chdir = options.get("chdir")
    if chdir and not os.path.isdir(chdir):
        raise CaptureError("chdir %s does not exist or is not a directory." % chdir)
    mode = options.get("trace") or "auto"
    if mode not in TRACE_MODES:
        raise CaptureError("trace must be one of %s, not %s." % (", ".join(TRACE_MODES), mode))
    environment = options.get("environment") or {}
    baseline = options.get("baseline")  # (Snapshot, state) of drift.load_baseline: nothing runs
    if baseline is not None:
        argv = [str(a) for a in options["argv"]]
    else:
        argv = resolve_argv(options.get("cmd"), options.get("argv"), options.get("shell"), chdir, environment)
    roots = normalize_roots(options.get("roots") or list(snap.DEFAULT_ROOTS), "roots")
    for root in roots:
        if not os.path.isdir(root):
            raise CaptureError("roots: %s does not exist or is not a directory." % root)
    exclude = list(snap.DEFAULT_EXCLUDE) if options.get("exclude") is None else list(options["exclude"])
    exclude += [e for e in options.get("exclude_extra") or [] if e not in exclude]
    for item in exclude:
        if not item.startswith("/"):
            raise CaptureError("exclude entries must be absolute paths or patterns, not %s." % item)
    if store.root not in exclude:
        exclude.append(store.root)
    config_roots = normalize_roots(options.get("config_roots") or list(snap.CONFIG_ROOTS), "config_roots")
    if options.get("name") is not None:
        try:
            names.check("file_part", options["name"], "name")
        except names.NameError_ as exc:
            raise CaptureError(str(exc))
    keep_secrets = options.get("keep_secrets") or []
    if not isinstance(keep_secrets, list) or not all(
            names.is_valid("line", k) and k.startswith("/") for k in keep_secrets):
        raise CaptureError("keep_secrets must list absolute paths or shell globs, one line each.")
    if int(options.get("inline_max") or 0) < 0:
        raise CaptureError("inline_max must be 0 or a positive number of bytes.")
    archive_dir = options.get("archive_dir")
    if archive_dir and not (os.path.isabs(archive_dir) and os.path.isdir(archive_dir)):
        raise CaptureError("archive_dir %s is not an existing absolute directory on the target." % archive_dir)
    run_argv = list(argv)
    if mode == "strace" and _which("strace", environment) is None:
        raise CaptureError("trace=strace needs the strace program on the target; install it first.")

    try:
        store.lock(wait=float(options.get("lock_timeout") or 300))
    except CaptureDirectoryError as exc:
        raise CaptureError(str(exc))
    work = None
    handed_over = False
    try:
        started = _now()
        capture_id = "%s-%s-%s" % (started.strftime("%Y%m%d-%H%M%S"), _safe_name(options.get("name")),
                                   uuid.uuid4().hex[:6])
        work = os.path.join(store.work, capture_id)
        os.makedirs(work, mode=0o700)
        stash = snap.Stash(os.path.join(work, "stash"), config_roots, memory=STASH_MEMORY, keep=keep_secrets)
        t0 = time.monotonic()
        from_walk = snap.unit_dirs_covered(roots, exclude)
        read_state = functools.partial(snap.read_state, unit_files=not from_walk)
        if baseline is not None:
            before, state_before = baseline
        else:
            pending = _Background(read_state)  # dpkg/systemctl subprocesses overlap the walk
            before = snap.walk(roots, exclude, keep_listings=True)
            state_before = pending.result()
            if from_walk:
                snap.add_unit_files(state_before, before)
            stash.take(before)
        pre_id = _snap_id(_now())
        walk_seconds = time.monotonic() - t0

        trace_info = {"requested": mode, "used": "walk", "fallback": None, "events": 0}
        tracer = None
        strace_log = None
        if baseline is not None:
            trace_info["used"] = "baseline"
        elif mode in ("auto", "fanotify"):
            tracer = tr.FanotifyTracer(_trace_marks(before))
            try:
                tracer.start()
                trace_info["used"] = "fanotify"
            except tr.TraceUnsupported as exc:
                tracer = None
                if mode == "fanotify":
                    raise CaptureError("trace=fanotify is not possible here: %s." % exc)
                trace_info["fallback"] = str(exc)
        elif mode == "strace":
            strace_log = os.path.join(work, "strace.log")
            run_argv = tr.strace_argv(argv, strace_log)
            trace_info["used"] = "strace"

        try:
            if baseline is not None:
                result = CommandResult(0, "", "", False, 0.0)
            else:  # MO_FLEET_CAPTURE: interception and the dpkg hook step aside inside a capture
                if options.get("on_start") is not None:  # the interception: from here on, no stepping aside
                    options["on_start"]()
                result = run_command(run_argv, chdir, dict(environment, MO_FLEET_CAPTURE=capture_id),
                                     options.get("timeout"), bool(options.get("passthrough")))
        finally:
            traced = tracer.stop() if tracer is not None else None

        t1 = time.monotonic()
        pending = _Background(read_state)
        processes = {}
        if traced is not None:
            trace_info["events"] = traced.events
            trace_info["touched"] = len(traced.touched)
            trace_info["unresolved"] = traced.unresolved
            if traced.lossy:
                trace_info["fallback"] = traced.lossy
                trace_info["used"] = "walk"
                after = snap.walk(roots, exclude, previous=before)
            else:
                after = snap.rescan(before, traced.touched, roots, exclude)
            processes = traced.processes
        else:
            after = snap.walk(roots, exclude, previous=before)
        if strace_log is not None:
            try:
                with open(strace_log, encoding="utf-8", errors="replace") as handle:
                    parsed = tr.parse_strace(handle.read(), chdir or "/")
                processes = parsed.processes
                trace_info["events"] = parsed.events
            except OSError:
                trace_info["fallback"] = "strace wrote no log"
        post_id = _snap_id(_now())
        state_after = pending.result()
        if from_walk:
            snap.add_unit_files(state_after, after)
        # OPTIONS detach(capture_id, state_before, state_after) -> True: the rest (diff, operations,
        # bundle, index) goes on in a process that now shares the lock; this one returns the result only
        if options.get("detach") is not None and options["detach"](capture_id, state_before, state_after):
            handed_over = True
            status = "timeout" if result.timed_out else ("succeeded" if result.rc == 0 else "failed")
            return {"rc": result.rc, "stdout": result.stdout, "stderr": result.stderr, "status": status,
                    "timed_out": result.timed_out, "detached": True, "trace": trace_info,
                    "bundle": {"id": capture_id}, "cmd": argv}
        changes = snap.diff(before, after)
        operations, content, stats = snap.build_operations(
            before, after, state_before, state_after, changes, stash, processes, keep_secrets)
        libraries = elfdeps.record_libraries(operations, state_after["packages"], snap.owners)
        operations["excluded"] = snap.excluded_entries(
            exclude, unnamed=sorted(set(before.unnamed) | set(after.unnamed)))

        bundle = os.path.join(work, "bundle")
        os.makedirs(bundle, mode=0o755)
        by_path = {}
        for op in tpl.FILE_OPERATIONS:
            for entry in operations[op]:
                by_path[entry["path"]] = entry
        for path, area, source in content:
            dest = os.path.join(bundle, tpl.bundle_relpath(path, area))
            entry = by_path.get(path)
            try:
                if isinstance(source, bytes):
                    digest = snap.write_bytes(source, dest)
                else:
                    digest = snap.copy_file(source, dest)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise
                if entry is not None:
                    entry["bundled" if area == "files" else "before_bundled"] = False
                continue
            if entry is None:
                continue
            if area == "files":
                entry["hash"] = digest
            elif entry.get("before") is not None:
                entry["before"]["hash"] = digest
            else:
                entry["hash"] = digest
        stats.update({"entries_before": len(before), "entries_after": len(after),
                      "walk_seconds": round(walk_seconds, 3),
                      "after_seconds": round(time.monotonic() - t1, 3),
                      "unreadable_dirs": len(before.errors), "stash_files": len(stash.saved),
                      "reused_listings": after.reused_listings,
                      "engine_seconds": round(time.monotonic() - began, 3)})
        stats.update({"created": len(changes.created), "modified": len(changes.modified),
                      "deleted": len(changes.deleted), "meta": len(changes.meta)})
        proc_list = []
        if processes:
            by_proc = {}
            for path, whos in processes.items():
                for who in whos:
                    by_proc.setdefault(who, set()).add(path)
            proc_list = [{"process": who, "paths": len(paths)} for who, paths in sorted(by_proc.items())]
        status = "timeout" if result.timed_out else ("succeeded" if result.rc == 0 else "failed")
        system = _system()
        meta = {
            "system": "%s %s (%s)" % (system["id"] or "linux", system["version_id"] or "", system["machine"]),
            "timestamp": started.replace(microsecond=0).isoformat(),
            "argv": argv,
            "command": argv[0],
            "arguments": " ".join(shlex.quote(a) for a in argv[1:]) if not options.get("shell") else argv[2],
            "shell": bool(options.get("shell")),
            "chdir": os.path.abspath(chdir) if chdir else None,
            "name": options.get("name"),
            "host": snap.printable_path(socket.gethostname())[:255],
            "snapshots": {"pre": pre_id, "post": post_id},
            "status": status,
            "rc": result.rc,
            "duration": round(result.duration, 3),
            "os": system,
        }
        method = {"fanotify": "fanotify_and_snapshot", "strace": "strace_and_snapshot"}.get(
            trace_info["used"], "snapshot")
        metadata = {
            "analysis_method": method, "trace": trace_info, "roots": roots, "exclude": exclude,
            "config_roots": config_roots, "stats": stats, "processes": proc_list, "keep_secrets": keep_secrets,
            "bundle": {"files": tpl.BUNDLE_FILES, "before": tpl.BUNDLE_BEFORE, "id": capture_id},
        }
        if strace_log is not None:
            metadata["strace_log"] = None
        if libraries:
            metadata["shared_libraries"] = libraries
        for key in ("origin", "requested_by"):
            if options.get(key) is not None:
                metadata[key] = options[key]
        if options.get("analyze") is not None:  # e.g. confdiff.analyze: more metadata from the result
            metadata.update(options["analyze"](operations, state_after))
        try:
            doc = tpl.build(meta, operations, metadata, use_jsonschema=False)
        except tpl.TemplateError as exc:
            raise CaptureError("The capture produced an invalid template: %s" % exc)
        atomic_write(os.path.join(bundle, tpl.BUNDLE_TEMPLATE), tpl.dump(doc))

        archive_tmp = os.path.join(work, "bundle.tar.gz")
        _make_archive(bundle, archive_tmp)
        archive_sha = tpl.sha256_file(archive_tmp)
        archive_size = os.path.getsize(archive_tmp)
        final = os.path.join(store.templates, capture_id)
        os.rename(bundle, final)
        archive, content, indexed = _place_archive(archive_tmp, capture_id, options, store)
        created = time.time()
        for phase, sid, s in (("pre", pre_id, before), ("post", post_id, after)):
            store.add_snapshot({"id": sid, "created": created, "phase": phase, "template_id": capture_id,
                                "roots": json.dumps(roots), "entries": len(s),
                                "packages": len((state_before if phase == "pre" else state_after)["packages"]),
                                "units": len((state_before if phase == "pre" else state_after)["units"]["files"]),
                                "method": trace_info["used"]})
        store.add_template({"id": capture_id, "name": options.get("name"), "created": created,
                            "command": " ".join(argv), "status": status, "rc": result.rc, "path": final,
                            "archive": archive if indexed else None, "summary": json.dumps(doc["summary"]),
                            "bytes": archive_size})
        bundle_info = {"id": capture_id, "path": final, "archive": archive, "sha256": archive_sha,
                       "size": archive_size}
        if content is not None:
            bundle_info["content"] = content
        return {
            "rc": result.rc, "stdout": result.stdout, "stderr": result.stderr, "status": status,
            "timed_out": result.timed_out, "template": doc, "trace": trace_info,
            "bundle": bundle_info, "cmd": argv,
        }
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise CaptureError("The target ran out of disk space while writing the capture under %s." % store.root)
        where = getattr(exc, "filename", None) or "a file"
        raise CaptureError("The capture failed on %s: %s." % (where, exc.strerror or exc))
    finally:
        if handed_over:  # the work directory and the lock are the finishing process's now
            store.hand_over_lock()
        else:
            if work is not None:
                shutil.rmtree(work, ignore_errors=True)
            store.unlock()
