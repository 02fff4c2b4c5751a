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

import collections
import errno
import fnmatch
import gc
import hashlib
import os
import re
import shutil
import stat
import subprocess
import time

from ansible_collections.mo.fleet.plugins.module_utils import pkgfiles

STORE_DIR = "/var/lib/mo-fleet"
DEFAULT_ROOTS = ("/",)
DEFAULT_EXCLUDE = (
    "/proc", "/sys", "/dev", "/run", "/tmp", "/var/tmp", "/var/cache", "/var/log",
    "/var/lib/dpkg", "/var/lib/apt", STORE_DIR,
)
EXCLUDE_REASONS = {
    "/var/lib/dpkg": "package-manager state, recorded as package changes instead",
    "/var/lib/apt": "package-manager state, recorded as package changes instead",
    STORE_DIR: "mo.fleet capture store",
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
    entries = snap.entries
    try:
        st = os.lstat(start)
    except OSError:
        return
    entries[start] = make_stat(st, start)
    if not stat.S_ISDIR(st.st_mode):
        return
    snap.devices.setdefault(st.st_dev, start)
    exact = excluded.exact
    patterns = excluded.patterns
    devices = snap.devices
    listings = snap.listings if keep_listings else None
    cutoff = snap.started_ns - LISTING_MARGIN_NS
    reused = 0
    S_IFMT, S_IMODE, S_IFLNK, S_IFDIR, S_IFREG = stat.S_IFMT, stat.S_IMODE, stat.S_IFLNK, stat.S_IFDIR, stat.S_IFREG
    type_names = _TYPE_NAMES
    new_stat = tuple.__new__
    lstat, readlink, listdir, osopen, osclose = os.lstat, os.readlink, os.listdir, os.open, os.close
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    errors, foreign, unnamed = snap.errors, snap.foreign, snap.unnamed
    stack = [(start, st)]
    pop, push = stack.pop, stack.append
    while stack:
        directory, dst = pop()
        dev = dst.st_dev
        prefix = directory if directory == "/" else directory + "/"
        try:
            dfd = osopen(directory, flags)
        except OSError as exc:
            errors.append((directory, exc.strerror or str(exc)))
            continue
        try:
            key = (dev, dst.st_ino, dst.st_mtime_ns, dst.st_ctime_ns)
            cached = previous.get(directory) if previous is not None else None
            if cached is not None and cached[0] == key:
                names = cached[1]
                reused += 1
            else:
                try:
                    names = listdir(dfd)
                except OSError as exc:
                    errors.append((directory, exc.strerror or str(exc)))
                    continue
            if listings is not None and dst.st_ctime_ns < cutoff:
                listings[directory] = (key, names)
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
        finally:
            osclose(dfd)
    snap.reused_listings += reused


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


# --------------------------------------------------------------------------- diff

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


# --------------------------------------------------------------------------- hashing & redaction

_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")
_SECRET_NAME = re.compile(
    r"(^|[._-])(credentials?|secrets?|passwords?|passwd\.(?:txt|json|ya?ml|ini)|tokens?|"
    r"\.?pgpass|git-credentials|id_(?:rsa|dsa|ecdsa|ed25519)(?:_sk)?)($|[._-])",
    re.IGNORECASE)
NAMED_LIKE_CREDENTIALS = "file named like credentials"
_NOT_SECRET_SUFFIXES = (".pub", ".crt", ".example", ".sample", ".pm", ".py", ".pyc", ".rb", ".js", ".h",
                        ".c", ".go", ".html", ".so", ".mo", ".gz", ".1", ".5", ".8", ".txt.gz")
_SHADOW = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/security/opasswd")
_SUDOERS = ("/etc/sudoers", "/etc/sudoers-")
# (glob, reason): fnmatch's "*" also matches "/", so "*/.ssh/..." covers every home
_SECRET_GLOBS = (
    ("/etc/sudoers.d/*", "sudo rules"),
    ("*/.ssh/authorized_keys*", "SSH authorized keys"),
    ("/etc/ssh/authorized_keys*", "SSH authorized keys"),
    ("/etc/ssl/private/*", "TLS private key directory"),
    ("*.keytab", "Kerberos keytab"),
    ("*/.gnupg/private-keys-v1.d/*", "GnuPG private key"),
    ("*/.gnupg/secring.gpg", "GnuPG private key"),
    ("/etc/NetworkManager/system-connections/*", "network credentials"),
    ("/etc/wpa_supplicant/*.conf", "network credentials"),
    ("*/.docker/config.json", "registry credentials"),
    ("*/.aws/credentials", "cloud credentials"),
)


def kept(path, keep):
    """True when PATH is one of KEEP (paths or globs), or lies below one."""
    for pattern in keep or ():
        if any(c in pattern for c in "*?["):
            if fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern.rstrip("/") + "/*"):
                return True
        else:
            root = pattern.rstrip("/") or "/"
            if root == "/" or path == root or path.startswith(root + "/"):
                return True
    return False


