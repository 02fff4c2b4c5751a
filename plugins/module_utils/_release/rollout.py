# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rollout helpers: client source entries, wave batches, halt decisions and the release state.

Pure functions over the release rule of ``release.py`` (nothing here re-implements it), plus
the release state file: ``{"version": 1, "halted": {deployment: details}}``, written atomically
(temporary file + rename) under an ``flock`` on ``<file>.lock`` so two rollouts serialize.
Standard library only.

API::

    client_entries(catalog, names, server_url) -> [entry]      # for mo.fleet.release_sync
    wave_batches(waves, batch_size=0) -> {'order': [hosts], 'serial': [sizes], 'batches': [...]}
    halt_decisions(catalog, records, halted=(), threshold=None) -> {deployment: details}
    HaltCounts().put(host, record) ; .decide(halt_limits(catalog), halted_names(halted)) -> the same, running
    read_state(path) -> state ; update_state(path, halt={}, resume=[], check=False) -> (changed, state)
    sync_record_paths(reports_dir, record) -> (last, history) ; write_sync_record(reports_dir, record)
    read_sync_records(reports_dir, hosts) -> {host: record}
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping

from ansible_collections.mo.fleet.plugins.module_utils._common import names, paths, validate
from ansible_collections.mo.fleet.plugins.module_utils._common.fields import APT_FIELDS
from ansible_collections.mo.fleet.plugins.module_utils._repo.catalog import load_catalog
from ansible_collections.mo.fleet.plugins.module_utils._release.release import should_halt
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import atomic_write
from ansible_collections.mo.fleet.plugins.module_utils._common.lock import FileLock

__all__ = ["RolloutError", "client_entries", "wave_batches", "halt_decisions", "halt_limits", "halted_names",
           "HaltCounts", "read_state",
           "update_state", "sync_record_paths", "write_sync_record", "read_sync_records", "STATE_VERSION"]

STATE_VERSION = 1


class RolloutError(ValueError):
    """Bad rollout input or an unreadable state file: one sentence naming the field."""


MAX_LIST = 100000  # items in one list of a sync record or a halt's details


def _names_list(kind="safe"):
    return {"type": "array", "maxItems": MAX_LIST,
            "items": {"type": "string", "pattern": names.PATTERNS[kind], "x-rule": "is not " + names.RULES[kind]}}


_TEXTS = {"type": "array", "maxItems": MAX_LIST, "items": {"type": "string", "maxLength": 4096}}

# A host's sync record (what the mo.fleet.release role builds, reports/sync/<host>.json).
# Every field is optional for reading (a record may be partial); writing needs host, time, date.
SYNC_RECORD_SCHEMA = {
    "type": "object",
    "properties": {
        "host": {"type": "string", "pattern": names.PATTERNS["file_part"], "x-rule": "is not " + names.RULES["file_part"]},
        "time": {"type": "string", "pattern": "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z",
                 "x-rule": "is not a time YYYY-MM-DDTHH:MM:SSZ"},
        "date": {"type": "string", "pattern": names.PATTERNS["date"], "x-rule": "is not " + names.RULES["date"]},
        "status": {"enum": ["ok", "error"]},
        "server": {"type": "string", "maxLength": 4096},
        "message": {"type": "string", "maxLength": 65536},
        "check_mode": {"type": ["boolean", "string"]},
        "attributes": _TEXTS,
        "planned": _names_list(), "halted": _names_list(), "deployments": _names_list(),
        "new_deployments": _names_list(), "failed_deployments": _names_list(),
        "sources_written": _TEXTS, "sources_removed": _TEXTS, "removed": _TEXTS, "installed": _TEXTS,
        "upgraded": _TEXTS, "failed_packages": _TEXTS,
    },
}

# The release state file: {"version": 1, "halted": {deployment: details}}.
STATE_SCHEMA = {
    "type": "object",
    "properties": {
        "version": {"const": STATE_VERSION},
        "halted": names.by_deployment({
            "failed": {"type": "integer", "minimum": 0, "maximum": 10 ** 9},
            "total": {"type": "integer", "minimum": 0, "maximum": 10 ** 9},
            "threshold": {"type": "number", "minimum": 0, "maximum": 100},
            "hosts": _names_list("file_part"),
            "date": {"type": "string", "pattern": names.PATTERNS["date"], "x-rule": "is not " + names.RULES["date"]},
        }),
    },
}


