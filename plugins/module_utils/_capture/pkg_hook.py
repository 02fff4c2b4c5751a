# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dpkg's pre-invoke / post-invoke hook: no package change goes unrecorded.

dpkg runs the commands of ``pre-invoke=`` and ``post-invoke=`` (``/etc/dpkg/dpkg.cfg.d/``)
around every run that changes packages, whoever started it: apt, a script calling
``dpkg -i``, unattended-upgrades.  ``pre`` keeps the installed package set in
``<store>/hook/pending.json``; ``post`` compares, and appends one JSON line per run that
changed packages to ``<store>/hook/records.jsonl``: the time, the packages installed,
upgraded and removed, the dpkg or apt command line that asked, its parent command line and
the user (``SUDO_USER``, else the login uid, else the uid).  Outside a capture (no
``MO_FLEET_CAPTURE`` in the environment) ``post`` also writes a packages-only template into
the capture store (origin ``dpkg-hook``), so harvest brings it home.

The hook never makes dpkg fail: ``run_hook`` logs a problem and returns 0.
Standard library only (runs on targets).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import pwd
import shlex
import socket
import time
import uuid

# only what pre and post need at every dpkg run (a hook adds its start-up to each dpkg run):
# the template model and the capture engine are imported when a template is written
from ansible_collections.mo.fleet.plugins.module_utils._capture.snapshot_tree import printable_path
from ansible_collections.mo.fleet.plugins.module_utils._capture.system_state import is_manual, read_auto, read_packages
from ansible_collections.mo.fleet.plugins.module_utils._capture import hook_records
from ansible_collections.mo.fleet.plugins.module_utils._capture.capture_index import StoreError
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import atomic_write

MAX_RECORD_LINE = hook_records.MAX_RECORD_LINE
MAX_PARENTS = 16
MAX_COMMAND = 4096     # characters of one recorded command line
LOCK_WAIT = 5          # seconds the hook waits for the store's lock to write a template
FINISHING_WAIT = 60    # ... while a capture is being finished in the background
# what stands between a package tool and who started it: the interception wrapper
_WRAPPERS = ("python3", "mo-capture", "MO-capture")
_REQUESTERS = ("apt", "apt-get", "aptitude", "dpkg", "unattended-upgr", "unattended-upgrade", "packagekitd")
# set in an intercepted command's environment: its capture records the package changes, so
# dpkg's hook lines (roles/target/templates/dpkg-hook.cfg.j2) do not start the hook at all
HOOK_STEPS_ASIDE = "MO_FLEET_PACKAGES_RECORDED"

log = logging.getLogger("mo-fleet")


def hook_dir(store) -> str:
    return store.hook


# where the walk up from dpkg stops: above these, comm and cmdline are the user's to choose
_BOUNDARIES = ("sudo", "su", "doas", "pkexec", "run0", "sshd", "login", "systemd")


def _words(raw: bytes) -> list:
    """The printable words of a NUL-separated cmdline, at most MAX_COMMAND characters in all."""
    out, total = [], 0
    for word in (w.decode("utf-8", "replace") for w in raw.split(b"\0") if w):
        word = printable_path(word)[:MAX_COMMAND]
        total += len(word) + 1
        if total > MAX_COMMAND:
            break
        out.append(word)
    return out


