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

Inside the engine the rule is decided in one place, ``ReleaseEngine._reach``: for a deployment
and the hosts grouped by the attributes the catalog names, the first day each host gets it
(exclusion, the earliest delay, buckets, halts and ``already`` applied there and nowhere else).
The plan of a day is the hosts whose first day is that day or before, the timeline is the first
days bucketed by day, a due date is one host's first day.

Catalog problems raise ``CatalogError`` (module_utils/_repo/catalog.py); other bad input (a malformed
date, hosts that are not a mapping of lists of strings) raises ``ReleaseError``.  Both are
``ValueError`` with one sentence naming the field.
"""

from __future__ import annotations

import datetime
import gc
import hashlib
import math
from bisect import bisect_left
from collections import defaultdict, deque
from collections.abc import Mapping
from itertools import filterfalse, repeat
from operator import and_, itemgetter, methodcaller, mod, or_

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


_ENCODE = methodcaller("encode", "utf-8")
_FIRST = itemgetter(0)
_STR_ONLY = frozenset({str})
_FOREVER = 1 << 40  # an "until" beyond every day: larger than any working-day index or ordinal


class _Deployment:
    """A compiled deployment: sets, per-attribute delays, start as an ordinal, its hash prefix."""

    __slots__ = ("name", "enabled", "start", "included", "excluded", "attr_delays", "modulus",
                 "halted", "prefix", "digest", "source")

    def __init__(self, dep, schedules, halted):
        self.name = dep["name"]
        self.source = dep
        self.enabled = bool(dep["enabled"])
        self.start = parse_date(dep["start_date"]).toordinal()
        self.included = frozenset(dep["included_attributes"])
        self.excluded = frozenset(dep["excluded_attributes"])
        self.halted = self.name in halted
        self.prefix = f"{self.name}:".encode("utf-8")
        copy = hashlib.sha256(self.prefix).copy

        def digest(host: bytes) -> bytes:
            """sha256(prefix + host): a copy of the hashed prefix is cheaper than hashing it again."""
            state = copy()
            state.update(host)
            return state.digest()

        self.digest = digest
        pairs = defaultdict(set)
        durations = {1}
        schedule = schedules.get(dep["schedule"]) if dep["schedule"] else None
        for delay in (schedule or {}).get("delays", ()):
            for attr in delay["attributes"]:
                pairs[attr].add((delay["delay"], delay["duration"]))
        self.attr_delays = {}
        for attr, options in pairs.items():
            # a delay is dominated when a fixed one (duration 1) is as early: its hosts have it by then
            fixed = min((d for d, dur in options if dur == 1), default=None)
            kept = sorted((d, dur) for d, dur in options
                          if fixed is None or d < fixed or (d == fixed and dur == 1))
            self.attr_delays[attr] = tuple(kept)
            durations.update(dur for _d, dur in kept)
        modulus = 1
        for dur in durations:
            modulus = modulus * dur // math.gcd(modulus, dur)
        self.modulus = modulus  # H % modulus keeps H % duration for every duration used


class _Groups:
    """Hosts grouped by the attributes of theirs that the catalog names.  The rule looks at
    nothing else, so every host of a group gets the same deployments but for buckets and halts.

    ``members[n]`` lists the hosts of group n, ``index`` maps an attribute to the set of group
    numbers whose hosts have it."""

    __slots__ = ("members", "index", "_encoded")

    def __init__(self, members, index):
        self.members = members
        self.index = index
        self._encoded = [None] * len(members)

    def encoded(self, number):
        """The UTF-8 names of group NUMBER's hosts (encoded once, for every deployment's hash)."""
        names = self._encoded[number]
        if names is None:
            names = self._encoded[number] = list(map(_ENCODE, self.members[number]))
        return names


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
        having = defaultdict(set)  # halted deployment -> hosts that already have it
        for host, names in self.already.items():
            for name in names & self.halted:
                having[name].add(host)
        self._having = {name: frozenset(hosts) for name, hosts in having.items()}
        self._hash_cache = {}

    # -- inputs ------------------------------------------------------------------------------
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

    def profiles(self, hosts) -> _Groups:
        """HOSTS ({host: [attributes]}, checked) grouped by the attributes the catalog names."""
        referenced = self.referenced
        groups = defaultdict(list)
        for host, attrs in self.checked(hosts):
            groups[referenced.intersection(attrs)].append(host)
        index = defaultdict(set)
        for number, profile in enumerate(groups):
            for attr in profile:
                index[attr].add(number)
        return _Groups(list(groups.values()), dict(index))

    def _deployment(self, name):
        dep = self.by_name.get(name)
        if dep is None:
            raise ReleaseError(f"field 'deployment': {name!r} is not a deployment of the catalog")
        return dep

    def _buckets(self, dep, groups, number):
        """[H mod dep.modulus for each host of group NUMBER]; sha256 runs once per (deployment,
        host) and engine (the engine keeps {host: value} per deployment).

        H is int(sha256("<deployment>:<host>").hexdigest(), 16); int.from_bytes of the digest is
        the same number.  The loop is a chain of C-level iterators (no Python bytecode per host
        but the digest's copy of the hashed prefix).
        """
        cache = self._hash_cache.get(dep.name)
        if cache is None:
            cache = self._hash_cache[dep.name] = {}
        hosts = groups.members[number]
        if hosts[0] in cache:  # hashed before (a group's hosts are hashed together): fill any gap
            missing = list(filterfalse(cache.__contains__, hosts))
            if missing:
                cache.update(zip(missing, map(mod, map(int.from_bytes, map(dep.digest, map(_ENCODE, missing)),
                                                       repeat("big")), repeat(dep.modulus))))
            return list(map(cache.__getitem__, hosts))
        # hashing a host twice gives the same value: no need to look for the others
        values = list(map(mod, map(int.from_bytes, map(dep.digest, groups.encoded(number)), repeat("big")),
                          repeat(dep.modulus)))
        cache.update(zip(hosts, values))
        return values

    # -- the rule ----------------------------------------------------------------------------
    def _reach(self, dep, groups, until, exact):
        """The rule for DEP over GROUPS: the first day each host gets it, up to UNTIL.

        Returns ``(whole, part)``: ``whole`` maps a group number to the day every host of the
        group has DEP from; ``part`` maps a group number to {host: day} for hosts that get it
        apart from (and, in a whole group, earlier than) the rest of their group.  A host missing
        from both does not get DEP by UNTIL.  Days are date ordinals, all <= UNTIL (None: no end).

        EXACT: every day is the host's first day (timeline, due dates).  Otherwise (the one-day
        plan) a day only promises "by UNTIL": a spread complete by UNTIL counts as one whole-group
        event and no host of it is hashed, ``part`` skips groups that are whole, and its values
        are flags in the order of the group's members (True: the host gets DEP by UNTIL), which
        the plan reads host by host without a lookup.

        This is the only place the rule is decided: enabled, exclusion, included attributes from
        the start date, each schedule delay ``workday_add(start, delay + bucket)``, the earliest
        one winning, and halts (a halted deployment stays only with hosts that already have it).
        """
        whole, part = {}, {}
        if not dep.enabled:
            return whole, part
        index, members = groups.index, groups.members
        start, add = dep.start, self.calendar.add
        excluded = set().union(*(index.get(attr, ()) for attr in dep.excluded))
        last = _FOREVER if until is None else self.calendar.last_index(start, until)
        terms, spreads = [], []  # (day, groups reached whole); (delay, duration, groups)
        if until is None or start <= until:
            terms.extend((start, index[attr]) for attr in dep.included if attr in index)
        for attr, pairs in dep.attr_delays.items():
            found = index.get(attr)
            if not found:
                continue
            for delay, duration in pairs:  # sorted; later ones cannot beat a whole one
                if delay > last:
                    break
                end = delay + duration - 1
                if duration == 1 or (end <= last and not exact):
                    terms.append((add(start, end), found))
                    break
                spreads.append((delay, duration, found))
        terms.sort(key=_FIRST)
        for day, found in terms:  # earliest first: setdefault keeps each group's first day
            deque(map(whole.setdefault, found, repeat(day)), maxlen=0)
        for number in excluded.intersection(whole):
            del whole[number]
        for delay, duration, found in spreads:
            allowance = min(duration - 1, last - delay)
            opens = add(start, delay)
            reached = None  # the values of H mod dep.modulus whose bucket is <= allowance
            for number in found:
                has = whole.get(number)
                if number in excluded or (has is not None and (has <= opens or not exact)):
                    continue
                hosts = members[number]
                buckets = self._buckets(dep, groups, number)
                got = part.get(number)
                if not exact:  # the hosts with bucket <= allowance, flagged in C
                    if reached is None:
                        reached = frozenset(r for r in range(dep.modulus) if r % duration <= allowance)
                    flags = list(map(reached.__contains__, buckets))
                    part[number] = flags if got is None else list(map(or_, got, flags))
                    continue
                if got is None:
                    got = part[number] = {}
                limit = _FOREVER if has is None else has
                for host, value in zip(hosts, buckets):
                    offset = value % duration
                    if offset <= allowance:
                        day = add(start, delay + offset)
                        if day < limit and day < got.get(host, _FOREVER):
                            got[host] = day
        if dep.halted:
            return {}, self._kept(dep, members, whole, part, exact)
        return whole, {number: got for number, got in part.items() if (got if exact else any(got))}

    def _kept(self, dep, members, whole, part, exact):
        """``part`` of halted DEP: of the hosts WHOLE and PART reach, those that already have it."""
        having = self._having.get(dep.name, frozenset())
        kept = {}
        for number in whole.keys() | part.keys():
            has, got = whole.get(number), part.get(number, {})
            if not exact:  # flags; whole and part are apart here
                mine = list(map(having.__contains__, members[number]))
                if got:
                    mine = list(map(and_, mine, got))
                if any(mine):
                    kept[number] = mine
                continue
            chosen = {host: got.get(host, has) for host in (members[number] if has is not None else got)
                      if host in having}
            if chosen:
                kept[number] = chosen
        return kept

    def _first_days(self, dep, groups, until):
        """{host: first day (ordinal)} for the hosts of GROUPS that get DEP by UNTIL (None: ever)."""
        whole, part = self._reach(dep, groups, until, exact=True)
        first = {}
        members = groups.members
        for number, day in whole.items():
            first.update(zip(members[number], repeat(day)))
        for got in part.values():  # earlier than their group's day
            first.update(got)
        return first

    # -- one day -----------------------------------------------------------------------------
    def plan(self, hosts, day):
        """{host: sorted deployment names} on DAY for every host of HOSTS: the hosts whose first
        day is DAY or before.

        Worked out once per group of hosts with the same relevant attributes (profiles()); only
        a spread in progress or a halt is decided host by host.  Every host gets its own list.
        """
        day = to_date(day, "date").toordinal()
        collecting = gc.isenabled()
        gc.disable()  # 100,000s of new lists hold no cycles: no collection pass needed meanwhile
        try:
            return self._plan(hosts, day)
        finally:
            if collecting:
                gc.enable()

    def _plan(self, hosts, day):
        groups = self.profiles(hosts)
        members = groups.members
        shared = [[] for _members in members]  # group -> names every host of it has
        partial = defaultdict(list)  # group -> [(name, flags by member)] decided host by host
        lookup, append = shared.__getitem__, list.append
        for dep in self.deployments:  # sorted by name, so every list comes out sorted
            whole, part = self._reach(dep, groups, day, exact=False)
            if whole:
                deque(map(append, map(lookup, whole), repeat(dep.name)), maxlen=0)
            for number, got in part.items():
                partial[number].append((dep.name, got))
        plan = dict.fromkeys(hosts)
        for number, (group, names) in enumerate(zip(members, shared)):
            chosen = partial.get(number)
            if not chosen:
                plan.update(zip(group, map(list, repeat(names, len(group)))))
                continue
            pieces, columns, low = [], [], 0  # names cut where the host-by-host ones go: no re-sorting
            for name, flags in chosen:
                cut = bisect_left(names, name, low)
                pieces.append((names[low:cut], name))
                columns.append(flags)
                low = cut
            rest = names[low:]
            for host, row in zip(group, zip(*columns)):  # row: the host's flag for each piece
                mine = []
                for (before, name), has in zip(pieces, row):
                    mine += before
                    if has:
                        mine.append(name)
                mine += rest
                plan[host] = mine
        return plan

    # -- a range of days ---------------------------------------------------------------------
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
        groups = self.profiles(hosts)
        members = groups.members
        days = [(o, datetime.date.fromordinal(o).isoformat()) for o in range(first, last + 1)]
        out = {}
        for dep in self.deployments:
            whole, part = self._reach(dep, groups, last, exact=True)
            additions = defaultdict(set)  # first day -> hosts (days before START fold into START)
            for number, day in whole.items():
                got = part.get(number)
                additions[max(day, first)].update(
                    filterfalse(got.__contains__, members[number]) if got else members[number])
            for got in part.values():
                for host, day in got.items():
                    additions[max(day, first)].add(host)
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
    def due_date(self, deployment, host, attrs):
        """The first day HOST (with ATTRS) gets DEPLOYMENT, as a date, or None if it never does."""
        dep = self._deployment(deployment)
        when = self._first_days(dep, self.profiles({host: attrs}), None).get(host)
        return None if when is None else datetime.date.fromordinal(when)

    def due_dates(self, hosts, day):
        """{host: {deployment: 'YYYY-MM-DD' first day}} for the deployments each host has on DAY
        (the plan of DAY, with each host's first day)."""
        day = to_date(day, "date").toordinal()
        groups = self.profiles(hosts)
        out = {host: {} for host in hosts}
        iso = {}
        for dep in self.deployments:
            for host, when in self._first_days(dep, groups, day).items():
                text = iso.get(when)
                if text is None:
                    text = iso[when] = datetime.date.fromordinal(when).isoformat()
                out[host][dep.name] = text
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
