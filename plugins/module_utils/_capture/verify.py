# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check a host against a capture template, item by item (reads only).

Standard library only (runs on targets, Python 3.9+).

``expectations(doc, options) -> list[dict]``
    What the template says the host must look like once applied: one dict per item with
    ``kind`` (path, package, unit, user, group), ``name`` and the expected facts.
``check(doc, options, probe=None) -> dict``
    ``{"checked": n, "drift": [{kind, name, check, expected, actual}], "conforms": bool}``.
    PROBE supplies the host's state (``HostProbe`` by default: lstat, sha256, dpkg-query,
    systemctl, pwd/grp); tests pass their own.

Options: ``include``/``exclude`` (paths or globs, matched by ``_common/paths.matches`` as the
renderers match them: a path or a glob's match also selects everything below it), ``check_content`` (sha256, default true),
``check_versions`` (package versions, default true), ``skip_services`` (true or unit names),
``skip_generated`` (do not compare the content of account databases and ld.so.cache, which
the system writes itself; default true).
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess

from ansible_collections.mo.fleet.plugins.module_utils._common import fs, paths

GENERATED = ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/subuid", "/etc/subgid",
             "/etc/passwd-", "/etc/group-", "/etc/shadow-", "/etc/gshadow-", "/etc/subuid-", "/etc/subgid-",
             "/etc/ld.so.cache")
ENABLED = ("enabled", "enabled-runtime", "alias", "linked", "static", "indirect", "generated")


class VerifyError(ValueError):
    """Bad verify input; the message is one sentence."""


def _selected(path, options):
    return paths.selected(path, options.get("include") or [], options.get("exclude") or [])


def expectations(doc, options=None):
    """The template's end state as a list of checks (see module docstring)."""
    options = options or {}
    if not isinstance(doc, dict) or not isinstance(doc.get("operations"), dict):
        raise VerifyError("The template has no operations block.")
    ops = doc["operations"]
    out = []
    gone = set()
    for op in ("files_deleted", "symlinks_deleted", "directories_deleted"):
        for e in ops.get(op) or []:
            if _selected(e["path"], options):
                out.append({"kind": "path", "name": e["path"], "present": False})
                gone.add(e["path"])
    for op, ftype in (("directories_created", "directory"), ("files_created", "file"), ("files_modified", "file"),
                      ("symlinks_created", "symlink"), ("symlinks_modified", "symlink")):
        for e in ops.get(op) or []:
            path = e["path"]
            if path in gone or not _selected(path, options):
                continue
            item = {"kind": "path", "name": path, "present": True, "type": e.get("type") or ftype}
            if item["type"] != "symlink" and e.get("permissions"):
                item["mode"] = e["permissions"]
            for key in ("owner", "group", "uid", "gid"):
                if e.get(key) is not None:
                    item[key] = e[key]
            if item["type"] == "file" and e.get("hash") and options.get("check_content", True):
                if not (options.get("skip_generated", True) and path in GENERATED):
                    item["sha256"] = e["hash"]
            if item["type"] == "symlink" and e.get("target"):
                item["target"] = e["target"]
            out.append(item)
    for e in ops.get("permissions_changed") or []:
        if not _selected(e["path"], options):
            continue
        after = e.get("after") or {}
        item = {"kind": "path", "name": e["path"], "present": True}
        if after.get("permissions"):
            item["mode"] = after["permissions"]
        for key in ("owner", "group", "uid", "gid"):
            if after.get(key) is not None:
                item[key] = after[key]
        out.append(item)
    versions = options.get("check_versions", True)
    for op in ("packages_installed", "packages_upgraded"):
        for p in ops.get(op) or []:
            item = {"kind": "package", "name": p["name"], "installed": True}
            if versions:
                item["version"] = p["version"]
            out.append(item)
    for p in ops.get("packages_removed") or []:
        out.append({"kind": "package", "name": p["name"], "installed": False})
    skip = options.get("skip_services") or False
    units = {}
    for op, key, value in (("units_enabled", "enabled", True), ("units_disabled", "enabled", False),
                           ("units_started", "active", True), ("units_stopped", "active", False)):
        for u in ops.get(op) or []:
            name = u["unit"]
            if skip is True or (isinstance(skip, list) and name in skip) or "@." in name:
                continue
            units.setdefault(name, {"kind": "unit", "name": name})[key] = value
    out += [units[n] for n in sorted(units)]
    for op, kind, present in (("users_created", "user", True), ("users_deleted", "user", False),
                              ("groups_created", "group", True), ("groups_deleted", "group", False)):
        for a in ops.get(op) or []:
            item = {"kind": kind, "name": a["name"], "present": present}
            if present and kind == "user":
                for key in ("home", "shell"):
                    if a.get(key) is not None:
                        item[key] = a[key]
            out.append(item)
    return out


def _or_none(read, arg, errors=OSError):
    """READ(ARG), or None when it raises ERRORS (what the host does not have)."""
    try:
        return read(arg)
    except errors:
        return None


