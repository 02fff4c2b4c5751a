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
"""

from __future__ import annotations

import json
import os

from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.mo.fleet.plugins.action.capture import INLINE_MAX, BundleError, receive_bundle
from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._common import names, paths
from ansible_collections.mo.fleet.plugins.module_utils._common.lock import FileLock

STATE_FILE = ".harvested.json"
LOCK_FILE = ".harvest.lock"
MAX_STATE_BYTES = 16 * 1024 * 1024
_ITEM_KEYS = {"id": str, "name": str, "sha256": str}


def read_state(host_dir: str) -> dict:
    """{id: directory name or None}: the ids harvested before; {} when there is no state file.
    The older format (a list of ids, no directories) is read too."""
    path = os.path.join(host_dir, STATE_FILE)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_STATE_BYTES + 1)
        if len(raw) > MAX_STATE_BYTES:
            raise ValueError("too large")
        data = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as exc:
        raise BundleError(f"The harvest state {path} cannot be read ({type(exc).__name__}); remove it to "
                          "harvest everything again.")
    ids = data.get("harvested") if isinstance(data, dict) else None
    dirs = data.get("dirs", {}) if isinstance(data, dict) else None
    if (not isinstance(ids, list) or not all(names.is_valid("file_part", i) for i in ids)
            or not isinstance(dirs, dict) or not all(names.is_valid("file_part", d) for d in dirs.values())):
        raise BundleError(f"The harvest state {path} is not a list of capture ids; remove it to harvest "
                          "everything again.")
    return dict((i, dirs.get(i)) for i in ids)


def write_state(host_dir: str, state: dict) -> None:
    os.makedirs(host_dir, exist_ok=True)
    doc = {"harvested": list(state), "dirs": dict((i, d) for i, d in state.items() if d)}
    tpl.atomic_write(os.path.join(host_dir, STATE_FILE), json.dumps(doc, indent=1))


def bundle_dir(host_dir: str, state: dict, name: str, template_id: str) -> str:
    """The directory name for TEMPLATE_ID: NAME while no other harvested id owns it and it does
    not exist, else NAME@ID (ids are unique in a store)."""
    owners = set(i for i, d in state.items() if d == name)
    if owners <= {template_id} and (template_id in owners or not os.path.lexists(os.path.join(host_dir, name))):
        return name
    return f"{name}@{template_id}"[:255]


def check_item(host: str, item, packed: bool = True) -> str:
    """One sentence when ITEM (from the host) is not a harvest item, else ''.  An item listed
    in check mode (not PACKED) has no sha256 yet."""
    if not isinstance(item, dict):
        return f"{host} reported a template that is not a mapping."
    for key, kind in _ITEM_KEYS.items():
        if (packed or key != "sha256") and not isinstance(item.get(key), kind):
            return f"{host} reported a template without a {key}."
    if not names.is_valid("file_part", item["id"]):
        return f"{host} reported a capture id that is not {names.RULES['file_part']}."
    if not names.is_valid("file_part", item["name"]):
        return f"The bundle {item['id']} was not kept: its name is not {names.RULES['file_part']}."
    return ""


class ActionModule(ActionBase):

    TRANSFERS_FILES = True

    def _keep(self, host, host_dir, state, item):
        directory = bundle_dir(host_dir, state, item["name"], item["id"])
        final = paths.join(host_dir, [directory], "The capture name")
        bundle = {"sha256": item["sha256"], "archive": item.get("archive")}
        written = receive_bundle(self._connection, host, host_dir, final, directory, bundle, item.get("content"))
        state[item["id"]] = directory
        return final, written

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        dest = os.path.abspath(os.path.expanduser(to_text(args.pop("dest", None) or "captures")))
        host = task_vars.get("inventory_hostname", "localhost")
        try:
            host_dir = paths.join(dest, [host], "inventory_hostname")
            args["skip"] = list(read_state(host_dir))
        except (paths.PathError, BundleError) as exc:
            result.update(failed=True, changed=False, msg=f"Nothing was harvested: {exc}")
            return result
        if self._task.check_mode:
            args["list_only"] = True
        else:
            args["inline_max"] = INLINE_MAX
            if self._connection._shell.tmpdir is None:
                self._make_tmp_path()
            args["archive_dir"] = self._connection._shell.tmpdir
        module_result = self._execute_module(module_name="mo.fleet.harvest", module_args=args, task_vars=task_vars)
        items = module_result.pop("templates", None)
        present = module_result.pop("present", None)
        result.update(module_result)
        if module_result.get("failed"):
            return result
        if not isinstance(items, list) or not isinstance(present, list):
            result.update(failed=True, changed=False, msg=f"{host} returned no list of templates; nothing was harvested.")
            return result
        if self._task.check_mode:
            shown = [dict((k, v) for k, v in i.items() if k != "content") for i in items
                     if not check_item(host, i, packed=False)]
            result.update(templates=shown, changed=bool(shown),
                          msg=f"check mode: {len(shown)} template(s) would be harvested.")
            return result
        os.makedirs(host_dir, exist_ok=True)
        with FileLock(os.path.join(host_dir, LOCK_FILE), timeout=600, holder="another harvest of this host",
                      error=BundleError):
            return self._harvest(host, host_dir, items, set(present), module_result, result)

    def _harvest(self, host, host_dir, items, present, module_result, result):
        state = read_state(host_dir)
        before = dict(state)
        shown, refused, written = [], [], 0
        for item in items:
            problem = check_item(host, item)
            if not problem and item["id"] in state:
                continue  # harvested by a concurrent run meanwhile
            if not problem:
                info = dict((k, v) for k, v in item.items() if k not in ("content", "archive"))
                try:
                    info["dest"], info["written"] = self._keep(host, host_dir, state, item)
                    written += info["written"]
                    shown.append(info)
                    continue
                except (BundleError, paths.PathError) as exc:
                    problem = str(exc)
            refused.append(problem)
            if isinstance(item, dict) and names.is_valid("file_part", item.get("id")):
                state[item["id"]] = None  # refused for good: never fetched again
        state = dict((i, d) for i, d in state.items() if i in present)
        if state != before:
            write_state(host_dir, state)
        result.update(templates=shown, refused=refused, changed=bool(written) or bool(module_result.get("changed")))
        result["msg"] = f"Harvested {len(shown)} template(s), {written} written under {host_dir}."
        if refused:
            result["msg"] += f" {len(refused)} refused: " + " ".join(refused)
            result.setdefault("warnings", []).extend(refused)
        return result
