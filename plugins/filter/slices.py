# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollout_slice filter: a thin wrapper over module_utils/_release/slices.py (documentation:
the adjacent rollout_slice.yml)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.mo.fleet.plugins.module_utils._common.plain import plain as _plain
from ansible_collections.mo.fleet.plugins.module_utils._release.slices import SliceError, host_slice


def rollout_slice(hosts, spec=""):
    """The hosts of slice SPEC ('K/N'; empty: all of them, sorted)."""
    try:
        return host_slice(_plain(hosts), _plain(spec))
    except SliceError as exc:
        raise AnsibleFilterError(f"mo.fleet.rollout_slice: {exc}") from None


class FilterModule:
    def filters(self):
        return {"rollout_slice": rollout_slice}
