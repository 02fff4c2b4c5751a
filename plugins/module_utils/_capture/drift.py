# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drift since a baseline: what changed on a host that nobody captured.

``take_baseline(store, roots, exclude) -> dict``
    Walks ROOTS and reads the system state (packages, units, accounts) as a capture's
    before-snapshot does, and keeps both in ``<store>/baseline/baseline.json.gz``
    (temp file + rename, under the store lock by the caller).
``load_baseline(store) -> (Snapshot, state, info)``
    The stored baseline, checked; DriftError with one sentence when absent or damaged.
``parse_history(text) -> list``
    apt's /var/log/apt/history.log stanzas: start, commandline, requested_by and the
    packages each one installed, upgraded or removed.
``attribute(operations, hook_records, history) -> list``
    For each package change of a template: the request that made it (a dpkg hook record
    first, else apt's history), as ``{package, version, change, source, command, user}``.

Standard library only (runs on targets).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import time

from ansible_collections.mo.fleet.plugins.module_utils._capture import snapshot as snap
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import atomic_write
from ansible_collections.mo.fleet.plugins.module_utils._common.logtail import read_tail

BASELINE_FORMAT = 1
# a baseline of a large host is a few tens of MiB of JSON; more than this is not one of ours
MAX_BASELINE_BYTES = 1024 * 1024 * 1024
HISTORY_LOG = "/var/log/apt/history.log"
MAX_HISTORY_BYTES = 16 * 1024 * 1024


class DriftError(Exception):
    """A drift problem; the message is one sentence."""


def baseline_path(store) -> str:
    return store.baseline


def _state_to_json(state: dict) -> dict:
    return {
        "packages": list(state["packages"].values()),
        "conffiles": {path: list(value) for path, value in state["conffiles"].items()},
        "auto": sorted(list(item) for item in state["auto"]),
        "units": state["units"],
        "accounts": state["accounts"],
    }


def _state_from_json(data: dict) -> dict:
    return {
        "packages": {(p["name"], p["architecture"]): p for p in data["packages"]},
        "conffiles": {path: tuple(value) for path, value in data["conffiles"].items()},
        "auto": set((name, arch) for name, arch in data["auto"]),
        "units": data["units"],
        "accounts": data["accounts"],
    }


def encode_baseline(snapshot, state: dict, created: float) -> bytes:
    entries = [[path] + list(st) for path, st in snapshot.entries.items()]
    doc = {"format": BASELINE_FORMAT, "created": created, "roots": snapshot.roots, "exclude": snapshot.exclude,
           "devices": {str(dev): path for dev, path in snapshot.devices.items()},
           "entries": entries, "state": _state_to_json(state)}
    return gzip.compress(json.dumps(doc, separators=(",", ":")).encode("utf-8"), compresslevel=1)


def decode_baseline(blob: bytes):
    """(Snapshot, state, info) from ENCODE_BASELINE's bytes; DriftError when they are not."""
    try:
        doc = json.loads(gzip.decompress(blob).decode("utf-8"))
        if doc.get("format") != BASELINE_FORMAT:
            raise DriftError("The baseline has format %r, not %d; take a new one with `mo-capture baseline`."
                             % (doc.get("format"), BASELINE_FORMAT))
        result = snap.Snapshot(doc["roots"], doc["exclude"])
        for item in doc["entries"]:
            result.entries[item[0]] = snap.Stat(*item[1:])
        result.devices = {int(dev): path for dev, path in doc["devices"].items()}
        state = _state_from_json(doc["state"])
        info = {"created": float(doc["created"]), "roots": result.roots, "exclude": result.exclude,
                "entries": len(result.entries), "packages": len(state["packages"])}
    except DriftError:
        raise
    except (OSError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise DriftError("The baseline is damaged (%s); take a new one with `mo-capture baseline`."
                         % type(exc).__name__)
    return result, state, info


def take_baseline(store, roots, exclude) -> dict:
    """Walk ROOTS, read the state, store both as the baseline; return its info."""
    before = snap.walk(roots, exclude)
    state = snap.read_state(unit_files=not snap.unit_dirs_covered(roots, exclude))
    if snap.unit_dirs_covered(roots, exclude):
        snap.add_unit_files(state, before)
    created = time.time()
    path = baseline_path(store)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    atomic_write(path, encode_baseline(before, state, created), mode=0o600)
    os.utime(path, (created, created))  # the records retention keeps (hook_records) date from here
    return {"path": path, "created": created, "entries": len(before), "packages": len(state["packages"]),
            "roots": list(roots)}


def load_baseline(store):
    path = baseline_path(store)
    try:
        size = os.stat(path).st_size
    except OSError:
        raise DriftError("There is no baseline on this host; take one with `mo-capture baseline` first.")
    if size > MAX_BASELINE_BYTES:
        raise DriftError("The baseline %s is larger than %d bytes; take a new one." % (path, MAX_BASELINE_BYTES))
    with open(path, "rb") as handle:
        return decode_baseline(handle.read())


# --------------------------------------------------------------------------- apt's history

_PKG_ITEM = re.compile(r"\s*([^\s:(),]+)(?::([a-z0-9-]+))? \(([^()]*)\)\s*(?:,|$)")


def _pkg_list(value: str, field: str) -> list:
    out = []
    for match in _PKG_ITEM.finditer(value):
        name, arch, inner = match.group(1), match.group(2), match.group(3)
        parts = [p.strip() for p in inner.split(",")]
        automatic = "automatic" in parts
        versions = [p for p in parts if p != "automatic"]
        item = {"name": name, "architecture": arch, "automatic": automatic, "change": field}
        if field == "upgraded" and len(versions) >= 2:
            item["version_before"], item["version"] = versions[0], versions[1]
        else:
            item["version"] = versions[0] if versions else None
        out.append(item)
    return out


_HISTORY_FIELDS = {"Install": "installed", "Upgrade": "upgraded", "Downgrade": "upgraded",
                   "Remove": "removed", "Purge": "removed", "Reinstall": "installed"}


def parse_history(text: str) -> list:
    """apt's history.log -> [{start, end, commandline, requested_by, packages: [...]}], oldest first."""
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields = {}
        for line in stanza.splitlines():
            if ": " in line:
                key, value = line.split(": ", 1)
                fields[key.strip()] = value
        if "Start-Date" not in fields:
            continue
        packages = []
        for key, change in _HISTORY_FIELDS.items():
            if key in fields:
                packages += _pkg_list(fields[key], change)
        out.append({"start": fields.get("Start-Date"), "end": fields.get("End-Date"),
                    "commandline": snap.printable_path(fields.get("Commandline", ""))[:4096] or None,
                    "requested_by": snap.printable_path(fields.get("Requested-By", ""))[:256] or None,
                    "packages": packages})
    return out


def read_history(path: str = HISTORY_LOG) -> list:
    text = read_tail(path, MAX_HISTORY_BYTES)
    return [] if text is None else parse_history(text)


def _changes_of(operations: dict):
    for op, change in (("packages_installed", "installed"), ("packages_upgraded", "upgraded"),
                       ("packages_removed", "removed")):
        for pkg in operations.get(op) or []:
            yield pkg, change


def attribute(operations: dict, hook_records: list, history: list) -> list:
    """Who asked for each package change of OPERATIONS (newest matching record wins)."""
    out = []
    for pkg, change in _changes_of(operations):
        found = None
        for record in reversed(hook_records):
            for item in record.get("packages") or []:
                if item.get("name") == pkg["name"] and item.get("change") == change and \
                        item.get("version") == pkg.get("version"):
                    found = {"source": "dpkg-hook", "command": record.get("command"),
                             "parent": record.get("parent"), "user": record.get("user"),
                             "time": record.get("time")}
                    break
            if found:
                break
        if found is None:
            for entry in reversed(history):
                if any(i["name"] == pkg["name"] and i["change"] == change and
                       (i.get("version") == pkg.get("version") or change == "removed")
                       for i in entry["packages"]):
                    found = {"source": "apt-history", "command": entry["commandline"],
                             "user": entry["requested_by"], "time": entry["start"]}
                    break
        item = {"package": pkg["name"], "version": pkg.get("version"), "change": change}
        item.update(found or {"source": None})
        out.append(item)
    return out
