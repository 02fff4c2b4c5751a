# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The capture run itself: snapshot, trace, run the command, diff, write the bundle.

Standard library only (runs on targets).  ``mo.fleet.capture`` is a thin wrapper around
``capture(options)``; every problem is raised as ``CaptureError`` with one sentence.

``resolve_argv``, ``skip_reason``, ``run_command``, ``CaptureError``
    The command's own part, named here for the callers; it lives in ``_capture/command.py``.
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
import json
import os
import platform
import re
import shlex
import shutil
import socket
import tarfile
import threading
import time
import uuid

from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._capture import snapshot as snap
from ansible_collections.mo.fleet.plugins.module_utils._render import elfdeps
from ansible_collections.mo.fleet.plugins.module_utils._capture import trace as tr
from ansible_collections.mo.fleet.plugins.module_utils._capture.capture_index import CaptureDirectory, CaptureDirectoryError
from ansible_collections.mo.fleet.plugins.module_utils._capture.command import (  # noqa: F401 pylint: disable=unused-import
    CaptureError, CommandResult, kill_tree, resolve_argv, run_command, skip_reason, _which)
from ansible_collections.mo.fleet.plugins.module_utils._common import names
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import atomic_write

TRACE_MODES = ("auto", "fanotify", "strace", "none")
# before-copies of config files held in memory up to this many bytes (the rest go to disk)
STASH_MEMORY = 64 * 1024 * 1024


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


def check_early(options: dict) -> None:
    """The checks of OPTIONS that need neither the lock nor a walk (mo.fleet.capture makes them
    before check mode returns, too); CaptureError with one sentence."""
    if (options.get("timeout") or 0) < 0:
        raise CaptureError("timeout must be 0 (no limit) or a positive number of seconds.")
    if int(options.get("inline_max") or 0) < 0:
        raise CaptureError("inline_max must be 0 or a positive number of bytes.")
    chdir = options.get("chdir")
    if chdir and not os.path.isdir(chdir):
        raise CaptureError("chdir %s does not exist or is not a directory." % chdir)


class _Plan:
    """The checked options of one capture: what runs, what is walked, what is kept."""

    def __init__(self, options, store):
        check_early(options)
        self.chdir = options.get("chdir")
        self.mode = options.get("trace") or "auto"
        if self.mode not in TRACE_MODES:
            raise CaptureError("trace must be one of %s, not %s." % (", ".join(TRACE_MODES), self.mode))
        self.environment = options.get("environment") or {}
        self.baseline = options.get("baseline")  # (Snapshot, state) of drift.load_baseline: nothing runs
        if self.baseline is not None:
            self.argv = [str(a) for a in options["argv"]]
        else:
            self.argv = resolve_argv(options.get("cmd"), options.get("argv"), options.get("shell"), self.chdir,
                                     self.environment)
        self.roots = _checked_roots(options)
        self.exclude = _checked_exclude(options, store)
        self.config_roots = normalize_roots(options.get("config_roots") or list(snap.CONFIG_ROOTS), "config_roots")
        self.keep_secrets = options.get("keep_secrets") or []
        _check_output_options(options, self.keep_secrets)
        if self.mode == "strace" and _which("strace", self.environment) is None:
            raise CaptureError("trace=strace needs the strace program on the target; install it first.")
        # the unit files are read from the walk when it covers their directories
        self.from_walk = snap.unit_dirs_covered(self.roots, self.exclude)
        self.read_state = functools.partial(snap.read_state, unit_files=not self.from_walk)


def _checked_roots(options):
    roots = normalize_roots(options.get("roots") or list(snap.DEFAULT_ROOTS), "roots")
    for root in roots:
        if not os.path.isdir(root):
            raise CaptureError("roots: %s does not exist or is not a directory." % root)
    return roots


def _checked_exclude(options, store):
    exclude = list(snap.DEFAULT_EXCLUDE) if options.get("exclude") is None else list(options["exclude"])
    exclude += [e for e in options.get("exclude_extra") or [] if e not in exclude]
    for item in exclude:
        if not item.startswith("/"):
            raise CaptureError("exclude entries must be absolute paths or patterns, not %s." % item)
    if store.root not in exclude:
        exclude.append(store.root)
    return exclude


