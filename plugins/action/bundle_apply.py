# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for mo.fleet.bundle_apply: render the path plan, ship only what differs.

1. The plan: from ``bundle`` (``apply_plan.path_plan``: the template and the bundle checked
   on the controller) or from ``plan`` (a JSON file a generated role carries in files/).
2. One module run compares every item with the host (``probe``) and names the sha256 of
   the contents it lacks; in check mode that is the answer.
3. Only when something differs: the missing contents go as one tar named by sha256 (each
   content once, however many paths share it) through the connection's put_file, and a
   second module run converges every item.  A host that matches costs one module run.
   A host that looks fresh (none of a sample of the plan's files there: one shell round
   trip) gets every content first and one module run, with no probe before it.

A digest exchange, not one archive of everything: the second and every no-change run ship
nothing, and a drifted host gets only what drifted.  What is checked, packed, shipped and
shown without a host lives in ``plugin_utils/_bundle_apply.py``; this plugin is the glue.

Generated roles carry this file as their ``action_plugins/`` copy, with copies of that engine
and of ``_common/fs.py`` (ansible-core imports no other file of a role, so they are loaded
from the role by path, and the role always uses its own copies); the collection's plan
renderer is imported only for the bundle option.
"""

from __future__ import annotations

import importlib.util
import os

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

# a generated role's copies (apply_plan.ROLE_CODE), relative to the role
ROLE_ENGINE = "action_plugins/mo_fleet_bundle_apply_engine.py"
ROLE_FS = "module_utils/mo_fleet_fs.py"
_ROLE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _role_copy(rel):
    """The role's file REL, loaded by path under a name of its own."""
    spec = importlib.util.spec_from_file_location("mo_fleet_role_" + os.path.basename(rel)[:-3], os.path.join(_ROLE, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if os.path.isfile(os.path.join(_ROLE, ROLE_ENGINE)):  # a generated role
    engine, fs = _role_copy(ROLE_ENGINE), _role_copy(ROLE_FS)
else:
    from ansible_collections.mo.fleet.plugins.module_utils._common import fs
    from ansible_collections.mo.fleet.plugins.plugin_utils import _bundle_apply as engine


def read_plan(path):
    """ITEMS and SOURCES of the plan file PATH (engine.parse_plan), read at most MAX_PLAN_BYTES."""
    try:
        data = fs.read_capped(path, engine.MAX_PLAN_BYTES)
    except fs.TooLarge:
        raise AnsibleActionFail("The plan %s is larger than %d bytes." % (path, engine.MAX_PLAN_BYTES))
    except OSError as exc:
        raise AnsibleActionFail(f"The plan {path} cannot be read ({exc.strerror}).")
    return engine.parse_plan(data, path)


class ActionModule(ActionBase):

    # the content tar is the one file sent, and only when the host lacks some content: the
    # remote tmp directory is made then (not at the start of every run, as ActionBase does for
    # plugins that say they transfer files)
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        try:
            result.update(self._apply(task_vars))
        except AnsibleActionFail as exc:
            result.update(failed=True, changed=False, msg=to_text(exc.message))
        finally:
            if self._connection._shell.tmpdir:
                self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _plan(self):
        """(items, sources) of the plan, or None when paths_only is set and the bundle holds
        more than paths (its rendered tasks are more than this module's task)."""
        args = self._task.args
        if bool(args.get("bundle")) == bool(args.get("plan")):
            raise AnsibleActionFail("bundle_apply needs exactly one of bundle and plan.")
        if args.get("plan"):
            return read_plan(self._find_needle("files", args["plan"]))
        return engine.bundle_plan(args, self)

    def _module(self, task_vars, args):
        name = self._task.resolved_action or self._task.action
        out = self._execute_module(module_name=name, module_args=args, task_vars=task_vars)
        if out.get("failed"):
            raise AnsibleActionFail(out.get("msg") or "bundle_apply failed on the host.")
        return out

    def _apply(self, task_vars):
        plan = self._plan()
        if plan is None:  # skipped: this task did nothing, the rendered tasks do it all
            return {"changed": False, "skipped": True, "needs_tasks": True, "changes": [], "items": 0, "shipped": 0,
                    "msg": "The bundle holds packages, accounts or units too: render its tasks (nothing was done)."}
        items, sources = plan
        base = {"manifest": engine.manifest(items),
                "max_content_bytes": engine.content_cap(self._task.args.get("max_content_bytes")),
                "conffile_patch": bool(self._task.args.get("conffile_patch", True))}
        host = (task_vars or {}).get("inventory_hostname", "the host")
        everything = self._fresh(items, sources, base["max_content_bytes"])
        if everything:
            content = self._ship(everything, sources, base["max_content_bytes"])
            done = engine.check_result(self._module(task_vars, dict(base, content=content)), host)
            return {"changed": done["changed"], "changes": done["changes"], "items": len(items),
                    "shipped": len(everything), "needs_tasks": False}
        probe = engine.check_result(self._module(task_vars, dict(base, probe=True)), host)
        out = {"changed": probe["changed"], "changes": probe["changes"], "items": len(items), "shipped": 0,
               "needs_tasks": False}
        if self._task.diff and probe["changed"]:
            out["diff"] = engine.diff(probe, items, sources)
        if self._task.check_mode or not probe["changed"]:
            return out
        args = dict(base)
        if probe["need"]:
            args["content"] = self._ship(probe["need"], sources, base["max_content_bytes"])
            out["shipped"] = len(probe["need"])
        done = engine.check_result(self._module(task_vars, args), host)
        out.update(changed=done["changed"], changes=done["changes"])
        return out

    def _fresh(self, items, sources, cap):
        """Every content digest when the host looks fresh (engine.fresh_test, asked in one shell
        round trip as the login user: a path it cannot see counts as absent), else []. Then the
        content goes first and one module run converges instead of a probe run before it; the
        module still compares every path and writes only what differs. Not in check or diff
        mode (the probe is the answer there)."""
        if self._task.check_mode or self._task.diff:
            return []
        fresh = engine.fresh_test(items, sources, cap)
        if fresh is None:
            return []
        digests, command = fresh
        return digests if self._low_level_execute_command(command, sudoable=False).get("rc") == 0 else []

    def _ship(self, need, sources, cap):
        """The contents NEED names, as one tar on the host; its remote path."""
        local = engine.content_tar(need, sources, cap)
        try:
            shell = self._connection._shell
            if not shell.tmpdir:
                self._make_tmp_path()
            remote = shell.join_path(shell.tmpdir, "content.tar")
            self._transfer_file(local, remote)
            self._fixup_perms2((shell.tmpdir, remote), execute=False)  # read, not run: no chmod when root reads it
            return remote
        finally:
            os.unlink(local)