def _proc(pid: int):
    """(ppid, comm, cmdline, words, real uid) of PID from /proc, or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            stat_line = handle.read(4096).decode("utf-8", "replace")
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            raw = handle.read(65536)
        with open("/proc/%d/status" % pid, "rb") as handle:
            uid_line = next((line for line in handle.read(65536).splitlines() if line.startswith(b"Uid:")), b"")
    except OSError:
        return None
    comm = stat_line[stat_line.find("(") + 1:stat_line.rfind(")")]
    ppid = int(stat_line.rsplit(")", 1)[1].split()[1])
    fields = uid_line.split()
    uid = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else -1
    words = _words(raw)
    return ppid, comm, " ".join(shlex.quote(w) for w in words)[:MAX_COMMAND], words, uid


def _boundary(item) -> bool:
    return item[0] in _BOUNDARIES or (len(item) > 3 and item[3] != 0)


def parents(pid: int = None) -> list:
    """[(comm, cmdline, words, real uid)] from the hook's parent up to the first process that
    is not root's own or that changes user (sudo, su, sshd...), that one included, or pid 1:
    what lies above it a user could name and argue as they like (comm and argv are theirs)."""
    out = []
    pid = os.getppid() if pid is None else pid
    while pid > 1 and len(out) < MAX_PARENTS:
        info = _proc(pid)
        if info is None:
            break
        out.append(info[1:])
        if _boundary(info[1:]):
            break
        pid = info[0]
    return out


def _requester_index(chain: list):
    """Index of the outermost package tool of CHAIN below its boundary, or None."""
    index = None
    for i, item in enumerate(chain):
        if _boundary(item):
            break
        if item[0] in _REQUESTERS:
            index = i
    return index


def requester(chain: list):
    """(command, parent) of CHAIN: the outermost package tool below the boundary (see
    parents) and what started it (at most the boundary process itself)."""
    index = _requester_index(chain)
    if index is None:
        return (chain[0][1] if chain else None), (chain[1][1] if len(chain) > 1 else None)
    parent = next((item[1] for item in chain[index + 1:] if item[0] not in _WRAPPERS), None)
    if parent is None and index + 1 < len(chain):
        parent = chain[index + 1][1]
    return chain[index][1], parent


def requester_argv(chain: list) -> list:
    """The words of the requesting command (kept as words: a cut string may not split again)."""
    index = _requester_index(chain)
    item = chain[0] if index is None and chain else (chain[index] if index is not None else None)
    if item is None:
        return []
    if len(item) > 2:
        return list(item[2])
    try:
        return shlex.split(item[1] or "")
    except ValueError:
        return (item[1] or "").split()


def who(environ=None) -> str:
    environ = os.environ if environ is None else environ
    if environ.get("SUDO_USER"):
        return printable_path(environ["SUDO_USER"])[:64]
    uid = None
    try:
        with open("/proc/self/loginuid") as handle:
            uid = int(handle.read().strip())
    except (OSError, ValueError):
        pass
    if uid is None or uid == 4294967295:
        uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def package_changes(before: dict, after: dict) -> list:
    """[{name, architecture, version, change[, version_before]}] between two package sets."""
    from ansible_collections.mo.fleet.plugins.module_utils._capture.operations import _pkg_changes
    installed, removed, upgraded = _pkg_changes({"packages": before}, {"packages": after}, set())
    out = []
    for change, items in (("installed", installed), ("upgraded", upgraded), ("removed", removed)):
        for item in items:
            entry = {"name": item["name"], "architecture": item["architecture"], "version": item["version"],
                     "change": change}
            if "version_before" in item:
                entry["version_before"] = item["version_before"]
            out.append(entry)
    return out


def _packages_json(packages: dict) -> list:
    return list(packages.values())


def pre(store) -> None:
    packages, _conffiles = read_packages()
    os.makedirs(hook_dir(store), mode=0o700, exist_ok=True)
    atomic_write(os.path.join(hook_dir(store), "pending.json"), json.dumps(_packages_json(packages)), 0o600)


def make_record(before: dict, after: dict, chain: list, environ=None, now=None) -> dict:
    environ = os.environ if environ is None else environ
    command, parent = requester(chain)
    return {"time": datetime.datetime.fromtimestamp(time.time() if now is None else now, datetime.timezone.utc)
            .replace(microsecond=0).isoformat(),
            "packages": package_changes(before, after), "command": command, "parent": parent,
            "argv": requester_argv(chain),
            "user": who(environ), "action": printable_path(environ.get("DPKG_HOOK_ACTION", ""))[:64] or None,
            "capture": printable_path(environ.get("MO_FLEET_CAPTURE", ""))[:128] or None}


def append_record(store, record: dict) -> None:
    hook_records.append(hook_dir(store), record)


def record_capture(store, argv: list, capture_id: str, before: dict, after: dict, environ=None) -> dict:
    """The record of an intercepted command's package changes, written by its capture (in
    whose environment HOOK_STEPS_ASIDE makes the hook step aside): as the hook's records of
    the command's dpkg runs would be together, with the capture's id; None without changes."""
    environ = dict(os.environ if environ is None else environ, MO_FLEET_CAPTURE=capture_id)
    words = _words(b"\0".join(str(w).encode("utf-8", "surrogateescape") for w in argv))
    program = os.path.basename(words[0]) if words else "?"
    chain = [(program[:15], " ".join(shlex.quote(w) for w in words)[:MAX_COMMAND], words, 0)] + parents()
    record = make_record(before, after, chain, environ)
    if not record["packages"]:
        return None
    append_record(store, record)
    return record


def post(store, environ=None) -> dict:
    """Compare with pre's package set; record a change (see module docstring); return the record."""
    environ = os.environ if environ is None else environ
    pending = os.path.join(hook_dir(store), "pending.json")
    try:
        with open(pending, encoding="utf-8") as handle:
            before = dict(((p["name"], p["architecture"]), p) for p in json.loads(handle.read(64 * 1024 * 1024)))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    os.unlink(pending)
    after, _conffiles = read_packages()
    record = make_record(before, after, parents(), environ)
    if not record["packages"]:
        return None
    append_record(store, record)
    if not record["capture"]:
        record["template"] = write_template(store, record, after)
    return record


