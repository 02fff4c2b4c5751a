# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection as an archive ``ansible-galaxy collection install`` takes (pull mode, docs/pull.md).

The repository server puts the collection the controller runs into its pull repository.  From a
source tree (``galaxy.yml``) that archive is ``ansible-galaxy collection build``'s.  An installed
collection (``MANIFEST.json`` and ``FILES.json``, no ``galaxy.yml``) cannot be built again, so it
is packed as it is: ``MANIFEST.json``, ``FILES.json`` and every entry ``FILES.json`` lists, in
its order, with the modes and owners ``ansible-galaxy collection build`` gives them.  Each file's
sha256 is checked against ``FILES.json`` and ``FILES.json``'s against ``MANIFEST.json`` first, so
the archive holds exactly what was installed (files Python or a user added, ``__pycache__`` for
one, are left out), and ``ansible-galaxy collection install`` verifies it the same way.

Standard library only.

API::

    kind(root) -> 'source' | 'installed'
    pack_installed(root, out_dir) -> {'path', 'files_sha256', 'changed'}
    files_checksum(archive) -> the FILES.json sha256 its MANIFEST.json names
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import stat
import tarfile

from ansible_collections.mo.fleet.plugins.module_utils._common import names, paths as _paths
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import TooLarge, atomic_write, read_capped, sha256_file

__all__ = ["ArchiveError", "kind", "pack_installed", "files_checksum", "MAX_ENTRIES"]

MAX_MANIFEST = 1 << 20      # bytes of MANIFEST.json
MAX_FILES_JSON = 16 << 20   # bytes of FILES.json
MAX_ENTRIES = 5000          # entries of FILES.json (the pull repository takes no more members)


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _is_sha256(value):
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


class ArchiveError(ValueError):
    """A collection tree or archive that cannot be packed or read: one sentence naming the file."""


def kind(root: str) -> str:
    """'source' for a tree with galaxy.yml, 'installed' for MANIFEST.json + FILES.json; else ArchiveError."""
    if os.path.isfile(os.path.join(root, "galaxy.yml")):
        return "source"
    if os.path.isfile(os.path.join(root, "MANIFEST.json")) and os.path.isfile(os.path.join(root, "FILES.json")):
        return "installed"
    raise ArchiveError(f"collection {root}: has neither galaxy.yml (a source tree) nor MANIFEST.json "
                       "and FILES.json (an installed collection)")


def _read(path, cap, what):
    try:
        return read_capped(path, cap)
    except OSError as exc:
        raise ArchiveError(f"{what}: cannot be read ({exc.strerror})") from None
    except TooLarge:
        raise ArchiveError(f"{what}: larger than {cap >> 10} KiB") from None


