"""The release engine against an oracle: DESIGN.md's rule read host by host, on seeded random worlds.

The oracle below is written for clarity, not speed: for every (deployment, host) it walks the
calendar one day at a time and takes the minimum over the ways the rule offers.  The engine
decides per group of hosts, prunes delays, hashes lazily and caches; plan, timeline, due dates
and waves must all come out as the oracle's first days read on each day.
"""

import datetime
import hashlib
import random

import pytest

from ansible_collections.mo.fleet.plugins.module_utils._release.release import ReleaseEngine

D = datetime.date
ONE = datetime.timedelta(days=1)
WINDOW = [D(2026, 11, 26) + i * ONE for i in range(35)]  # Thursday to the end of December
ATTRS = ["all", "canary", "web", "db", "HST-h0", "HST-h3", "NET-10.0.0.0/24", "loose"]


# -- the oracle ------------------------------------------------------------------------------------

def working(day, holidays):
    return day.weekday() < 5 and day not in holidays


def workday_add(start, n, holidays):
    """A non-working start moves to the next working day; then N working days forward."""
    day = start
    while not working(day, holidays):
        day += ONE
    while n:
        day += ONE
        if working(day, holidays):
            n -= 1
    return day


def first_day(catalog, dep, host, attrs, halted, already):
    """The first day HOST gets DEP (None: never), straight from the rule's text."""
    if not dep.get("enabled", True):
        return None
    if set(dep.get("excluded_attributes", [])) & attrs:
        return None  # exclusion always wins
    if dep["name"] in halted and dep["name"] not in already.get(host, ()):
        return None  # a halted deployment stays only where it already is
    holidays = {D.fromisoformat(h) for h in catalog.get("holidays", [])}
    start = D.fromisoformat(dep["start_date"])
    days = []
    if set(dep.get("included_attributes", [])) & attrs:
        days.append(start)
    schedule = next((s for s in catalog["schedules"] if s["name"] == dep.get("schedule")), None)
    for delay in (schedule or {}).get("delays", []):
        if set(delay["attributes"]) & attrs:
            digest = hashlib.sha256(f"{dep['name']}:{host}".encode("utf-8")).hexdigest()
            bucket = int(digest, 16) % delay.get("duration", 1)
            days.append(workday_add(start, delay["delay"] + bucket, holidays))
    return min(days, default=None)  # the earliest wins


class Oracle:
    def __init__(self, catalog, hosts, halted, already):
        self.deployments = sorted(d["name"] for d in catalog["deployments"])
        self.first = {(dep["name"], host): first_day(catalog, dep, host, set(attrs), halted, already)
                      for dep in catalog["deployments"] for host, attrs in hosts.items()}

    def has(self, name, host, day):
        when = self.first[name, host]
        return when is not None and when <= day

    def plan(self, hosts, day):
        return {host: [n for n in self.deployments if self.has(n, host, day)] for host in hosts}


# -- random worlds ---------------------------------------------------------------------------------

def world(seed):
    rng = random.Random(seed)
    holidays = rng.sample(WINDOW, rng.randint(0, 7))  # weekend holidays too: they change nothing
    schedules = []
    for number in range(rng.randint(0, 3)):
        delays = []
        for _delay in range(rng.randint(1, 4)):
            delay = {"delay": rng.randint(0, 8), "attributes": rng.sample(ATTRS, rng.randint(0, 3))}
            if rng.random() < 0.6:
                delay["duration"] = rng.randint(1, 5)
            delays.append(delay)
        schedules.append({"name": f"s{number}", "delays": delays})
    deployments = []
    for number in range(rng.randint(1, 6)):
        dep = {"name": f"d{number}", "start_date": rng.choice(WINDOW).isoformat(),
               "included_attributes": rng.sample(ATTRS, rng.choice([0, 0, 1, 2])),
               "excluded_attributes": rng.sample(ATTRS, rng.choice([0, 0, 1, 2]))}
        if rng.random() < 0.15:
            dep["enabled"] = False
        if schedules and rng.random() < 0.85:
            dep["schedule"] = rng.choice(schedules)["name"]
        deployments.append(dep)
    hosts = {}
    for number in range(rng.randint(0, 16)):
        attrs = set(rng.sample(ATTRS, rng.randint(0, 4))) | {"all", f"HST-h{number}"}
        hosts[f"h{number}"] = sorted(attrs)
    names = [d["name"] for d in deployments]
    halted = rng.sample(names, min(len(names), rng.choice([0, 0, 1, 2])))
    already = {host: rng.sample(names, rng.randint(0, len(names))) for host in hosts if rng.random() < 0.5}
    catalog = {"holidays": [h.isoformat() for h in holidays], "schedules": schedules, "deployments": deployments}
    return rng, catalog, hosts, halted, already


