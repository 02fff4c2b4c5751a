# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rollout filters: thin wrappers over module_utils/_release/release.py and module_utils/_release/rollout.py.

Documentation: the adjacent release_sources.yml, release_waves.yml, release_batches.yml and
release_halts.yml.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.mo.fleet.plugins.module_utils._repo.catalog import CatalogError
from ansible_collections.mo.fleet.plugins.module_utils._common.plain import plain as _plain
from ansible_collections.mo.fleet.plugins.module_utils._release.release import ReleaseEngine, ReleaseError
from ansible_collections.mo.fleet.plugins.module_utils._release.rollout import (
    RolloutError, client_entries, halt_decisions, wave_batches,
)

_ERRORS = (CatalogError, ReleaseError, RolloutError)


def _catalog(name, catalog):
    if not isinstance(catalog, Mapping):
        raise AnsibleFilterError(f"mo.fleet.{name}: catalog: must be a mapping (mo_fleet_catalog), "
                                 f"got {type(catalog).__name__}")
    return catalog


def release_sources(catalog, names, server_url):
    """release_sync entries (URI, suite, components, package lists) for deployments NAMES."""
    try:
        return client_entries(_plain(_catalog("release_sources", catalog)), _plain(names), str(server_url))
    except _ERRORS as exc:
        raise AnsibleFilterError(f"mo.fleet.release_sources: {exc}") from None


def release_waves(catalog, hosts, date=None, halted=None, already=None):
    """Hosts grouped by the day they became due (oldest first), hosts with nothing last."""
    day = datetime.date.today().isoformat() if date in (None, "") else date
    try:
        engine = ReleaseEngine(_plain(_catalog("release_waves", catalog)), halted=_plain(halted),
                               already=_plain(already))
        hosts = _plain(hosts)
        waves = engine.waves(hosts, day)
        plan = engine.plan(hosts, day)
    except _ERRORS as exc:
        raise AnsibleFilterError(f"mo.fleet.release_waves: {exc}") from None
    for wave in waves:
        wave["plan"] = {host: plan[host] for host in wave["hosts"]}
    return waves


def release_batches(waves, batch_size=0):
    """{'order': hosts in wave order, 'serial': batch sizes, 'batches': [...]} for a play's serial."""
    try:
        return wave_batches(_plain(waves), int(batch_size or 0))
    except (RolloutError, ValueError, TypeError) as exc:
        raise AnsibleFilterError(f"mo.fleet.release_batches: {exc}") from None


def release_halts(records, catalog, halted=None, threshold=None):
    """Deployments whose failure rate in this batch crosses their threshold."""
    try:
        return halt_decisions(_plain(_catalog("release_halts", catalog)), _plain(records),
                              halted=_plain(halted) or (), threshold=threshold)
    except _ERRORS as exc:
        raise AnsibleFilterError(f"mo.fleet.release_halts: {exc}") from None


class FilterModule:
    """mo.fleet rollout filters."""

    def filters(self):
        return {
            "release_sources": release_sources,
            "release_waves": release_waves,
            "release_batches": release_batches,
            "release_halts": release_halts,
        }