def _check_output_options(options, keep_secrets):
    """The options that name what the capture keeps and where its archive goes."""
    if options.get("name") is not None:
        try:
            names.check("file_part", options["name"], "name")
        except names.NameError_ as exc:
            raise CaptureError(str(exc))
    if not isinstance(keep_secrets, list) or not all(
            names.is_valid("line", k) and k.startswith("/") for k in keep_secrets):
        raise CaptureError("keep_secrets must list absolute paths or shell globs, one line each.")
    archive_dir = options.get("archive_dir")
    if archive_dir and not (os.path.isabs(archive_dir) and os.path.isdir(archive_dir)):
        raise CaptureError("archive_dir %s is not an existing absolute directory on the target." % archive_dir)


def _new_capture_id(name, started):
    return "%s-%s-%s" % (started.strftime("%Y%m%d-%H%M%S"), _safe_name(name), uuid.uuid4().hex[:6])


def _snapshot_before(plan, stash):
    """(before, state_before, pre_id, seconds): the tree and the system state before the command."""
    t0 = time.monotonic()
    if plan.baseline is not None:
        before, state_before = plan.baseline
    else:
        pending = _Background(plan.read_state)  # dpkg/systemctl subprocesses overlap the walk
        before = snap.walk(plan.roots, plan.exclude, keep_listings=True)
        state_before = pending.result()
        if plan.from_walk:
            snap.add_unit_files(state_before, before)
        stash.take(before)
    return before, state_before, _snap_id(_now()), time.monotonic() - t0


class _Trace:
    """How the command is followed: fanotify (a tracer), strace (a log) or nothing (a full walk)."""

    def __init__(self, plan, before, work):
        self.info = {"requested": plan.mode, "used": "walk", "fallback": None, "events": 0}
        self.tracer = None
        self.strace_log = None
        self.run_argv = list(plan.argv)
        if plan.baseline is not None:
            self.info["used"] = "baseline"
        elif plan.mode in ("auto", "fanotify"):
            self._start_fanotify(plan.mode, before)
        elif plan.mode == "strace":
            self.strace_log = os.path.join(work, "strace.log")
            self.run_argv = tr.strace_argv(plan.argv, self.strace_log)
            self.info["used"] = "strace"

    def _start_fanotify(self, mode, before):
        self.tracer = tr.FanotifyTracer(_trace_marks(before))
        try:
            self.tracer.start()
            self.info["used"] = "fanotify"
        except tr.TraceUnsupported as exc:
            self.tracer = None
            if mode == "fanotify":
                raise CaptureError("trace=fanotify is not possible here: %s." % exc)
            self.info["fallback"] = str(exc)

    def stop(self):
        return self.tracer.stop() if self.tracer is not None else None


def _run_the_command(plan, options, trace, capture_id):
    """(CommandResult, what the tracer saw): an empty success for a baseline, where nothing runs."""
    try:
        if plan.baseline is not None:
            result = CommandResult(0, "", "", False, 0.0)
        else:  # MO_FLEET_CAPTURE: interception and the dpkg hook step aside inside a capture
            if options.get("on_start") is not None:  # the interception: from here on, no stepping aside
                options["on_start"]()
            result = run_command(trace.run_argv, plan.chdir, dict(plan.environment, MO_FLEET_CAPTURE=capture_id),
                                 options.get("timeout"), bool(options.get("passthrough")))
    finally:
        traced = trace.stop()
    return result, traced