def redaction_reason(path, private_key=False, keep=()):
    """Why PATH's content must stay out of a bundle, or None (always None for KEEP's paths)."""
    if keep and kept(path, keep):
        return None
    base = os.path.basename(path)
    if path in _SHADOW:
        return "password hashes (shadow file)"
    if path in _SUDOERS:
        return "sudo rules"
    for pattern, reason in _SECRET_GLOBS:
        if fnmatch.fnmatchcase(path, pattern):
            return reason
    if path.startswith("/etc/ssh/") and base.startswith("ssh_host_") and not base.endswith(".pub"):
        return "SSH host private key"
    if base == ".netrc" or base == "_netrc":
        return "netrc credentials"
    if private_key:
        return "private key found in the content"
    if not base.endswith(_NOT_SECRET_SUFFIXES) and _SECRET_NAME.search(base):
        return NAMED_LIKE_CREDENTIALS
    return None


def hash_file(path, chunk=1 << 20):
    """(sha256 hex, md5 hex, contains a PEM/OpenSSH private key) of a regular file."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    found = False
    tail = b""
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk)
            if not block:
                break
            sha.update(block)
            md5.update(block)
            if not found and (b"PRIVATE KEY" in block or b"PRIVATE KEY" in tail + block[:64]):
                found = bool(_PRIVATE_KEY.search(tail + block))
            tail = block[-80:]
    return sha.hexdigest(), md5.hexdigest(), found


def copy_file(src, dst):
    """Copy SRC to DST (parents created) and return the sha256 of what was written."""
    parent = os.path.dirname(dst)
    if not os.path.isdir(parent):
        os.makedirs(parent, mode=0o755)
    sha = hashlib.sha256()
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while True:
            block = fin.read(1 << 20)
            if not block:
                break
            sha.update(block)
            fout.write(block)
    return sha.hexdigest()


class Stash(object):
    """Before-copies of regular files under config roots (for rollback).

    With MEMORY (bytes, 0 = off) the copies are kept in memory up to that many bytes in all
    (config trees are small: no directory creation and no write per file before the command
    can start); files beyond the budget, and every file without it, are copied under
    DIRECTORY.  The sha256 of a copy is only computed when it is asked for (``digest``), that
    is for files the command modified or deleted.
    """

    def __init__(self, directory, roots=CONFIG_ROOTS, memory=0, keep=()):
        self.directory = directory
        self.keep = tuple(keep or ())
        self.roots = tuple(r.rstrip("/") for r in roots)
        self.prefixes = tuple(r + "/" for r in self.roots)
        self.memory = memory
        self.saved = {}        # path -> sha256 of the copy (None until asked for)
        self.data = {}         # path -> bytes, the copies kept in memory
        self.held = 0

    def covers(self, path):
        return path in self.roots or path.startswith(self.prefixes)

    def take(self, snapshot):
        """Copy every regular file of SNAPSHOT under the config roots (never secrets)."""
        prefixes, roots = self.prefixes, self.roots
        for path, st in snapshot.entries.items():
            if st.type != "file" or not (path.startswith(prefixes) or path in roots) \
                    or redaction_reason(path, keep=self.keep):
                continue
            try:
                if self.memory and self.held + st.size <= self.memory:
                    with open(path, "rb") as handle:
                        blob = handle.read()
                    self.data[path] = blob
                    self.held += len(blob)
                    self.saved[path] = None
                else:
                    self.saved[path] = copy_file(path, self.directory + path)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise
                continue
        return len(self.saved)

    def path_of(self, path):
        """The on-disk copy of PATH (None when there is none: not saved, or held in memory)."""
        return self.directory + path if path in self.saved and path not in self.data else None

    def source(self, path):
        """Where the before-content of PATH is: a file path, bytes (held in memory) or None."""
        if path not in self.saved:
            return None
        return self.data[path] if path in self.data else self.directory + path

    def digest(self, path):
        if path in self.saved and self.saved[path] is None and path in self.data:
            self.saved[path] = hashlib.sha256(self.data[path]).hexdigest()
        return self.saved.get(path)

    def cleanup(self):
        self.data.clear()
        shutil.rmtree(self.directory, ignore_errors=True)


def write_bytes(data, dst):
    """Write DATA to DST (parents created) and return its sha256 (see copy_file)."""
    parent = os.path.dirname(dst)
    if not os.path.isdir(parent):
        os.makedirs(parent, mode=0o755)
    with open(dst, "wb") as fout:
        fout.write(data)
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- system state

def _run(argv):
    try:
        proc = subprocess.run(argv, check=False, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, universal_newlines=True)
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout


def parse_dpkg_query(text):
    """dpkg-query output (see read_packages) -> (packages, conffiles)."""
    packages, conffiles = {}, {}
    current = None
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith(" "):
            parts = line.split()
            if current and len(parts) >= 2 and parts[0].startswith("/"):
                conffiles[parts[0]] = (current, parts[1], "obsolete" in parts[2:])
            continue
        fields = line.split("\t")
        if len(fields) < 5:
            continue
        name, version, arch, status = fields[1], fields[2], fields[3], fields[4]
        current = name
        state = status.split()[-1] if status.split() else ""
        if state in ("installed", "half-configured", "unpacked", "half-installed",
                     "triggers-awaited", "triggers-pending"):
            packages[(name, arch)] = {"name": name, "version": version, "architecture": arch,
                                      "status": state}
    return packages, conffiles


DPKG_FORMAT = "P\t${Package}\t${Version}\t${Architecture}\t${Status}\n${Conffiles}\n"


def read_packages():
    """({(name, arch): {...}}, {conffile: (package, md5, obsolete)}) or ({}, {}) without dpkg."""
    out = _run(["dpkg-query", "-W", "-f=" + DPKG_FORMAT])
    if out is None:
        return {}, {}
    return parse_dpkg_query(out)


def parse_extended_states(text):
    """apt's extended_states -> set of (name, arch) marked Auto-Installed: 1."""
    auto = set()
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if ":" in line:
                key, value = line.split(":", 1)
                fields[key.strip()] = value.strip()
        if fields.get("Auto-Installed") == "1" and "Package" in fields:
            auto.add((fields["Package"], fields.get("Architecture", "")))
    return auto


