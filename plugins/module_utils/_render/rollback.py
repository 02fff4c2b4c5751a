# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollback renderer: ``to_rollback_tasks`` (tasks that undo a capture on the host it was
taken on) and its path plan ``rollback_paths``.

Standard library only.
"""

from __future__ import annotations

import posixpath

from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._common.inert_yaml import Expr
from ansible_collections.mo.fleet.plugins.module_utils._render.prepare import Prepared, prepare
from ansible_collections.mo.fleet.plugins.module_utils._render.parts import (
    _absent_args, _account_items, _accounts_absent, _accounts_present, _copy_args, _depth, _file_args,
    _is_unit_file, _item, _loop_task, _ordered, _path_loops, _perm_args, _perm_items, _pkg_spec,
    _present_guard, _probe_task, _ref)
from ansible_collections.mo.fleet.plugins.module_utils._render.tasks import _module_task


def _inside(path, directories):
    """True when PATH lies below one of DIRECTORIES (a set of absolute paths)."""
    parent = posixpath.dirname(path)
    while parent not in ("/", ""):
        if parent in directories:
            return True
        parent = posixpath.dirname(parent)
    return False


def _top_most(paths):
    """The paths of PATHS that are not below another of them."""
    paths = set(paths)
    return {path for path in paths if not _inside(path, paths)}


def rollback_paths(prep):
    """The path items a rollback acts on (steps 4 and 6 of to_rollback_tasks): created
    (files and links to remove), top_dirs (created directories to remove with their content),
    back_dirs, restore (files from before/), links and perms to put back, and digests (path ->
    sha256 of the before/ content of each restored file)."""
    purged = set(p["name"] for p in prep.ops["packages_installed"])
    top_dirs = _top_most(e["path"] for e in prep.entries("directories_created") if e.get("package") not in purged)
    created = []
    for op in ("files_created", "symlinks_created"):
        for e in prep.entries(op):
            if e.get("package") in purged and not e.get("conffile") or _inside(e["path"], top_dirs):
                continue
            created.append({"path": e["path"]})
    created.sort(key=lambda i: i["path"])
    back_dirs = sorted((_item(e["path"], e) for e in prep.entries("directories_deleted")),
                       key=lambda i: (_depth(i["path"]), i["path"]))
    restore, digests = [], {}
    for op in ("files_modified", "files_deleted"):
        for e in prep.entries(op):
            if e.get("before_bundled") and not prep.generated(e["path"], rollback=True):
                state = (e.get("before") or e) if op == "files_modified" else e
                restore.append(_item(e["path"], state, src=prep.src(e["path"], tpl.BUNDLE_BEFORE)))
                digests[e["path"]] = state.get("hash") if op == "files_modified" else e.get("hash")
    restore.sort(key=lambda i: i["path"])
    links = []
    for e in prep.entries("symlinks_deleted"):
        if e.get("target"):
            links.append(_item(e["path"], e, mode=False, src=e["target"]))
    for e in prep.entries("symlinks_modified"):
        before = e.get("before") or {}
        if before.get("target"):
            links.append(_item(e["path"], before, mode=False, src=before["target"]))
    links.sort(key=lambda i: i["path"])
    perms = _perm_items(prep, "before")
    return {"created": created, "top_dirs": [{"path": p} for p in sorted(top_dirs)], "back_dirs": back_dirs,
            "restore": restore, "links": links, "perms": perms, "digests": digests}


def _rollback_restore_tasks(paths):
    return _path_loops(paths, (
        ("back_dirs", "Recreate the directories the capture deleted", "file", _file_args("directory")),
        ("restore", "Restore the files the capture changed or deleted", "copy", _copy_args()),
        ("links", "Restore the symlinks the capture removed or changed", "file", _file_args("link", link=True, mode=False)),
        ("perms", "Revert the mode and owner changes the capture made", "file", _perm_args())))


def _unit_states(prep, moves):
    """{unit: {"name", "enabled"/"state"}} for MOVES ((operation, key, value), ...), leaving out
    skipped units and templates (``name@.service``)."""
    wanted = {}
    if prep.options["skip_services"] is True:
        return wanted
    for op, key, value in moves:
        for u in prep.ops[op]:
            if not prep.service_skipped(u["unit"]) and "@." not in u["unit"]:
                wanted.setdefault(u["unit"], {"name": u["unit"]})[key] = value
    return wanted


def _units_undo_tasks(prep):
    """1. stop what the capture started, disable what it enabled (only units that still exist)."""
    undo = _unit_states(prep, (("units_started", "state", "stopped"), ("units_enabled", "enabled", False)))
    if not undo:
        return []
    reg = Expr(prep.options["var_prefix"] + "rollback_units")
    return [{"name": "Find which of the units the capture started or enabled still exist",
             "ansible.builtin.command": {"argv": ["systemctl", "list-unit-files", "--no-legend",
                                                  "--no-pager", "--full"] + sorted(undo)},
             "register": reg, "changed_when": False, "failed_when": False, "check_mode": False},
            _loop_task("Stop and disable the units the capture started or enabled", "ansible.builtin.systemd_service",
                       {"name": _ref("name", omit=False), "enabled": _ref("enabled"), "state": _ref("state")},
                       [undo[u] for u in sorted(undo)], label="name",
                       extra={"when": Expr("item.name in (%s.stdout_lines | map('split') | map('first') | list)" % reg)})]


def _accounts_back_tasks(prep):
    """2. the accounts the capture deleted come back first (restored files may be owned by them)."""
    tasks = []
    back_groups = _account_items(prep, prep.ops["groups_deleted"], "group")
    if back_groups:
        tasks.append(_accounts_present("Recreate the groups the capture removed", "group", back_groups))
    back_users = _account_items(prep, prep.ops["users_deleted"], "user")
    if back_users:
        tasks.append(_accounts_present("Recreate the users the capture removed", "user", back_users))
    return tasks


def _package_undo_tasks(prep):
    """3. purge what the capture installed, reinstall what it removed, downgrade what it upgraded."""
    ops, tasks = prep.ops, []
    installed = [p["name"] for p in ops["packages_installed"]]
    if installed:
        tasks.append({"name": "Purge the packages the capture installed",
                      "ansible.builtin.apt": {"name": installed, "state": "absent", "purge": True}})
    if ops["packages_removed"]:
        specs = [_pkg_spec(p, prep.options["pin_versions"]) for p in ops["packages_removed"]]
        tasks.append({"name": "Reinstall the packages the capture removed",
                      "ansible.builtin.apt": {"name": specs, "state": "present"}})
    downgrade = [p for p in ops["packages_upgraded"] if p.get("version_before")]
    if downgrade:
        tasks.append({"name": "Return the packages the capture upgraded to their former versions",
                      "ansible.builtin.apt": {"name": [_pkg_spec(p, True, "version_before") for p in downgrade],
                                              "state": "present", "allow_downgrade": True}})
    return tasks


def _remove_created_tasks(prep, paths):
    """4. files and links outside the directories the capture created, then the top-most of those
    directories (state absent removes a directory with what is inside it); with apply_module,
    one mo.fleet.bundle_apply run does 4 and 6."""
    if prep.options["apply_module"]:
        return [_module_task(prep, rollback=True)]
    return _path_loops(paths, (
        ("created", "Remove the files and symlinks the capture created", "file", _absent_args()),
        ("top_dirs", "Remove the directories the capture created, with what is in them", "file", _absent_args())))


def _accounts_gone_tasks(prep):
    """5. the accounts the capture created go (after their packages and files); changed users
    get their former settings."""
    ops, tasks = prep.ops, []
    if ops["users_created"]:
        tasks.append(_accounts_absent("Remove the users the capture created", "user", ops["users_created"]))
    if ops["groups_created"]:
        tasks.append(_accounts_absent("Remove the groups the capture created", "group", ops["groups_created"]))
    changed_users = [dict(_account_items(prep, [{"name": u["name"], "after": u.get("before")}], "user")[0])
                     for u in ops["users_changed"] if isinstance(u.get("before"), dict)]
    if changed_users:
        tasks.append(_loop_task("Return the users the capture changed to their former settings",
                                "ansible.builtin.user",
                                {"name": _ref("name", omit=False), "group": _ref("group"),
                                 "home": _ref("home"), "shell": _ref("shell"),
                                 "comment": _ref("comment")}, changed_users, label="name"))
    return tasks


def _units_redo_tasks(prep):
    """7. the units the capture disabled or stopped come back."""
    ops, tasks = prep.ops, []
    redo = _unit_states(prep, (("units_disabled", "enabled", True), ("units_stopped", "state", "started")))
    touched_units = any(_is_unit_file(e["path"]) for op in tpl.FILE_OPERATIONS for e in ops[op])
    if touched_units and prep.options["skip_services"] is not True:
        tasks.append({"name": "Reload systemd after unit files changed",
                      "ansible.builtin.systemd_service": {"daemon_reload": True}})
    if redo:
        tasks.append(_probe_task(prep, sorted(redo)))
        tasks.append(_loop_task("Re-enable and restart the units the capture disabled or stopped",
                                "ansible.builtin.systemd_service",
                                {"name": _ref("name", omit=False), "enabled": _ref("enabled"),
                                 "state": _ref("state")},
                                [redo[u] for u in sorted(redo)], label="name", extra={"when": _present_guard(prep)}))
    return tasks


def to_rollback_tasks(source, options=None):
    """Ordered task dicts undoing the capture on the host it was taken on, in seven steps."""
    prep = source if isinstance(source, Prepared) and options is None else prepare(source, options)
    paths = rollback_paths(prep)
    tasks = _units_undo_tasks(prep) + _accounts_back_tasks(prep) + _package_undo_tasks(prep)
    tasks += _remove_created_tasks(prep, paths) + _accounts_gone_tasks(prep)
    if not prep.options["apply_module"]:  # 6. deleted directories come back (parents first), then files from before/
        tasks += _rollback_restore_tasks(paths)
    tasks += _units_redo_tasks(prep)
    return [_ordered(t) for t in tasks]