def _snapshot_after(plan, before, trace, traced):
    """(after, processes): the tree after the command, rebuilt from what the trace saw when it
    saw everything, else walked again; and which processes touched which paths."""
    processes = {}
    info = trace.info
    if traced is not None:
        info["events"] = traced.events
        info["touched"] = len(traced.touched)
        info["unresolved"] = traced.unresolved
        if traced.lossy:
            info["fallback"] = traced.lossy
            info["used"] = "walk"
            after = snap.walk(plan.roots, plan.exclude, previous=before)
        else:
            after = snap.rescan(before, traced.touched, plan.roots, plan.exclude)
        processes = traced.processes
    else:
        after = snap.walk(plan.roots, plan.exclude, previous=before)
    if trace.strace_log is not None:
        try:
            with open(trace.strace_log, encoding="utf-8", errors="replace") as handle:
                parsed = tr.parse_strace(handle.read(), plan.chdir or "/")
            processes = parsed.processes
            info["events"] = parsed.events
        except OSError:
            info["fallback"] = "strace wrote no log"
    return after, processes


def _write_bundle_files(bundle, operations, content):
    """Copy each kept file's content into BUNDLE and record its hash on its operation; a file
    that cannot be read is marked as not bundled (a full disk stops the capture)."""
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


def _process_list(processes):
    """[{process, paths}]: how many paths each traced process touched."""
    by_proc = {}
    for path, whos in (processes or {}).items():
        for who in whos:
            by_proc.setdefault(who, set()).add(path)
    return [{"process": who, "paths": len(paths)} for who, paths in sorted(by_proc.items())]


def _command_meta(plan, options, started, snapshots, status, result):
    """The template's ``meta``: the system, the command and how it ended."""
    argv = plan.argv
    system = _system()
    return {
        "system": "%s %s (%s)" % (system["id"] or "linux", system["version_id"] or "", system["machine"]),
        "timestamp": started.replace(microsecond=0).isoformat(),
        "argv": argv,
        "command": argv[0],
        "arguments": " ".join(shlex.quote(a) for a in argv[1:]) if not options.get("shell") else argv[2],
        "shell": bool(options.get("shell")),
        "chdir": os.path.abspath(plan.chdir) if plan.chdir else None,
        "name": options.get("name"),
        "host": snap.printable_path(socket.gethostname())[:255],
        "snapshots": snapshots,
        "status": status,
        "rc": result.rc,
        "duration": round(result.duration, 3),
        "os": system,
    }


def _analysis_metadata(plan, options, trace, stats, processes, capture_id, libraries, operations, state_after):
    """The template's ``metadata``: how the capture was made and what it looked at."""
    method = {"fanotify": "fanotify_and_snapshot", "strace": "strace_and_snapshot"}.get(
        trace.info["used"], "snapshot")
    metadata = {
        "analysis_method": method, "trace": trace.info, "roots": plan.roots, "exclude": plan.exclude,
        "config_roots": plan.config_roots, "stats": stats, "processes": _process_list(processes),
        "keep_secrets": plan.keep_secrets,
        "bundle": {"files": tpl.BUNDLE_FILES, "before": tpl.BUNDLE_BEFORE, "id": capture_id},
    }
    if trace.strace_log is not None:
        metadata["strace_log"] = None
    if libraries:
        metadata["shared_libraries"] = libraries
    for key in ("origin", "requested_by"):
        if options.get(key) is not None:
            metadata[key] = options[key]
    if options.get("analyze") is not None:  # e.g. confdiff.analyze: more metadata from the result
        metadata.update(options["analyze"](operations, state_after))
    return metadata


def _record_in_index(store, plan, options, capture_id, snapshots, method, doc, result, status, final, archive,
                     size):
    """The index rows of the two snapshots and the template."""
    created = time.time()
    for phase, (sid, tree, state) in snapshots.items():
        store.add_snapshot({"id": sid, "created": created, "phase": phase, "template_id": capture_id,
                            "roots": json.dumps(plan.roots), "entries": len(tree),
                            "packages": len(state["packages"]), "units": len(state["units"]["files"]),
                            "method": method})
    store.add_template({"id": capture_id, "name": options.get("name"), "created": created,
                        "command": " ".join(plan.argv), "status": status, "rc": result.rc, "path": final,
                        "archive": archive, "summary": json.dumps(doc["summary"]), "bytes": size})