def _plain_dict(value):
    if isinstance(value, Mapping):
        return {k: _plain_dict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_dict(v) for v in value]
    return value


def _quote_field(problem):
    """'halted/x/failed must be ...' -> "'halted/x/failed' must be ..." (the field quoted)."""
    at = problem.find("(name ")
    end = problem.find(") ", at) + 1 if at >= 0 else problem.find(" ")
    return f"'{problem[:end]}'{problem[end:]}"


def check_sync_record(record, owner="sync record"):
    """RECORD if it matches SYNC_RECORD_SCHEMA; RolloutError (one sentence naming the field) if not."""
    if not isinstance(record, Mapping):
        raise RolloutError(f"{owner}: must be a mapping")
    problem = validate.first_error(dict(record), SYNC_RECORD_SCHEMA)
    if problem:
        raise RolloutError(f"{owner}: field {_quote_field(problem)}")
    return record


def client_entries(catalog, names, server_url):
    """The release_sync entries of deployments NAMES: URI on SERVER_URL, suite, package lists."""
    if not isinstance(server_url, str) or not server_url.startswith(("http://", "https://")):
        raise RolloutError(f"field 'server_url': {server_url!r} is not an http:// or https:// URL")
    if isinstance(names, str) or not isinstance(names, (list, tuple, set, frozenset)):
        raise RolloutError("field 'names': must be a list of deployment names")
    norm = load_catalog(catalog)
    project = (norm["project"] or {}).get("name", "default")
    by_name = {d["name"]: d for d in norm["deployments"]}
    base = server_url.rstrip("/")
    out = []
    for name in sorted(set(names)):
        dep = by_name.get(name)
        if dep is None:
            raise RolloutError(f"field 'names': {name!r} is not a deployment of the catalog")
        entry = {field: list(dep[field]) for field in APT_FIELDS}
        entry["name"] = name
        if dep["source"] == "external":
            entry.update(uri=f"{base}/pub/{project}/external/{name}", suite=dep["suite"],
                         components=list(dep["components"]), signed=False)
        else:
            entry.update(uri=f"{base}/pub/{project}/repos/{name}", suite=name, components=["main"],
                         signed=True)
        out.append(entry)
    return out


def wave_batches(waves, batch_size=0):
    """Hosts in wave order and play batch sizes: each wave split in batches of BATCH_SIZE (0: whole)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
        raise RolloutError(f"field 'batch_size': {batch_size!r} is not an integer >= 0")
    if not isinstance(waves, (list, tuple)):
        raise RolloutError("field 'waves': must be the list that rollout_waves returns")
    order, serial, batches = [], [], []
    for index, wave in enumerate(waves):
        if not isinstance(wave, Mapping) or not isinstance(wave.get("hosts"), (list, tuple)):
            raise RolloutError(f"field 'waves[{index}]': must be a mapping with a 'hosts' list")
        hosts = list(wave["hosts"])
        size = batch_size or len(hosts)
        for start in range(0, len(hosts), size or 1):
            chunk = hosts[start:start + size]
            if chunk:
                order += chunk
                serial.append(len(chunk))
                batches.append({"wave": index + 1, "due": wave.get("due"), "hosts": chunk})
    return {"order": order, "serial": serial, "batches": batches}


def halt_limits(catalog, threshold=None) -> dict:
    """{deployment: percent} a failure share must pass to halt it: THRESHOLD for all, else each one's own."""
    norm = load_catalog(catalog)
    if threshold not in (None, ""):
        try:
            threshold = float(threshold)
        except (TypeError, ValueError):
            raise RolloutError(f"field 'threshold': {threshold!r} is not a number") from None
        if not 0 <= threshold <= 100:
            raise RolloutError(f"field 'threshold': {threshold} is not a percentage between 0 and 100")
        return {d["name"]: threshold for d in norm["deployments"]}
    return {d["name"]: d["halt_after_failures"] for d in norm["deployments"]}


def halted_names(halted) -> set:
    """HALTED (a list of deployment names or the release state's mapping of them) as a set."""
    if isinstance(halted, str) or not isinstance(halted or (), (list, tuple, set, frozenset, Mapping)) \
            or not all(isinstance(n, str) for n in halted or ()):
        raise RolloutError("field 'halted': must be a list of deployment names or the release state's mapping of them")
    return set(halted or ())


