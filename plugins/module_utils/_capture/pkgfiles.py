# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a package ships for each of its paths: type, mode, owner and group.

dpkg's database keeps a package's file list and the md5sums of its files, but not the mode
or owner of anything, nor any fact about its directories: those are only in the package's
data archive.  The capture reads that archive (``data.tar.*`` of the .deb, the ar reader of
``deb.py``) from apt's cache, or, when apt did not keep it, fetched again with
``apt-get download`` of the exact installed version into a private temporary directory.
Without either, the Debian policy defaults stand in (directories 0755 root:root, files
owned by root:root; a file's mode then is not compared).  ``dpkg-statoverride`` entries are
what dpkg itself applies, so they count as shipped.

Standard library only (runs on targets).  Every archive is hostile input: members, names
and decompressed bytes are capped, and a problem makes the package "unknown", never a
traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile

from ansible_collections.mo.fleet.plugins.module_utils._repo import deb as _deb
from ansible_collections.mo.fleet.plugins.module_utils._common import names

APT_ARCHIVES = "/var/cache/apt/archives"
STATOVERRIDE = "/var/lib/dpkg/statoverride"
MAX_DATA_MEMBERS = 200000             # entries in one data archive
MAX_DATA_BYTES = 8 << 30              # decompressed data archive
MAX_DATA_NAME = 4096                  # characters of one member name
DOWNLOAD_TIMEOUT = 120                # seconds for one apt-get download
POLICY = {"directory": ("0755", "root", "root"), "file": (None, "root", "root")}
_KINDS = {tarfile.DIRTYPE: "directory", tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file",
          tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "file"}


class _Counted:
    """A read-only stream that stops after LIMIT bytes (a bomb is refused, not unpacked)."""

    def __init__(self, stream, limit, label):
        self.stream, self.left, self.label = stream, limit, label

    def read(self, size=-1):
        data = self.stream.read(size if size is not None and size >= 0 else 1 << 20)
        self.left -= len(data)
        if self.left < 0:
            raise _deb.DebError(f"{self.label} has a data archive larger than {MAX_DATA_BYTES >> 20} MiB.")
        return data


class _Inflated:
    """The decompressed bytes of a compressed stream, read in chunks (gzip, xz, bzip2).

    Each decompress call is given ``max_length``, so no more than about one read's worth of
    output is ever held: a bomb meets _Counted's cap before its bytes are in memory.
    """

    def __init__(self, stream, kind):
        import bz2
        import lzma
        import zlib
        self.stream = stream
        self.zlib = kind == "gz"
        self.dec = {"gz": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
                    "xz": lambda: lzma.LZMADecompressor(format=lzma.FORMAT_XZ),
                    "bz2": bz2.BZ2Decompressor}[kind]()
        self.tail = b""
        self.done = False
        self.buf = bytearray()
        self.pos = 0

    def _more(self, want):
        """Up to WANT more decompressed bytes (b"" at the end of the stream)."""
        while not self.done:
            if self.zlib:
                data = self.tail or self.stream.read(1 << 18)
                if not data:
                    self.done = True
                    break
                out = self.dec.decompress(data, want)
                self.tail = self.dec.unconsumed_tail
                self.done = self.dec.eof
            else:
                if self.dec.eof:
                    self.done = True
                    break
                data = self.stream.read(1 << 18) if self.dec.needs_input else b""
                if not data and self.dec.needs_input:
                    self.done = True
                    break
                out = self.dec.decompress(data, want)
            if out:
                return out
        return b""

    def read(self, size=-1):
        size = size if size is not None and size >= 0 else 1 << 20
        while len(self.buf) - self.pos < size:
            if self.pos:
                del self.buf[:self.pos]
                self.pos = 0
            out = self._more(max(size - len(self.buf), 1 << 16))
            if not out:
                break
            self.buf += out
        data = bytes(self.buf[self.pos:self.pos + size])
        self.pos += len(data)
        return data


class _Slice:
    """The bytes [start, start + length) of an open file, as a stream."""

    def __init__(self, fh, start, length):
        self.fh, self.pos, self.end = fh, start, start + length

    def read(self, size=-1):
        if size is None or size < 0:
            size = self.end - self.pos
        size = min(size, self.end - self.pos)
        self.fh.seek(self.pos)
        data = self.fh.read(size)
        self.pos += len(data)
        return data


def _data_stream(fh, size, label, scratch):
    """(stream, compression, process) of the .deb's data member; a zstd member is copied in
    blocks to the open temporary file SCRATCH and decompressed by a zstd PROCESS (the caller
    kills and reaps it)."""
    members = list(_deb._ar_members(fh, size, label))
    _deb._members_in_dpkg_order(members, label)
    rest = [m for m in members[1:] if not m[0].startswith("_")]
    name, start, length = rest[1]
    kind = name[len("data.tar"):]
    raw = _Slice(fh, start, length)
    if kind == "":
        return raw, None, None
    if kind in (".gz", ".xz", ".bz2"):
        return raw, kind[1:], None
    if kind == ".zst":
        exe = _deb.zstd_command()
        if exe is None:
            raise _deb.DebError(f"{label} has a zstd data archive and this host has no zstd command.")
        shutil.copyfileobj(raw, scratch, 1 << 20)
        scratch.seek(0)
        proc = subprocess.Popen([exe, "-d", "-c", "-q", f"--memory={_deb.ZSTD_MEMORY}"], stdin=scratch,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"})
        return proc.stdout, None, proc
    raise _deb.DebError(f"{label} has an unsupported data archive compression {kind!r}.")


def shipped(path: str, label: str | None = None) -> dict:
    """{absolute path: (type, "0755", owner, group)} of the data archive of the .deb at PATH.

    Raises DebError (one sentence) for anything that is not a readable .deb within the caps.
    """
    label = label or os.path.basename(path)
    out = {}
    proc = None
    try:
        with open(path, "rb") as fh, tempfile.TemporaryFile() as scratch:
            stream, comp, proc = _data_stream(fh, os.fstat(fh.fileno()).st_size, label, scratch)
            counted = _Counted(_Inflated(stream, comp) if comp else stream, MAX_DATA_BYTES, label)
            with tarfile.open(fileobj=counted, mode="r|") as tar:
                for count, member in enumerate(tar, 1):
                    if count > MAX_DATA_MEMBERS:
                        raise _deb.DebError(f"{label} has more than {MAX_DATA_MEMBERS} entries in its data archive.")
                    name = member.name
                    if len(name) > MAX_DATA_NAME or "\x00" in name:
                        continue
                    clean = "/" + os.path.normpath("/" + name).lstrip("/")
                    if clean == "/":
                        continue
                    kind = _KINDS.get(member.type)
                    if kind is None:
                        continue
                    owner = member.uname or str(member.uid)
                    group = member.gname or str(member.gid)
                    out[clean] = (kind, f"{member.mode & 0o7777:04o}", owner, group)
    except _deb.DebError:
        raise
    except Exception as exc:  # tarfile, zlib, lzma and OS errors alike: the archive is unreadable
        raise _deb.DebError(f"{label} has an unreadable data archive ({exc}).") from None
    finally:
        if proc is not None:
            proc.kill()
            proc.stdout.close()
            proc.wait()
    return out


def read_statoverride(path: str = STATOVERRIDE) -> dict:
    """{path: (mode "0750", owner, group)} from dpkg's statoverride file (empty when absent)."""
    out = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) == 4 and parts[3].startswith("/"):
                    try:
                        out[parts[3]] = (f"{int(parts[2], 8) & 0o7777:04o}", parts[0].lstrip("#"), parts[1].lstrip("#"))
                    except ValueError:
                        continue
    except OSError:
        pass
    return out


def _download(name: str, version: str, arch: str, workdir: str) -> str | None:
    """apt-get download NAME=VERSION into WORKDIR; the file's path, or None."""
    exe = shutil.which("apt-get") or shutil.which("apt-get", path="/usr/bin:/bin")
    if exe is None:
        return None
    spec = f"{name}:{arch}={version}" if arch and arch != "all" else f"{name}={version}"
    try:
        subprocess.run([exe, "-q", "-o", "APT::Sandbox::User=root", "download", spec], cwd=workdir,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=DOWNLOAD_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for entry in sorted(os.listdir(workdir)):
        parsed = _deb.split_pool_name(entry)
        if parsed and parsed[0] == name and _deb.version_matches(parsed[1], version):
            return os.path.join(workdir, entry)
    return None


class Shipped:
    """What the installed packages ship, read once per package when a capture asks.

    PACKAGES is dpkg's view ({(name, arch): {"version": ...}}); DOWNLOAD is True, False or the
    set of package names whose archive may be fetched again (the capture passes the packages it
    saw installed or upgraded: their archive was just downloaded, so the host reaches it);
    ``sources`` records per package where the answer came from: ``cache``, ``download``, or
    ``policy``.
    """

    def __init__(self, packages: dict, archives: str = APT_ARCHIVES, download=True,
                 statoverride: str = STATOVERRIDE):
        self.packages = packages
        self.archives = archives
        self.download = download
        self.override = read_statoverride(statoverride)
        self.sources = {}
        self._known = {}
        self._tmp = None

    def _archive(self, name, version, arch):
        cached = os.path.join(self.archives, _deb.canonical_filename(name, version, arch))
        if os.path.isfile(cached):
            return cached, "cache"
        if not (self.download is True or self.download and name in self.download):
            return None, "policy"
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="mo-fleet-debs-")
        got = _download(name, version, arch, self._tmp)
        return (got, "download") if got else (None, "policy")

    def _files(self, package):
        if package not in self._known:
            files, source = {}, "policy"
            for (name, arch), info in sorted(self.packages.items()):
                if name != package:
                    continue
                path, source = self._archive(name, info["version"], arch)
                if path is None:
                    continue
                try:
                    files.update(shipped(path))
                except _deb.DebError:
                    source = "policy"
                    continue
            self._known[package] = files if source != "policy" else None
            self.sources[package] = source
        return self._known[package]

    def of(self, package: str, path: str, kind: str, aliases=()) -> tuple | None:
        """(mode or None, owner, group) PACKAGE ships at PATH (or its ALIASES), or None."""
        for alias in (path,) + tuple(aliases):
            if alias in self.override:
                return self.override[alias]
        files = self._files(package)
        if files is None:
            return POLICY.get(kind)
        for alias in (path,) + tuple(aliases):
            found = files.get(alias)
            if found is not None and found[0] == kind:
                return found[1:]
        return None

    def differs(self, entry: dict, package: str, aliases=()) -> dict:
        """{field: what the package ships} for the mode/owner/group of ENTRY that differ."""
        ships = self.of(package, entry["path"], entry.get("type"), aliases)
        if ships is None:
            return {}
        out = {}
        for key, want in zip(("permissions", "owner", "group"), ships):
            if key != "permissions" and not names.is_valid("account", want):
                continue  # a numeric owner in the archive: not compared
            if want is not None and entry.get(key) is not None and entry.get(key) != want:
                out[key] = want
        return out

    def cleanup(self):
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