SEEDS = range(400)


@pytest.mark.parametrize("seed", SEEDS)
def test_engine_equals_the_oracle(seed):
    rng, catalog, hosts, halted, already = world(seed)
    oracle = Oracle(catalog, hosts, halted, already)
    engine = ReleaseEngine(catalog, halted=halted, already=already)  # one engine: its caches are shared

    days = rng.sample(WINDOW, 6) + [D(2027, 3, 1)]
    for day in days:
        # a part of the fleet first, then all of it: the engine's bucket cache is then partly warm
        some = dict(rng.sample(sorted(hosts.items()), len(hosts) // 2))
        assert engine.plan(some, day) == oracle.plan(some, day), (seed, day)
        assert engine.plan(hosts, day) == oracle.plan(hosts, day), (seed, day)
        assert ReleaseEngine(catalog, halted, already).plan(hosts, day) == oracle.plan(hosts, day)

        dues = engine.due_dates(hosts, day)
        for host in hosts:
            expected = {n: oracle.first[n, host].isoformat() for n in oracle.plan({host: 0}, day)[host]}
            assert dues[host] == expected, (seed, day, host)
        waves = {}
        for host, names in expected_waves(oracle, hosts, day).items():
            waves.setdefault(names, []).append(host)
        keys = sorted(k for k in waves if k is not None) + ([None] if None in waves else [])
        assert engine.waves(hosts, day) == [{"due": k, "hosts": sorted(waves[k])} for k in keys]

    for dep in catalog["deployments"]:
        for host, attrs in hosts.items():
            assert engine.due_date(dep["name"], host, attrs) == oracle.first[dep["name"], host], (seed, host)

    start = rng.choice(WINDOW)
    end = start + rng.randint(0, 20) * ONE
    span = [start + i * ONE for i in range((end - start).days + 1)]
    fresh = ReleaseEngine(catalog, halted=halted, already=already)
    having = fresh.timeline(hosts, start, end)
    counts = engine.timeline(hosts, start, end, detail="count")
    added = engine.timeline(hosts, start, end, detail="added")
    for name in oracle.deployments:
        for day in span:
            iso = day.isoformat()
            expected = sorted(h for h in hosts if oracle.has(name, h, day))
            assert having[name][iso] == expected, (seed, name, iso)
            assert counts[name][iso] == len(expected)
            new = sorted(h for h in expected if day == start or not oracle.has(name, h, day - ONE))
            assert added[name][iso] == new, (seed, name, iso)


def expected_waves(oracle, hosts, day):
    """host -> the newest first day among its deployments on DAY (None: it has none)."""
    out = {}
    for host in hosts:
        firsts = [oracle.first[n, host] for n in oracle.deployments if oracle.has(n, host, day)]
        out[host] = max(firsts).isoformat() if firsts else None
    return out


def test_the_worlds_reach_every_corner():
    """The seeds above do exercise what the rule is about (else the comparison proves little)."""
    seen = set()
    for seed in SEEDS:
        rng, catalog, hosts, halted, already = world(seed)
        oracle = Oracle(catalog, hosts, halted, already)
        holidays = {D.fromisoformat(h) for h in catalog["holidays"]}
        for dep in catalog["deployments"]:
            start = D.fromisoformat(dep["start_date"])
            if start.weekday() >= 5:
                seen.add("weekend start")
            if start in holidays and start.weekday() < 5:
                seen.add("holiday start")
            delays = next((s["delays"] for s in catalog["schedules"] if s["name"] == dep.get("schedule")), [])
            if any(d.get("duration", 1) > 1 for d in delays):
                seen.add("spread")
            for host, attrs in hosts.items():
                when = oracle.first[dep["name"], host]
                if set(dep["excluded_attributes"]) & set(attrs) and (
                        set(dep["included_attributes"]) & set(attrs)
                        or any(set(d["attributes"]) & set(attrs) for d in delays)):
                    seen.add("exclusion beats a match")
                if dep["name"] in halted:
                    seen.add("halted, kept" if when else "halted, dropped")
                if when and any(start <= h <= when for h in holidays if h.weekday() < 5):
                    seen.add("over a holiday")
                if when and len([d for d in delays if set(d["attributes"]) & set(attrs)]) > 1:
                    seen.add("several delays")
    assert seen >= {"weekend start", "holiday start", "spread", "exclusion beats a match", "halted, kept",
                    "halted, dropped", "over a holiday", "several delays"}, seen
