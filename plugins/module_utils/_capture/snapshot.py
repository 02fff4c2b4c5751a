# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Snapshot engine for mo.fleet.capture: walk, diff, system state readers, redaction.

Standard library only (runs on targets, Python 3.9+).

``walk(roots, exclude) -> Snapshot``
    One pass over ROOTS with ``os.scandir`` and ``lstat`` only (no hashing, no file cap).
    ``Snapshot.entries`` maps path -> ``Stat`` tuple
    (type, mode, uid, gid, size, mtime_ns, ino, target).
``rescan(before, touched, roots, exclude) -> Snapshot``
    The after-snapshot rebuilt from BEFORE plus a fresh look at only the TOUCHED paths
    (what fanotify reported); new or moved-in directories are walked completely.
``diff(before, after) -> Changes``
    Created / deleted / modified / metadata-changed paths, no hashing.
``read_packages()``, ``read_manual()``, ``read_conffiles()``, ``owners(paths)``,
``read_md5sums(pkg)``, ``read_units()``, ``read_accounts()``
    dpkg, apt, systemd and passwd/group state.
``redaction_reason(path, private_key=False, keep=())``
    Why a path's content must never enter a bundle (or None): shadow files, sudo rules,
    SSH authorized keys and host keys, TLS/Kerberos/GnuPG private material, netrc, content
    holding a private key, files named like credentials.  KEEP (the capture option
    ``keep_secrets``: absolute paths or shell globs, a path also covering what lies below it)
    names the paths the user explicitly wants kept anyway.
``hash_file(path) -> (sha256, md5, has_private_key)``
``Stash``
    Copies of regular files under config roots taken before the command, so the
    before-content of modified or deleted config files can be kept for rollback.
``build_operations(...)``
    Turns a diff plus system state into the template ``operations`` block and the list of
    files whose content goes into the bundle.