def read_auto(path=EXTENDED_STATES):
    try:
        with open(path) as handle:
            return parse_extended_states(handle.read())
    except OSError:
        return set()


def is_manual(pkg, auto):
    return (pkg["name"], pkg["architecture"]) not in auto and (pkg["name"], "") not in auto and \
        not (pkg["architecture"] == "all" and any(n == pkg["name"] for n, _a in auto))


_USRMERGE = ("/usr/bin/", "/usr/sbin/", "/usr/lib/", "/usr/lib32/", "/usr/lib64/", "/usr/libx32/")


def _aliases(path):
    """PATH and its pre-usrmerge spelling (dpkg lists /bin/x while the walk sees /usr/bin/x)."""
    if path.startswith(_USRMERGE):
        return (path, path[4:])
    return (path,)


def owners(paths, info_dir=DPKG_INFO):
    """{path: package} for the PATHS some dpkg package lists (reads info/*.list once)."""
    wanted = {}
    for path in paths:
        for alias in _aliases(path):
            wanted[alias] = path
    found = {}
    try:
        names = os.listdir(info_dir)
    except OSError:
        return found
    if not wanted:
        return found
    for name in sorted(names):
        if not name.endswith(".list"):
            continue
        package = name[:-5].split(":")[0]
        try:
            with open(os.path.join(info_dir, name), encoding="utf-8", errors="surrogateescape") as handle:
                listed = handle.read().split("\n")
        except OSError:
            continue
        for line in wanted.keys() & listed:  # set intersection in C, not a Python loop per line
            found.setdefault(wanted[line], package)
    return found


