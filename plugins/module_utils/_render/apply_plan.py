# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The path plan of a bundle, for the apply engine (``apply.py``), rendered on the controller.

``path_plan(source, options=None, rollback=False) -> dict``
    ``{"items": [...], "sources": {sha256: bundle path}}``: every path ``to_tasks`` (or,
    with ROLLBACK, ``to_rollback_tasks``) converges, in the same order, as the items
    ``apply.converge`` takes (directories, files with their sha256, links, mode and owner
    changes, removals; not the configuration of a unit to restart: its copy task does that), and
    where on the controller the content of each sha256 is.  The template and the bundle go
    through ``render.prepare`` (the one path guard, ``template.check_bundle_content``), and
    the plan through ``apply.check_plan`` (what the target checks again).
``plan_of(prep, rollback=False) -> dict``
    The same from a ``render.Prepared`` (the bundle checked once for both uses).
``only_paths(prep, rollback=False) -> bool``
    Whether the module alone converges the bundle (its rendered tasks are that one task).
``to_role(source, options=None, role_name="captured", origin=None) -> dict``
    ``render.to_role`` whose paths are one run of the role's own copy of the module.
"""

from __future__ import annotations

import json
import os
import posixpath

from ansible_collections.mo.fleet.plugins.module_utils._render import apply
from ansible_collections.mo.fleet.plugins.module_utils._render import api as render
from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl


def _attrs(item):
    return dict((key, item[key]) for key in ("mode", "owner", "group") if item.get(key) is not None)


def _file(item, entry, digest):
    out = {"path": item["path"], "state": "file", "sha256": digest, "src": item["src"]}
    out.update(_attrs(item))
    if entry.get("size") is not None:
        out["size"] = entry["size"]
    return out


def _entries(prep):
    return dict((e["path"], e) for op in tpl.FILE_OPERATIONS for e in prep.ops[op])


def _patches(prep):
    """path -> the recorded unified diff of each changed conffile (metadata.conffile_diffs)."""
    out = {}
    for item in prep.doc["metadata"].get("conffile_diffs") or []:
        if isinstance(item, dict) and isinstance(item.get("diff"), str) and item["diff"]:
            out[item.get("path")] = item["diff"]
    return out


def _apply_items(prep):
    paths = render.apply_paths(prep)
    by_path = _entries(prep)
    patches = _patches(prep)
    items = [dict(_attrs(d), path=d["path"], state="directory") for d in paths["dirs"]]
    # the configuration of a unit to restart is left to its copy task (to_tasks), which the
    # restart follows
    for i in paths["plain"]:
        item = _file(i, by_path[i["path"]], by_path[i["path"]]["hash"])
        if by_path[i["path"]].get("conffile") and i["path"] in patches:
            item["patch"] = patches[i["path"]]
        items.append(item)
    items += [dict(_attrs(i), path=i["path"], state="link", target=i["src"]) for i in paths["links"]]
    items += [dict(_attrs(i), path=i["path"], state="attrs") for i in paths["perms"]]
    items += [{"path": i["path"], "state": "absent"} for i in paths["gone"] + paths["gone_dirs"]]
    return items


def _rollback_items(prep):
    paths = render.rollback_paths(prep)
    items = [{"path": i["path"], "state": "absent"} for i in paths["created"] + paths["top_dirs"]]
    items += [dict(_attrs(d), path=d["path"], state="directory") for d in paths["back_dirs"]]
    items += [_file(i, {}, paths["digests"][i["path"]]) for i in paths["restore"]]
    items += [dict(_attrs(i), path=i["path"], state="link", target=i["src"]) for i in paths["links"]]
    items += [dict(_attrs(i), path=i["path"], state="attrs") for i in paths["perms"]]
    return items


def plan_of(prep, rollback: bool = False) -> dict:
    """The path plan of PREP (a ``render.Prepared`` of the bundle, already checked)."""
    if not prep.bundle:
        raise render.RenderError("bundle_apply needs the bundle directory; pass the bundle path or the bundle option.")
    items = _rollback_items(prep) if rollback else _apply_items(prep)
    sources = {}
    for item in items:
        if item["state"] == "file":
            if not item["sha256"]:
                raise render.RenderError("The file %s has no sha256 in the template, so it cannot be shipped."
                                         % item["path"])
            sources[item["sha256"]] = posixpath.normpath(item.pop("src"))
    try:
        apply.check_plan(items)
    except apply.ApplyError as exc:
        raise render.RenderError(str(exc))
    return {"items": items, "sources": sources}


def path_plan(source, options=None, rollback: bool = False) -> dict:
    """The ordered path items and the controller paths of their content (see module docstring)."""
    opts = dict(options or {})
    opts["handlers"] = "inline"
    return plan_of(render.prepare(source, opts), rollback)


def only_paths(prep, rollback: bool = False) -> bool:
    """Whether the tasks ``to_tasks`` (or ``to_rollback_tasks``) renders for PREP with
    ``apply_module`` are the one mo.fleet.bundle_apply task: no package, account or unit task
    and no configuration of a unit to restart, so that task alone converges the bundle."""
    opts = dict(prep.options, apply_module=True, files_archive=None, handlers="inline")
    tasks = (render.to_rollback_tasks if rollback else render.to_tasks)(render.Prepared(prep.doc, opts))
    return len(tasks) == 1 and render.APPLY_MODULE in tasks[0]


# --------------------------------------------------------------------------- generated roles

ROLE_MODULE = "mo_fleet_bundle_apply"
ROLE_PLAN = "mo-fleet-plan.json"
_HERE = os.path.dirname(os.path.abspath(__file__))
_MODULE_UTILS = os.path.dirname(_HERE)
_PLUGINS = os.path.dirname(_MODULE_UTILS)
# what a generated role carries to run the module with ansible-core alone (role path, source)
ROLE_CODE = (
    ("library/mo_fleet_bundle_apply.py", os.path.join(_PLUGINS, "modules", "bundle_apply.py")),
    ("action_plugins/mo_fleet_bundle_apply.py", os.path.join(_PLUGINS, "action", "bundle_apply.py")),
    ("action_plugins/mo_fleet_bundle_apply_engine.py", os.path.join(_PLUGINS, "plugin_utils", "_bundle_apply.py")),
    ("module_utils/mo_fleet_fs.py", os.path.join(_MODULE_UTILS, "_common", "fs.py")),
    ("module_utils/mo_fleet_apply.py", os.path.join(_HERE, "apply.py")),
    ("module_utils/mo_fleet_paths.py", os.path.join(_MODULE_UTILS, "_common", "paths.py")),
    ("module_utils/mo_fleet_names.py", os.path.join(_MODULE_UTILS, "_common", "names.py")),
    ("module_utils/mo_fleet_textpatch.py", os.path.join(_HERE, "textpatch.py")),
)


def to_role(source, options=None, role_name: str = "captured", origin=None) -> dict:
    """``render.to_role`` whose paths are one run of the role's own copy of the module
    (``library/``, ``action_plugins/``, ``module_utils/``), driven by ``files/ROLE_PLAN``
    (the path plan, sources relative to files/): still only ansible-core on the controller.
    The configuration of a unit to restart keeps its copy task (it notifies the handler)."""
    opts = dict(options or {}, apply_module=True, files_archive=None)
    out = render.to_role(source, opts, role_name=role_name, origin=origin)
    plan = path_plan(source, dict((k, v) for k, v in opts.items() if k in render.MODULE_OPTIONS))
    bundle_files = posixpath.join(render.prepare(source, dict(opts, verify_bundle=False)).bundle, tpl.BUNDLE_FILES)
    sources = {}
    for digest, local in plan["sources"].items():
        sources[digest] = posixpath.relpath(local, bundle_files)
    tasks = []
    for task in out["files"]["tasks/main.yml"]:
        if render.APPLY_MODULE in task:
            task = dict(task)
            del task[render.APPLY_MODULE]
            task = dict([("name", task.pop("name")), (ROLE_MODULE, {"plan": ROLE_PLAN})] + sorted(task.items()))
        tasks.append(task)
    out["files"]["tasks/main.yml"] = tasks
    out["files"]["files/" + ROLE_PLAN] = json.dumps({"items": plan["items"], "sources": sources}, indent=1,
                                                    sort_keys=True) + "\n"
    readme = out["files"]["README.md"]
    out["files"]["README.md"] = readme.replace(
        "The role needs only ansible-core: every task uses an `ansible.builtin` module.",
        "The role needs only ansible-core: its paths are converged in one run of `%s`, its own\n"
        "copy of mo.fleet.bundle_apply (`library/`, `action_plugins/`, `module_utils/`, the plan in\n"
        "`files/%s`); every other task uses an `ansible.builtin` module." % (ROLE_MODULE, ROLE_PLAN))
    out["copies"] = sorted(out["copies"] + list(ROLE_CODE))
    return out
