# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for mo.fleet.template_verify: load the template on the controller, ship it.

When ``template`` is a bundle directory or template file on the controller, it is loaded and
validated here (schema, paths, sha256 of bundled files) and passed to the module as a
mapping.  ``path`` (bundle validation) passes through unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ansible.plugins.action import ActionBase

from ansible_collections.mo.fleet.plugins.module_utils._render import api as render


class ActionModule(ActionBase):

    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = dict(self._task.args)
        source = args.get("template")
        if isinstance(source, str):
            path = source
            if not os.path.isabs(path):
                path = os.path.join(self._loader.get_basedir(), path) if not os.path.exists(path) else os.path.abspath(path)
            try:
                prep = render.prepare(path, {"allowed_roots": ["/"]})
            except render.RenderError as exc:
                result.update(failed=True, changed=False, msg=str(exc))
                return result
            args["template"] = prep.doc
        elif isinstance(source, Mapping):
            try:
                prep = render.prepare(dict(source), {"allowed_roots": ["/"], "verify_bundle": False})
            except render.RenderError as exc:
                result.update(failed=True, changed=False, msg=str(exc))
                return result
            args["template"] = prep.doc
        result.update(self._execute_module(module_name="mo.fleet.template_verify", module_args=args,
                                           task_vars=task_vars))
        return result
