# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The publish state of a project (``STATE_SCHEMA``): what each deployment's published
generation was built from, read and written atomically.

Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os

from ansible_collections.mo.fleet.plugins.module_utils._common import names, validate
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import atomic_write
from ansible_collections.mo.fleet.plugins.module_utils._repo.repo_index import STATE_VERSION, PublishError


_TEXTS = {"type": "array", "maxItems": 1000000, "items": {"type": "string"}}


_COUNT = {"type": "integer", "minimum": 0, "maximum": 2 ** 53}


# state/publish.json: what the last publishes did, per deployment
STATE_SCHEMA = {
    "type": "object",
    "required": ["version", "deployments"],
    "properties": {
        "version": {"const": STATE_VERSION},
        "deployments": names.by_deployment({
            "fingerprint": {"type": "string", "maxLength": 128},
            "packages": _TEXTS, "chunks": _TEXTS,
            "generation": _COUNT, "date": _COUNT,
            "suite": {"type": ["string", "null"], "pattern": names.PATTERNS["suite"]},
            "enabled": {"type": "boolean"},
            "history": {"type": "array", "items": {"type": "object"}},
        }),
    },
}


def load_state(path):
    """The publish state at PATH; a fresh one when absent or unreadable, PublishError (one
    sentence naming the field) when it holds what this server never writes."""
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read().decode("utf-8"))
    except (OSError, ValueError):
        return {"version": STATE_VERSION, "deployments": {}}
    if isinstance(data, dict) and data.get("version") != STATE_VERSION:
        return {"version": STATE_VERSION, "deployments": {}}
    problem = validate.first_error(data, STATE_SCHEMA)
    if problem:
        raise PublishError(f"the publish state {path}: {problem}")
    return data


def save_state(path, state):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write(path, json.dumps(state, separators=(",", ":"), sort_keys=True).encode("utf-8"), mode=0o600)


def _fingerprint(payload):
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
