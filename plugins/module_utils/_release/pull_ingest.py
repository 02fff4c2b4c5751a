# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pull mode on the repository server: incoming sync records become the release state.

Pulling hosts ``PUT`` their sync record to ``/records/<host>.json`` (nginx, basic auth, a host
writes only its own name); push rollouts deliver their batches' records over SSH into
``records-push/`` (``{"mode": "push", "records": {host: record}}``, root's own directory).  The
server's oneshot service ``mo-fleet-pull-ingest.service`` (started by a path unit when a record
or the release state changes) runs :func:`ingest`, again while more arrived meanwhile:

1. every incoming record is read as a hostile document (at most ``MAX_RECORD`` bytes, JSON,
   ``SYNC_RECORD_SCHEMA``, its ``host`` equal to the name it came under; an upload from a pull
   host, a pushed record from an inventory host that is not one), then kept as
   ``state/reports/sync/<host>.json`` and in its history with rollout's ``write_sync_record``;
   a bad file (or the bad records of a pushed file) is moved aside as ``<name>.json.refused``
   with one sentence each in the journal;
2. the pull hosts' new records are counted record by record (:func:`halts_by_record`) with
   rollout's ``HaltCounts``, as push counts a batch: the failure share among the hosts that
   tried the deployment so far that day; the first record crossing a deployment's threshold
   halts it in the server's release state (``<www>/status/release-state.json``, the file
   ``resume.yml`` writes) with ``update_state``.  Pushed records are not counted again: their
   rollout decided on them batch by batch and copies its halts to the server;
3. the pull repository is regenerated (``pull_repo.build``: a signed commit only when the
   state changed), so pulling hosts honour a halt on their next run;
4. the status site (``status_site.build_site``) is written from all the server's records, push
   and pull hosts alike.

Standard library only.  ``main(argv)`` is the service's entry point.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys

from ansible_collections.mo.fleet.plugins.module_utils._common import layout, names
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import TooLarge, atomic_write, read_capped
from ansible_collections.mo.fleet.plugins.module_utils._common.lock import FileLock
from ansible_collections.mo.fleet.plugins.module_utils._repo.catalog import CatalogError
from ansible_collections.mo.fleet.plugins.module_utils._repo.pull_repo import PullError, build, load_source
from ansible_collections.mo.fleet.plugins.module_utils._release.release import ReleaseError, host_attributes
from ansible_collections.mo.fleet.plugins.module_utils._release.rollout import (
    HaltCounts, RolloutError, check_sync_record, halt_limits, halted_names, read_state, read_sync_records,
    update_state, write_sync_record,
)
from ansible_collections.mo.fleet.plugins.module_utils._repo.status_site import build_site, default_range

__all__ = ["ingest", "read_incoming", "read_pushed", "check_record", "halts_by_record", "pending", "main",
           "MAX_RECORD", "MAX_PUSHED"]

MAX_RECORD = 256 * 1024  # bytes of one uploaded record (nginx refuses larger bodies too)
MAX_PUSHED = 64 << 20    # bytes of one file of pushed records (one rollout batch)
MAX_ROUNDS = 20          # ingest rounds of one service run (records arriving meanwhile)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _load_json(path: str, cap: int, owner: str):
    try:
        data = read_capped(path, cap)
    except TooLarge:
        raise RolloutError(f"{owner}: larger than {cap // 1024} KiB") from None
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RolloutError(f"{owner}: is not JSON ({exc})") from None


def check_record(record, host: str, owner: str) -> dict:
    """RECORD as HOST's sync record: rollout's schema, its 'host' HOST, 'time', 'date', 'status' present."""
    check_sync_record(record, owner)
    if record.get("host") != host:
        raise RolloutError(f"{owner}: field 'host' names {record.get('host')!r}, not the host that sent it")
    for field in ("time", "date", "status"):
        if field not in record:
            raise RolloutError(f"{owner}: field '{field}' is missing")
    return record


def read_incoming(path: str, host: str, pull_hosts) -> dict:
    """The record uploaded at PATH for HOST, checked; RolloutError in one sentence if it is not one."""
    owner = f"record of '{host}'"
    if host not in pull_hosts:
        raise RolloutError(f"{owner}: '{host}' is not a pull host")
    return check_record(_load_json(path, MAX_RECORD, owner), host, owner)


