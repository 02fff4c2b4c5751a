# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release rule: which host gets which deployment on which day (the ONE implementation).

Everything that decides or shows who gets a deployment calls this module: the filters
``mo.fleet.release_plan`` / ``release_timeline`` / ``host_attributes`` / ``release_catalog``
(and the rollout's ``release_waves``), ``playbooks/plan.yml``, the client role, the rollout and the status page.
Pure Python, standard library only.

The rule (issue 6, docs/release.md)
-----------------------------------
* Host attributes: every inventory group of the host (``all`` plays "ALL SYSTEMS"),
  ``HST-<inventory_hostname>``, ``NET-<network>/<prefix>`` for each non-loopback, non-link-local
  address when facts are known, and the strings in the host variable ``mo_fleet_attributes``.
* A deployment reaches a host on day D when it is enabled, none of its ``excluded_attributes`` is
  among the host's attributes, and either one of its ``included_attributes`` is and
  ``start_date <= D``, or some delay of its schedule lists one of the host's attributes and
  ``workday_add(start_date, delay + bucket) <= D``.  Exclusion wins; the earliest delay counts.
* ``workday_add(start, n)``: a non-working ``start`` first moves to the next working day, then
  steps ``n`` working days forward.  Working days: Monday to Friday minus the catalog's holidays.
* ``bucket = int(sha256("<deployment>:<host>").hexdigest(), 16) % duration`` (duration >= 1).
* Halted deployments (a rollout stopped them): a halted deployment reaches only the hosts that
  already have it (``already[host]`` lists the deployments a host has), and only while the rule
  above still gives it to them.  Hosts already past it keep it; nobody else gets it.

API for the client role, the rollout and reports
------------------------------------------------
Dates are ``datetime.date`` or ``'YYYY-MM-DD'`` strings; ``hosts`` maps host name -> list of
attribute strings (what :func:`fleet_attributes` / the ``host_attributes`` filter build);
``halted`` is any collection of deployment names (a set, a list, or a mapping name -> details,
e.g. the controller's release state); ``already`` maps host -> deployment names it has.

* ``workday_add(start, n, holidays=())`` -> date; ``is_workday(day, holidays=())`` -> bool
* ``bucket(deployment, host, duration)`` -> int in ``range(duration)``
* ``host_attributes(host, groups, hostvars=None)`` -> sorted attribute list of one host
* ``fleet_attributes(hostvars, groups, hosts=None)`` -> {host: sorted attributes}
* ``release_plan(catalog, hosts, day, halted=None, already=None)`` -> {host: sorted deployments}
* ``release_timeline(catalog, hosts, start, end, halted=None, already=None, detail='hosts')``
  -> {deployment: {'YYYY-MM-DD': sorted hosts | count | hosts added that day}}, every enabled or
  disabled deployment, every calendar day from start to end inclusive.
* ``due_date(catalog, deployment, host, host_attrs, halted=None, already=None)`` -> date | None:
  the first day the host gets the deployment (None: never, e.g. excluded, disabled, halted).
* ``rollout_waves(catalog, hosts, day, halted=None, already=None)`` -> [{'due': 'YYYY-MM-DD' or
  None, 'hosts': [...]}], hosts ordered by the day their deployment set last grew (the newest
  due date among their deployments on DAY), oldest first, so canaries precede later waves;
  hosts with no deployment on DAY come last with ``due: None``.
* ``halt_threshold(catalog, deployment)`` -> percent; ``should_halt(threshold, failed, total)``
  -> True when ``failed / total * 100 > threshold`` (0 halts on the first failure).
* ``ReleaseEngine(catalog, halted=None, already=None)`` compiles the catalog once; its methods
  ``plan``, ``timeline``, ``due_date``, ``due_dates``, ``waves`` are what the functions above
  call.  Reuse one engine for many days or hosts: workday and bucket computations are cached.

Catalog problems raise ``CatalogError`` (module_utils/_repo/catalog.py); other bad input (a malformed
date, hosts that are not a mapping of lists of strings) raises ``ReleaseError``.  Both are
``ValueError`` with one sentence naming the field.
"""

from __future__ import annotations

import datetime
import hashlib
import math
from collections import defaultdict, deque
from collections.abc import Mapping
from itertools import compress, filterfalse, repeat
from operator import le, methodcaller, mod

from ansible_collections.mo.fleet.plugins.module_utils._common import validate as _validate
from ansible_collections.mo.fleet.plugins.module_utils._repo.catalog import (
    CatalogError, load_catalog, parse_date)  # CatalogError: in __all__

from ansible_collections.mo.fleet.plugins.module_utils._release.calendar import (  # noqa: F401 pylint: disable=unused-import
    Calendar, is_workday, ReleaseError, to_date, workday_add)
from ansible_collections.mo.fleet.plugins.module_utils._release.host_attributes import (  # noqa: F401 pylint: disable=unused-import
    fleet_attributes, host_attributes, network_attributes)


__all__ = [
    "CatalogError", "ReleaseError", "Calendar", "ReleaseEngine", "workday_add", "is_workday",
    "bucket", "host_attributes", "fleet_attributes", "network_attributes", "release_plan",
    "release_timeline", "due_date", "rollout_waves", "halt_threshold", "should_halt", "to_date",
]


def bucket(deployment, host, duration):
    """int(sha256("<deployment>:<host>").hexdigest(), 16) % duration -- the host's day in a spread."""
    if isinstance(duration, bool) or not isinstance(duration, int) or duration < 1:
        raise ReleaseError(f"field 'duration': {duration!r} is not an integer >= 1")
    if duration == 1:
        return 0
    digest = hashlib.sha256(f"{deployment}:{host}".encode("utf-8")).digest()
    return int.from_bytes(digest, "big") % duration


# --------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------

def _names(halted):
    """HALTED as a frozenset of deployment names; ReleaseError (one sentence) for anything else."""
    if halted is None:
        return frozenset()
    if isinstance(halted, str):
        return frozenset([halted])
    if not isinstance(halted, (list, tuple, set, frozenset, Mapping)):
        raise ReleaseError(f"field 'halted': must be a list of deployment names or the release state's "
                           f"mapping of them, not {_validate.describe(halted)}")
    for name in halted:
        if not isinstance(name, str):
            raise ReleaseError(f"field 'halted': {name!r} is not a deployment name")
    return frozenset(halted)


def _already(already):
    if already is None:
        return {}
    if not isinstance(already, Mapping):
        raise ReleaseError("field 'already': must be a mapping of host name to deployment names")
    out = {}
    for host, names in already.items():
        if isinstance(names, str) or not isinstance(names, (list, tuple, set, frozenset)):
            raise ReleaseError(f"field 'already': host '{host}' must list deployment names")
        out[str(host)] = frozenset(str(n) for n in names)
    return out


_DIGEST = methodcaller("digest")
_ENCODE = methodcaller("encode", "utf-8")
_STR_ONLY = frozenset({str})


class _Deployment:
    """A compiled deployment: sets, per-attribute delays, start as an ordinal."""

    __slots__ = ("name", "enabled", "start", "included", "excluded", "attr_delays", "modulus",
                 "halted", "prefix", "source")

    def __init__(self, dep, schedules, halted):
        self.name = dep["name"]
        self.source = dep
        self.enabled = bool(dep["enabled"])
        self.start = parse_date(dep["start_date"]).toordinal()
        self.included = frozenset(dep["included_attributes"])
        self.excluded = frozenset(dep["excluded_attributes"])
        self.halted = self.name in halted
        self.prefix = f"{self.name}:".encode("utf-8")
        pairs = defaultdict(set)
        durations = {1}
        schedule = schedules.get(dep["schedule"]) if dep["schedule"] else None
        for delay in (schedule or {}).get("delays", ()):
            for attr in delay["attributes"]:
                pairs[attr].add((delay["delay"], delay["duration"]))
        self.attr_delays = {}
        for attr, options in pairs.items():
            fixed = min((d for d, dur in options if dur == 1), default=None)
            kept = sorted((d, dur) for d, dur in options
                          if fixed is None or d < fixed or (d == fixed and dur == 1))
            self.attr_delays[attr] = tuple(kept)
            durations.update(dur for _d, dur in kept)
        modulus = 1
        for dur in durations:
            modulus = modulus * dur // math.gcd(modulus, dur)
        self.modulus = modulus  # H % modulus keeps H % duration for every duration used


class ReleaseEngine:
    """The release rule compiled for one catalog (and one set of halted deployments)."""

    def __init__(self, catalog, halted=None, already=None):
        self.catalog = load_catalog(catalog)
        self.calendar = Calendar(self.catalog["holidays"])
        self.halted = _names(halted)
        self.already = _already(already)
        schedules = {s["name"]: s for s in self.catalog["schedules"]}
        self.deployments = sorted((_Deployment(d, schedules, self.halted)
                                   for d in self.catalog["deployments"]), key=lambda d: d.name)
        self.by_name = {d.name: d for d in self.deployments}
        self.referenced = frozenset().union(*((d.included | d.excluded | set(d.attr_delays))
                                              for d in self.deployments))
        self._hash_cache = {}

    # -- inputs ------------------------------------------------------------------------------
    @staticmethod
    def index(hosts):
        """{attribute: set of hosts} for HOSTS ({host: [attributes]}); ReleaseError if malformed."""
        index = defaultdict(set)
        for host, attrs in ReleaseEngine.checked(hosts):
            for attr in attrs:
                index[attr].add(host)
        return index

    @staticmethod
    def checked(hosts):
        """HOSTS' (host, attributes) items, each checked (ReleaseError in one sentence)."""
        if not isinstance(hosts, Mapping):
            raise ReleaseError("field 'hosts': must be a mapping of host name to a list of attributes")
        for host, attrs in hosts.items():
            if not isinstance(host, str):
                raise ReleaseError(f"field 'hosts': host name {host!r} is not a string")
            if isinstance(attrs, str) or not isinstance(attrs, (list, tuple, set, frozenset)):
                raise ReleaseError(f"field 'hosts': host '{host}' must map to a list of attributes")
            if not _STR_ONLY.issuperset(map(type, attrs)):  # the common case checked in C
                for attr in attrs:
                    if not isinstance(attr, str):
                        raise ReleaseError(f"field 'hosts': host '{host}': attribute {attr!r} is not a string")
            yield host, attrs

    def _deployment(self, name):
        dep = self.by_name.get(name)
        if dep is None:
            raise ReleaseError(f"field 'deployment': {name!r} is not a deployment of the catalog")
        return dep

    def _buckets(self, dep, hosts):
        """{host: H mod dep.modulus} covering HOSTS; sha256 runs once per (deployment, host).

        H is int(sha256("<deployment>:<host>").hexdigest(), 16); int.from_bytes of the digest is
        the same number.  The loop is a chain of C-level iterators (no Python bytecode per host).
        """
        cache = self._hash_cache.get(dep.name)
        if cache is None:
            cache = self._hash_cache[dep.name] = {}
        missing = list(filterfalse(cache.__contains__, hosts)) if cache else list(hosts)
        if missing:
            digests = map(_DIGEST, map(hashlib.sha256, map(dep.prefix.__add__, map(_ENCODE, missing))))
            values = map(mod, map(int.from_bytes, digests, repeat("big")), repeat(dep.modulus))
            cache.update(zip(missing, values))
        return cache

    def _spread_reached(self, dep, hosts, duration, allowance):
        """The HOSTS (a list) whose bucket for DEP over DURATION is at most ALLOWANCE, the
        selection running in C."""
        buckets = self._buckets(dep, hosts)
        return compress(hosts, map(le, map(mod, map(buckets.__getitem__, hosts), repeat(duration)),
                                   repeat(allowance)))

    def _allowed(self, dep, hosts):
        if not dep.halted:
            return hosts
        already = self.already
        return {h for h in hosts if dep.name in already.get(h, ())}

    # -- one day -----------------------------------------------------------------------------
    def profiles(self, hosts):
        """Hosts grouped by the attributes of theirs that the catalog names: ([group's hosts],
        {attribute: set of group numbers}).  The rule looks at nothing else, so every host of a
        group gets the same deployments but for buckets and halts."""
        referenced = self.referenced
        groups = defaultdict(list)
        for host, attrs in self.checked(hosts):
            groups[referenced.intersection(attrs)].append(host)
        members = list(groups.values())
        group_index = defaultdict(set)
        for number, profile in enumerate(groups):
            for attr in profile:
                group_index[attr].add(number)
        return members, group_index

    def _reached_groups(self, dep, members, group_index, day):
        """DEP on DAY over host groups: (numbers of groups reached whole, {group: hosts reached})."""
        whole, part = set(), {}
        if not dep.enabled:
            return whole, part
        excluded = set().union(*(group_index.get(attr, ()) for attr in dep.excluded))
        if dep.start <= day:
            whole.update(*(group_index.get(attr, ()) for attr in dep.included))
        last = self.calendar.last_index(dep.start, day)
        if last >= 0:
            for attr, pairs in dep.attr_delays.items():
                found = group_index.get(attr)
                if not found:
                    continue
                for delay, duration in pairs:
                    if delay > last:
                        break
                    if delay + duration - 1 <= last:
                        whole |= found
                        break
                    for number in found - whole - excluded:
                        part.setdefault(number, set()).update(
                            self._spread_reached(dep, members[number], duration, last - delay))
        whole -= excluded
        part = {number: hosts for number, hosts in part.items()
                if hosts and number not in whole and number not in excluded}
        if dep.halted:
            for number in whole:
                part[number] = set(members[number])
            whole = set()
            part = {number: allowed for number, allowed in
                    ((number, self._allowed(dep, hosts)) for number, hosts in part.items()) if allowed}
        return whole, part

    def plan(self, hosts, day):
        """{host: sorted deployment names} on DAY for every host of HOSTS.

        Worked out once per group of hosts with the same relevant attributes (profiles()); only
        a spread in progress or a halt is decided host by host.
        """
        day = to_date(day, "date").toordinal()
        members, group_index = self.profiles(hosts)
        shared = [[] for _members in members]
        own = defaultdict(list)  # host -> names decided for that host alone
        lookup, append = shared.__getitem__, list.append
        for dep in self.deployments:  # sorted by name, so every list comes out sorted
            whole, part = self._reached_groups(dep, members, group_index, day)
            deque(map(append, map(lookup, whole), repeat(dep.name)), maxlen=0)
            for chosen in part.values():
                deque(map(append, map(own.__getitem__, chosen), repeat(dep.name)), maxlen=0)
        plan = dict.fromkeys(hosts)
        for group, names in zip(members, shared):
            for host in group:
                extra = own.get(host)
                plan[host] = sorted(names + extra) if extra else list(names)
        return plan

    # -- a range of days ---------------------------------------------------------------------
    def _additions(self, dep, index, end):
        """{ordinal: set of hosts that get DEP that day} for every day up to END (an ordinal)."""
        if not dep.enabled:
            return {}
        events = []
        if dep.start <= end:
            for attr in dep.included:
                if attr in index:
                    events.append((dep.start, index[attr]))
        add = self.calendar.add
        for attr, pairs in dep.attr_delays.items():
            found = index.get(attr)
            if not found:
                continue
            for delay, duration in pairs:
                first = add(dep.start, delay)
                if first > end:
                    break
                if duration == 1:
                    events.append((first, found))
                    continue
                buckets = self._buckets(dep, found)
                spread = defaultdict(list)
                for host in found:
                    spread[buckets[host] % duration].append(host)
                for offset, members in spread.items():
                    when = add(dep.start, delay + offset)
                    if when <= end:
                        events.append((when, members))
        events.sort(key=lambda event: event[0])
        seen = set()
        for attr in dep.excluded:
            if attr in index:
                seen |= index[attr]
        additions = {}
        for when, members in events:
            new = set(members) - seen if not isinstance(members, set) else members - seen
            if dep.halted:
                new = self._allowed(dep, new)
            if new:
                seen |= new
                additions.setdefault(when, set()).update(new)
        return additions

    def timeline(self, hosts, start, end, detail="hosts"):
        """{deployment: {'YYYY-MM-DD': value}} for every day START..END inclusive.

        DETAIL 'hosts': sorted hosts having it (lists may be shared by consecutive days with no
        change: treat them as read-only); 'count': how many; 'added': sorted hosts getting it
        that day (the first day also lists hosts that got it before START).
        """
        if detail not in ("hosts", "count", "added"):
            raise ReleaseError(f"field 'detail': {detail!r} is not one of 'hosts', 'count', 'added'")
        first = to_date(start, "start").toordinal()
        last = to_date(end, "end").toordinal()
        if last < first:
            raise ReleaseError(f"field 'end': {datetime.date.fromordinal(last).isoformat()} is before "
                               f"the start {datetime.date.fromordinal(first).isoformat()}")
        index = self.index(hosts)
        days = [(o, datetime.date.fromordinal(o).isoformat()) for o in range(first, last + 1)]
        out = {}
        for dep in self.deployments:
            additions = self._additions(dep, index, last)
            before = set()
            for when in [w for w in additions if w < first]:
                before |= additions.pop(when)
            if before:
                additions[first] = additions.get(first, set()) | before
            row = out[dep.name] = {}
            if detail == "added":
                for ordinal, iso in days:
                    row[iso] = sorted(additions.get(ordinal, ()))
                continue
            current, count = [], 0
            for ordinal, iso in days:
                new = additions.get(ordinal)
                if new:
                    count += len(new)
                    if detail == "hosts":
                        current = sorted(current + sorted(new))  # merge of two sorted runs
                row[iso] = current if detail == "hosts" else count
        return out

    # -- one host ----------------------------------------------------------------------------
    def due_ordinal(self, dep, host, attrs):
        if not dep.enabled:
            return None
        attrs = attrs if isinstance(attrs, (set, frozenset)) else set(attrs)
        if dep.excluded & attrs:
            return None
        if dep.halted and dep.name not in self.already.get(host, ()):
            return None
        best = dep.start if dep.included & attrs else None
        steps = None
        for attr in attrs:
            pairs = dep.attr_delays.get(attr)
            if not pairs:
                continue
            for delay, duration in pairs:
                n = delay
                if duration > 1:
                    n += self._buckets(dep, (host,))[host] % duration
                steps = n if steps is None else min(steps, n)
        if steps is not None:
            when = self.calendar.add(dep.start, steps)
            best = when if best is None else min(best, when)
        return best

    def due_date(self, deployment, host, attrs):
        """The first day HOST (with ATTRS) gets DEPLOYMENT, as a date, or None if it never does."""
        when = self.due_ordinal(self._deployment(deployment), host, attrs)
        return None if when is None else datetime.date.fromordinal(when)

    def due_dates(self, hosts, day):
        """{host: {deployment: 'YYYY-MM-DD' first day}} for the deployments each host has on DAY."""
        plan = self.plan(hosts, day)
        out = {}
        for host, names in plan.items():
            attrs = set(hosts[host])
            out[host] = {name: datetime.date.fromordinal(self.due_ordinal(self.by_name[name], host, attrs))
                         .isoformat() for name in names}
        return out

    def waves(self, hosts, day):
        """Hosts grouped by the newest due date among their deployments on DAY, oldest first."""
        groups = defaultdict(list)
        for host, dues in self.due_dates(hosts, day).items():
            groups[max(dues.values()) if dues else None].append(host)
        keys = sorted(k for k in groups if k is not None) + ([None] if None in groups else [])
        return [{"due": key, "hosts": sorted(groups[key])} for key in keys]


# --------------------------------------------------------------------------------------------
# Function API (what the filters call)
# --------------------------------------------------------------------------------------------

def release_plan(catalog, hosts, day, halted=None, already=None):
    """{host: sorted deployment names} available to each host on DAY."""
    return ReleaseEngine(catalog, halted, already).plan(hosts, day)


def release_timeline(catalog, hosts, start, end, halted=None, already=None, detail="hosts"):
    """{deployment: {'YYYY-MM-DD': hosts having it | count | hosts added}} from START to END."""
    return ReleaseEngine(catalog, halted, already).timeline(hosts, start, end, detail)


def due_date(catalog, deployment, host, host_attrs, halted=None, already=None):
    """The first day HOST gets DEPLOYMENT (a date), or None if it never does."""
    return ReleaseEngine(catalog, halted, already).due_date(deployment, host, host_attrs)


def rollout_waves(catalog, hosts, day, halted=None, already=None):
    """Hosts grouped in waves for DAY (see ReleaseEngine.waves)."""
    return ReleaseEngine(catalog, halted, already).waves(hosts, day)


def halt_threshold(catalog, deployment):
    """The deployment's halt_after_failures percentage (its own, else the catalog's, else 0)."""
    norm = load_catalog(catalog)
    for dep in norm["deployments"]:
        if dep["name"] == deployment:
            return dep["halt_after_failures"]
    raise ReleaseError(f"field 'deployment': {deployment!r} is not a deployment of the catalog")


def should_halt(threshold, failed, total):
    """True when FAILED of TOTAL hosts is more than THRESHOLD percent (0: any failure halts)."""
    return total > 0 and failed * 100 > threshold * total
