# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The harvest's bookkeeping on the controller: which bundles of a host were harvested, and where.

Controller side (used by the action plugin mo.fleet.harvest).  DEST/<host>/.harvested.json
records each harvested id and the directory its bundle went to (written with a temp file and
a rename; the caller holds the harvest lock), pruned to the ids the host still has.  A bundle
goes to ``<name>/`` only while no other id owns that directory, else to ``<name>@<id>/``.

``harvest(host, host_dir, items, present, receive) -> (shown, refused, written)``
    Each new item checked (``check_item``) and brought home with RECEIVE (the action's
    ``receive_bundle`` over its connection); a refused item is recorded and never fetched again.
``safely_home(host_dir, state, present) -> list``
    The harvested ids the host still has whose bundle is on the controller (its directory with
    its template.json): what ``remove_harvested`` removes from the host.
``forget(host_dir, ids)``
    IDS out of the state (removed from the host).
``listed(host, items) -> list``
    The items check mode shows (no content).
"""

from __future__ import annotations

import json
import os

from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._common import names, paths
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import read_capped
from ansible_collections.mo.fleet.plugins.plugin_utils._bundle_receive import BundleError

STATE_FILE = ".harvested.json"
LOCK_FILE = ".harvest.lock"
MAX_STATE_BYTES = 16 * 1024 * 1024
_ITEM_KEYS = {"id": str, "name": str, "sha256": str}


def read_state(host_dir: str) -> dict:
    """{id: directory name or None}: the ids harvested before; {} when there is no state file.
    The older format (a list of ids, no directories) is read too."""
    path = os.path.join(host_dir, STATE_FILE)
    try:
        data = json.loads(read_capped(path, MAX_STATE_BYTES).decode("utf-8"))
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


def listed(host: str, items: list) -> list:
    """What check mode shows: the valid items (no sha256 yet), without their content."""
    return [dict((k, v) for k, v in i.items() if k != "content") for i in items
            if not check_item(host, i, packed=False)]


def harvest(host: str, host_dir: str, items: list, present: set, receive) -> tuple:
    """(shown, refused, written): ITEMS brought home below HOST_DIR with
    RECEIVE(final, directory, bundle, content) -> bool, the state updated and pruned to PRESENT."""
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
                info["dest"], info["written"] = _keep(host_dir, state, item, receive)
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
    return shown, refused, written


def _keep(host_dir, state, item, receive):
    directory = bundle_dir(host_dir, state, item["name"], item["id"])
    final = paths.join(host_dir, [directory], "The capture name")
    bundle = {"sha256": item["sha256"], "archive": item.get("archive")}
    written = receive(final, directory, bundle, item.get("content"))
    state[item["id"]] = directory
    return final, written


def safely_home(host_dir: str, state: dict, present) -> list:
    present = set(present)
    return [i for i, d in state.items() if d and i in present and
            os.path.isfile(os.path.join(host_dir, d, tpl.BUNDLE_TEMPLATE))]


def forget(host_dir: str, ids) -> None:
    gone = set(ids)
    state = read_state(host_dir)
    if gone & set(state):
        write_state(host_dir, dict((i, d) for i, d in state.items() if i not in gone))
