# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for mo.fleet.harvest: fetch every new bundle of a host, verify it, remember it.

The ids harvested from a host are kept in DEST/<inventory_hostname>/.harvested.json (written
with a temp file and a rename); they are passed to the module as ``skip``, so a second run
fetches nothing and reports changed=0.  Each bundle goes through the capture action's own
``receive_bundle`` (archive sha256, member checks and limits, template schema, every bundled
file), and every name from the host through the one path guard before anything is written.
"""

from __future__ import annotations

import json
import os

from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.mo.fleet.plugins.action.capture import INLINE_MAX, BundleError, receive_bundle
from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._common import names, paths

STATE_FILE = ".harvested.json"
MAX_STATE_BYTES = 16 * 1024 * 1024


def read_state(host_dir):
    """The ids harvested before (a list of plain names), [] when there is no state file."""
    path = os.path.join(host_dir, STATE_FILE)
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read(MAX_STATE_BYTES).decode("utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise BundleError("The harvest state %s cannot be read (%s); remove it to harvest everything again."
                          % (path, type(exc).__name__))
    ids = data.get("harvested") if isinstance(data, dict) else None
    if not isinstance(ids, list) or not all(names.is_valid("file_part", i) for i in ids):
        raise BundleError("The harvest state %s is not a list of capture ids; remove it to harvest everything "
                          "again." % path)
    return ids


class ActionModule(ActionBase):

    TRANSFERS_FILES = True

    def _keep(self, host, host_dir, item):
        name, template_id = item.get("name"), item.get("id")
        if not names.is_valid("file_part", template_id):
            raise BundleError("%s reported a capture id that is not a plain file name part." % host)
        try:
            final = paths.join(host_dir, [name], "The capture name")
        except paths.PathError as exc:
            raise BundleError("The bundle %s was not kept: %s" % (template_id, exc))
        if not isinstance(item.get("sha256"), str):
            raise BundleError("The bundle %s was not kept: the module reported no sha256 for it." % template_id)
        bundle = {"sha256": item["sha256"], "archive": item.get("archive")}
        return final, receive_bundle(self._connection, host, host_dir, final, name, bundle, item.get("content"))

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        dest = os.path.abspath(os.path.expanduser(to_text(args.pop("dest", None) or "captures")))
        host = task_vars.get("inventory_hostname", "localhost")
        try:
            host_dir = paths.join(dest, [host], "inventory_hostname")
            args["skip"] = read_state(host_dir)
        except (paths.PathError, BundleError) as exc:
            result.update(failed=True, changed=False, msg="Nothing was harvested: %s" % exc)
            return result
        if self._task.check_mode:
            args["list_only"] = True
        else:
            args["inline_max"] = INLINE_MAX
            if self._connection._shell.tmpdir is None:
                self._make_tmp_path()
            args["archive_dir"] = self._connection._shell.tmpdir
        module_result = self._execute_module(module_name="mo.fleet.harvest", module_args=args, task_vars=task_vars)
        items = module_result.pop("templates", None) or []
        result.update(module_result)
        if module_result.get("failed") or not isinstance(items, list):
            return result
        shown = [dict((k, v) for k, v in i.items() if k != "content") for i in items if isinstance(i, dict)]
        if self._task.check_mode:
            result.update(templates=shown, changed=bool(shown),
                          msg="check mode: %d template(s) would be harvested." % len(shown))
            return result
        harvested = list(args["skip"])
        written = 0
        try:
            for item, info in zip(items, shown):
                info["dest"], info["written"] = self._keep(host, host_dir, item)
                info.pop("archive", None)
                written += info["written"]
                harvested.append(item["id"])
        except BundleError as exc:
            result.update(failed=True, msg=str(exc))
        finally:
            if len(harvested) > len(args["skip"]):
                os.makedirs(host_dir, exist_ok=True)
                tpl.atomic_write(os.path.join(host_dir, STATE_FILE), json.dumps({"harvested": harvested}, indent=1))
        result["templates"] = shown
        result["changed"] = bool(written) or bool(module_result.get("changed"))
        if not result.get("failed"):
            result["msg"] = "Harvested %d template(s), %d written under %s." % (len(shown), written, host_dir)
        return result