"""

from __future__ import annotations

import gc
import os
import stat

from ansible_collections.mo.fleet.plugins.module_utils._capture.snapshot_tree import (  # noqa: F401 pylint: disable=unused-import
    Changes, CONFIG_ROOTS, DEFAULT_EXCLUDE, DEFAULT_ROOTS, diff, DPKG_INFO, EXCLUDE_REASONS, Excluder,
    EXTENDED_STATES, file_type, make_stat, printable_path, Snapshot, Stat, STORE_DIR, CAPTURE_DIR, _TYPE_NAMES,
    unnamed_name)
from ansible_collections.mo.fleet.plugins.module_utils._capture.redaction import (  # noqa: F401 pylint: disable=unused-import
    copy_file, hash_file, kept, NAMED_LIKE_CREDENTIALS, redaction_reason, Stash, write_bytes)
from ansible_collections.mo.fleet.plugins.module_utils._capture.system_state import (  # noqa: F401 pylint: disable=unused-import
    add_unit_files, DPKG_FORMAT, is_manual, Names, owners, parse_dpkg_query, parse_extended_states,
    parse_group, parse_passwd, parse_unit_files, parse_units, read_accounts, read_auto, read_md5sums,
    read_packages, read_state, read_units, _run, state_of, UNIT_DIRS, unit_dirs_covered, unit_files,
    unit_path, UNIT_SUFFIXES)
from ansible_collections.mo.fleet.plugins.module_utils._capture.operations import (  # noqa: F401 pylint: disable=unused-import
    _pkg_changes, build_operations, excluded_entries)  # _pkg_changes: pkg_hook compares package sets with it


# A directory listing is reused by a later walk only when the directory's ctime is at least this
# much older than the walk that read it: timestamps are coarse (a clock tick), so a directory
# changed just before the listing could change again without its ctime moving ("racy" entries,
# as git calls them).
LISTING_MARGIN_NS = 2 * 10 ** 9


def walk_into(snap, start, excluded, previous=None, keep_listings=False):
    """Add START and everything below it to SNAP (lstat only, explicit stack).

    Directories are opened once and their entries stat'ed relative to the directory's file
    descriptor (fstatat), as find(1) does, so the kernel does not resolve every full path.

    PREVIOUS: a dict path -> (key, names) of listings kept by an earlier walk
    (``walk(..., keep_listings=True)``).  A directory whose (dev, inode, mtime, ctime) key is
    unchanged has the same names (creating, removing or renaming an entry sets the directory's
    ctime, which no program can set back), so its listing is reused instead of read again;
    every entry is still lstat'ed.  With KEEP_LISTINGS the listings of this walk are kept in
    ``snap.listings`` (only for directories whose ctime is older than LISTING_MARGIN_NS).
    """
    st = _add_start(snap, start)
    if st is None:
        return
    listings = snap.listings if keep_listings else None
    cutoff = snap.started_ns - LISTING_MARGIN_NS
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    stack = [(start, st)]
    while stack:
        directory, dst = stack.pop()
        try:
            dfd = os.open(directory, flags)
        except OSError as exc:
            snap.errors.append((directory, exc.strerror or str(exc)))
            continue
        try:
            key = (dst.st_dev, dst.st_ino, dst.st_mtime_ns, dst.st_ctime_ns)
            names = _listing(snap, directory, dfd, key, previous)
            if names is None:
                continue
            if listings is not None and dst.st_ctime_ns < cutoff:
                listings[directory] = (key, names)
            _scan(snap, directory, dfd, dst.st_dev, names, excluded, stack.append)
        finally:
            os.close(dfd)


def _scan(snap, directory, dfd, dev, names, excluded, push):
    """lstat the NAMES of DIRECTORY (open as DFD, on device DEV) into SNAP; its directories go
    to PUSH.  One loop, its names bound to locals: it runs once per entry (150k in the
    benchmark), where a call or an attribute lookup per entry costs a measurable share of the
    walk; the bindings cost once per directory (benchmarks/bench_walk.py measures the split)."""
    entries, devices, foreign, unnamed = snap.entries, snap.devices, snap.foreign, snap.unnamed
    exact, patterns = excluded.exact, excluded.patterns
    S_IFMT, S_IMODE, S_IFLNK, S_IFDIR, S_IFREG = stat.S_IFMT, stat.S_IMODE, stat.S_IFLNK, stat.S_IFDIR, stat.S_IFREG
    type_names, new_stat, lstat, readlink = _TYPE_NAMES, tuple.__new__, os.lstat, os.readlink
    prefix = directory if directory == "/" else directory + "/"
    for name in names:
        path = prefix + name
        if path in exact or (patterns and excluded(path)):
            continue
        if not name.isprintable() and unnamed_name(name):
            unnamed.append(path)
            continue
        try:
            st = lstat(name, dir_fd=dfd)
        except OSError:
            continue
        mode = st.st_mode
        fmt = S_IFMT(mode)
        if fmt == S_IFREG:
            if st.st_dev != dev:
                foreign.append(path)
            entries[path] = new_stat(Stat, ("file", S_IMODE(mode), st.st_uid, st.st_gid, st.st_size,
                                            st.st_mtime_ns, st.st_ino, None))
        elif fmt == S_IFDIR:
            entries[path] = new_stat(Stat, ("directory", S_IMODE(mode), st.st_uid, st.st_gid, 0,
                                            st.st_mtime_ns, st.st_ino, None))
            if st.st_dev not in devices:
                devices[st.st_dev] = path
            push((path, st))
        elif fmt == S_IFLNK:
            try:
                target = readlink(name, dir_fd=dfd)
            except OSError:
                target = None
            entries[path] = new_stat(Stat, ("symlink", S_IMODE(mode), st.st_uid, st.st_gid, 0,
                                            st.st_mtime_ns, st.st_ino, target))
        else:
            if st.st_dev != dev:
                foreign.append(path)
            entries[path] = new_stat(Stat, (type_names.get(fmt, "other"), S_IMODE(mode), st.st_uid,
                                            st.st_gid, 0, st.st_mtime_ns, st.st_ino, None))


def _add_start(snap, start):
    """Record START in SNAP; its lstat when it is a directory to walk, else None."""
    try:
        st = os.lstat(start)
    except OSError:
        return None
    snap.entries[start] = make_stat(st, start)
    if not stat.S_ISDIR(st.st_mode):
        return None
    snap.devices.setdefault(st.st_dev, start)
    return st


def _listing(snap, directory, dfd, key, previous):
    """The names in DIRECTORY (open as DFD): PREVIOUS's listing when its KEY is unchanged, else
    read; None (recorded in ``snap.errors``) when it cannot be read."""
    cached = previous.get(directory) if previous is not None else None
    if cached is not None and cached[0] == key:
        snap.reused_listings += 1
        return cached[1]
    try:
        return os.listdir(dfd)
    except OSError as exc:
        snap.errors.append((directory, exc.strerror or str(exc)))
        return None


def walk(roots=DEFAULT_ROOTS, exclude=DEFAULT_EXCLUDE, previous=None, keep_listings=False):
    """Walk every root once; return a Snapshot (no cap on the number of entries).

    KEEP_LISTINGS keeps each directory's names in the snapshot; PREVIOUS (a snapshot taken
    with KEEP_LISTINGS) lets this walk reuse the listings of directories that did not change
    since (see walk_into).
    """
    snap = Snapshot(roots, exclude)
    excluded = Excluder(exclude)
    reuse = previous.listings if previous is not None and previous.listings else None
    # the walk only makes acyclic tuples: pausing the cyclic garbage collector spares it
    # re-scanning the growing snapshot again and again (about a tenth of the walk's CPU time)
    collecting = gc.isenabled()
    gc.disable()
    try:
        for root in roots:
            if not excluded.covers(root):
                walk_into(snap, root, excluded, reuse, keep_listings)
    finally:
        if collecting:
            gc.enable()
    return snap


def rescan(before, touched, roots=None, exclude=None):
    """After-snapshot = BEFORE updated with a fresh look at only the TOUCHED paths.

    TOUCHED maps path -> set of event names ("create", "delete", "moved_from",
    "moved_to", "modify", "attrib", "close_write", ...).  Directories that are new or
    were moved in are walked completely; directories that were deleted or moved away take
    their whole before-subtree with them.
    """
    roots = list(roots if roots is not None else before.roots)
    exclude = list(exclude if exclude is not None else before.exclude)
    excluded = Excluder(exclude)
    after = Snapshot(roots, exclude)
    after.entries = dict(before.entries)
    after.devices = dict(before.devices)
    after.foreign = list(before.foreign)
    after.unnamed = list(before.unnamed)
    entries = after.entries
    touched = dict(touched)
    for path in before.foreign:
        touched.setdefault(path, set()).add("modify")

    def in_roots(path):
        return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)

    gone_dirs = [p for p, ev in touched.items()
                 if ev & {"delete", "moved_from", "delete_self", "move_self"}
                 and before.entries.get(p, Stat("", 0, 0, 0, 0, 0, 0, None)).type == "directory"]
    gone = set(gone_dirs)
    if gone_dirs:
        prefixes = tuple(p.rstrip("/") + "/" for p in gone_dirs)
        for path in [p for p in entries if p.startswith(prefixes)]:
            del entries[path]
    for path in sorted(touched):
        if not in_roots(path) or excluded.covers(path):
            continue
        if not path.isprintable() and unnamed_name(path):
            after.unnamed.append(path)
            continue
        try:
            st = os.lstat(path)
        except OSError:
            entries.pop(path, None)
            continue
        new = make_stat(st, path)
        old = before.entries.get(path)
        if new.type == "directory" and (old is None or old.type != "directory" or old.ino != new.ino
                                        or path in gone or touched[path] & {"moved_to", "create"}):
            walk_into(after, path, excluded)
        else:
            entries[path] = new
    for path in touched:
        # the directory holding a deleted or created entry changed its mtime too
        if in_roots(path) and not excluded.covers(path):
            _refresh_parents(entries, path, in_roots, excluded)
    return after


def _refresh_parents(entries, path, in_roots, excluded):
    """Re-stat PATH's directory, and add any ancestors the snapshot does not know yet."""
    parent = os.path.dirname(path)
    first = True
    while in_roots(parent) and (first or parent not in entries) and not excluded(parent):
        try:
            entries[parent] = make_stat(os.lstat(parent), parent)
        except OSError:
            entries.pop(parent, None)
            break
        if parent == "/":
            break
        first = False
        parent = os.path.dirname(parent)
