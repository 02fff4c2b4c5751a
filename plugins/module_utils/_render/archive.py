# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The files archive of ``to_tasks`` (option files_archive): its members, its bytes (one
fixed mtime, so they are the same on every render), writing it and telling whether writing
would change it.

Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tarfile
from datetime import datetime, timezone

from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import atomic_write
from ansible_collections.mo.fleet.plugins.module_utils._render.prepare import (
    Prepared, RenderError, _id_number, _shown, prepare)
from ansible_collections.mo.fleet.plugins.module_utils._render.parts import _Units
from ansible_collections.mo.fleet.plugins.module_utils._render.tasks import _file_plan, _use_archive


def _archive_mtime(prep):
    """One mtime for every member, the same on every render (unarchive compares mtimes)."""
    stamp = str(prep.doc.get("MO_template", {}).get("timestamp") or "")
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        if when.tzinfo is None:  # the same on every controller, whatever its time zone
            when = when.replace(tzinfo=timezone.utc)
        return int(when.timestamp())
    except ValueError:
        return 946684800  # 2000-01-01, for templates without a parsable timestamp


def archive_members(source, options=None):
    """The directories and files to_tasks unpacks from ``files_archive``: dicts with path,
    type (directory/file), mode, owner, group, uid, gid and, for files, the bundle path."""
    prep = source if isinstance(source, Prepared) and options is None else prepare(source, options)
    dirs, plain, _by_unit, _unit_files = _file_plan(prep, _Units(prep))
    if not _use_archive(prep, dirs, plain):
        return []
    if not prep.bundle:
        raise RenderError("files_archive needs the bundle directory; pass the bundle path or the bundle option.")
    by_path = dict((e["path"], e) for op in ("directories_created", "files_created", "files_modified")
                   for e in prep.ops[op])
    out = []
    for kind, items in (("directory", dirs), ("file", plain)):
        for item in items:
            entry = by_path[item["path"]]
            default_mode = "0755" if kind == "directory" else "0644"
            member = {"path": item["path"], "type": kind, "mode": item.get("mode") or default_mode,
                      "owner": entry.get("owner"), "group": entry.get("group"),
                      "uid": _id_number(entry.get("uid") or 0, "The uid of %s" % _shown(item["path"])),
                      "gid": _id_number(entry.get("gid") or 0, "The gid of %s" % _shown(item["path"]))}
            if kind == "file":
                member["src"] = posixpath.join(prep.bundle, tpl.BUNDLE_FILES, item["path"].lstrip("/"))
                member["hash"] = entry.get("hash")
            out.append(member)
    out.sort(key=lambda m: (m["path"], m["type"]))
    return out


def _write_tar(handle, prep, members):
    mtime = _archive_mtime(prep)
    with tarfile.open(fileobj=handle, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for m in members:
            info = tarfile.TarInfo(m["path"].lstrip("/"))
            info.mode = int(m["mode"], 8)
            info.mtime = mtime
            info.uid, info.gid = int(m["uid"]), int(m["gid"])
            info.uname = m["owner"] or ""
            info.gname = m["group"] or ""
            if m["type"] == "directory":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
                continue
            with open(m["src"], "rb") as data:
                info.size = os.fstat(data.fileno()).st_size
                tar.addfile(info, data)


class _Digest(object):
    """A write-only file object that keeps only the sha256 of what it is given."""

    def __init__(self):
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def tell(self):
        return self.size


def _archive_prep(source, options):
    prep = source if isinstance(source, Prepared) and options is None else prepare(source, options)
    return prep, archive_members(prep)


def write_files_archive(source, options=None):
    """Write the tar of archive_members() to the option files_archive (temp file + rename);
    return the number of members (0: no archive is used, nothing written)."""
    prep, members = _archive_prep(source, options)
    if not members:
        return 0
    dest = prep.options["files_archive"]
    try:
        atomic_write(dest, lambda handle: _write_tar(handle, prep, members), mode=0o600)
    except OSError as exc:
        raise RenderError("Cannot write the files archive %s: %s." % (dest, exc.strerror or exc))
    return len(members)


def files_archive_differs(source, options=None):
    """True when an archive is used and the file at files_archive is missing or holds other
    bytes than write_files_archive would write (the bytes are stable: one fixed mtime)."""
    prep, members = _archive_prep(source, options)
    if not members:
        return False
    dest = prep.options["files_archive"]
    if not os.path.isfile(dest):
        return True
    digest = _Digest()
    try:
        _write_tar(digest, prep, members)
    except OSError as exc:
        raise RenderError("Cannot read a file for the files archive: %s." % (exc.strerror or exc))
    return tpl.sha256_file(dest) != digest.sha256.hexdigest()
