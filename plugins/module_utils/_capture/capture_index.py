# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The capture directory on a target: /var/lib/mo-fleet with its SQLite index and its lock.

Layout::

    /var/lib/mo-fleet/
      index.db                  SQLite: tables snapshots, templates
      lock                      flock(2) lock file (the kernel drops it when a run dies)
      templates/<id>/           finished bundles: template.json, files/, before/
      outbox/<id>.tar.gz        bundle archives waiting for the controller to fetch them
      work/<id>/                in-progress work (stash, bundle being built); never final
      finishing/<id>.json       a capture whose command returned, finished in the background
      failed/<id>.json          one whose background finishing failed (mo-capture status)
      hook/records.jsonl        the dpkg hook's records, pruned with the templates (hook_records)
      baseline/baseline.json.gz the drift baseline (drift)

Only ``os.rename`` moves a bundle from ``work/`` to ``templates/``, so a killed capture
leaves no half-written template; ``cleanup`` removes stale ``work/`` directories.
Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import stat
import time

from ansible_collections.mo.fleet.plugins.module_utils._capture import hook_records
from ansible_collections.mo.fleet.plugins.module_utils._common import layout, paths
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import read_capped
from ansible_collections.mo.fleet.plugins.module_utils._common.lock import FileLock, LockBusy as _LockBusy, held_by_other

