# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The system state a capture compares: dpkg and apt (packages, owners, md5sums), systemd
(units and unit files) and the account databases, each read once.

Standard library only (runs on targets, Python 3.9+).
"""

from __future__ import annotations

import os
import re
import subprocess


from ansible_collections.mo.fleet.plugins.module_utils._capture.snapshot_tree import (
    DPKG_INFO, Excluder, EXTENDED_STATES)


def _run(argv):
    try:
        proc = subprocess.run(argv, check=False, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, universal_newlines=True)
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout


def parse_dpkg_query(text):
    """dpkg-query output (see read_packages) -> (packages, conffiles)."""
    packages, conffiles = {}, {}
    current = None
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith(" "):
            parts = line.split()
            if current and len(parts) >= 2 and parts[0].startswith("/"):
                conffiles[parts[0]] = (current, parts[1], "obsolete" in parts[2:])
            continue
        fields = line.split("\t")
        if len(fields) < 5:
            continue
        name, version, arch, status = fields[1], fields[2], fields[3], fields[4]
        current = name
        state = status.split()[-1] if status.split() else ""
        if state in ("installed", "half-configured", "unpacked", "half-installed",
                     "triggers-awaited", "triggers-pending"):
            packages[(name, arch)] = {"name": name, "version": version, "architecture": arch,
                                      "status": state}
    return packages, conffiles


DPKG_FORMAT = "P\t${Package}\t${Version}\t${Architecture}\t${Status}\n${Conffiles}\n"


def read_packages():
    """({(name, arch): {...}}, {conffile: (package, md5, obsolete)}) or ({}, {}) without dpkg."""
    out = _run(["dpkg-query", "-W", "-f=" + DPKG_FORMAT])
    if out is None:
        return {}, {}
    return parse_dpkg_query(out)


def parse_extended_states(text):
    """apt's extended_states -> set of (name, arch) marked Auto-Installed: 1."""
    auto = set()
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if ":" in line:
                key, value = line.split(":", 1)
                fields[key.strip()] = value.strip()
        if fields.get("Auto-Installed") == "1" and "Package" in fields:
            auto.add((fields["Package"], fields.get("Architecture", "")))
    return auto


def read_auto(path=EXTENDED_STATES):
    try:
        with open(path) as handle:
            return parse_extended_states(handle.read())
    except OSError:
        return set()


def is_manual(pkg, auto):
    return (pkg["name"], pkg["architecture"]) not in auto and (pkg["name"], "") not in auto and \
        not (pkg["architecture"] == "all" and any(n == pkg["name"] for n, _a in auto))


_USRMERGE = ("/usr/bin/", "/usr/sbin/", "/usr/lib/", "/usr/lib32/", "/usr/lib64/", "/usr/libx32/")


def _aliases(path):
    """PATH and its pre-usrmerge spelling (dpkg lists /bin/x while the walk sees /usr/bin/x)."""
    if path.startswith(_USRMERGE):
        return (path, path[4:])
    return (path,)


def owners(paths, info_dir=DPKG_INFO):
    """{path: package} for the PATHS some dpkg package lists (reads info/*.list once)."""
    wanted = {}
    for path in paths:
        for alias in _aliases(path):
            wanted[alias] = path
    found = {}
    try:
        names = os.listdir(info_dir)
    except OSError:
        return found
    if not wanted:
        return found
    for name in sorted(names):
        if not name.endswith(".list"):
            continue
        package = name[:-5].split(":")[0]
        try:
            with open(os.path.join(info_dir, name), encoding="utf-8", errors="surrogateescape") as handle:
                listed = handle.read().split("\n")
        except OSError:
            continue
        for line in wanted.keys() & listed:  # set intersection in C, not a Python loop per line
            found.setdefault(wanted[line], package)
    return found


def read_md5sums(package, info_dir=DPKG_INFO):
    """{absolute path: md5} from a package's md5sums file (any architecture qualifier)."""
    sums = {}
    try:
        names = [n for n in os.listdir(info_dir)
                 if n.endswith(".md5sums") and n[:-8].split(":")[0] == package]
    except OSError:
        return sums
    for name in names:
        try:
            with open(os.path.join(info_dir, name), encoding="utf-8", errors="surrogateescape") as handle:
                for line in handle:
                    parts = line.rstrip("\n").split(None, 1)
                    if len(parts) == 2:
                        sums["/" + parts[1].lstrip("/")] = parts[0]
        except OSError:
            continue
    return sums


def _unit_column(text, words, column):
    """{unit: its COLUMN-th word} of systemctl's listing lines of at least WORDS words."""
    units = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= words and "." in parts[0]:
            units[parts[0]] = parts[column]
    return units


def parse_unit_files(text):
    """``systemctl list-unit-files``: {unit: its state (enabled, disabled, ...)}."""
    return _unit_column(text, 2, 1)


def parse_units(text):
    """``systemctl list-units``: {unit: its ACTIVE state}."""
    return _unit_column(text, 4, 2)


_VOLATILE_UNIT = re.compile(r"\.(device|scope|slice|swap)$|^(session-|run-|user@|user-runtime-dir@)")


def read_units(unit_files=True):
    """{'available', 'files': {unit: state}, 'paths': {unit: path}, 'active': {unit: active}}.

    ``systemctl list-unit-files`` costs a second or more on a small host, so with
    UNIT_FILES false only ``list-units`` runs and the caller fills 'files' from the
    snapshot (``unit_files``).
    """
    units = _run(["systemctl", "list-units", "--all", "--no-legend", "--no-pager", "--plain"])
    files = _run(["systemctl", "list-unit-files", "--no-legend", "--no-pager"]) if unit_files else ""
    if files is None or units is None:
        return {"available": False, "files": {}, "paths": {}, "active": {}}
    active = dict((u, s) for u, s in parse_units(units).items() if not _VOLATILE_UNIT.search(u))
    return {"available": True, "files": parse_unit_files(files), "paths": {}, "active": active}


