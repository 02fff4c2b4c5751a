# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing files so that a reader never sees half of one (the one atomic writer).

Standard library only: this file runs on targets too.
"""

from __future__ import annotations

import hashlib
import os
import tempfile


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


def sha256_file(path: str) -> str:
    """The sha256 hex digest of PATH's content, read in 1 MiB blocks (OSError when unreadable)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