def capture(options, store=None):
    """Run one capture (see module docstring); raises CaptureError."""
    began = time.monotonic()
    store = store or CaptureDirectory()
    plan = _Plan(options, store)
    try:
        store.lock(wait=float(options.get("lock_timeout") or 300))
    except CaptureDirectoryError as exc:
        raise CaptureError(str(exc))
    work = None
    handed_over = []
    try:
        started = _now()
        capture_id = _new_capture_id(options.get("name"), started)
        work = os.path.join(store.work, capture_id)
        os.makedirs(work, mode=0o700)
        return _capture_in(plan, options, store, began, started, capture_id, work, handed_over)
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


def _capture_in(plan, options, store, began, started, capture_id, work, handed_over):
    """The capture itself, under the lock, in its work directory WORK; HANDED_OVER (a list)
    gets True when OPTIONS' detach took the rest to another process."""
    stash = snap.Stash(os.path.join(work, "stash"), plan.config_roots, memory=STASH_MEMORY,
                       keep=plan.keep_secrets)
    before, state_before, pre_id, walk_seconds = _snapshot_before(plan, stash)
    trace = _Trace(plan, before, work)
    result, traced = _run_the_command(plan, options, trace, capture_id)

    t1 = time.monotonic()
    pending = _Background(plan.read_state)
    after, processes = _snapshot_after(plan, before, trace, traced)
    post_id = _snap_id(_now())
    state_after = pending.result()
    if plan.from_walk:
        snap.add_unit_files(state_after, after)
    # OPTIONS detach(capture_id, state_before, state_after) -> True: the rest (diff, operations,
    # bundle, index) goes on in a process that now shares the lock; this one returns the result only
    if options.get("detach") is not None and options["detach"](capture_id, state_before, state_after):
        handed_over.append(True)
        status = "timeout" if result.timed_out else ("succeeded" if result.rc == 0 else "failed")
        return {"rc": result.rc, "stdout": result.stdout, "stderr": result.stderr, "status": status,
                "timed_out": result.timed_out, "detached": True, "trace": trace.info,
                "bundle": {"id": capture_id}, "cmd": plan.argv}

    changes = snap.diff(before, after)
    operations, content, stats = snap.build_operations(
        before, after, state_before, state_after, changes, stash, processes, plan.keep_secrets)
    libraries = elfdeps.record_libraries(operations, state_after["packages"], snap.owners)
    operations["excluded"] = snap.excluded_entries(
        plan.exclude, unnamed=sorted(set(before.unnamed) | set(after.unnamed)))
    bundle = os.path.join(work, "bundle")
    os.makedirs(bundle, mode=0o755)
    _write_bundle_files(bundle, operations, content)

    stats.update({"entries_before": len(before), "entries_after": len(after),
                  "walk_seconds": round(walk_seconds, 3),
                  "after_seconds": round(time.monotonic() - t1, 3),
                  "unreadable_dirs": len(before.errors), "stash_files": len(stash.saved),
                  "reused_listings": after.reused_listings,
                  "engine_seconds": round(time.monotonic() - began, 3)})
    stats.update({"created": len(changes.created), "modified": len(changes.modified),
                  "deleted": len(changes.deleted), "meta": len(changes.meta)})
    status = "timeout" if result.timed_out else ("succeeded" if result.rc == 0 else "failed")
    meta = _command_meta(plan, options, started, {"pre": pre_id, "post": post_id}, status, result)
    metadata = _analysis_metadata(plan, options, trace, stats, processes, capture_id, libraries,
                                  operations, state_after)
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
    _record_in_index(store, plan, options, capture_id,
                     {"pre": (pre_id, before, state_before), "post": (post_id, after, state_after)},
                     trace.info["used"], doc, result, status, final, archive if indexed else None, archive_size)
    bundle_info = {"id": capture_id, "path": final, "archive": archive, "sha256": archive_sha,
                   "size": archive_size}
    if content is not None:
        bundle_info["content"] = content
    return {
        "rc": result.rc, "stdout": result.stdout, "stderr": result.stderr, "status": status,
        "timed_out": result.timed_out, "template": doc, "trace": trace.info,
        "bundle": bundle_info, "cmd": plan.argv,
    }
