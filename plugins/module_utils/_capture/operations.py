# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A diff plus the system state before and after turned into the template's ``operations``
block (``build_operations``) and the excluded entries.

Standard library only (runs on targets, Python 3.9+).
"""

from __future__ import annotations

from ansible_collections.mo.fleet.plugins.module_utils._capture import pkgfiles
from ansible_collections.mo.fleet.plugins.module_utils._capture.snapshot_tree import (
    DEFAULT_EXCLUDE, diff, EXCLUDE_REASONS, printable_path, unnamed_name)
from ansible_collections.mo.fleet.plugins.module_utils._capture.redaction import (
    hash_file, kept, NAMED_LIKE_CREDENTIALS, redaction_reason)
from ansible_collections.mo.fleet.plugins.module_utils._capture.system_state import (
    _aliases, is_manual, Names, owners, read_md5sums, state_of, unit_path)


def _pkg_changes(before, after, auto):
    installed, removed, upgraded = [], [], []
    before_by_name = {}
    for (name, arch), pkg in before["packages"].items():
        before_by_name[(name, arch)] = pkg
    for key, pkg in after["packages"].items():
        entry = {"name": pkg["name"], "version": pkg["version"], "architecture": pkg["architecture"],
                 "manual": is_manual(pkg, auto), "status": pkg["status"]}
        old = before_by_name.get(key)
        if old is None:
            installed.append(entry)
        elif old["version"] != pkg["version"]:
            entry["version_before"] = old["version"]
            upgraded.append(entry)
    for key, pkg in before["packages"].items():
        if key not in after["packages"]:
            removed.append({"name": pkg["name"], "version": pkg["version"],
                            "architecture": pkg["architecture"], "status": "removed"})
    # one entry per package name: multi-arch packages keep the first architecture
    return installed, removed, upgraded


def _unit_changes(before, after):
    ops = dict((k, []) for k in ("units_added", "units_removed", "units_enabled", "units_disabled",
                                 "units_started", "units_stopped"))
    if not (before["units"]["available"] and after["units"]["available"]):
        return ops
    bf, af = before["units"]["files"], after["units"]["files"]
    ba, aa = before["units"]["active"], after["units"]["active"]
    for unit in sorted(set(af) - set(bf)):
        ops["units_added"].append({"unit": unit, "path": after["units"].get("paths", {}).get(unit) or unit_path(unit),
                                   "state": af[unit],
                                   "active": aa.get(unit)})
    for unit in sorted(set(bf) - set(af)):
        ops["units_removed"].append({"unit": unit, "state": bf[unit], "active": ba.get(unit)})
    enabled_states = ("enabled", "enabled-runtime", "alias", "linked")
    for unit in sorted(af):
        old, new = bf.get(unit), af[unit]
        if new in enabled_states and old not in enabled_states:
            ops["units_enabled"].append({"unit": unit, "before": old, "after": new})
        elif old in enabled_states and new not in enabled_states:
            ops["units_disabled"].append({"unit": unit, "before": old, "after": new})
    for unit in sorted(set(aa) | set(ba)):
        old, new = ba.get(unit), aa.get(unit)
        if new == "active" and old != "active":
            ops["units_started"].append({"unit": unit, "before": old, "after": new})
        elif old == "active" and new != "active":
            ops["units_stopped"].append({"unit": unit, "before": old, "after": new})
    return ops


def _account_changes(before, after):
    ops = {}
    for kind in ("users", "groups"):
        b, a = before["accounts"][kind], after["accounts"][kind]
        created, changed, deleted = [], [], []
        for name in sorted(a):
            if name not in b:
                entry = dict(a[name])
                if kind == "users":
                    entry["system"] = entry["uid"] is not None and entry["uid"] < 1000
                else:
                    entry["system"] = entry["gid"] is not None and entry["gid"] < 1000
                created.append(entry)
            elif a[name] != b[name]:
                changed.append({"name": name, "before": b[name], "after": a[name]})
        for name in sorted(b):
            if name not in a:
                deleted.append(dict(b[name]))
        ops[kind + "_created"], ops[kind + "_changed"], ops[kind + "_deleted"] = created, changed, deleted
    return ops


_KIND_OPS = {"file": "files", "directory": "directories", "symlink": "symlinks"}


def _op_name(st, change):
    return "%s_%s" % (_KIND_OPS.get(st.type, "files"), change)


_FILE_OPS = ("files_created", "files_modified", "files_deleted", "directories_created",
             "directories_deleted", "symlinks_created", "symlinks_modified", "symlinks_deleted",
             "permissions_changed", "redacted")
_BAD_TARGET = "symlink target is not UTF-8 or holds a line break or control character"


def _bad_target(st):
    return st.type == "symlink" and st.target is not None and unnamed_name(st.target)


class _Operations:
    """The path operations of one diff, built path by path, and the content they bundle."""

    def __init__(self, state_before, state_after, touched, stash, processes, keep, shipped):
        self.keep = keep
        self.stash = stash
        self.processes = processes or {}
        self.names = Names(state_after["accounts"])
        self.before_names = Names(state_before["accounts"])
        self.ops = dict((op, []) for op in _FILE_OPS)
        self.content = []
        self.stats = {"hashed": 0, "hashed_bytes": 0}
        self.owner_of = owners(touched)
        self.conffiles = dict(state_before["conffiles"])
        self.conffiles.update(state_after["conffiles"])
        self.md5_cache = {}
        self.shipped = shipped

    def packaged_md5(self, package, path):
        if package not in self.md5_cache:
            self.md5_cache[package] = read_md5sums(package)
        for alias in _aliases(path):
            if alias in self.md5_cache[package]:
                return self.md5_cache[package][alias]
        return None

    def annotate(self, entry, path):
        package = self.owner_of.get(path)
        entry["package"] = package
        if path in self.conffiles:
            entry["conffile"] = True
            entry["package"] = package or self.conffiles[path][0]
        if path in self.processes:
            entry["processes"] = sorted(set(printable_path(p)[:4096] for p in self.processes[path]))
        return entry

    def redact(self, path, st, change, reason):
        self.ops["redacted"].append({"path": path, "reason": reason, "type": st.type, "change": change,
                                     "package": self.owner_of.get(path)})

    def _hash_live_file(self, path, st, change, name_reason):
        """(sha256, md5) of a live file, or None when it was redacted (a secret, unreadable)."""
        if name_reason and name_reason != NAMED_LIKE_CREDENTIALS:
            self.redact(path, st, change, name_reason)
            return None
        try:
            digest, md5, has_key = hash_file(path)
        except OSError:
            self.ops["redacted"].append({"path": path, "reason": "unreadable at capture time",
                                         "type": st.type, "change": change})
            return None
        self.stats["hashed"] += 1
        self.stats["hashed_bytes"] += st.size
        if has_key and not kept(path, self.keep):
            self.redact(path, st, change, redaction_reason(path, private_key=True))
            return None
        return digest, md5

    def live_entry(self, path, st, change):
        """Entry for a created/modified path, or None when it was redacted or vanished."""
        entry = {"path": path}
        digest = md5 = name_reason = None
        if st.type == "file":
            name_reason = redaction_reason(path, keep=self.keep)
            hashed = self._hash_live_file(path, st, change, name_reason)
            if hashed is None:
                return None
            digest, md5 = hashed
        if _bad_target(st):
            self.redact(path, st, change, _BAD_TARGET)
            return None
        entry.update(state_of(st, self.names, digest))
        self.annotate(entry, path)
        differs = self.shipped.differs(entry, entry["package"], _aliases(path)[1:]) if entry.get("package") \
            and st.type in ("file", "directory") else {}
        if differs:
            entry["package_differs"] = differs
        if st.type == "file":
            bundled = self._bundled(entry, path, md5, differs)
            if name_reason and not entry.get("package_default"):
                # named like credentials and not the public content a package ships
                self.redact(path, st, change, name_reason)
                return None
            entry["bundled"] = bundled
            if bundled:
                self.content.append((path, "files", path))
        return entry

    def _bundled(self, entry, path, md5, differs):
        """Whether a live file's content goes into the bundle: not when it is what its package
        ships (``package_default``), always when its mode or owner differs from the package's."""
        bundled = True
        package = entry.get("package")
        if entry.get("conffile"):
            entry["conffile_changed"] = md5 != self.conffiles[path][1]
            entry["package_default"] = not entry["conffile_changed"]
            bundled = entry["conffile_changed"]
        elif package:
            packaged = self.packaged_md5(package, path)
            entry["package_default"] = packaged == md5 if packaged else None
            bundled = not entry["package_default"]
        if differs:
            bundled = True  # the renderers copy it with the recorded mode and owner
        return bundled

    def keep_before(self, entry, path):
        stash = self.stash
        source = stash.source(path) if stash is not None and stash.covers(path) else None
        if source is not None:
            entry["before_bundled"] = True
            self.content.append((path, "before", source))
            return stash.digest(path)
        return None

    def created(self, path, st):
        entry = self.live_entry(path, st, "created")
        if entry is not None:
            self.ops[_op_name(st, "created")].append(entry)

    def modified(self, path, st, old):
        entry = self.live_entry(path, st, "modified")
        if entry is None:
            return
        if _bad_target(old):
            self.redact(path, st, "modified", "former symlink target is not UTF-8 or holds a line break or "
                        "control character")
            return
        before_digest = self.keep_before(entry, path) if st.type == "file" else None
        entry["before"] = state_of(old, self.before_names, before_digest)
        self.ops[_op_name(st, "modified")].append(entry)

    def deleted(self, path, old):
        if old.type == "file" and redaction_reason(path, keep=self.keep):
            self.redact(path, old, "deleted", redaction_reason(path, keep=self.keep))
            return
        if _bad_target(old):
            self.redact(path, old, "deleted", _BAD_TARGET)
            return
        entry = {"path": path}
        entry.update(state_of(old, self.before_names, None))
        self.annotate(entry, path)
        if old.type == "file":
            digest = self.keep_before(entry, path)
            entry["hash"] = digest
        self.ops[_op_name(old, "deleted")].append(entry)

    def meta_changed(self, path, old, new):
        b = state_of(old, self.before_names)
        a = state_of(new, self.names)
        for side in (b, a):
            for key in ("size", "hash", "modified", "target", "type"):
                side.pop(key, None)
        self.ops["permissions_changed"].append({"path": path, "type": new.type, "package": self.owner_of.get(path),
                                                "before": b, "after": a})