def read_md5sums(package, info_dir=DPKG_INFO):
    """{absolute path: md5} from a package's md5sums file (any architecture qualifier)."""
    sums = {}
    try:
        names = [n for n in os.listdir(info_dir)
                 if n.endswith(".md5sums") and n[:-8].split(":")[0] == package]
    except OSError:
        return sums
    for name in names:
        try:
            with open(os.path.join(info_dir, name), encoding="utf-8", errors="surrogateescape") as handle:
                for line in handle:
                    parts = line.rstrip("\n").split(None, 1)
                    if len(parts) == 2:
                        sums["/" + parts[1].lstrip("/")] = parts[0]
        except OSError:
            continue
    return sums


def parse_unit_files(text):
    units = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and "." in parts[0]:
            units[parts[0]] = parts[1]
    return units


def parse_units(text):
    units = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and "." in parts[0]:
            units[parts[0]] = parts[2]
    return units


_VOLATILE_UNIT = re.compile(r"\.(device|scope|slice|swap)$|^(session-|run-|user@|user-runtime-dir@)")


def read_units(unit_files=True):
    """{'available', 'files': {unit: state}, 'paths': {unit: path}, 'active': {unit: active}}.

    ``systemctl list-unit-files`` costs a second or more on a small host, so with
    UNIT_FILES false only ``list-units`` runs and the caller fills 'files' from the
    snapshot (``unit_files``).
    """
    units = _run(["systemctl", "list-units", "--all", "--no-legend", "--no-pager", "--plain"])
    files = _run(["systemctl", "list-unit-files", "--no-legend", "--no-pager"]) if unit_files else ""
    if files is None or units is None:
        return {"available": False, "files": {}, "paths": {}, "active": {}}
    active = dict((u, s) for u, s in parse_units(units).items() if not _VOLATILE_UNIT.search(u))
    return {"available": True, "files": parse_unit_files(files), "paths": {}, "active": active}


UNIT_DIRS = ("/etc/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system",
             "/lib/systemd/system")
UNIT_SUFFIXES = (".service", ".socket", ".timer", ".path", ".mount", ".automount", ".target",
                 ".swap", ".slice", ".device", ".scope")


def unit_dirs_covered(roots, exclude):
    """True when the walk sees /etc/systemd/system and /usr/lib/systemd/system."""
    excluded = Excluder(exclude)
    for directory in ("/etc/systemd/system", "/usr/lib/systemd/system"):
        if excluded.covers(directory):
            return False
        if not any(directory == r or directory.startswith(r.rstrip("/") + "/") for r in roots):
            return False
    return True


def _template_of(unit):
    name, dot, suffix = unit.rpartition(".")
    if "@" in name and not name.endswith("@"):
        return name.split("@", 1)[0] + "@." + suffix
    return None


