# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Target-side capture store (index): /var/lib/mo-fleet with an SQLite index and a lock.

Layout::

    /var/lib/mo-fleet/
      index.db                  SQLite: tables snapshots, templates
      lock                      flock(2) lock file (the kernel drops it when a run dies)
      templates/<id>/           finished bundles: template.json, files/, before/
      outbox/<id>.tar.gz        bundle archives waiting for the controller to fetch them
      work/<id>/                in-progress work (stash, bundle being built); never final

Only ``os.rename`` moves a bundle from ``work/`` to ``templates/``, so a killed capture
leaves no half-written template; ``cleanup`` removes stale ``work/`` directories.
Standard library only.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import sqlite3
import time

STORE_DIR = "/var/lib/mo-fleet"

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


class StoreError(Exception):
    """A store problem; the message is one sentence."""


class LockBusy(StoreError):
    pass


class Store(object):
    def __init__(self, root=STORE_DIR):
        self.root = root
        self.templates = os.path.join(root, "templates")
        self.outbox = os.path.join(root, "outbox")
        self.work = os.path.join(root, "work")
        self.db_path = os.path.join(root, "index.db")
        self.lock_path = os.path.join(root, "lock")
        self._lock_fd = None

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
        with self.db() as db:
            db.executescript(SCHEMA_SQL)

    def db(self):
        conn = sqlite3.connect(self.db_path, timeout=30)
        conn.row_factory = sqlite3.Row
        return _Conn(conn)

    # -- lock
    def lock(self, wait=60.0):
        """Take the store lock (flock; released by the kernel if the process dies)."""
        self.ensure()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockBusy("Another capture holds the lock %s; wait for it to finish." % self.lock_path)
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, ("%d\n" % os.getpid()).encode())
        self._lock_fd = fd
        return self

    def unlock(self):
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def locked_by_other(self):
        """True when some live process holds the lock now."""
        if not os.path.exists(self.lock_path):
            return False
        fd = os.open(self.lock_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
        return False

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
            item["summary"] = json.loads(item["summary"])
            item["present"] = os.path.isdir(item["path"])
            out.append(item)
        return out

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


class _Conn(object):
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
