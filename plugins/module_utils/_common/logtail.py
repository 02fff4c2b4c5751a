# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the end of a log that grows without bound (apt's history, the dpkg hook's records):
the one capped reader, so no caller reads more than it allows.

Standard library only: this file runs on targets too.
"""

from __future__ import annotations

import os


def read_tail(path: str, limit: int):
    """The last LIMIT bytes of PATH as text (undecodable bytes replaced), or None when it cannot
    be read.  The first line may be cut: parsers of line records skip what they cannot parse."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            return handle.read(limit).decode("utf-8", "replace")
    except OSError:
        return None