def unit_files(snapshot):
    """({unit: state}, {unit: path}) from the unit directories and their symlinks in SNAPSHOT.

    state is ``masked`` (linked to /dev/null), ``enabled`` (a .wants/.requires/.upholds link
    names it), ``alias`` (a link in /etc/systemd/system to another unit) or ``disabled``
    (none of these: disabled or static).  This is what ``systemctl enable`` changes.
    """
    paths, masked, enabled, alias = {}, set(), set(), set()
    for path, st in snapshot.entries.items():
        if not path.endswith(UNIT_SUFFIXES):
            continue
        parent, name = path.rsplit("/", 1)
        if parent in UNIT_DIRS:
            if st.type == "symlink" and st.target == "/dev/null":
                masked.add(name)
                continue
            if st.type == "symlink":
                target = os.path.basename(st.target or "")
                if target and target != name:
                    alias.add(name)
                    if parent == "/etc/systemd/system":
                        enabled.add(target)  # Alias= installed by systemctl enable
            if name not in paths or UNIT_DIRS.index(parent) < UNIT_DIRS.index(paths[name].rsplit("/", 1)[0]):
                paths[name] = path
        elif (st.type == "symlink" and parent.startswith("/etc/systemd/system/")
              and parent.endswith((".wants", ".requires", ".upholds"))):
            target = os.path.basename(st.target or name)
            enabled.add(target)
            enabled.add(name)
            for unit in (target, name):
                template = _template_of(unit)
                if template:
                    enabled.add(template)
    states = {}
    for name in paths:
        if name in masked:
            states[name] = "masked"
        elif name in alias:
            states[name] = "alias"
        elif name in enabled:
            states[name] = "enabled"
        else:
            states[name] = "disabled"
    for name in masked:
        states[name] = "masked"
    return states, paths


def unit_path(unit):
    out = _run(["systemctl", "show", "-p", "FragmentPath", "--value", unit])
    return (out or "").strip() or None


def parse_passwd(text):
    users = {}
    for line in text.split("\n"):  # as passwd's readers split it: on \n only
        parts = line.split(":")
        if len(parts) >= 7 and parts[0]:
            users[parts[0]] = {"name": parts[0], "uid": _int(parts[2]), "gid": _int(parts[3]),
                               "gecos": parts[4], "home": parts[5], "shell": parts[6]}
    return users


def parse_group(text):
    groups = {}
    for line in text.split("\n"):
        parts = line.split(":")
        if len(parts) >= 4 and parts[0]:
            groups[parts[0]] = {"name": parts[0], "gid": _int(parts[2]),
                                "members": [m for m in parts[3].split(",") if m]}
    return groups


def _int(text):
    try:
        return int(text)
    except ValueError:
        return None


def read_accounts(etc="/etc"):
    """{'users': {...}, 'groups': {...}} parsed from passwd and group (no NSS)."""
    out = {}
    for key, name, parser in (("users", "passwd", parse_passwd), ("groups", "group", parse_group)):
        try:
            with open(os.path.join(etc, name), encoding="utf-8", errors="replace") as handle:
                out[key] = parser(handle.read())
        except OSError:
            out[key] = {}
    return out


def read_state(unit_files=True):
    """Everything but the file walk: packages, conffiles, auto marks, units, accounts."""
    packages, conffiles = read_packages()
    return {"packages": packages, "conffiles": conffiles, "auto": read_auto(),
            "units": read_units(unit_files), "accounts": read_accounts()}


def add_unit_files(state, snapshot):
    """Fill STATE's unit file states and paths from SNAPSHOT (see unit_files)."""
    if state["units"]["available"]:
        state["units"]["files"], state["units"]["paths"] = unit_files(snapshot)
    return state


# --------------------------------------------------------------------------- names for ids

class Names(object):
    """uid/gid -> name from the after-state passwd/group (accounts created by the command)."""

    def __init__(self, accounts):
        self.users = dict((u["uid"], n) for n, u in accounts.get("users", {}).items())
        self.groups = dict((g["gid"], n) for n, g in accounts.get("groups", {}).items())

    def user(self, uid):
        return self.users.get(uid)

    def group(self, gid):
        return self.groups.get(gid)