def _json(data, what):
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ArchiveError(f"{what}: is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ArchiveError(f"{what}: must be a JSON object")
    return value


def _entries(root, files):
    """FILES.json's entries checked: (name, 'dir'|'file', sha256) with plain names inside ROOT."""
    what = f"collection {root}: FILES.json"
    listed = files.get("files")
    if not isinstance(listed, list) or len(listed) > MAX_ENTRIES:
        raise ArchiveError(f"{what}: field 'files' must be a list of at most {MAX_ENTRIES} entries")
    out, seen = [], set()
    for index, entry in enumerate(listed):
        field = f"{what}: field 'files[{index}]'"
        if not isinstance(entry, dict) or entry.get("ftype") not in ("dir", "file") \
                or not isinstance(entry.get("name"), str):
            raise ArchiveError(f"{field}: must have a 'name' and an 'ftype' dir or file")
        name = entry["name"]
        if name == ".":
            continue
        try:
            clean = _paths.normalize("/" + name, f"{field} name")[1:]
        except _paths.PathError as exc:
            raise ArchiveError(str(exc)) from None
        if clean != name or name in seen or name in ("MANIFEST.json", "FILES.json"):
            raise ArchiveError(f"{field}: name {name!r} is not a plain relative path listed once")
        seen.add(name)
        digest = entry.get("chksum_sha256")
        if entry["ftype"] == "file" and not _is_sha256(digest):
            raise ArchiveError(f"{field}: file {name!r} has no sha256 checksum")
        out.append((name, entry["ftype"], digest))
    return out


def _check_on_disk(root, entries):
    """Each entry is on disk as FILES.json says: no link, the right type, the right sha256."""
    for name, ftype, digest in entries:
        path = os.path.join(root, name)
        what = f"collection {root}: {name!r}"
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            raise ArchiveError(f"{what}: is listed in FILES.json but missing") from None
        if stat.S_ISLNK(mode):
            raise ArchiveError(f"{what}: is a symbolic link (an installed collection holds plain files)")
        if ftype == "dir" and not stat.S_ISDIR(mode) or ftype == "file" and not stat.S_ISREG(mode):
            raise ArchiveError(f"{what}: is not the {ftype} FILES.json lists")
        if ftype == "file" and sha256_file(path) != digest:
            raise ArchiveError(f"{what}: its content differs from the sha256 FILES.json lists (changed since "
                               "the install)")


def _tar_info(name, size, mode, mtime, directory=False):
    info = tarfile.TarInfo(name)
    info.size, info.mtime = size, int(mtime)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    # as ansible-galaxy collection build sets them
    info.mode = 0o755 if directory or mode & stat.S_IXUSR else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def files_checksum(archive: str) -> str:
    """The FILES.json sha256 that ARCHIVE's MANIFEST.json names (a build's content, not its timestamps)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.getmember("MANIFEST.json")
            if not member.isfile() or member.size > MAX_MANIFEST:
                raise ArchiveError(f"collection archive {archive}: MANIFEST.json is no plain file of at most "
                                   f"{MAX_MANIFEST >> 10} KiB")
            manifest = _json(tar.extractfile(member).read(), f"collection archive {archive}: MANIFEST.json")
    except (OSError, KeyError, tarfile.TarError) as exc:
        raise ArchiveError(f"collection archive {archive}: cannot be read ({exc})") from None
    digest = (manifest.get("file_manifest_file") or {}).get("chksum_sha256")
    if not _is_sha256(digest):
        raise ArchiveError(f"collection archive {archive}: MANIFEST.json names no FILES.json sha256")
    return digest


def pack_installed(root: str, out_dir: str) -> dict:
    """Pack the installed collection at ROOT into OUT_DIR/<namespace>-<name>-<version>.tar.gz.

    An archive already there with the same FILES.json is kept (``changed`` false).  The archive
    is written atomically; its gzip header and members carry no time but the files' own.
    """
    manifest_bytes = _read(os.path.join(root, "MANIFEST.json"), MAX_MANIFEST, f"collection {root}: MANIFEST.json")
    files_bytes = _read(os.path.join(root, "FILES.json"), MAX_FILES_JSON, f"collection {root}: FILES.json")
    manifest = _json(manifest_bytes, f"collection {root}: MANIFEST.json")
    info = manifest.get("collection_info") or {}
    digest = hashlib.sha256(files_bytes).hexdigest()
    if (manifest.get("file_manifest_file") or {}).get("chksum_sha256") != digest:
        raise ArchiveError(f"collection {root}: FILES.json differs from the sha256 MANIFEST.json lists")
    parts = [info.get(k) for k in ("namespace", "name", "version")]
    if not all(isinstance(p, str) and names.is_valid("file_part", p) for p in parts):
        raise ArchiveError(f"collection {root}: MANIFEST.json field 'collection_info' lacks a namespace, "
                           "name or version usable in a file name")
    entries = _entries(root, _json(files_bytes, f"collection {root}: FILES.json"))
    _check_on_disk(root, entries)
    target = os.path.join(out_dir, "-".join(parts) + ".tar.gz")
    if os.path.isfile(target):
        try:
            if files_checksum(target) == digest:
                return {"path": target, "files_sha256": digest, "changed": False}
        except ArchiveError:
            pass  # not ours or broken: written again
    stamp = os.stat(os.path.join(root, "MANIFEST.json")).st_mtime

    def fill(handle):
        with gzip.GzipFile(fileobj=handle, mode="wb", mtime=0) as zipped, \
                tarfile.open(fileobj=zipped, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for name, data in (("MANIFEST.json", manifest_bytes), ("FILES.json", files_bytes)):
                tar.addfile(_tar_info(name, len(data), 0o644, stamp), io.BytesIO(data))
            for name, ftype, _digest in entries:
                path = os.path.join(root, name)
                st = os.lstat(path)
                if ftype == "dir":
                    tar.addfile(_tar_info(name, 0, st.st_mode, st.st_mtime, directory=True))
                    continue
                with open(path, "rb") as src:
                    tar.addfile(_tar_info(name, st.st_size, st.st_mode, st.st_mtime), src)

    os.makedirs(out_dir, exist_ok=True)
    atomic_write(target, fill)
    return {"path": target, "files_sha256": digest, "changed": True}
