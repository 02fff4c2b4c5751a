# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a snapshot is made of: the ``Stat`` of a path, the ``Snapshot`` of a tree, the
``Excluder`` of the paths a capture never looks at, printable names, and ``diff`` of two
snapshots.

Standard library only (runs on targets, Python 3.9+).
"""

from __future__ import annotations

import collections
import fnmatch
import os
import re
import stat
import time

from ansible_collections.mo.fleet.plugins.module_utils._common import layout


CAPTURE_DIR = layout.CAPTURE_DIR
STORE_DIR = CAPTURE_DIR  # its name of before the capture directory had its own word


DEFAULT_ROOTS = ("/",)


DEFAULT_EXCLUDE = (
    "/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/var/cache", "/var/log",
    "/var/lib/dpkg", "/var/lib/apt", CAPTURE_DIR,
)


EXCLUDE_REASONS = {
    "/var/lib/dpkg": "package-manager state, recorded as package changes instead",
    "/var/lib/apt": "package-manager state, recorded as package changes instead",
    CAPTURE_DIR: "mo.fleet capture directory",
}


CONFIG_ROOTS = ("/etc",)


DPKG_INFO = "/var/lib/dpkg/info"


EXTENDED_STATES = "/var/lib/apt/extended_states"


Stat = collections.namedtuple("Stat", "type mode uid gid size mtime_ns ino target")


_TYPE_NAMES = {
    stat.S_IFREG: "file", stat.S_IFDIR: "directory", stat.S_IFLNK: "symlink",
    stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFCHR: "char", stat.S_IFBLK: "block",
}


def file_type(mode):
    return _TYPE_NAMES.get(stat.S_IFMT(mode), "other")


def make_stat(st, path=None):
    kind = file_type(st.st_mode)
    target = None
    if kind == "symlink" and path is not None:
        try:
            target = os.readlink(path)
        except OSError:
            target = None
    return Stat(kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                st.st_size if kind == "file" else 0, st.st_mtime_ns, st.st_ino, target)


class Snapshot(object):
    """Entries of one walk plus what the walk noticed."""

    def __init__(self, roots, exclude):
        self.roots = list(roots)
        self.exclude = list(exclude)
        self.entries = {}
        self.devices = {}      # st_dev -> first directory seen on that filesystem
        self.errors = []       # (path, reason) of directories that could not be read
        self.foreign = []      # non-directories on another filesystem than their directory
        self.unnamed = []      # paths whose names are not valid UTF-8 (JSON cannot carry them)
        self.listings = {}     # directory -> ((dev, ino, mtime_ns, ctime_ns), names), see walk_into
        self.started_ns = time.time_ns()
        self.reused_listings = 0

    def __len__(self):
        return len(self.entries)


class Excluder(object):
    """Fast exclusion test: exact directory prefixes plus fnmatch patterns."""

    def __init__(self, exclude):
        self.exact = set()
        self.patterns = []
        for item in exclude:
            item = item.rstrip("/") or "/"
            if any(ch in item for ch in "*?["):
                self.patterns.append(item)
            else:
                self.exact.add(item)

    def __call__(self, path):
        if path in self.exact:
            return True
        return any(fnmatch.fnmatchcase(path, p) for p in self.patterns) if self.patterns else False

    def covers(self, path):
        """True when PATH or one of its parents is excluded."""
        probe = path
        while True:
            if self(probe):
                return True
            if probe == "/" or not probe:
                return False
            probe = os.path.dirname(probe)


def _join(directory, name):
    return directory + name if directory == "/" else directory + "/" + name


def _utf8(name):
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# what no template value may hold: a consumer would see a line break or a control character
_UNSAFE_CHARS = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def unnamed_name(name):
    """True when NAME cannot be carried by a template: not UTF-8, or holding a line break or
    control character (the template's one-line rule; such paths are listed as excluded)."""
    if name.isascii():
        return not name.isprintable() and _UNSAFE_CHARS.search(name) is not None
    return not _utf8(name) or (not name.isprintable() and _UNSAFE_CHARS.search(name) is not None)


def printable_path(path):
    """PATH with bytes that are not UTF-8 shown as \\xNN and control characters and line
    breaks as \\xNN / \\uNNNN (for messages and 'excluded' entries)."""
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return _UNSAFE_CHARS.sub(lambda m: "\\x%02x" % ord(m.group()) if ord(m.group()) < 256
                             else "\\u%04x" % ord(m.group()), text)


Changes = collections.namedtuple("Changes", "created deleted modified meta")


def diff(before, after):
    """Compare two snapshots by stat data only.

    created / deleted: paths (a type change counts as deleted + created);
    modified: regular files whose content may have changed (size, mtime or inode differ) and
    symlinks whose target changed;  meta: paths whose mode, uid or gid changed.
    """
    b, a = before.entries, after.entries
    created, deleted, modified, meta = [], [], [], []
    for path, new in a.items():
        old = b.get(path)
        if old is None:
            created.append(path)
            continue
        if old.type != new.type:
            deleted.append(path)
            created.append(path)
            continue
        if new.type == "file":
            if old.size != new.size or old.mtime_ns != new.mtime_ns or old.ino != new.ino:
                modified.append(path)
        elif new.type == "symlink":
            if old.target != new.target:
                modified.append(path)
        if old.mode != new.mode or old.uid != new.uid or old.gid != new.gid:
            meta.append(path)
    for path in b:
        if path not in a:
            deleted.append(path)
    return Changes(sorted(created), sorted(deleted), sorted(modified), sorted(meta))
