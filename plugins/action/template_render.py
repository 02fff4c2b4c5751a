# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for mo.fleet.template_render: write a rendered task file or role on the
controller (the filters only return data).  The engine is module_utils/_render/output.py."""

from __future__ import annotations

import os

from ansible.plugins.action import ActionBase

from ansible_collections.mo.fleet.plugins.plugin_utils._controller_paths import controller_path
from ansible_collections.mo.fleet.plugins.module_utils._render import api as render
from ansible_collections.mo.fleet.plugins.module_utils._common.plain import plain
from ansible_collections.mo.fleet.plugins.module_utils._render import output
from ansible_collections.mo.fleet.plugins.module_utils._render.args import TEMPLATE_RENDER_ARGS


def _role(src: str, dest: str, args: dict, options: dict):
    if args["role_engine"] == "module":
        options["apply_module"] = True
    else:
        options["files_archive"] = os.path.join(dest, "files", render.ROLE_ARCHIVE)
    out = output.role_output(src, options, role_name=args["role_name"] or output.role_name_of(dest),
                             origin=args["origin"] or args["src"])
    return out, output.plan_role(dest, out), lambda plan: output.write_role(dest, out, plan)


def _tasks(src: str, dest: str, args: dict, options: dict):
    text = output.task_text(src, options, rollback=args["output"] == "rollback")
    plan = output.plan_tasks(dest, text, src, options)
    return {"archive": options.get("files_archive")}, plan, \
        lambda plan: output.write_tasks(dest, text, src, options, plan)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_diff = True
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=TEMPLATE_RENDER_ARGS)
        src, dest = controller_path(args["src"]), controller_path(args["dest"])
        options = plain(args["options"])
        if args["output"] == "rollback" and options.get("files_archive"):
            return dict(result, failed=True, msg="mo.fleet.template_render: files_archive is for output=tasks "
                                                 "(a rollback unpacks no archive).")
        try:
            make = _role if args["output"] == "role" else _tasks
            out, plan, write = make(src, dest, args, options)
            if plan["changed"] and not self._task.check_mode:
                write(plan)
        except (render.RenderError, ValueError) as exc:  # ValueError: the emitter refused a value
            return dict(result, failed=True, msg=f"mo.fleet.template_render: {exc}")
        except OSError as exc:
            return dict(result, failed=True, msg=f"mo.fleet.template_render: cannot write {dest} "
                                                 f"({exc.strerror or exc}).")
        archive = out["archive"]
        result.update(changed=plan["changed"], dest=dest, written=plan["write"],
                      copied=[d for d, _s in plan["copy"]], removed=plan["remove"],
                      archive=os.path.join(dest, archive) if archive and args["output"] == "role" else archive,
                      archive_changed=plan["archive"], files=len(out.get("copies", [])))
        if self._task.diff and plan["diff"]:
            result["diff"] = plan["diff"]
        return result