class HaltCounts:
    """Running failure counts of one batch (or one day of pull records): each host by its latest record.

    ``put(host, record)`` sets HOST's record; it is checked against ``SYNC_RECORD_SCHEMA`` and
    counted at the next ``decide`` (a record replaced before then is neither), replacing what the
    host's previous record counted.  ``decide`` looks only at the deployments whose counts changed
    since the last one: the others' shares are the same, and the halted set only grows.
    """

    def __init__(self):
        self._position, self._pending, self._counted = {}, {}, {}
        self._totals, self._failures, self._changed = {}, {}, set()

    def put(self, host: str, record) -> None:
        self._position.setdefault(host, len(self._position))
        self._pending[host] = record

    def _count(self, host, record):
        record = check_sync_record(record, f"records: host '{host}'") if record is not None else {}
        have = set(record.get("deployments") or ()) | set(record.get("planned") or ())
        # no record or an ok one blames nothing; an unreachable host's error may name no deployment
        blamed = set(record.get("failed_deployments") or ()) if record.get("status") == "error" else set()
        touched_before, blamed_before = self._counted.get(host, ((), ()))
        for name in touched_before:
            self._totals[name] -= 1
        for name in blamed_before:
            self._failures[name].discard(host)
        touched = have | blamed
        for name in touched:
            self._totals[name] = self._totals.get(name, 0) + 1
        for name in blamed:
            self._failures.setdefault(name, set()).add(host)
        self._counted[host] = (touched, blamed)
        self._changed.update(touched_before, touched)

    def decide(self, limits: dict, halted) -> dict:
        """{name: {failed, total, threshold, hosts}} of the deployments above their LIMITS, not in HALTED."""
        for host in sorted(self._pending, key=self._position.__getitem__):
            self._count(host, self._pending[host])
        self._pending.clear()
        out = {}
        for name in sorted(self._changed):
            hosts = self._failures.get(name)
            if not hosts or name in halted or name not in limits:
                continue
            failed, total = len(hosts), self._totals[name]
            if should_halt(limits[name], failed, total):
                out[name] = {"failed": failed, "total": total, "threshold": limits[name], "hosts": sorted(hosts)}
        self._changed.clear()
        return out


def halt_decisions(catalog, records, halted=(), threshold=None):
    """Deployments to halt after a batch: {name: {failed, total, threshold, hosts}}.

    RECORDS maps host -> its sync record (``deployments``, ``failed_deployments``, ``status``);
    a host whose failure names no deployment (unreachable host or server) counts only in totals.  A deployment's total is the hosts of the batch that
    have it, its failures those whose record blames it.  THRESHOLD overrides every deployment's
    ``halt_after_failures``.  Already HALTED deployments are not returned again.
    """
    limits = halt_limits(catalog, threshold)
    if not isinstance(records, Mapping):
        raise RolloutError("field 'records': must map host names to sync records")
    halted = halted_names(halted)
    counts = HaltCounts()
    for host, record in records.items():
        counts.put(host, record)
    return counts.decide(limits, halted)


