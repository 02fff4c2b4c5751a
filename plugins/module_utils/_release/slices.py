# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rollout slices: one rollout day split into N parts run at once, as AWX job slicing does.

A slice is named ``K/N`` (the K-th of N, 1 <= K <= N); its hosts are every N-th host of the
day's targets sorted by name, starting at the K-th (AWX slices its inventory the same way).
Every host is in exactly one slice of N, whatever order the inventory lists them in, and the
slices differ in size by one host at most.  The slices share the one release state on the
controller (module_utils/_release/rollout.py updates it under the one lock) and each batch re-reads
its halts, so a halt decided in one slice reaches the others from their next batch on.

Standard library only.
"""

from __future__ import annotations

import re

_SPEC = re.compile(r"([1-9][0-9]{0,5})/([1-9][0-9]{0,5})")


class SliceError(ValueError):
    """A slice name that is not K/N (the message is one sentence)."""


def parse_slice(spec) -> tuple:
    """(K, N) of SPEC 'K/N'; an empty SPEC (or None) is the whole day, (1, 1)."""
    if spec is None or spec == "":
        return 1, 1
    found = _SPEC.fullmatch(spec) if isinstance(spec, str) else None
    if not found or not 1 <= int(found.group(1)) <= int(found.group(2)):
        raise SliceError(f"field 'rollout_slice': {spec!r} is not a slice K/N with 1 <= K <= N "
                         "(for example 2/3, the second of three).")
    return int(found.group(1)), int(found.group(2))


def host_slice(hosts, spec) -> list:
    """The hosts of slice SPEC ('K/N') among HOSTS (names): every N-th of them sorted, from the K-th."""
    if isinstance(hosts, (str, bytes)) or not all(isinstance(h, str) for h in hosts):
        raise SliceError("field 'hosts': must be a list of host names.")
    number, count = parse_slice(spec)
    return sorted(set(hosts))[number - 1::count]
