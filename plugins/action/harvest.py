# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for mo.fleet.harvest: fetch every new bundle of a host, verify it, remember it.

DEST/<inventory_hostname>/.harvested.json records each harvested id and the directory its
bundle went to (written with a temp file and a rename, under a lock, pruned to the ids the
host still has).  The ids go to the module as ``skip``, so a second run fetches nothing and
reports changed=0.  Capture names are not unique (the dpkg hook names by the second, a
weekly drift capture reuses its name), so a bundle goes to ``<name>/`` only while no other
id owns that directory, else to ``<name>@<id>/``: nothing harvested is ever replaced by a
later capture.  Each bundle goes through the capture action's own ``receive_bundle``; an
item that is refused is reported and recorded, and the run goes on with the next one.
With ``remove_harvested``, the harvested templates whose bundles are safely home (recorded
with their directory, its template.json there) are then removed from the host by a second
call of the module (``remove``), still under the harvest lock, and forgotten in the state.
The bookkeeping lives in ``plugin_utils/_harvest_state.py``, the transfer in
``plugin_utils/_bundle_receive.py``: this plugin is glue.
"""

from __future__ import annotations

import os

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.mo.fleet.plugins.module_utils._common import paths
from ansible_collections.mo.fleet.plugins.module_utils._common.lock import FileLock
from ansible_collections.mo.fleet.plugins.plugin_utils._bundle_receive import BundleError, destination, receive_bundle, take_away_args
from ansible_collections.mo.fleet.plugins.plugin_utils._harvest_state import (
    LOCK_FILE, forget, harvest, listed, read_state, safely_home)


class ActionModule(ActionBase):

    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        dest = destination(args.pop("dest", None))
        remove = boolean(args.pop("remove_harvested", False), strict=False)
        host = task_vars.get("inventory_hostname", "localhost")
        try:
            host_dir = paths.join(dest, [host], "inventory_hostname")
            state = read_state(host_dir)
            args["skip"] = list(state)
        except (paths.PathError, BundleError) as exc:
            result.update(failed=True, changed=False, msg=f"Nothing was harvested: {exc}")
            return result
        if self._task.check_mode:
            args["list_only"] = True
        else:
            args.update(take_away_args(self))
        module_result = self._execute_module(module_name="mo.fleet.harvest", module_args=args, task_vars=task_vars)
        items = module_result.pop("templates", None)
        present = module_result.pop("present", None)
        result.update(module_result)
        if module_result.get("failed"):
            return result
        if not isinstance(items, list) or not isinstance(present, list) or not all(isinstance(i, str) for i in present):
            result.update(failed=True, changed=False, msg=f"{host} returned no list of templates; nothing was harvested.")
            return result
        if self._task.check_mode:
            shown = listed(host, items)
            result.update(templates=shown, changed=bool(shown),
                          msg=f"check mode: {len(shown)} template(s) would be harvested.")
            if remove:
                result["removed"] = safely_home(host_dir, state, present) + [i["id"] for i in shown]
                result["msg"] += f" {len(result['removed'])} would be removed from the host."
            return result
        os.makedirs(host_dir, exist_ok=True)
        with FileLock(os.path.join(host_dir, LOCK_FILE), timeout=600, holder="another harvest of this host",
                      error=BundleError):
            shown, refused, written = harvest(host, host_dir, items, set(present), self._receiver(host, host_dir))
            if remove:
                removed = self._remove(args, task_vars, host_dir, present, result)
        result.update(templates=shown, refused=refused, changed=bool(written) or bool(module_result.get("changed")))
        result["msg"] = f"Harvested {len(shown)} template(s), {written} written under {host_dir}."
        if remove:
            result["removed"] = removed
            result["changed"] = result["changed"] or bool(removed)
            result["msg"] += f" {len(removed)} removed from the host."
        if refused:
            result["msg"] += f" {len(refused)} refused: " + " ".join(refused)
            result.setdefault("warnings", []).extend(refused)
        return result

    def _remove(self, args, task_vars, host_dir, present, result):
        """The harvested templates safely home, removed from the host and forgotten here; the ids."""
        ids = safely_home(host_dir, read_state(host_dir), present)
        if not ids:
            return []
        args = dict((k, v) for k, v in args.items() if k not in ("drift", "skip", "list_only", "inline_max", "archive_dir"))
        done = self._execute_module(module_name="mo.fleet.harvest", module_args=dict(args, remove=ids),
                                    task_vars=task_vars)
        result.setdefault("warnings", []).extend(done.get("warnings") or [])
        if done.get("failed"):
            result["warnings"].append(f"The harvested templates were not removed from the host: {done.get('msg')}")
            return []
        removed = [i for i in done.get("removed") or [] if i in ids]
        forget(host_dir, removed)
        return removed

    def _receiver(self, host, host_dir):
        def receive(final, directory, bundle, content):
            return receive_bundle(self._connection, host, host_dir, final, directory, bundle, content)
        return receive
