# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The dpkg hook's record log, ``<capture directory>/hook/records.jsonl``: appended, read, pruned.

One JSON line per dpkg run that changed packages (``pkg_hook``) or per intercepted command
(its capture appends one line for all its dpkg runs).  Retention is the capture directory's
(``CaptureDirectory.cleanup``: ``snapshots.max_count`` after each CLI capture and hook
template when ``snapshots.auto_cleanup`` is on, ``mo-capture cleanup --keep N``,
``mo.fleet.capture_directory``): the newest KEEP records of each requesting program
(``record_name``: ``dpkg``, ``apt-get``, ``unattended-upgrade``, as the hook names its
templates), plus every record made since the drift baseline (a drift capture attributes its
package changes to them) or within MAX_AGE_DAYS.

Appenders hold ``hook/records.lock`` for the moment of their ``O_APPEND`` write and a prune
holds it while it reads and rewrites the file (``atomic_write``), so a line appended
meanwhile is never lost; the prune's caller holds the capture directory's lock as well.
Standard library only (runs on targets).
"""

from __future__ import annotations

import datetime
import json
import logging
import os

from ansible_collections.mo.fleet.plugins.module_utils._common.fs import atomic_write
from ansible_collections.mo.fleet.plugins.module_utils._common.lock import FileLock, LockBusy
from ansible_collections.mo.fleet.plugins.module_utils._common.logtail import read_tail

RECORDS, RECORDS_LOCK = "records.jsonl", "records.lock"
MAX_RECORDS_BYTES = 64 * 1024 * 1024   # records.jsonl read back at most this much (its tail)
MAX_RECORD_LINE = 1024 * 1024
APPEND_WAIT = 10.0   # seconds an appender waits for a prune; then it appends anyway (dpkg waits)
PRUNE_WAIT = 60.0

log = logging.getLogger("mo-fleet")


def _lock(hook_dir: str, timeout: float) -> FileLock:
    return FileLock(os.path.join(hook_dir, RECORDS_LOCK), timeout, holder="A prune of the dpkg hook's records",
                    dir_mode=0o700)


def append(hook_dir: str, record: dict) -> None:
    """One JSON line at the end of records.jsonl (O_APPEND: lines of concurrent runs never mix)."""
    os.makedirs(hook_dir, mode=0o700, exist_ok=True)
    line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    lock = _lock(hook_dir, APPEND_WAIT)
    try:
        lock.acquire()
    except LockBusy as exc:  # the record matters more than the prune that may drop it
        log.warning("%s", exc)
    try:
        fd = os.open(os.path.join(hook_dir, RECORDS), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    finally:
        lock.release()


def _lines(text: str):
    """(line, record) of each line of TEXT that is a JSON object with a package list."""
    for line in text.splitlines():
        if not line.strip() or len(line) > MAX_RECORD_LINE:
            continue
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and isinstance(item.get("packages"), list) and \
                all(isinstance(p, dict) for p in item["packages"]):
            yield line, item


def parse(text: str) -> list:
    """records.jsonl -> the records that are JSON objects with a package list (others skipped)."""
    return [item for _line, item in _lines(text)]


def read(hook_dir: str) -> list:
    text = read_tail(os.path.join(hook_dir, RECORDS), MAX_RECORDS_BYTES)
    return [] if text is None else parse(text)


def record_name(record: dict) -> str:
    """The program that asked for RECORD's changes (what retention counts it under)."""
    words = record.get("argv")
    first = words[0] if isinstance(words, list) and words and isinstance(words[0], str) else None
    if first is None and isinstance(record.get("command"), str):
        first = record["command"].split(" ", 1)[0]
    return os.path.basename(first or "") or "dpkg"


def record_time(record: dict) -> float:
    """RECORD's time in seconds since the epoch (0 when it has none that can be read)."""
    try:
        return datetime.datetime.fromisoformat(record["time"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return 0.0


def plan(records: list, keep: int, since: float = None, max_age_days: int = 0, now: float = 0.0) -> list:
    """The indexes of RECORDS (oldest first) that retention keeps, in order."""
    seen, kept = {}, []
    for index in range(len(records) - 1, -1, -1):
        record = records[index]
        name = record_name(record)
        seen[name] = seen.get(name, 0) + 1
        when = record_time(record)
        if seen[name] <= keep or (since is not None and when >= int(since)) or \
                (max_age_days > 0 and now - when < max_age_days * 86400):
            kept.append(index)
    return kept[::-1]


def prune(hook_dir: str, keep: int, since: float = None, max_age_days: int = 0, now: float = 0.0,
          check_mode: bool = False) -> int:
    """Rewrite records.jsonl with what ``plan`` keeps (lines that are no record go too); return
    how many records were removed.  The caller holds the capture directory's lock."""
    path = os.path.join(hook_dir, RECORDS)
    if not os.path.exists(path):
        return 0
    with _lock(hook_dir, PRUNE_WAIT):
        text = read_tail(path, MAX_RECORDS_BYTES)
        if text is None:
            return 0
        lines = list(_lines(text))
        kept = plan([item for _line, item in lines], keep, since, max_age_days, now)
        size = os.path.getsize(path)
        if len(kept) == len(lines) and size == len("".join(line + "\n" for line, _item in lines).encode("utf-8")):
            return 0
        if not check_mode:
            atomic_write(path, "".join(lines[i][0] + "\n" for i in kept), 0o600)
    return len(lines) - len(kept)