UNIT_DIRS = ("/etc/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system",
             "/lib/systemd/system")


UNIT_SUFFIXES = (".service", ".socket", ".timer", ".path", ".mount", ".automount", ".target",
                 ".swap", ".slice", ".device", ".scope")


def unit_dirs_covered(roots, exclude):
    """True when the walk sees /etc/systemd/system and /usr/lib/systemd/system."""
    excluded = Excluder(exclude)
    for directory in ("/etc/systemd/system", "/usr/lib/systemd/system"):
        if excluded.covers(directory):
            return False
        if not any(directory == r or directory.startswith(r.rstrip("/") + "/") for r in roots):
            return False
    return True


def _template_of(unit):
    name, dot, suffix = unit.rpartition(".")
    if "@" in name and not name.endswith("@"):
        return name.split("@", 1)[0] + "@." + suffix
    return None


def unit_files(snapshot):
    """({unit: state}, {unit: path}) from the unit directories and their symlinks in SNAPSHOT.

    state is ``masked`` (linked to /dev/null), ``enabled`` (a .wants/.requires/.upholds link
    names it), ``alias`` (a link in /etc/systemd/system to another unit) or ``disabled``
    (none of these: disabled or static).  This is what ``systemctl enable`` changes.
    """
    paths, masked, enabled, alias = {}, set(), set(), set()
    for path, st in snapshot.entries.items():
        if not path.endswith(UNIT_SUFFIXES):
            continue
        parent, name = path.rsplit("/", 1)
        if parent in UNIT_DIRS:
            if st.type == "symlink" and st.target == "/dev/null":
                masked.add(name)
                continue
            if st.type == "symlink":
                target = os.path.basename(st.target or "")
                if target and target != name:
                    alias.add(name)
                    if parent == "/etc/systemd/system":
                        enabled.add(target)  # Alias= installed by systemctl enable
            if name not in paths or UNIT_DIRS.index(parent) < UNIT_DIRS.index(paths[name].rsplit("/", 1)[0]):
                paths[name] = path
        elif (st.type == "symlink" and parent.startswith("/etc/systemd/system/")
              and parent.endswith((".wants", ".requires", ".upholds"))):
            target = os.path.basename(st.target or name)
            enabled.add(target)
            enabled.add(name)
            for unit in (target, name):
                template = _template_of(unit)
                if template:
                    enabled.add(template)
    states = {}
    for name in paths:
        if name in masked:
            states[name] = "masked"
        elif name in alias:
            states[name] = "alias"
        elif name in enabled:
            states[name] = "enabled"
        else:
            states[name] = "disabled"
    for name in masked:
        states[name] = "masked"
    return states, paths


def unit_path(unit):
    out = _run(["systemctl", "show", "-p", "FragmentPath", "--value", unit])
    return (out or "").strip() or None


def parse_passwd(text):
    users = {}
    for line in text.split("\n"):  # as passwd's readers split it: on \n only
        parts = line.split(":")
        if len(parts) >= 7 and parts[0]:
            users[parts[0]] = {"name": parts[0], "uid": _int(parts[2]), "gid": _int(parts[3]),
                               "gecos": parts[4], "home": parts[5], "shell": parts[6]}
    return users


def parse_group(text):
    groups = {}
    for line in text.split("\n"):
        parts = line.split(":")
        if len(parts) >= 4 and parts[0]:
            groups[parts[0]] = {"name": parts[0], "gid": _int(parts[2]),
                                "members": [m for m in parts[3].split(",") if m]}
    return groups


def _int(text):
    try:
        return int(text)
    except ValueError:
        return None


def read_accounts(etc="/etc"):
    """{'users': {...}, 'groups': {...}} parsed from passwd and group (no NSS)."""
    out = {}
    for key, name, parser in (("users", "passwd", parse_passwd), ("groups", "group", parse_group)):
        try:
            with open(os.path.join(etc, name), encoding="utf-8", errors="replace") as handle:
                out[key] = parser(handle.read())
        except OSError:
            out[key] = {}
    return out


def read_state(unit_files=True):
    """Everything but the file walk: packages, conffiles, auto marks, units, accounts."""
    packages, conffiles = read_packages()
    return {"packages": packages, "conffiles": conffiles, "auto": read_auto(),
            "units": read_units(unit_files), "accounts": read_accounts()}


def add_unit_files(state, snapshot):
    """Fill STATE's unit file states and paths from SNAPSHOT (see unit_files)."""
    if state["units"]["available"]:
        state["units"]["files"], state["units"]["paths"] = unit_files(snapshot)
    return state


class Names(object):
    """uid/gid -> name from the after-state passwd/group (accounts created by the command)."""

    def __init__(self, accounts):
        self.users = dict((u["uid"], n) for n, u in accounts.get("users", {}).items())
        self.groups = dict((g["gid"], n) for n, g in accounts.get("groups", {}).items())

    def user(self, uid):
        return self.users.get(uid)

    def group(self, gid):
        return self.groups.get(gid)


def state_of(st, names, digest=None):
    """The template 'state' object of a Stat."""
    out = {"type": st.type, "size": st.size if st.type == "file" else None,
           "permissions": "%04o" % st.mode, "owner": names.user(st.uid), "group": names.group(st.gid),
           "uid": st.uid, "gid": st.gid, "hash": digest, "modified": st.mtime_ns // 1000000000}
    if st.type == "symlink":
        out["target"] = st.target
    return out