def read_state(path):
    """The release state at PATH ({'version', 'halted'}); an empty state when the file is absent."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {"version": STATE_VERSION, "halted": {}}
    except (OSError, ValueError) as exc:
        raise RolloutError(f"release state {path}: cannot be read ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("halted", {}), dict):
        raise RolloutError(f"release state {path}: field 'halted' must be a mapping")
    data.setdefault("version", STATE_VERSION)
    problem = validate.first_error(data, STATE_SCHEMA)
    if problem:
        raise RolloutError(f"release state {path}: field {_quote_field(problem)}")
    data.setdefault("halted", {})
    data["version"] = STATE_VERSION
    return data


def _write_json(path, data):
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def update_state(path, halt=None, resume=(), check=False, lock_timeout=600.0):
    """Add HALT ({name: details}) and clear RESUME (names) in the state at PATH, atomically.

    Returns (changed, new state, names halted now, names resumed now).  An already halted
    deployment keeps its first details.  With CHECK nothing is written.  Another run holding
    the state lock longer than LOCK_TIMEOUT seconds is refused in one sentence.
    """
    halt = dict(halt or {})
    if isinstance(resume, str):
        resume = [resume]
    for name, details in halt.items():
        if not isinstance(name, str) or not name:
            raise RolloutError(f"field 'halt': {name!r} is not a deployment name")
        if not isinstance(details, Mapping):
            raise RolloutError(f"field 'halt': deployment '{name}' must map to a mapping of details")
    problem = validate.first_error({"halted": _plain_dict(halt)}, STATE_SCHEMA)
    if problem:
        raise RolloutError(f"field 'halt': {_quote_field(problem)}")
    directory = os.path.dirname(os.path.abspath(path))
    if not check:
        os.makedirs(directory, exist_ok=True)
    lock = FileLock(os.path.abspath(path) + ".lock", lock_timeout, holder="another rollout or resume",
                    error=RolloutError)
    if not check:
        lock.acquire()
    try:
        state = read_state(path)
        halted_now = [n for n in sorted(halt) if n not in state["halted"]]
        resumed = [n for n in sorted(set(resume)) if n in state["halted"]]
        for name in halted_now:
            state["halted"][name] = dict(halt[name])
        for name in resumed:
            del state["halted"][name]
        changed = bool(halted_now or resumed) or not os.path.exists(path)
        if changed and not check:
            _write_json(path, state)
        return changed, state, halted_now, resumed
    finally:
        lock.release()


_TIME = re.compile(SYNC_RECORD_SCHEMA["properties"]["time"]["pattern"])


def _file_name_part(record, field, kind="file_part"):
    value = record.get(field)
    if kind == "time":
        if not isinstance(value, str) or not _TIME.fullmatch(value):
            raise RolloutError(f"sync record: field 'time' must be a time YYYY-MM-DDTHH:MM:SSZ (got {value!r})")
        return value
    if not names.is_valid(kind, value):
        raise RolloutError(f"sync record: field '{field}' must be a non-empty string without '/', "
                           f"{names.RULES[kind]} (got {value!r})")
    return value


def sync_record_paths(reports_dir, record):
    """Where RECORD goes: (<reports_dir>/sync/<host>.json, <reports_dir>/sync/history/<host>/<time>-<date>.json).

    The history file name is the record's time without colons, then its date (the day the
    release rule was evaluated for, which a what-if run sets apart from the clock).
    """
    if not isinstance(record, Mapping):
        raise RolloutError("sync record: must be a mapping")
    host = _file_name_part(record, "host")
    stamp = _file_name_part(record, "time", "time").replace(":", "")
    day = _file_name_part(record, "date", "date")
    check_sync_record(record)
    base = os.path.abspath(reports_dir)
    try:  # the one path guard: each part a plain file name, the result still below reports_dir
        return (_last_record_path(base, host, "sync record: field 'host'"),
                paths.join(base, ["sync", "history", host, f"{stamp}-{day}.json"], "sync record: field 'host'"))
    except paths.PathError as exc:
        raise RolloutError(str(exc)) from None


def _last_record_path(base, host, field):
    """<base>/sync/<host>.json: where a host's last sync record is written and read."""
    return paths.join(base, ["sync", f"{host}.json"], field)


def read_sync_records(reports_dir: str, hosts) -> dict:
    """{host: last sync record} of HOSTS that have one under REPORTS_DIR/sync/ (the one reader).

    A host name that is no plain file name, an unreadable file or a record that does not match
    SYNC_RECORD_SCHEMA raises RolloutError in one sentence naming the file (never an empty
    record in its place).
    """
    base = os.path.abspath(reports_dir)
    records = {}
    for host in hosts:
        if not names.is_valid("file_part", host):
            raise RolloutError(f"sync records: host {host!r} is not {names.RULES['file_part']}")
        try:
            path = _last_record_path(base, host, "sync records: host")
        except paths.PathError as exc:
            raise RolloutError(str(exc)) from None
        try:
            with open(path, encoding="utf-8") as handle:
                record = json.load(handle)
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            raise RolloutError(f"sync record {path}: cannot be read ({exc})") from None
        records[host] = check_sync_record(record, f"sync record {path}")
    return records


def write_sync_record(reports_dir, record, history=True):
    """Write a host's sync record as its last record and, with HISTORY, into its history.

    Each file is written atomically; returns the paths written.
    """
    last, kept = sync_record_paths(reports_dir, record)
    written = [last, kept] if history else [last]
    for path in written:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _write_json(path, dict(record))
    return written
