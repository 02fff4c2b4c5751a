# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The status site filter: a thin wrapper over module_utils/_repo/status_site.py (doc: release_status_site.yml)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.mo.fleet.plugins.module_utils._repo.catalog import CatalogError
from ansible_collections.mo.fleet.plugins.module_utils._common.plain import plain as _plain
from ansible_collections.mo.fleet.plugins.module_utils._release.release import ReleaseError
from ansible_collections.mo.fleet.plugins.module_utils._release.rollout import RolloutError
from ansible_collections.mo.fleet.plugins.module_utils._repo.status_site import build_site, default_range


def release_status_site(catalog, hosts, records=None, halted=None, repo=None, today=None, start=None,
                        end=None, generated=None):
    """{'index.html': ..., 'status.json': ...} of the status site."""
    if not isinstance(catalog, Mapping):
        raise AnsibleFilterError("mo.fleet.release_status_site: catalog: must be a mapping (mo_fleet_catalog)")
    today = today or datetime.date.today().isoformat()
    try:
        first, last = default_range(today)
        return build_site(_plain(catalog), _plain(hosts), _plain(records or {}), _plain(halted or {}),
                          _plain(repo or {}), start or first, end or last,
                          generated or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                          today=today)
    except (CatalogError, ReleaseError, RolloutError) as exc:
        raise AnsibleFilterError(f"mo.fleet.release_status_site: {exc}") from None


class FilterModule:
    """mo.fleet status site filter."""

    def filters(self):
        return {"release_status_site": release_status_site}
