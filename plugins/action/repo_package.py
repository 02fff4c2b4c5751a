# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for mo.fleet.repo_package: check the .deb(s) on the controller, send them,
run the module on the repository server."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.mo.fleet.plugins.module_utils._repo.deb import DebError
from ansible_collections.mo.fleet.plugins.plugin_utils._controller_paths import controller_path
from ansible_collections.mo.fleet.plugins.module_utils._repo.store import (
    UPLOAD_ARGUMENT_SPEC, check_upload, collect_debs, package_set_of,
)


class ActionModule(ActionBase):

    TRANSFERS_FILES = True
    _VALID_ARGS = frozenset(UPLOAD_ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars or {})
        args = dict(self._task.args)
        if args.get("remote_src"):
            result.update(self._execute_module(module_name="mo.fleet.repo_package", module_args=args,
                                               task_vars=task_vars))
            return result
        src = args.get("src")
        if not src or not args.get("store"):
            return self._fail(result, "src and store are required.")
        found = controller_path(to_text(src), self)
        if found is None:
            return self._fail(result, f"src {src} does not exist on the controller.")
        src = found
        package_set = package_set_of(src, args.get("set"))
        is_dir = os.path.isdir(src)
        try:
            files = collect_debs(src)
            check_upload(files, to_text(args["store"]), package_set)
        except DebError as exc:
            return self._fail(result, str(exc))
        except AnsibleActionFail as exc:
            return self._fail(result, to_text(exc))

        tmpdir = self._make_tmp_path()
        try:
            remote_root = self._connection._shell.join_path(tmpdir, "upload")
            # the login user's own tmp directory: made by that user (not the become user), who
            # then puts the files there; _fixup_perms2 lets the become user read them
            self._low_level_execute_command(f"mkdir -p {self._connection._shell.quote(remote_root)}", sudoable=False)
            for path in files:
                self._transfer_file(path, self._connection._shell.join_path(remote_root, os.path.basename(path)))
            self._fixup_perms2((tmpdir, remote_root) + tuple(
                self._connection._shell.join_path(remote_root, os.path.basename(p)) for p in files))
            remote_src = remote_root if is_dir else self._connection._shell.join_path(remote_root, os.path.basename(files[0]))
            module_args = dict(args)
            module_args.update(src=remote_src, set=package_set, remote_src=True)
            result.update(self._execute_module(module_name="mo.fleet.repo_package", module_args=module_args,
                                               task_vars=task_vars))
        finally:
            self._remove_tmp_path(tmpdir)
        return result

    @staticmethod
    def _fail(result, msg):
        result.update(failed=True, changed=False, msg=msg)
        return result
