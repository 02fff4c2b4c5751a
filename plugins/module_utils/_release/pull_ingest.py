# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pull mode on the repository server: incoming sync records become the release state.

Pulling hosts ``PUT`` their sync record to ``/records/<host>.json`` (nginx, basic auth, a host
writes only its own name).  The server's oneshot service ``mo-fleet-pull-ingest.service``
(started by a path unit when a record or the release state changes) runs :func:`ingest`:

1. every incoming record is read as a hostile document (at most ``MAX_RECORD`` bytes, JSON,
   ``SYNC_RECORD_SCHEMA``, its ``host`` equal to its file name and a pull host), then kept as
   ``state/reports/sync/<host>.json`` and in its history with rollout's ``write_sync_record``;
   a bad one is moved aside as ``<host>.json.refused`` with one sentence in the result;
2. the last records of each day just reported are counted with rollout's ``halt_decisions``
   (the rule push uses after a batch) and the halts are added to the server's release state
   (``<www>/status/release-state.json``, the file ``resume.yml`` writes) with ``update_state``;
3. the pull repository is regenerated (``pull_repo.build``: a signed commit only when the
   state changed), so pulling hosts honour a halt on their next run;
4. the status site (``status_site.build_site``) is written from the server's records.

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
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import atomic_write
from ansible_collections.mo.fleet.plugins.module_utils._common.lock import FileLock
from ansible_collections.mo.fleet.plugins.module_utils._repo.catalog import CatalogError
from ansible_collections.mo.fleet.plugins.module_utils._repo.pull_repo import PullError, build, load_source
from ansible_collections.mo.fleet.plugins.module_utils._release.release import ReleaseError, host_attributes
from ansible_collections.mo.fleet.plugins.module_utils._release.rollout import (
    RolloutError, check_sync_record, halt_decisions, read_state, read_sync_records, update_state,
    write_sync_record,
)
from ansible_collections.mo.fleet.plugins.module_utils._repo.status_site import build_site, default_range

__all__ = ["ingest", "read_incoming", "main", "MAX_RECORD"]

MAX_RECORD = 256 * 1024  # bytes of one uploaded record (nginx refuses larger bodies too)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_incoming(path: str, host: str, pull_hosts) -> dict:
    """The record uploaded at PATH for HOST, checked; RolloutError in one sentence if it is not one."""
    owner = f"record of '{host}'"
    if host not in pull_hosts:
        raise RolloutError(f"{owner}: '{host}' is not a pull host")
    with open(path, "rb") as handle:
        data = handle.read(MAX_RECORD + 1)
    if len(data) > MAX_RECORD:
        raise RolloutError(f"{owner}: larger than {MAX_RECORD // 1024} KiB")
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RolloutError(f"{owner}: is not JSON ({exc})") from None
    check_sync_record(record, owner)
    if record.get("host") != host:
        raise RolloutError(f"{owner}: field 'host' names {record.get('host')!r}, not the host that sent it")
    for field in ("time", "date", "status"):
        if field not in record:
            raise RolloutError(f"{owner}: field '{field}' is missing")
    return record


def _take_incoming(paths, pull_hosts):
    """Move every incoming record into the checked store; return (records by host, refusals)."""
    taken, refused = {}, []
    try:
        entries = sorted(os.listdir(paths["incoming"]))
    except FileNotFoundError:
        return taken, refused
    for entry in entries:
        if not entry.endswith(".json"):
            continue
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
            refused.append(str(exc))
            try:
                os.replace(path, path + ".refused")
            except OSError:
                pass
    return taken, refused


def _halts(catalog, records, taken, halted, now):
    """{deployment: details} to halt: rollout's halt_decisions over each reported day's last records."""
    out = {}
    for day in sorted({r["date"] for r in taken.values()}):
        of_day = {h: r for h, r in records.items() if r.get("date") == day and not r.get("check_mode")}
        for name, details in halt_decisions(catalog, of_day, halted=set(halted) | set(out)).items():
            out[name] = dict(details, date=day, time=now)
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
        taken, refused = _take_incoming(paths, pull_hosts)
        records = read_sync_records(paths["reports"], sorted(inventory))
        state = read_state(state_file)
        halt = _halts(catalog, records, taken, state["halted"], now)
        halted_now = []
        if halt:
            _changed, state, halted_now, _resumed = update_state(state_file, halt=halt)
        repo = build(paths, state_file, gnupg_home, run, settings.get("reports_dir") or layout.PULL_CLIENT_REPORTS)
        site = _status_site(catalog, inventory, records, state["halted"], today, now)
        os.makedirs(status_dir, exist_ok=True)
        for name, text in sorted(site.items()):
            atomic_write(os.path.join(status_dir, name), text)
    return {"records": sorted(taken), "refused": refused, "halted_now": halted_now,
            "halted": sorted(state["halted"]), "commit": repo["commit"], "repo_changed": repo["changed"]}


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
        result = ingest(layout.pull_paths(args.pull_root), os.path.join(status_dir, "release-state.json"),
                        status_dir, layout.gnupg_home(args.project, args.gnupg_root), _run)
    except (PullError, RolloutError, CatalogError, ReleaseError, names.NameError_, OSError) as exc:
        sys.stderr.write(f"mo-fleet-pull-ingest: {exc}\n")
        return 1
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    return 1 if result["refused"] else 0