def build_operations(before, after, state_before, state_after, changes=None, stash=None,
                     processes=None, keep_secrets=(), shipped=None):
    """Turn snapshots + system state into (operations, content, stats).

    CONTENT is a list of (path, area, source) to copy into the bundle: area "files" with
    source = the live path, area "before" with source = the stash copy (a path, or bytes for
    a copy held in memory).  No file content is
    ever copied for redacted paths (KEEP_SECRETS: paths or globs kept all the same).

    A created or modified path a package owns whose mode, owner or group differs from what
    the package ships (SHIPPED, a ``pkgfiles.Shipped``; by default one over the installed
    packages that may download again only the archives of packages installed or upgraded
    while capturing) gets ``package_differs`` ({field: the package's value}); such a file is
    bundled, so every renderer applies it like a changed conffile (``package_default`` still
    says whether its content is the package's).
    """
    changes = changes or diff(before, after)
    touched = set(changes.created) | set(changes.modified) | set(changes.deleted) | set(changes.meta)
    own_shipped = shipped is None
    if own_shipped:
        fresh = {key[0] for key, pkg in state_after["packages"].items()
                 if state_before["packages"].get(key, {}).get("version") != pkg["version"]}
        shipped = pkgfiles.Shipped(state_after["packages"], download=fresh)
    build = _Operations(state_before, state_after, touched, stash, processes, tuple(keep_secrets or ()), shipped)
    for path in changes.created:
        build.created(path, after.entries[path])
    for path in changes.modified:
        build.modified(path, after.entries[path], before.entries[path])
    for path in changes.deleted:
        build.deleted(path, before.entries[path])
    deleted = set(changes.deleted)
    for path in changes.meta:
        if path not in deleted:
            build.meta_changed(path, before.entries[path], after.entries[path])
    ops, stats = build.ops, build.stats
    if shipped.sources:
        stats["package_reference"] = dict(sorted(shipped.sources.items()))
    if own_shipped:
        shipped.cleanup()
    installed, removed, upgraded = _pkg_changes(state_before, state_after, state_after["auto"])
    ops["packages_installed"], ops["packages_removed"], ops["packages_upgraded"] = installed, removed, upgraded
    ops.update(_unit_changes(state_before, state_after))
    ops.update(_account_changes(state_before, state_after))
    return ops, build.content, stats


def excluded_entries(exclude, defaults=DEFAULT_EXCLUDE, unnamed=()):
    """The template 'excluded' list: one entry per exclude root/pattern with its reason."""
    out = []
    seen = set()
    for path in unnamed:
        shown = printable_path(path)
        if shown not in seen:
            seen.add(shown)
            out.append({"path": shown, "reason": "file name is not valid UTF-8 or holds a line break or "
                                                 "control character; not captured",
                        "change": "excluded"})
    for item in exclude:
        if not item.startswith("/"):
            continue
        if item in EXCLUDE_REASONS:
            reason = EXCLUDE_REASONS[item]
        elif item in defaults:
            reason = "volatile tree, excluded by default"
        else:
            reason = "excluded by the exclude option"
        out.append({"path": item.rstrip("/") or "/", "reason": reason, "change": "excluded"})
    return out
