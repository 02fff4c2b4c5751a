# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plain data out of Ansible's containers (the one ``plain`` helper for filters and lookups).

Standard library only: this file runs on targets too.
"""

from __future__ import annotations

from collections.abc import Mapping


def plain(value):
    """Plain dicts, lists and ``str`` of Ansible's mappings, sequences and tagged/unsafe text.

    Mapping keys become ``str``; lists, tuples and sets become lists; a ``str`` subclass
    becomes a ``str``; every other scalar stays as it is (the engines check the types).
    """
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value