def read_pushed(path: str, pull_hosts, inventory) -> tuple:
    """The push hosts' records a rollout batch delivered at PATH, each checked as an upload is.

    The file (written over SSH by ``playbooks/rollout.yml``, root's own directory) is
    ``{"mode": "push", "records": {host: record}}``; every host must be an inventory host that is
    not a pull host (a pull host's record comes only from its own authenticated upload), every
    record at most ``MAX_RECORD`` bytes.  Returns (records, {host: bad record}, sentences); a file
    that is no such mapping raises RolloutError in one sentence.
    """
    owner = f"pushed records {os.path.basename(path)!r}"
    data = _load_json(path, MAX_PUSHED, owner)
    if not isinstance(data, dict) or data.get("mode") != "push" or not isinstance(data.get("records"), dict):
        raise RolloutError(f"{owner}: must be a mapping with 'mode': 'push' and 'records' by host")
    good, bad, said = [], {}, []
    for host, record in sorted(data["records"].items()):
        each = f"pushed record of {host!r}"
        try:
            if not names.is_valid("file_part", host) or host not in inventory:
                raise RolloutError(f"{each}: is not a host of the inventory")
            if host in pull_hosts:
                raise RolloutError(f"{each}: '{host}' is a pull host (its record comes only from its own upload)")
            if len(json.dumps(record)) > MAX_RECORD:
                raise RolloutError(f"{each}: larger than {MAX_RECORD // 1024} KiB")
            good.append(check_record(record, host, each))
        except RolloutError as exc:
            bad[host] = record
            said.append(str(exc))
    return good, bad, said


def _refuse(path, exc, refused):
    refused.append(str(exc))
    try:
        os.replace(path, path + ".refused")
    except OSError:
        pass


def _entries(directory):
    try:
        return sorted(e for e in os.listdir(directory) if e.endswith(".json"))
    except FileNotFoundError:
        return []


def _take_incoming(paths, pull_hosts):
    """Move every uploaded record into the checked store; return (records by host, refusals)."""
    taken, refused = {}, []
    for entry in _entries(paths["incoming"]):
        host = entry[:-len(".json")]
        path = os.path.join(paths["incoming"], entry)
        try:
            if not names.is_valid("file_part", host):
                raise RolloutError(f"record file {entry!r}: is not named after a host")
            record = read_incoming(path, host, pull_hosts)
            write_sync_record(paths["reports"], record)
            taken[host] = record
            os.unlink(path)
        except (RolloutError, OSError) as exc:
            _refuse(path, exc, refused)
    return taken, refused


def _take_pushed(paths, pull_hosts, inventory):
    """Store the push hosts' records rollouts delivered; return (the records oldest first, refusals).

    A bad record is refused alone: it is kept in ``<name>.json.refused``, the others are stored.
    """
    records, refused, done = [], [], []
    for entry in _entries(paths["pushed"]):
        path = os.path.join(paths["pushed"], entry)
        try:
            good, bad, said = read_pushed(path, pull_hosts, inventory)
            if bad:
                atomic_write(path + ".refused", json.dumps({"mode": "push", "records": bad}), mode=0o600)
                refused += said
        except (RolloutError, OSError) as exc:
            _refuse(path, exc, refused)
            continue
        records += good
        done.append(path)
    records.sort(key=lambda r: (r["time"], r["host"]))
    for record in records:
        write_sync_record(paths["reports"], record)
    for path in done:
        os.unlink(path)
    return records, refused


def _is_check(record):
    value = record.get("check_mode")
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes", "1"))


def halts_by_record(catalog, before: dict, arrivals, halted=()) -> dict:
    """{deployment: details} to halt, decided record by record as the push rollout decides batch by batch.

    BEFORE maps pull hosts to their last record already counted; ARRIVALS are new records, taken
    in the order of their ``time``.  After each failing record, the failure share among the hosts
    that tried the deployment so far on that record's day (each host by its latest record) is
    counted with rollout's ``HaltCounts``, as ``halt_decisions`` counts a batch: the first record
    that crosses a deployment's ``halt_after_failures`` halts it, with the counts of that moment
    and that record's ``time``.  The counts run over the day (each record checked and counted
    once), so one run over a day's records costs in proportion to them.  Records of check mode
    runs count for nothing; already HALTED deployments are not returned.
    """
    out, days, limits, blocked = {}, {}, None, set()
    for record in sorted(arrivals, key=lambda r: (r["time"], r["host"])):
        if _is_check(record):
            continue
        day = record["date"]
        if day not in days:
            days[day] = HaltCounts()
            for host, earlier in before.items():
                if earlier.get("date") == day and not _is_check(earlier):
                    days[day].put(host, earlier)
        days[day].put(record["host"], record)
        if record.get("status") != "error":  # an ok record only lowers a failure share
            continue
        if limits is None:  # the catalog and HALTED are read at the first failing record
            limits, blocked = halt_limits(catalog), halted_names(set(halted))
        for name, details in days[day].decide(limits, blocked).items():
            out[name] = dict(details, date=day, time=record["time"], record=record["host"])
            blocked.add(name)
    return out