CAPTURE_DIR = layout.CAPTURE_DIR
FINISHING, FAILED = "finishing", "failed"   # markers of captures finished in the background
MAX_MARKER_BYTES = 64 * 1024

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS snapshots (
    id TEXT PRIMARY KEY, created REAL NOT NULL, phase TEXT NOT NULL, template_id TEXT,
    roots TEXT NOT NULL, entries INTEGER NOT NULL, packages INTEGER NOT NULL,
    units INTEGER NOT NULL, method TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS templates (
    id TEXT PRIMARY KEY, name TEXT, created REAL NOT NULL, command TEXT NOT NULL,
    status TEXT NOT NULL, rc INTEGER, path TEXT NOT NULL, archive TEXT,
    summary TEXT NOT NULL, bytes INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS templates_name ON templates (name, created);
"""


# the option's name before the capture directory had its own word; it works until 2.0.0
OLD_OPTION = dict(name="store", version="2.0.0", collection_name="mo.fleet")


def capture_directory_argument_spec(**options):
    """The argument spec of a module over the capture directory: OPTIONS plus the shared
    ``capture_directory`` (its path; documented in the mo.fleet.capture_index doc fragment),
    still accepted under its old name ``store`` with a deprecation warning."""
    spec = {name: dict(option) for name, option in options.items()}
    spec["capture_directory"] = dict(type="path", default=CAPTURE_DIR, aliases=["store"],
                                     deprecated_aliases=[dict(OLD_OPTION)])
    return spec


# the capture time the host CLI and the dpkg hook end their default names with
# (apt-get-install-nginx-20261202T013018, dpkg-20261202T013018)
_NAME_TIME = re.compile(r"-[0-9]{8}T[0-9]{6}$")


def retention_name(name) -> str:
    """The name retention counts NAME under: NAME without a trailing capture time, so the
    captures the CLI and the dpkg hook name by the second share one name (without this,
    each would be the only one of its name and never be removed)."""
    return _NAME_TIME.sub("", name or "")


def plan_cleanup(templates, keep, max_age_days, now):
    """(remove, keep) template ids: newest KEEP per name (retention_name), plus younger than
    MAX_AGE_DAYS."""
    by_name = {}
    for item in templates:
        by_name.setdefault(retention_name(item["name"]), []).append(item)
    remove, kept = [], []
    for items in by_name.values():
        items.sort(key=lambda t: (t["created"], t["id"]), reverse=True)
        for index, item in enumerate(items):
            young = max_age_days > 0 and now - item["created"] < max_age_days * 86400
            (kept if index < keep or young else remove).append(item["id"])
    return sorted(remove), sorted(kept)


class CaptureDirectoryError(Exception):
    """A problem of the capture directory; the message is one sentence."""


class LockBusy(CaptureDirectoryError, _LockBusy):
    """Another capture holds the capture directory's lock."""


class CaptureDirectory:
    def __init__(self, root=CAPTURE_DIR):
        self.root = root
        self.templates = os.path.join(root, "templates")
        self.outbox = os.path.join(root, "outbox")
        self.work = os.path.join(root, "work")
        self.db_path = os.path.join(root, "index.db")
        self.lock_path = os.path.join(root, "lock")
        self.hook = os.path.join(root, "hook")  # the dpkg hook's records (hook_records)
        self.baseline = os.path.join(root, "baseline", "baseline.json.gz")  # drift's
        self._lock = None

    def exists(self):
        return os.path.isdir(self.root)

    def ensure(self):
        # the root is shared (the repository server serves a tree below it); what a capture
        # keeps (bundles with file contents) lives in subdirectories only root can enter
        if not os.path.isdir(self.root):
            os.makedirs(self.root, mode=0o755)
        for path in (self.templates, self.outbox, self.work):
            if not os.path.isdir(path):
                os.makedirs(path, mode=0o700)
        # the index holds every captured and dpkg-requesting command line: root's only (sqlite
        # gives its journal the database's mode); an index made readable before is closed too
        fd = os.open(self.db_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
                os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        with self.db() as db:
            db.executescript(SCHEMA_SQL)

    def db(self):
        conn = sqlite3.connect(self.db_path, timeout=30)
        conn.row_factory = sqlite3.Row
        return _Conn(conn)

    # -- lock
    def lock(self, wait=60.0):
        """Take the capture directory's lock (flock; released by the kernel if the process dies)."""
        self.ensure()
        lock = FileLock(self.lock_path, wait, holder="Another capture", error=LockBusy, dir_mode=0o755)
        self._lock = lock.acquire()
        return self

    def unlock(self):
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def locked_by_other(self):
        """True when some live process holds the lock now."""
        return held_by_other(self.lock_path)

    def hand_over_lock(self):
        """Let go of the lock without releasing it: a forked process that shares the lock's
        open file (the background finisher) holds it until it unlocks or dies."""
        if self._lock is not None:
            os.close(self._lock.fd)
            self._lock.fd = None
            self._lock = None

    # -- captures finished in the background (host_cli's finisher)
    def _marker(self, area, capture_id):
        return paths.join(self.root, [area, capture_id + ".json"], "The capture id")

    def mark(self, area, capture_id, record):
        """Write RECORD as finishing/<id>.json or failed/<id>.json (temp file + rename; no
        fsync: a marker lives for a second, and a crash leaves the finished template anyway)."""
        os.makedirs(os.path.join(self.root, area), mode=0o700, exist_ok=True)
        path = self._marker(area, capture_id)
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(dict(record, id=capture_id), sort_keys=True))
            os.rename(tmp, path)
        except BaseException:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            raise

    def unmark(self, area, capture_id):
        try:
            os.unlink(self._marker(area, capture_id))
        except FileNotFoundError:
            pass

    def marked(self, area) -> list:
        """The records of AREA (finishing or failed), oldest first; unreadable ones are skipped."""
        out = []
        try:
            names = sorted(os.listdir(os.path.join(self.root, area)))
        except OSError:
            return out
        for name in names:
            if not name.endswith(".json"):
                continue
            try:
                item = json.loads(read_capped(os.path.join(self.root, area, name), MAX_MARKER_BYTES).decode("utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                out.append(item)
        out.sort(key=lambda r: (r.get("time") or 0, r["id"]))
        return out

    def finishing(self) -> list:
        """Captures whose command has returned and whose template a background process is
        building: [{id, command, time, pid}] (see dead_finishers for those whose process died)."""
        return self.marked(FINISHING)

    def dead_finishers(self) -> list:
        """The finishing records whose process is gone while nobody holds the lock: failed."""
        if not self.finishing() or self.locked_by_other():
            return []
        return [r for r in self.finishing() if not _alive(r.get("pid"))]

    def failures(self) -> list:
        """Background finishing that failed, oldest first: [{id, command, time, error}]."""
        died = [dict(r, error=f"the background process (pid {r.get('pid')}) ended before the template was "
                              "written") for r in self.dead_finishers()]
        return sorted(self.marked(FAILED) + died, key=lambda r: (r.get("time") or 0, r["id"]))

    def wait_finishing(self, timeout: float) -> bool:
        """Wait (at most TIMEOUT seconds) until no capture is being finished in the background,
        by taking and releasing the lock; True when none is left."""
        if not self.finishing():
            return True
        try:
            self.lock(wait=timeout)
        except LockBusy:
            return False
        self.unlock()
        return True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.unlock()

    # -- index
    def add_snapshot(self, row):
        with self.db() as db:
            db.execute("INSERT OR REPLACE INTO snapshots (id, created, phase, template_id, roots, entries,"
                       " packages, units, method) VALUES (:id, :created, :phase, :template_id, :roots,"
                       " :entries, :packages, :units, :method)", row)

    def add_template(self, row):
        with self.db() as db:
            db.execute("INSERT OR REPLACE INTO templates (id, name, created, command, status, rc, path,"
                       " archive, summary, bytes) VALUES (:id, :name, :created, :command, :status, :rc,"
                       " :path, :archive, :summary, :bytes)", row)

    def list_snapshots(self):
        if not os.path.exists(self.db_path):
            return []
        with self.db() as db:
            rows = db.execute("SELECT * FROM snapshots ORDER BY created, id").fetchall()
        out = []
        for row in rows:
            item = dict(row)
            item["roots"] = json.loads(item["roots"])
            out.append(item)
        return out

    def list_templates(self, name=None):
        if not os.path.exists(self.db_path):
            return []
        with self.db() as db:
            if name is None:
                rows = db.execute("SELECT * FROM templates ORDER BY created, id").fetchall()
            else:
                rows = db.execute("SELECT * FROM templates WHERE name = ? ORDER BY created, id", (name,)).fetchall()
        out = []
        for row in rows:
            item = dict(row)
            try:
                item["summary"] = json.loads(item["summary"])
            except (TypeError, ValueError, RecursionError):
                item["summary"] = {}
            item["present"] = os.path.isdir(item["path"])
            out.append(item)
        return out

    def template_dir(self, template_id, recorded=None):
        """templates/<TEMPLATE_ID>, refusing (CaptureDirectoryError) an id that is not a plain file name part
        or a RECORDED path (from the index) that is anywhere else: the index never decides
        what is removed outside the capture directory (the one path guard)."""
        try:
            path = paths.join(self.templates, [template_id], "The template id")
        except paths.PathError as exc:
            raise CaptureDirectoryError(str(exc))
        if recorded is not None and os.path.normpath(recorded) != os.path.normpath(path):
            raise CaptureDirectoryError(f"The index records {recorded!r} for the template {template_id}, "
                                        f"which is not {path}; nothing was removed.")
        return path

    def forget_template(self, template_id):
        with self.db() as db:
            db.execute("DELETE FROM snapshots WHERE template_id = ?", (template_id,))
            db.execute("DELETE FROM templates WHERE id = ?", (template_id,))

    def disk_usage(self):
        total = 0
        for base, _dirs, files in os.walk(self.root):
            for name in files:
                try:
                    total += os.lstat(os.path.join(base, name)).st_size
                except OSError:
                    pass
        return total

    def stale_work(self):
        """work/ directories no running capture owns (only meaningful while holding the lock)."""
        try:
            return sorted(os.path.join(self.work, n) for n in os.listdir(self.work))
        except OSError:
            return []

    def outbox_files(self):
        try:
            return sorted(os.path.join(self.outbox, n) for n in os.listdir(self.outbox))
        except OSError:
            return []

    # -- what the capture_info and capture_directory modules do
    def report(self, name=None):
        """{status, snapshots, templates}: the index (only captures named NAME when given),
        whether a capture holds the lock now, counts and bytes used.  Changes nothing."""
        templates = self.list_templates(name)
        ids = set(t["id"] for t in templates)
        snapshots = [s for s in self.list_snapshots() if name is None or s["template_id"] in ids]
        exists = self.exists()
        status = {
            "capture_directory": self.root,
            "store": self.root,  # the old name of capture_directory
            "exists": exists,
            "locked": self.locked_by_other() if exists else False,
            "snapshots": len(snapshots),
            "templates": len(templates),
            "bytes": self.disk_usage() if exists else 0,
            "pending_archives": len(self.outbox_files()),
        }
        return {"status": status, "snapshots": snapshots, "templates": templates}

    def _plan_cleanup(self, reset, keep, max_age_days, now):
        """(templates, ids to remove, ids kept, orphan directories, archives) as cleanup sees them now."""
        templates = self.list_templates()
        if reset:
            remove, kept = sorted(t["id"] for t in templates), []
        else:
            remove, kept = plan_cleanup(templates, keep, max_age_days, time.time() if now is None else now)
        known = set(t["id"] for t in templates)
        orphans = []
        if os.path.isdir(self.templates):
            orphans = sorted(n for n in os.listdir(self.templates) if n not in known and
                             (reset or not n.startswith(".")))
        archives = [a for a in self.outbox_files()
                    if reset or os.path.basename(a)[:-len(".tar.gz")] not in kept]
        return templates, remove, kept, orphans, archives

    def cleanup(self, reset=False, keep=5, max_age_days=0, now=None, check_mode=False, wait=60.0):
        """Remove the templates retention does not keep (plan_cleanup; RESET: all of them and
        every snapshot), their archives, unknown template directories and stale work
        directories; return (removed, kept).  Takes the lock (LockBusy after WAIT seconds)
        and only then looks at the index: a capture that finishes meanwhile (its bundle
        renamed into templates/ just before its index row is added) is never taken for an
        unknown directory.  CHECK_MODE only reports."""
        if check_mode:
            _templates, remove, kept, orphans, archives = self._plan_cleanup(reset, keep, max_age_days, now)
            return self._removed(remove, orphans, archives) + [
                "work/" + os.path.basename(w) for w in self.stale_work()] + self._prune_records(
                reset, keep, max_age_days, now, check_mode=True), kept
        self.lock(wait=wait)
        try:
            templates, remove, kept, orphans, archives = self._plan_cleanup(reset, keep, max_age_days, now)
            removed = self._removed(remove, orphans, archives)
            stale = self.stale_work()
            for path in stale:
                remove_tree(path)
            removed += ["work/" + os.path.basename(w) for w in stale]
            by_id = dict((t["id"], t) for t in templates)
            for template_id in remove:
                self._drop(template_id, by_id[template_id]["path"])
            for orphan in orphans:
                remove_tree(os.path.join(self.templates, orphan))
            for path in archives:
                remove_tree(path)
            if reset:
                with self.db() as db:
                    db.execute("DELETE FROM snapshots")
                    db.execute("DELETE FROM templates")
            removed += self._settle_markers(reset)
            removed += self._prune_records(reset, keep, max_age_days, now)
        finally:
            self.unlock()
        return removed, kept

    def _drop(self, template_id, recorded):
        """Remove one template's directory (the one path guard first) and its index rows."""
        remove_tree(self.template_dir(template_id, recorded))
        self.forget_template(template_id)

    def remove(self, ids, wait=60.0) -> list:
        """Remove the templates IDS (their directories, index rows and archives in outbox/) under
        the lock; return the ids removed, in index order (ids the index does not have are skipped).
        What mo.fleet.harvest's remove_harvested does once the bundles are safely home."""
        wanted = set(ids)
        if not wanted or not os.path.exists(self.db_path):
            return []
        self.lock(wait=wait)
        try:
            gone = [t for t in self.list_templates() if t["id"] in wanted]
            for item in gone:
                self._drop(item["id"], item["path"])
            for path in self.outbox_files():
                if os.path.basename(path)[:-len(".tar.gz")] in wanted:
                    remove_tree(path)
        finally:
            self.unlock()
        return [t["id"] for t in gone]

    def baseline_time(self):
        """When the drift baseline was taken (its file's mtime), or None without one."""
        try:
            return os.stat(self.baseline).st_mtime
        except OSError:
            return None

    def _prune_records(self, reset, keep, max_age_days, now, check_mode=False):
        """The dpkg hook's records cut to what retention keeps (hook_records.plan: KEEP per
        requesting program, RESET none, and always those since the baseline, which drift
        attributes from); ["hook/records.jsonl: N record(s)"] when some went."""
        try:
            count = hook_records.prune(self.hook, 0 if reset else keep, self.baseline_time(),
                                       0 if reset else max_age_days, time.time() if now is None else now, check_mode)
        except _LockBusy as exc:
            raise LockBusy(str(exc))
        return [f"hook/records.jsonl: {count} record(s)"] if count else []

    def _settle_markers(self, reset):
        """Under the lock: a finishing record whose process is gone becomes a failure; RESET
        removes every record of both kinds (returned as removed)."""
        removed = []
        for record in self.finishing():
            if reset or not _alive(record.get("pid")):
                if not reset:
                    self.record_failure(record["id"], dict(record, error=(
                        f"the background process (pid {record.get('pid')}) ended before the template was written")))
                self.unmark(FINISHING, record["id"])
                removed.append(f"{FINISHING}/{record['id']}.json")
        if reset:
            for record in self.marked(FAILED):
                self.unmark(FAILED, record["id"])
                removed.append(f"{FAILED}/{record['id']}.json")
        return removed

    def record_failure(self, capture_id, record, keep=20):
        """Keep RECORD ({command, time, error}) as failed/<id>.json, with the KEEP newest others."""
        self.mark(FAILED, capture_id, record)
        for old in self.marked(FAILED)[:-keep]:
            self.unmark(FAILED, old["id"])

    @staticmethod
    def _removed(remove, orphans, archives):
        return list(remove) + ["templates/" + n for n in orphans] + ["outbox/" + os.path.basename(a) for a in archives]


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Conn:
    """sqlite3 connection as a context manager that commits and closes."""

    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        return self.conn

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.conn.commit()
            else:
                self.conn.rollback()
        finally:
            self.conn.close()


def remove_tree(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


# The names of before the capture directory had its own word ("store" is the repository
# server's package store); callers that still use them keep working.
Store = CaptureDirectory
StoreError = CaptureDirectoryError
STORE_DIR = CAPTURE_DIR
