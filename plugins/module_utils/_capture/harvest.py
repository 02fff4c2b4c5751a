# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Target side of harvest: the templates of the capture store the controller has not got yet.

``pending(store, skip) -> list``
    Every template in the index (module captures, intercepted commands, drift captures,
    dpkg hook records) whose id is not in SKIP and whose bundle directory is present,
    oldest first: ``{id, name, created, command, status, origin}``; captures the host CLI
    is still finishing in the background are waited for (at most FINISHING_WAIT seconds).
``present_ids(store) -> list``
    The ids of every template whose bundle directory is still in the store (the controller
    prunes its harvest state to these).
``remove_home(store, ids) -> (removed, problem)``
    With the harvest's ``remove_harvested``: the templates IDS (harvested, their bundles safely
    on the controller) removed from the capture directory under its lock; a busy capture
    directory is no failure (PROBLEM says so: the next harvest removes them).
``pack(store, items, inline_max, archive_dir) -> list``
    Each item with its bundle archived as the capture engine archives it (same members):
    ``sha256``, ``size`` and either ``content`` (base64, while the results stay within
    INLINE_MAX bytes in all) or ``archive`` (a file in ARCHIVE_DIR for the controller to
    fetch).  The controller checks them with the capture action's own code.

Standard library only (runs on targets).
"""

from __future__ import annotations

import base64
import json
import os
import tempfile

from ansible_collections.mo.fleet.plugins.module_utils._capture import capture as cap
from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._capture.capture_index import StoreError

MAX_PENDING = 10000


def _origin(path):
    try:
        doc = json.loads(tpl.read_template_bytes(os.path.join(path, tpl.BUNDLE_TEMPLATE)))
        return str(doc["metadata"].get("origin") or "module")[:64]
    except (tpl.TemplateError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


# how long a harvest waits for captures the host CLI is still finishing in the background
FINISHING_WAIT = 120


def pending(store, skip=()):
    skip = set(skip or ())
    store.wait_finishing(FINISHING_WAIT)  # an intercepted command's template may still be being built
    out = []
    for item in store.list_templates():
        if item["id"] in skip or not item["present"]:
            continue
        try:
            path = store.template_dir(item["id"], item["path"])
        except StoreError:
            continue
        out.append({"id": item["id"], "name": item["name"] or item["id"], "created": item["created"],
                    "command": item["command"], "status": item["status"], "origin": _origin(path),
                    "path": path})
        if len(out) >= MAX_PENDING:
            break
    return out


def present_ids(store) -> list:
    return [item["id"] for item in store.list_templates() if item["present"]]


def pack(store, items, inline_max, archive_dir=None):
    budget = inline_max
    out = []
    for item in items:
        item = dict(item)
        fd, archive = tempfile.mkstemp(prefix=item["id"][:64] + ".", suffix=".tar.gz",
                                       dir=archive_dir or store.outbox)
        os.close(fd)
        cap._make_archive(item.pop("path"), archive)
        item["sha256"], item["size"] = tpl.sha256_file(archive), os.path.getsize(archive)
        if item["size"] <= budget:
            budget -= item["size"]
            with open(archive, "rb") as handle:
                item["content"] = base64.b64encode(handle.read()).decode("ascii")
            os.unlink(archive)
            item["archive"] = None
        else:
            if archive_dir:
                cap.give_to_fetcher(archive, archive_dir)
            item["archive"] = archive
        out.append(item)
    return out


# how long the removal of harvested templates waits for the capture directory's lock
REMOVE_WAIT = 60


def remove_home(store, ids, wait=REMOVE_WAIT):
    try:
        return store.remove(ids, wait=wait), None
    except StoreError as exc:
        return [], f"{exc} The harvested templates stay on the host until the next harvest."