def state_of(st, names, digest=None):
    """The template 'state' object of a Stat."""
    out = {"type": st.type, "size": st.size if st.type == "file" else None,
           "permissions": "%04o" % st.mode, "owner": names.user(st.uid), "group": names.group(st.gid),
           "uid": st.uid, "gid": st.gid, "hash": digest, "modified": st.mtime_ns // 1000000000}
    if st.type == "symlink":
        out["target"] = st.target
    return out


# --------------------------------------------------------------------------- operations

def _pkg_changes(before, after, auto):
    installed, removed, upgraded = [], [], []
    before_by_name = {}
    for (name, arch), pkg in before["packages"].items():
        before_by_name[(name, arch)] = pkg
    for key, pkg in after["packages"].items():
        entry = {"name": pkg["name"], "version": pkg["version"], "architecture": pkg["architecture"],
                 "manual": is_manual(pkg, auto), "status": pkg["status"]}
        old = before_by_name.get(key)
        if old is None:
            installed.append(entry)
        elif old["version"] != pkg["version"]:
            entry["version_before"] = old["version"]
            upgraded.append(entry)
    for key, pkg in before["packages"].items():
        if key not in after["packages"]:
            removed.append({"name": pkg["name"], "version": pkg["version"],
                            "architecture": pkg["architecture"], "status": "removed"})
    # one entry per package name: multi-arch packages keep the first architecture
    return installed, removed, upgraded


def _unit_changes(before, after):
    ops = dict((k, []) for k in ("units_added", "units_removed", "units_enabled", "units_disabled",
                                 "units_started", "units_stopped"))
    if not (before["units"]["available"] and after["units"]["available"]):
        return ops
    bf, af = before["units"]["files"], after["units"]["files"]
    ba, aa = before["units"]["active"], after["units"]["active"]
    for unit in sorted(set(af) - set(bf)):
        ops["units_added"].append({"unit": unit, "path": after["units"].get("paths", {}).get(unit) or unit_path(unit),
                                   "state": af[unit],
                                   "active": aa.get(unit)})
    for unit in sorted(set(bf) - set(af)):
        ops["units_removed"].append({"unit": unit, "state": bf[unit], "active": ba.get(unit)})
    enabled_states = ("enabled", "enabled-runtime", "alias", "linked")
    for unit in sorted(af):
        old, new = bf.get(unit), af[unit]
        if new in enabled_states and old not in enabled_states:
            ops["units_enabled"].append({"unit": unit, "before": old, "after": new})
        elif old in enabled_states and new not in enabled_states:
            ops["units_disabled"].append({"unit": unit, "before": old, "after": new})
    for unit in sorted(set(aa) | set(ba)):
        old, new = ba.get(unit), aa.get(unit)
        if new == "active" and old != "active":
            ops["units_started"].append({"unit": unit, "before": old, "after": new})
        elif old == "active" and new != "active":
            ops["units_stopped"].append({"unit": unit, "before": old, "after": new})
    return ops


def _account_changes(before, after):
    ops = {}
    for kind in ("users", "groups"):
        b, a = before["accounts"][kind], after["accounts"][kind]
        created, changed, deleted = [], [], []
        for name in sorted(a):
            if name not in b:
                entry = dict(a[name])
                if kind == "users":
                    entry["system"] = entry["uid"] is not None and entry["uid"] < 1000
                else:
                    entry["system"] = entry["gid"] is not None and entry["gid"] < 1000
                created.append(entry)
            elif a[name] != b[name]:
                changed.append({"name": name, "before": b[name], "after": a[name]})
        for name in sorted(b):
            if name not in a:
                deleted.append(dict(b[name]))
        ops[kind + "_created"], ops[kind + "_changed"], ops[kind + "_deleted"] = created, changed, deleted
    return ops


_KIND_OPS = {"file": "files", "directory": "directories", "symlink": "symlinks"}


def _op_name(st, change):
    return "%s_%s" % (_KIND_OPS.get(st.type, "files"), change)


def build_operations(before, after, state_before, state_after, changes=None, stash=None,
                     processes=None, keep_secrets=(), shipped=None):
    """Turn snapshots + system state into (operations, content, stats).

    CONTENT is a list of (path, area, source) to copy into the bundle: area "files" with
    source = the live path, area "before" with source = the stash copy (a path, or bytes for
    a copy held in memory).  No file content is
    ever copied for redacted paths (KEEP_SECRETS: paths or globs kept all the same).

    A created or modified path a package owns whose mode, owner or group differs from what
    the package ships (SHIPPED, a ``pkgfiles.Shipped``; by default one over the installed
    packages that may download again only the archives of packages installed or upgraded
    while capturing) gets ``package_differs`` ({field: the package's value}); such a file is
    bundled, so every renderer applies it like a changed conffile (``package_default`` still
    says whether its content is the package's).
    """
    keep = tuple(keep_secrets or ())
    changes = changes or diff(before, after)
    names = Names(state_after["accounts"])
    before_names = Names(state_before["accounts"])
    ops = dict((op, []) for op in (
        "files_created", "files_modified", "files_deleted", "directories_created",
        "directories_deleted", "symlinks_created", "symlinks_modified", "symlinks_deleted",
        "permissions_changed", "redacted"))
    content = []
    stats = {"hashed": 0, "hashed_bytes": 0}
    touched = set(changes.created) | set(changes.modified) | set(changes.deleted) | set(changes.meta)
    owner_of = owners(touched)
    conffiles = dict(state_before["conffiles"])
    conffiles.update(state_after["conffiles"])
    md5_cache = {}
    processes = processes or {}
    own_shipped = shipped is None
    if own_shipped:
        fresh = {key[0] for key, pkg in state_after["packages"].items()
                 if state_before["packages"].get(key, {}).get("version") != pkg["version"]}
        shipped = pkgfiles.Shipped(state_after["packages"], download=fresh)

    def packaged_md5(package, path):
        if package not in md5_cache:
            md5_cache[package] = read_md5sums(package)
        for alias in _aliases(path):
            if alias in md5_cache[package]:
                return md5_cache[package][alias]
        return None

    def annotate(entry, path):
        package = owner_of.get(path)
        entry["package"] = package
        if path in conffiles:
            entry["conffile"] = True
            entry["package"] = package or conffiles[path][0]
        if path in processes:
            entry["processes"] = sorted(set(printable_path(p)[:4096] for p in processes[path]))
        return entry

    def redact(path, st, change, reason):
        ops["redacted"].append({"path": path, "reason": reason, "type": st.type, "change": change,
                                "package": owner_of.get(path)})

    def live_entry(path, st, change):
        """Entry for a created/modified path, or None when it was redacted or vanished."""
        entry = {"path": path}
        digest = None
        name_reason = None
        if st.type == "file":
            name_reason = redaction_reason(path, keep=keep)
            if name_reason and name_reason != NAMED_LIKE_CREDENTIALS:
                redact(path, st, change, name_reason)
                return None
            try:
                digest, md5, has_key = hash_file(path)
            except OSError:
                ops["redacted"].append({"path": path, "reason": "unreadable at capture time",
                                        "type": st.type, "change": change})
                return None
            stats["hashed"] += 1
            stats["hashed_bytes"] += st.size
            if has_key and not kept(path, keep):
                redact(path, st, change, redaction_reason(path, private_key=True))
                return None
        if st.type == "symlink" and st.target is not None and unnamed_name(st.target):
            redact(path, st, change, "symlink target is not UTF-8 or holds a line break or control character")
            return None
        entry.update(state_of(st, names, digest))
        annotate(entry, path)
        differs = shipped.differs(entry, entry["package"], _aliases(path)[1:]) if entry.get("package") \
            and st.type in ("file", "directory") else {}
        if differs:
            entry["package_differs"] = differs
        if st.type == "file":
            bundled = True
            package = entry.get("package")
            if entry.get("conffile"):
                entry["conffile_changed"] = md5 != conffiles[path][1]
                entry["package_default"] = not entry["conffile_changed"]
                bundled = entry["conffile_changed"]
            elif package:
                packaged = packaged_md5(package, path)
                entry["package_default"] = packaged == md5 if packaged else None
                bundled = not entry["package_default"]
            if differs:
                bundled = True  # the renderers copy it with the recorded mode and owner
            if name_reason and not entry.get("package_default"):
                # named like credentials and not the public content a package ships
                redact(path, st, change, name_reason)
                return None
            entry["bundled"] = bundled
            if bundled:
                content.append((path, "files", path))
        return entry

    def keep_before(entry, path):
        source = stash.source(path) if stash is not None and stash.covers(path) else None
        if source is not None:
            entry["before_bundled"] = True
            content.append((path, "before", source))
            return stash.digest(path)
        return None

    deleted = set(changes.deleted)
    for path in changes.created:
        st = after.entries[path]
        entry = live_entry(path, st, "created")
        if entry is not None:
            ops[_op_name(st, "created")].append(entry)
    for path in changes.modified:
        st, old = after.entries[path], before.entries[path]
        entry = live_entry(path, st, "modified")
        if entry is None:
            continue
        if old.type == "symlink" and old.target is not None and unnamed_name(old.target):
            redact(path, st, "modified", "former symlink target is not UTF-8 or holds a line break or "
                   "control character")
            continue
        before_digest = keep_before(entry, path) if st.type == "file" else None
        entry["before"] = state_of(old, before_names, before_digest)
        ops[_op_name(st, "modified")].append(entry)
    for path in changes.deleted:
        old = before.entries[path]
        if old.type == "file" and redaction_reason(path, keep=keep):
            redact(path, old, "deleted", redaction_reason(path, keep=keep))
            continue
        if old.type == "symlink" and old.target is not None and unnamed_name(old.target):
            redact(path, old, "deleted", "symlink target is not UTF-8 or holds a line break or control character")
            continue
        entry = {"path": path}
        entry.update(state_of(old, before_names, None))
        annotate(entry, path)
        if old.type == "file":
            digest = keep_before(entry, path)
            entry["hash"] = digest
        ops[_op_name(old, "deleted")].append(entry)
    for path in changes.meta:
        if path in deleted:
            continue
        old, new = before.entries[path], after.entries[path]
        b = state_of(old, before_names)
        a = state_of(new, names)
        for side in (b, a):
            for key in ("size", "hash", "modified", "target", "type"):
                side.pop(key, None)
        ops["permissions_changed"].append({"path": path, "type": new.type, "package": owner_of.get(path),
                                           "before": b, "after": a})
    if shipped.sources:
        stats["package_reference"] = dict(sorted(shipped.sources.items()))
    if own_shipped:
        shipped.cleanup()
    installed, removed, upgraded = _pkg_changes(state_before, state_after, state_after["auto"])
    ops["packages_installed"], ops["packages_removed"], ops["packages_upgraded"] = installed, removed, upgraded
    ops.update(_unit_changes(state_before, state_after))
    ops.update(_account_changes(state_before, state_after))
    return ops, content, stats


def excluded_entries(exclude, defaults=DEFAULT_EXCLUDE, unnamed=()):
    """The template 'excluded' list: one entry per exclude root/pattern with its reason."""
    out = []
    seen = set()
    for path in unnamed:
        shown = printable_path(path)
        if shown not in seen:
            seen.add(shown)
            out.append({"path": shown, "reason": "file name is not valid UTF-8 or holds a line break or "
                                                 "control character; not captured",
                        "change": "excluded"})
    for item in exclude:
        if not item.startswith("/"):
            continue
        if item in EXCLUDE_REASONS:
            reason = EXCLUDE_REASONS[item]
        elif item in defaults:
            reason = "volatile tree, excluded by default"
        else:
            reason = "excluded by the exclude option"
        out.append({"path": item.rstrip("/") or "/", "reason": reason, "change": "excluded"})
    return out