def _status_site(catalog, inventory, records, halted, today, now):
    hosts = {h: host_attributes(h, e["groups"], {"mo_fleet_attributes": e["attributes"]})
             for h, e in inventory.items()}
    first, last = default_range(today)
    return build_site(catalog, hosts, records, halted, {}, first, last, now, today=today)


def ingest(paths: dict, state_file: str, status_dir: str, gnupg_home: str, run, today: str = "",
           now: str = "") -> dict:
    """Take the incoming records, halt what fails above its threshold, rebuild repository and site."""
    now = now or _now()
    catalog, inventory, settings = load_source(paths)
    pull_hosts = set(settings.get("pull_hosts") or [])
    today = today or settings.get("today") or now[:10]
    with FileLock(paths["lock"], 600.0, holder="another record ingest", error=PullError):
        records = read_sync_records(paths["reports"], sorted(inventory))  # each host's last, read once
        before = {h: r for h, r in records.items() if h in pull_hosts}
        taken, refused = _take_incoming(paths, pull_hosts)
        pushed, refused_push = _take_pushed(paths, pull_hosts, inventory)
        records.update(taken)
        records.update({r["host"]: r for r in pushed})  # oldest first: each host's last stays
        state = read_state(state_file)
        halt = halts_by_record(catalog, before, taken.values(), state["halted"])
        halted_now = []
        if halt:
            _changed, state, halted_now, _resumed = update_state(state_file, halt=halt)
        repo = build(paths, state_file, gnupg_home, run, settings.get("reports_dir") or layout.PULL_CLIENT_REPORTS)
        site = _status_site(catalog, inventory, records, state["halted"], today, now)
        os.makedirs(status_dir, exist_ok=True)
        for name, text in sorted(site.items()):
            atomic_write(os.path.join(status_dir, name), text)
    return {"records": sorted(taken), "pushed": sorted({r["host"] for r in pushed}),
            "refused": refused + refused_push, "halted_now": halted_now, "halted": sorted(state["halted"]),
            "commit": repo["commit"], "repo_changed": repo["changed"], "state": state}


def pending(paths: dict, state_file: str, state: dict) -> bool:
    """Whether records arrived or the release state changed since a run that ended with STATE.

    The path unit does not watch while the service runs, so the service looks again itself.
    """
    if _entries(paths["incoming"]) or _entries(paths["pushed"]):
        return True
    try:
        return read_state(state_file)["halted"] != state["halted"]
    except RolloutError:
        return False


def _run(argv, env):
    proc = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def main(argv=None) -> int:
    """mo-fleet-pull-ingest --project NAME [--pull-root DIR] [--www DIR] [--gnupg-root DIR]."""
    parser = argparse.ArgumentParser(prog="mo-fleet-pull-ingest", description=main.__doc__)
    parser.add_argument("--project", required=True)
    parser.add_argument("--pull-root", default=layout.PULL_ROOT)
    parser.add_argument("--www", default=layout.WWW_ROOT)
    parser.add_argument("--gnupg-root", default=layout.GNUPG_ROOT)
    args = parser.parse_args(argv)
    try:
        names.check("safe", args.project, "--project")
        status_dir = os.path.join(args.www, layout.STATUS_DIR)
        paths = layout.pull_paths(args.pull_root)
        state_file = os.path.join(status_dir, "release-state.json")
        gnupg = layout.gnupg_home(args.project, args.gnupg_root)
        refused = []
        for _round in range(MAX_ROUNDS):
            result = ingest(paths, state_file, status_dir, gnupg, _run)
            refused += result.pop("refused")
            state = result.pop("state")
            sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
            if not pending(paths, state_file, state):
                break
    except (PullError, RolloutError, CatalogError, ReleaseError, names.NameError_, OSError) as exc:
        sys.stderr.write(f"mo-fleet-pull-ingest: {exc}\n")
        return 1
    for sentence in refused:
        sys.stderr.write(f"mo-fleet-pull-ingest: refused {sentence}\n")
    return 1 if refused else 0
