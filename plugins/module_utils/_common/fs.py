# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing files so that a reader never sees half of one (the one atomic writer), and reading
one that may be hostile without more than a cap in memory (the one capped reader).

Standard library only: this file runs on targets too.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile


class TooLarge(ValueError):
    """PATH holds more than CAP bytes; SIZE is its size when known before the read (else None:
    it grew while it was read)."""

    def __init__(self, path: str, cap: int, size=None):
        super().__init__(f"{path} is larger than {cap} bytes")
        self.path, self.cap, self.size = path, cap, size


def read_capped(path: str, cap: int) -> bytes:
    """The bytes of the regular file PATH (a symlink is followed), refused before the read when
    it holds more than CAP bytes (TooLarge, a ValueError; never more than CAP + 1 bytes read).

    A FIFO, device, socket or directory is an OSError whose strerror is "not a regular file":
    it is opened without blocking and never read, so a FIFO cannot hang the reader and a
    device cannot feed it without end.  Other OSErrors (absent, unreadable) pass through.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        if info.st_size > cap:
            raise TooLarge(path, cap, info.st_size)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(cap + 1)
    if len(data) > cap:
        raise TooLarge(path, cap)
    return data


def atomic_write(path: str, data, mode: int = 0o644) -> None:
    """Write DATA to PATH via a temp file in the same directory + fsync + chmod MODE + rename.

    DATA is bytes, text (written as UTF-8), a binary file object, whose rest is copied in
    blocks (a large file never sits in memory whole), or a function that writes to the open
    binary handle it is given.  On any error the temp file is removed and PATH is untouched.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            if hasattr(data, "read"):
                for block in iter(lambda: data.read(1 << 20), b""):
                    handle.write(block)
            elif callable(data):
                data(handle)
            else:
                handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_if_changed(path: str, data, mode: int = 0o644, owner: int = -1, group: int = -1,
                     dir_mode=None) -> bool:
    """Make PATH hold DATA (text or bytes) with MODE and OWNER/GROUP (numeric ids, -1: leave); True if it changed.

    Unchanged content is not rewritten (its mode and owner are still put right); new content
    goes through ``atomic_write`` with the owner set on the temporary file before the rename,
    so a reader never sees the new file with the wrong owner.  DIR_MODE, when given, creates
    the missing parent directories with that mode.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        with open(path, "rb") as handle:
            same = handle.read(len(data) + 1) == data
            info = os.fstat(handle.fileno())
    except FileNotFoundError:
        same, info = False, None
    if same:
        fixed = False
        if (info.st_mode & 0o7777) != mode:
            os.chmod(path, mode)
            fixed = True
        if (owner != -1 and info.st_uid != owner) or (group != -1 and info.st_gid != group):
            os.chown(path, owner, group)
            fixed = True
        return fixed
    if dir_mode is not None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), mode=dir_mode, exist_ok=True)

    def fill(handle):
        if owner != -1 or group != -1:
            os.fchown(handle.fileno(), owner, group)
        handle.write(data)

    atomic_write(path, fill, mode=mode)
    return True


def sha256_file(path: str) -> str:
    """The sha256 hex digest of PATH's content, read in 1 MiB blocks (OSError when unreadable)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