parse_records = hook_records.parse


def read_records(store) -> list:
    return hook_records.read(hook_dir(store))


def _operations(record: dict, after: dict) -> dict:
    auto = read_auto()
    ops = {"packages_installed": [], "packages_upgraded": [], "packages_removed": []}
    for item in record["packages"]:
        pkg = after.get((item["name"], item["architecture"]))
        entry = {"name": item["name"], "version": item["version"], "architecture": item["architecture"],
                 "status": pkg["status"] if pkg else "removed"}
        if item["change"] != "removed":
            entry["manual"] = is_manual(entry, auto)
        if "version_before" in item:
            entry["version_before"] = item["version_before"]
        ops["packages_" + item["change"]].append(entry)
    return ops


def write_template(store, record: dict, after: dict) -> str:
    """A packages-only template of RECORD in STORE (index row included); return its id."""
    from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
    from ansible_collections.mo.fleet.plugins.module_utils._capture.capture import _system
    started = datetime.datetime.now(datetime.timezone.utc)
    words = record.get("argv")
    if not isinstance(words, list):  # a record of an older hook: its command line, split if it can be
        words = requester_argv([("dpkg", record.get("command") or "dpkg")])
    words = [w for w in words if isinstance(w, str)][:1024] or ["dpkg"]
    name = "%s-%s" % (hook_records.record_name({"argv": words}), started.strftime("%Y%m%dT%H%M%S"))
    capture_id = "%s-%s-%s" % (started.strftime("%Y%m%d-%H%M%S"), name, uuid.uuid4().hex[:6])
    system = _system()
    meta = {"system": "%s %s (%s)" % (system["id"] or "linux", system["version_id"] or "", system["machine"]),
            "timestamp": started.replace(microsecond=0).isoformat(), "argv": words, "command": words[0],
            "arguments": " ".join(shlex.quote(a) for a in words[1:]), "name": name,
            "host": printable_path(socket.gethostname())[:255], "status": "succeeded", "rc": 0,
            "os": system}
    metadata = {"analysis_method": "dpkg_hook", "origin": "dpkg-hook",
                "requested_by": {"command": record["command"], "parent": record["parent"], "user": record["user"]}}
    doc = tpl.build(meta, _operations(record, after), metadata, use_jsonschema=False)
    try:  # dpkg waits: a few seconds, longer only for a capture being finished in the background
        store.lock(wait=LOCK_WAIT if not store.finishing() else FINISHING_WAIT)
    except StoreError:
        log.warning("dpkg hook: the capture store is busy; the change is only in records.jsonl")
        return None
    try:
        work = os.path.join(store.work, capture_id)
        os.makedirs(work, mode=0o700)
        tpl.atomic_write(os.path.join(work, tpl.BUNDLE_TEMPLATE), tpl.dump(doc))
        final = os.path.join(store.templates, capture_id)
        os.rename(work, final)
        store.add_template({"id": capture_id, "name": name, "created": time.time(), "command": record["command"]
                            or "dpkg", "status": "succeeded", "rc": 0, "path": final, "archive": None,
                            "summary": json.dumps(doc["summary"]), "bytes": 0})
    finally:
        store.unlock()
    return capture_id


def run_hook(store, phase: str, after_template=None) -> int:
    """dpkg's hook entry point: PHASE pre or post; always 0 (a failing hook fails dpkg).
    AFTER_TEMPLATE() runs once post has written a template (the CLI's auto cleanup, so hook
    templates are pruned like every other capture)."""
    try:
        if phase == "pre":
            pre(store)
        elif phase == "post":
            record = post(store)
            if record:
                log.info("dpkg hook: %s by %s (%s): %s", record["command"], record["user"], record["parent"],
                         ", ".join("%s %s" % (p["change"], p["name"]) for p in record["packages"]))
            if record and record.get("template") and after_template is not None:
                after_template()
        else:
            log.error("dpkg hook: unknown phase %r", phase)
    except Exception as exc:  # never break dpkg; the log says what went wrong
        log.error("dpkg hook %s failed: %s: %s", phase, type(exc).__name__, exc)
    return 0
