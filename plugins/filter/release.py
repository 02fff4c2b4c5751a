# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release filters: thin wrappers over module_utils/_release/release.py and release_report.py.

Documentation: the adjacent release_plan.yml, host_attributes.yml, release_timeline.yml,
release_timeline_text.yml, release_timeline_html.yml and release_catalog.yml.  (release_waves,
release_batches, release_halts and release_sources live in rollout.py, owned by the rollout.)
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.mo.fleet.plugins.module_utils._repo.catalog import CatalogError, load_catalog
from ansible_collections.mo.fleet.plugins.module_utils._release.release import (
    ReleaseEngine, ReleaseError, fleet_attributes, to_date,
)
from ansible_collections.mo.fleet.plugins.module_utils._release.release_report import (
    timeline_html, timeline_text,
)

DEFAULT_DAYS = 14


def _fail(name, exc):
    return AnsibleFilterError(f"mo.fleet.{name}: {exc}")


def _engine(name, catalog, halted, already):
    if not isinstance(catalog, Mapping):
        raise AnsibleFilterError(f"mo.fleet.{name}: catalog: must be a mapping (mo_fleet_catalog), "
                                 f"got {type(catalog).__name__}")
    try:
        return ReleaseEngine(catalog, halted=halted, already=already)
    except (CatalogError, ReleaseError) as exc:
        raise _fail(name, exc) from None


def _today(value):
    return datetime.date.today().isoformat() if value in (None, "") else value


def release_plan(catalog, hosts, date=None, halted=None, already=None):
    """{host: sorted deployment names} available on DATE (default today)."""
    engine = _engine("release_plan", catalog, halted, already)
    try:
        return engine.plan(hosts, _today(date))
    except ReleaseError as exc:
        raise _fail("release_plan", exc) from None


def release_timeline(catalog, hosts, start=None, end=None, halted=None, already=None, detail="hosts"):
    """{deployment: {day: hosts | count | added}} from START (default today) to END (START + 14 days)."""
    engine = _engine("release_timeline", catalog, halted, already)
    try:
        start = _today(start)
        if end in (None, ""):
            end = to_date(start, "start") + datetime.timedelta(days=DEFAULT_DAYS)
        return engine.timeline(hosts, start, end, detail=detail)
    except ReleaseError as exc:
        raise _fail("release_timeline", exc) from None


def release_catalog(catalog):
    """The validated catalog with every default filled in (plain types, ISO dates)."""
    if not isinstance(catalog, Mapping):
        raise AnsibleFilterError(f"mo.fleet.release_catalog: catalog: must be a mapping (mo_fleet_catalog), "
                                 f"got {type(catalog).__name__}")
    try:
        return load_catalog(catalog)
    except CatalogError as exc:
        raise _fail("release_catalog", exc) from None


def host_attributes(hostvars, groups, hosts=None):
    """{host: sorted attributes} from hostvars and groups (optionally only HOSTS)."""
    try:
        return fleet_attributes(hostvars, groups, hosts)
    except ReleaseError as exc:
        raise _fail("host_attributes", exc) from None


def _check_timeline(name, timeline):
    if not isinstance(timeline, Mapping) or not all(isinstance(v, Mapping) for v in timeline.values()):
        raise AnsibleFilterError(f"mo.fleet.{name}: timeline: must be the output of "
                                 "mo.fleet.release_timeline (deployment -> day -> hosts or count)")
    for dep, row in timeline.items():
        for day in row:
            try:
                to_date(day, "day")
            except ReleaseError:
                raise AnsibleFilterError(f"mo.fleet.{name}: timeline: deployment '{dep}': "
                                         f"{day!r} is not a YYYY-MM-DD day") from None


def release_timeline_text(timeline, show_hosts=True):
    """Lines 'NAME YYYY-MM-DD Dow: N host(s): a, b' for printing."""
    _check_timeline("release_timeline_text", timeline)
    return timeline_text(timeline, show_hosts=bool(show_hosts))


def release_timeline_html(timeline, title="mo.fleet release plan", holidays=None, subtitle=""):
    """A self-contained HTML page (inline SVG chart, table, hosts per day)."""
    _check_timeline("release_timeline_html", timeline)
    return timeline_html(timeline, title=str(title), holidays=list(holidays or ()), subtitle=str(subtitle))


class FilterModule:
    """mo.fleet release filters."""

    def filters(self):
        return {
            "release_plan": release_plan,
            "release_timeline": release_timeline,
            "host_attributes": host_attributes,
            "release_timeline_text": release_timeline_text,
            "release_timeline_html": release_timeline_html,
            "release_catalog": release_catalog,
        }
