# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for mo.fleet.capture: run the module, pull the bundle home, verify it.

The bundle lands at DEST/<inventory_hostname>/<name>/ (template.json, files/, before/).
The archive's sha256, the template (JSON Schema) and every bundled file's sha256 are checked
in a staging directory next to the destination; only then does one rename put it in place
(``plugin_utils/_bundle_receive.py`` does all of it: this plugin is glue).
`changed` is true only when the destination was written.

Connection round trips: an archive of at most INLINE_MAX bytes comes back base64-encoded in
the module's result (no fetch); a larger one is written into the task's remote temporary
directory and fetched, and goes with that directory when Ansible removes it after the task.
That directory exists even when the module itself is pipelined: an action plugin that
TRANSFERS_FILES gets it before it runs the module.

Everything the target sends back is hostile.  The host and capture names must be plain file
name parts and the joined destination must stay below DEST (the one path guard,
``_common/paths.join``): a host called ``..`` is refused, never written beside DEST.  The
archive is refused, before more than the limit is written and with the staging directory
removed, when it is larger than MAX_ARCHIVE_BYTES, holds more than MAX_MEMBERS members or
more than MAX_BUNDLE_BYTES of content, or holds anything but plain files and directories
under template.json, files/ and before/ (no links, devices, absolute names or ``..``).
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.mo.fleet.plugins.module_utils._common import paths
from ansible_collections.mo.fleet.plugins.plugin_utils._bundle_receive import (
    BundleError, bundle_destination, check_destination, destination, receive_bundle, take_away_args)


class ActionModule(ActionBase):

    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        fetch = args.get("fetch", True)
        if isinstance(fetch, str):
            fetch = fetch.lower() in ("1", "true", "yes", "on")
        host = task_vars.get("inventory_hostname", "localhost")
        dest = destination(args.get("dest"))
        if fetch:
            try:
                check_destination(dest, host, args.get("name"))
            except paths.PathError as exc:
                result.update(failed=True, changed=False, msg="The capture did not run: %s" % exc)
                return result
        if fetch and not self._task.check_mode:
            args.update(take_away_args(self, args.get("inline_max")))
        module_result = self._execute_module(module_name="mo.fleet.capture", module_args=args,
                                             task_vars=task_vars)
        result.update(module_result)
        bundle = module_result.get("bundle")
        content = None
        if isinstance(bundle, dict):
            bundle = dict(bundle)
            content = bundle.pop("content", None)  # never shown to the user
            result["bundle"] = bundle
        if self._task.check_mode or not bundle or not fetch:
            return result
        return self._keep(result, host, dest, module_result.get("name") or "capture", bundle, content)

    def _keep(self, result, host, dest, name, bundle, content):
        try:
            host_dir, final = bundle_destination(dest, host, name)
        except paths.PathError as exc:
            result.update(failed=True, changed=False, msg="The bundle was not kept: %s" % exc)
            return result
        if not isinstance(bundle.get("sha256"), str):
            result.update(failed=True, changed=False, msg="The bundle from %s was not kept: the module reported "
                          "no sha256 for it." % host)
            return result
        try:
            wrote = receive_bundle(self._connection, host, host_dir, final, name, bundle, content)
        except BundleError as exc:
            result.update(failed=True, changed=False, msg=str(exc))
            return result
        result["dest"] = final
        result["bundle_written"] = wrote
        result["changed"] = wrote
        return result