class HostProbe:
    """The live host's state, read-only."""

    def __init__(self):
        self._packages = None
        self._units = {}

    def lstat(self, path):
        return _or_none(os.lstat, path)

    def sha256(self, path):
        return _or_none(fs.sha256_file, path)

    def readlink(self, path):
        return _or_none(os.readlink, path)

    def user_name(self, uid):
        return _or_none(lambda n: pwd.getpwuid(n).pw_name, uid, KeyError)

    def group_name(self, gid):
        return _or_none(lambda n: grp.getgrgid(n).gr_name, gid, KeyError)

    def user(self, name):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        return {"home": entry.pw_dir, "shell": entry.pw_shell}

    def group(self, name):
        try:
            grp.getgrnam(name)
        except KeyError:
            return None
        return {}

    def package(self, name):
        if self._packages is None:
            self._packages = {}
            try:
                out = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${db:Status-Abbrev}\n"],
                                     capture_output=True, text=True, check=False).stdout
            except OSError:
                out = ""
            for line in out.splitlines():
                parts = line.split("\t")
                if len(parts) == 3 and parts[2].startswith("ii"):
                    self._packages[parts[0]] = parts[1]
        return self._packages.get(name)

    def unit(self, name):
        if name not in self._units:
            def ask(verb):
                try:
                    proc = subprocess.run(["systemctl", verb, name], capture_output=True, text=True, check=False)
                except OSError:
                    return None
                return proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else None
            self._units[name] = {"enabled": ask("is-enabled"), "active": ask("is-active")}
        return self._units[name]


_TYPES = {"file": stat.S_ISREG, "directory": stat.S_ISDIR, "symlink": stat.S_ISLNK}


def _drift(item, check, expected, actual):
    return {"kind": item["kind"], "name": item["name"], "check": check, "expected": expected, "actual": actual}


def check_item(item, probe):
    """Drift records for one expectation."""
    out = []
    kind = item["kind"]
    if kind == "path":
        st = probe.lstat(item["name"])
        if not item["present"]:
            if st is not None:
                out.append(_drift(item, "present", False, True))
            return out
        if st is None:
            return [_drift(item, "present", True, False)]
        ftype = item.get("type")
        if ftype in _TYPES and not _TYPES[ftype](st.st_mode):
            return [_drift(item, "type", ftype, next((t for t, f in _TYPES.items() if f(st.st_mode)), "other"))]
        if "mode" in item and not stat.S_ISLNK(st.st_mode):
            actual = f"{stat.S_IMODE(st.st_mode):04o}"
            if int(item["mode"], 8) != stat.S_IMODE(st.st_mode):
                out.append(_drift(item, "mode", item["mode"].zfill(4), actual))
        for key, number, name_of, actual in (("owner", "uid", probe.user_name, st.st_uid),
                                             ("group", "gid", probe.group_name, st.st_gid)):
            if key not in item and number not in item:
                continue
            name = name_of(actual)
            if item.get(key) is not None and name != item[key]:
                out.append(_drift(item, key, item[key], name or actual))
            elif item.get(key) is None and item.get(number) is not None and actual != item[number]:
                out.append(_drift(item, key, item[number], actual))
        if "sha256" in item:
            digest = probe.sha256(item["name"])
            if digest != item["sha256"]:
                out.append(_drift(item, "content", item["sha256"], digest))
        if "target" in item:
            target = probe.readlink(item["name"])
            if target != item["target"]:
                out.append(_drift(item, "target", item["target"], target))
        return out
    if kind == "package":
        version = probe.package(item["name"])
        if not item["installed"]:
            if version is not None:
                out.append(_drift(item, "installed", False, version))
        elif version is None:
            out.append(_drift(item, "installed", item.get("version") or True, None))
        elif "version" in item and version != item["version"]:
            out.append(_drift(item, "version", item["version"], version))
        return out
    if kind == "unit":
        state = probe.unit(item["name"])
        if "enabled" in item:
            enabled = state.get("enabled") in ENABLED
            if enabled != item["enabled"]:
                out.append(_drift(item, "enabled", item["enabled"], state.get("enabled")))
        if "active" in item:
            active = state.get("active") == "active"
            if active != item["active"]:
                out.append(_drift(item, "active", item["active"], state.get("active")))
        return out
    if kind in ("user", "group"):
        found = probe.user(item["name"]) if kind == "user" else probe.group(item["name"])
        if (found is not None) != item["present"]:
            return [_drift(item, "present", item["present"], found is not None)]
        for key in ("home", "shell"):
            if found and key in item and found.get(key) != item[key]:
                out.append(_drift(item, key, item[key], found.get(key)))
        return out
    return out


def check(doc, options=None, probe=None):
    """Compare the host with DOC; see the module docstring."""
    probe = probe or HostProbe()
    items = expectations(doc, options)
    drift = []
    for item in items:
        drift += check_item(item, probe)
    return {"checked": len(items), "drift": drift, "conforms": not drift}


def describe_drift(record):
    """One readable line for a drift record."""
    return (f"{record['kind']} {record['name']}: {record['check']} is {record['actual']!r}, "
            f"the template says {record['expected']!r}")
