# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pieces every task renderer shares: items of paths and accounts, loop tasks, the units a
capture touched (``_Units``), the check-mode probe of which units exist.

Standard library only.
"""

from __future__ import annotations

import posixpath

from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._common import names
from ansible_collections.mo.fleet.plugins.module_utils._common.inert_yaml import Expr
from ansible_collections.mo.fleet.plugins.module_utils._render.prepare import (
    LINE_BREAKS, RenderError, UNIT_DIRS, _id_number, _shown)


def _owner_value(entry, key):
    name = entry.get(key)
    if name:
        return name
    field = "uid" if key == "owner" else "gid"
    num = entry.get(field)
    return str(_id_number(num, "The %s of %s" % (field, _shown(entry.get("path"))))) if num is not None else None


def _attrs(entry, mode=True):
    out = {}
    if mode and entry.get("permissions"):
        out["mode"] = entry["permissions"]
    owner = _owner_value(entry, "owner")
    group = _owner_value(entry, "group")
    if owner is not None:
        out["owner"] = owner
    if group is not None:
        out["group"] = group
    return out


def _depth(path):
    return path.count("/")


def _unit_stem(unit):
    return unit.rsplit(".", 1)[0].split("@", 1)[0]


def _is_unit_file(path):
    return any(tpl.is_within(path, d) for d in UNIT_DIRS) and names.is_valid("unit", posixpath.basename(path))


def _pkg_spec(pkg, pin, key="version"):
    return "%s=%s" % (pkg["name"], pkg[key]) if pin else pkg["name"]


def _ordered(task):
    """NAME, the module, then the other keys alphabetically (ansible-lint's key-order)."""
    module = [k for k in task if k.startswith(("ansible.builtin.", "mo.fleet."))]
    keys = ["name"] + module + sorted(k for k in task if k != "name" and k not in module)
    return dict((k, task[k]) for k in keys if k in task)


def _ref(key, omit=True):
    """The renderer's own reference to a loop item's field (an Expr: template text)."""
    return Expr("{{ item.%s | default(omit) }}" % key) if omit else Expr("{{ item.%s }}" % key)


def _loop_task(name, module, args, items, label="path", extra=None):
    task = {"name": name, module: args, "loop": items,
            "loop_control": {"label": _ref(label, omit=False)}}
    if extra:
        task.update(extra)
    return task


def _file_args(state, with_src=False, link=False, mode=True):
    args = {"path": _ref("path", omit=False), "state": state}
    if link:
        args["src"] = _ref("src", omit=False)
        args["force"] = True
        args["follow"] = False
    if mode:
        args["mode"] = _ref("mode")
    args["owner"] = _ref("owner")
    args["group"] = _ref("group")
    return args


def _copy_args():
    return {"src": _ref("src", omit=False), "dest": _ref("path", omit=False), "mode": _ref("mode"),
            "owner": _ref("owner"), "group": _ref("group")}


class _Units(object):
    """Which units to enable/start/stop, and which unit a config path belongs to."""

    def __init__(self, prep):
        self.prep = prep
        ops = prep.ops
        skip = prep.service_skipped
        self.enable = sorted(set(u["unit"] for u in ops["units_enabled"]
                                 if "@." not in u["unit"] and not skip(u["unit"])) |
                             set(u["unit"] for u in ops["units_added"]
                                 if u.get("state") in ("enabled",) and "@." not in u["unit"] and not skip(u["unit"])))
        self.start = sorted(u["unit"] for u in ops["units_started"]
                            if "@." not in u["unit"] and not skip(u["unit"]))
        self.disable = sorted(u["unit"] for u in ops["units_disabled"] if not skip(u["unit"]) and "@." not in u["unit"])
        self.stop = sorted(u["unit"] for u in ops["units_stopped"] if not skip(u["unit"]) and "@." not in u["unit"])
        services = set(u for u in self.enable + self.start if u.endswith(".service"))
        self.services = sorted(services)
        by_path = {}
        for op in tpl.FILE_OPERATIONS:
            for entry in ops[op]:
                by_path[entry["path"]] = entry
        self.unit_package = {}
        for unit in self.services:
            pkg = None
            for u in ops["units_added"]:
                if u["unit"] == unit and u.get("path"):
                    entry = by_path.get(u["path"]) or by_path.get(_usr_alias(u["path"]))
                    if entry:
                        pkg = entry.get("package")
            if pkg is None:
                for d in UNIT_DIRS:
                    entry = by_path.get(d + "/" + unit)
                    if entry and entry.get("package"):
                        pkg = entry["package"]
            self.unit_package[unit] = pkg

    def for_path(self, entry):
        """The services to restart when ENTRY (a copied config or unit file) changes."""
        if not self.services:
            return []
        path = entry["path"]
        if _is_unit_file(path):
            name = posixpath.basename(path)
            return [name] if name in self.services else []
        if not any(tpl.is_within(path, r) for r in self.prep.config_roots):
            return []
        pkg = entry.get("package")
        if pkg:
            hits = [u for u, p in sorted(self.unit_package.items()) if p == pkg]
            if hits:
                return hits
        parts = set(path.split("/"))
        base = posixpath.basename(path)
        hits = []
        for unit in self.services:
            stem = _unit_stem(unit)
            if stem in parts or base.split(".")[0] == stem or (pkg and (pkg == stem or pkg.startswith(stem + "-"))):
                hits.append(unit)
        return hits


def _usr_alias(path):
    if path.startswith("/usr/lib/"):
        return path[4:]
    if path.startswith("/lib/"):
        return "/usr" + path
    return path


def _handler_name(unit):
    return "Restart %s" % unit


def _reg(prep, index):
    return Expr("%sconfig_%d" % (prep.options["var_prefix"], index))


def _account_items(prep, accounts, kind):
    ids = prep.options["account_ids"]
    gid_name = {}
    for op in ("groups_created", "groups_changed"):
        for g in prep.ops[op]:
            data = g.get("after") if op == "groups_changed" else g
            if isinstance(data, dict):
                _check_account_data(dict(data, name=g["name"]))
            if isinstance(data, dict) and data.get("gid") is not None:
                gid_name[data["gid"]] = g["name"]
    group_names = set(g["name"] for op in ("groups_created", "groups_changed") for g in prep.ops[op])
    items = []
    for acct in accounts:
        data = dict(acct)
        if isinstance(acct.get("after"), dict):
            data.update(acct["after"])
            data["name"] = acct["name"]
        _check_account_data(data)
        item = {"name": acct["name"]}
        if kind == "group":
            if data.get("system") is not None:
                item["system"] = bool(data["system"])
            if ids and data.get("gid") is not None:
                item["gid"] = data["gid"]
        else:
            if data.get("system") is not None:
                item["system"] = bool(data["system"])
            if ids and data.get("uid") is not None:
                item["uid"] = data["uid"]
            if data.get("gid") is not None:
                item["group"] = gid_name.get(data["gid"], str(data["gid"]))
            elif acct["name"] in group_names:
                item["group"] = acct["name"]
            for key, target in (("home", "home"), ("shell", "shell"), ("gecos", "comment")):
                if data.get(key) is not None:
                    item[target] = data[key]
        items.append(item)
    return items


_ACCOUNT_TEXT = ("gecos", "home", "shell")


def _check_account_data(data):
    """The fields of an account (its own, or merged from its free-form ``after``/``before``)
    a renderer uses, checked for their type and range: one sentence names the bad one."""
    name = _shown(data.get("name"))
    for key in ("uid", "gid"):
        if data.get(key) is not None:
            _id_number(data[key], "The %s of the account %s" % (key, name))
    if data.get("system") is not None and not isinstance(data["system"], bool):
        raise RenderError("The system flag of the account %s must be true or false, not %s."
                          % (name, _shown(data["system"])))
    for key in _ACCOUNT_TEXT:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise RenderError("The %s of the account %s must be a string, not %s." % (key, name, type(value).__name__))
        if len(value) > 4096 or ":" in value or any(ch in LINE_BREAKS or ord(ch) < 0x20 for ch in value):
            raise RenderError("The %s of the account %s holds a colon, a control character or more than 4096 "
                              "characters, which an account database line cannot carry." % (key, name))
        if key != "gecos" and value and not value.startswith("/"):
            raise RenderError("The %s of the account %s is not an absolute path." % (key, name))


def _item(path, entry, **extra):
    item = {"path": path}
    item.update(_attrs(entry, mode=extra.pop("mode", True)))
    item.update(extra)
    return item


def _probe_task(prep, units):
    return {"name": "Find which of the template's units exist (check mode)",
            "ansible.builtin.command": {"argv": ["systemctl", "list-unit-files", "--no-legend", "--no-pager",
                                                 "--full"] + list(units)},
            "register": Expr(prep.options["var_prefix"] + "units_present"),
            "changed_when": False, "failed_when": False, "check_mode": False,
            "when": Expr("ansible_check_mode")}


def _present_list(prep):
    reg = prep.options["var_prefix"] + "units_present"
    return "(%s.stdout_lines | default([]) | map('split') | map('first') | list)" % reg


def _present_guard(prep):
    return Expr("not ansible_check_mode or item.name in %s" % _present_list(prep))


def _accounts_present(name, kind, items):
    """One loop task that creates (or sets) the groups or users ITEMS (from _account_items)."""
    if kind == "group":
        args = {"name": _ref("name", omit=False), "state": "present", "system": _ref("system"), "gid": _ref("gid")}
        return _loop_task(name, "ansible.builtin.group", args, items, label="name")
    args = {"name": _ref("name", omit=False), "state": "present", "system": _ref("system"), "uid": _ref("uid"),
            "group": _ref("group"), "home": _ref("home"), "shell": _ref("shell"), "comment": _ref("comment"),
            "create_home": False}
    return _loop_task(name, "ansible.builtin.user", args, items, label="name")


def _accounts_absent(name, kind, accounts):
    """One loop task that removes the groups or users ACCOUNTS (entries with a name)."""
    return _loop_task(name, "ansible.builtin.%s" % kind, {"name": _ref("name", omit=False), "state": "absent"},
                      [{"name": a["name"]} for a in accounts], label="name")


def _perm_args():
    return {"path": _ref("path", omit=False), "mode": _ref("mode"), "owner": _ref("owner"), "group": _ref("group")}


def _absent_args():
    return {"path": _ref("path", omit=False), "state": "absent"}


def _path_loops(paths, steps):
    """One ansible.builtin loop task per step (key, name, module, args) whose items PATHS[key] are not empty."""
    return [_loop_task(name, "ansible.builtin." + module, args, paths[key]) for key, name, module, args in steps
            if paths[key]]


def _perm_items(prep, side):
    """The mode and owner items of permissions_changed, as the capture left them (SIDE after)
    or found them (before); an entry with neither is left out."""
    items = [_item(e["path"], e.get(side) or {}) for e in prep.entries("permissions_changed")]
    return [item for item in items if len(item) > 1]
