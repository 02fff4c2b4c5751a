# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The task renderer: ``to_tasks`` (tasks that reproduce a capture), ``to_handlers`` and the
path plan ``apply_paths`` that mo.fleet.bundle_apply converges in one run.

Standard library only.
"""

from __future__ import annotations

from ansible_collections.mo.fleet.plugins.module_utils._common.inert_yaml import Expr
from ansible_collections.mo.fleet.plugins.module_utils._render.prepare import (
    DEFAULT_ALLOWED_ROOTS, Prepared, RenderError, prepare)
from ansible_collections.mo.fleet.plugins.module_utils._render.parts import (
    _absent_args, _account_items, _accounts_absent, _accounts_present, _copy_args, _depth, _file_args,
    _handler_name, _is_unit_file, _item, _loop_task, _ordered, _path_loops, _perm_args, _perm_items,
    _pkg_spec, _present_guard, _present_list, _probe_task, _ref, _reg, _Units)


def _package_tasks(prep):
    ops, pin = prep.ops, prep.options["pin_versions"]
    tasks = []
    removed = [p["name"] for p in ops["packages_removed"]]
    if removed:
        tasks.append({"name": "Remove the packages the capture removed",
                      "ansible.builtin.apt": {"name": removed, "state": "absent"}})
    wanted = [p for p in ops["packages_installed"]
              if prep.options["install_auto"] or p.get("manual") is not False]
    if wanted:
        args = {"name": [_pkg_spec(p, pin) for p in wanted], "state": "present"}
        tasks.append({"name": "Install the packages the capture installed",
                      "ansible.builtin.apt": args})
    upgraded = ops["packages_upgraded"]
    if upgraded:
        if pin:
            args = {"name": [_pkg_spec(p, True) for p in upgraded], "state": "present"}
        else:
            args = {"name": [p["name"] for p in upgraded], "state": "latest", "only_upgrade": True}
        tasks.append({"name": "Upgrade the packages the capture upgraded", "ansible.builtin.apt": args})
    return tasks


def _account_tasks(prep):
    ops = prep.ops
    tasks = []
    groups = _account_items(prep, ops["groups_created"] + ops["groups_changed"], "group")
    if groups:
        tasks.append(_accounts_present("Create the groups the capture created", "group", groups))
    users = _account_items(prep, ops["users_created"] + ops["users_changed"], "user")
    if users:
        tasks.append(_accounts_present("Create the users the capture created", "user", users))
    if ops["users_deleted"]:
        tasks.append(_accounts_absent("Remove the users the capture removed", "user", ops["users_deleted"]))
    if ops["groups_deleted"]:
        tasks.append(_accounts_absent("Remove the groups the capture removed", "group", ops["groups_deleted"]))
    return tasks


def _handlers_mode(prep):
    return prep.options["handlers"] if prep.options["skip_services"] is not True else "none"


def _file_plan(prep, units):
    """(dirs, plain, by_unit, unit_files): the directory items, the copy items without a
    service to restart, the copy items per tuple of units to restart, the unit files copied."""
    handlers_mode = _handlers_mode(prep)
    dirs = [_item(e["path"], e) for e in prep.entries("directories_created") if not prep.package_made(e)]
    plain, by_unit, unit_files = [], {}, []
    for op in ("files_created", "files_modified"):
        for entry in prep.entries(op):
            if entry.get("type") != "file" or not entry.get("bundled") or prep.generated(entry["path"]):
                continue
            item = _item(entry["path"], entry, src=prep.src(entry["path"]))
            if _is_unit_file(entry["path"]):
                unit_files.append(entry["path"])
            restart = tuple(units.for_path(entry)) if handlers_mode != "none" else ()
            if restart:
                by_unit.setdefault(restart, []).append(item)
            else:
                plain.append(item)
    plain.sort(key=lambda i: i["path"])
    return dirs, plain, by_unit, unit_files


def _use_archive(prep, dirs, plain):
    minimum = prep.options["archive_min_files"]
    return bool(prep.options["files_archive"]) and minimum > 0 and len(dirs) + len(plain) >= minimum


def apply_paths(prep, units=None):
    """The path items to_tasks acts on, in its order: dirs, plain (copies without a unit to
    restart), by_unit (units tuple -> copies), unit_files, links, perms, gone (files and
    links to remove) and gone_dirs (deepest first)."""
    units = units or _Units(prep)
    dirs, plain, by_unit, unit_files = _file_plan(prep, units)
    for items in by_unit.values():
        items.sort(key=lambda i: i["path"])
    links = []
    for op in ("symlinks_created", "symlinks_modified"):
        for entry in prep.entries(op):
            if prep.package_made(entry) or not entry.get("target"):
                continue
            links.append(_item(entry["path"], entry, mode=False, src=entry["target"]))
    links.sort(key=lambda i: i["path"])
    perms = _perm_items(prep, "after")
    gone = [{"path": e["path"]} for op in ("files_deleted", "symlinks_deleted") for e in prep.entries(op)]
    gone.sort(key=lambda i: i["path"])
    gone_dirs = sorted(({"path": e["path"]} for e in prep.entries("directories_deleted")),
                       key=lambda i: (-_depth(i["path"]), i["path"]))
    return {"dirs": dirs, "plain": plain, "by_unit": by_unit, "unit_files": unit_files, "links": links,
            "perms": perms, "gone": gone, "gone_dirs": gone_dirs}


def _apply_path_tasks(paths):
    return _path_loops(paths, (
        ("links", "Create the symlinks the capture created", "file", _file_args("link", link=True, mode=False)),
        ("perms", "Apply the mode and owner changes the capture made", "file", _perm_args()),
        ("gone", "Remove the files and symlinks the capture deleted", "file", _absent_args()),
        ("gone_dirs", "Remove the directories the capture deleted", "file", _absent_args())))


APPLY_MODULE = "mo.fleet.bundle_apply"


MODULE_OPTIONS = ("include", "exclude", "allowed_roots", "skip_services")


def module_options(prep):
    """The renderer options mo.fleet.bundle_apply needs to render the same path plan."""
    opts = prep.options
    out = dict((key, opts[key]) for key in MODULE_OPTIONS if opts[key] not in (None, False, []))
    if opts["allowed_roots"] == list(DEFAULT_ALLOWED_ROOTS):
        out.pop("allowed_roots", None)
    if not opts["skip_generated"]:
        out["skip_generated"] = False
    return out


def _module_task(prep, rollback=False):
    """One mo.fleet.bundle_apply task converging the paths of the plan (apply_module)."""
    if not prep.bundle:
        raise RenderError("apply_module needs the bundle directory; pass the bundle path or the bundle option.")
    args = {"bundle": prep.bundle, "options": module_options(prep)}
    if rollback:
        args["rollback"] = True
    name = ("Undo the capture's paths: remove what it created, restore what it changed (one run)" if rollback
            else "Converge the directories, files, links, modes and owners of the capture (one run)")
    return {"name": name, APPLY_MODULE: args, "register": Expr(prep.options["var_prefix"] + "paths")}


def to_tasks(source, options=None):
    """Ordered task dicts reproducing the capture (see module docstring)."""
    prep = source if isinstance(source, Prepared) and options is None else prepare(source, options)
    ops = prep.ops
    tasks = _package_tasks(prep) + _account_tasks(prep)
    units = _Units(prep)
    handlers_mode = _handlers_mode(prep)
    paths = apply_paths(prep, units)
    dirs, plain, by_unit, unit_files = paths["dirs"], paths["plain"], paths["by_unit"], paths["unit_files"]
    restarts = []
    if prep.options["apply_module"]:
        # one mo.fleet.bundle_apply run converges every path but the configuration of a unit
        # to restart, which keeps its copy task below (registered: the restart follows it)
        tasks.append(_module_task(prep))
        dirs, plain = [], []
        paths = dict(paths, links=[], perms=[], gone=[], gone_dirs=[])
    # Many items: one archive (unarchive compares every member with `tar --diff`: content,
    # mode, owner, mtime) instead of the per-item loops, which cost ansible time even when
    # skipped. Render without files_archive for --check (unarchive skips tar archives in
    # check mode) and --diff (the archive shows no per-file diff); the role does.
    if _use_archive(prep, dirs, plain):
        tasks.append({"name": "Unpack the directories and files the capture created or changed (one archive)",
                      "ansible.builtin.unarchive": {"src": prep.options["files_archive"], "dest": "/"}})
        dirs, plain = [], []
    if dirs:
        tasks.append(_loop_task("Create the directories the capture created", "ansible.builtin.file",
                                _file_args("directory"), dirs))
    if plain:
        tasks.append(_loop_task("Copy the files the capture created or changed", "ansible.builtin.copy",
                                _copy_args(), plain))
    for index, (restart, items) in enumerate(sorted(by_unit.items())):
        task = _loop_task("Copy the configuration of %s" % ", ".join(restart), "ansible.builtin.copy",
                          _copy_args(), items)
        if handlers_mode == "notify":
            task["notify"] = [_handler_name(u) for u in restart]
        else:
            task["register"] = _reg(prep, index)
            restarts.append((restart, task["register"]))
        tasks.append(task)
    tasks += _apply_path_tasks(paths)

    restart_units = sorted(set(u for restart, _reg in restarts for u in restart))
    if prep.options["skip_services"] is not True:
        tasks += _unit_tasks(prep, units, unit_files, restart_units)
    if handlers_mode == "inline":
        present = _present_list(prep)
        unit_var = prep.options["var_prefix"] + "restart_unit"
        for restart, reg in restarts:
            for unit in restart:
                # the unit name is data: it reaches the condition as a variable, never as code
                tasks.append({"name": "Restart %s because its configuration changed" % unit,
                              "ansible.builtin.systemd_service": {"name": unit, "state": "restarted"},
                              "vars": {unit_var: unit},
                              "when": [Expr("%s is changed" % reg),
                                       Expr("not ansible_check_mode or %s in %s" % (unit_var, present))]})
    return [_ordered(t) for t in tasks]


def _unit_tasks(prep, units, unit_files, restart_units=()):
    tasks = []
    if unit_files:
        tasks.append({"name": "Reload systemd so it sees the copied unit files",
                      "ansible.builtin.systemd_service": {"daemon_reload": True}})
    wanted = {}
    for unit in units.enable:
        wanted.setdefault(unit, {"name": unit})["enabled"] = True
    for unit in units.start:
        wanted.setdefault(unit, {"name": unit})["state"] = "started"
    for unit in units.disable:
        wanted.setdefault(unit, {"name": unit})["enabled"] = False
    for unit in units.stop:
        wanted.setdefault(unit, {"name": unit})["state"] = "stopped"
    if not wanted and not restart_units:
        return tasks
    tasks.append(_probe_task(prep, sorted(set(wanted) | set(restart_units))))
    if not wanted:
        return tasks
    items = [wanted[u] for u in sorted(wanted)]
    tasks.append(_loop_task("Set the units to the state the capture left them in", "ansible.builtin.systemd_service",
                            {"name": _ref("name", omit=False), "enabled": _ref("enabled"),
                             "state": _ref("state")}, items, label="name",
                            extra={"when": _present_guard(prep)}))
    return tasks


def to_handlers(source, options=None):
    """Handlers for the units to_tasks(..., handlers='notify') notifies."""
    prep = source if isinstance(source, Prepared) and options is None else prepare(source, options)
    if prep.options["skip_services"] is True:
        return []
    units = _Units(prep)
    notified = set()
    for task in to_tasks(prep):
        for name in task.get("notify", []):
            notified.add(name)
    return [{"name": _handler_name(u), "ansible.builtin.systemd_service": {"name": u, "state": "restarted"}}
            for u in units.services if _handler_name(u) in notified]
