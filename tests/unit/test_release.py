"""The release rule: working days, buckets, attributes, plan, timeline, halts (hand-made + properties)."""

import datetime
import hashlib
from collections import Counter

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ansible_collections.mo.fleet.plugins.module_utils._release.release import (
    Calendar, CatalogError, ReleaseEngine, ReleaseError, bucket, due_date, fleet_attributes,
    halt_threshold, host_attributes, is_workday, network_attributes, release_plan, release_timeline,
    rollout_waves, should_halt, workday_add,
)

D = datetime.date
ONE = datetime.timedelta(days=1)


# -- a naive reimplementation, written straight from the issue text ------------------------------

def naive_workday_add(start, n, holidays):
    day = start
    while day.weekday() >= 5 or day in holidays:
        day += ONE
    steps = 0
    while steps < n:
        day += ONE
        if day.weekday() < 5 and day not in holidays:
            steps += 1
    return day


def naive_reaches(catalog, dep, host, attrs, day):
    holidays = {D.fromisoformat(h) for h in catalog.get("holidays", [])}
    if not dep.get("enabled", True):
        return False
    if set(dep.get("excluded_attributes", [])) & attrs:
        return False
    start = D.fromisoformat(dep["start_date"])
    if set(dep.get("included_attributes", [])) & attrs and start <= day:
        return True
    schedules = {s["name"]: s for s in catalog.get("schedules", [])}
    for delay in schedules[dep["schedule"]]["delays"] if dep.get("schedule") else []:
        if set(delay["attributes"]) & attrs:
            b = int(hashlib.sha256(f"{dep['name']}:{host}".encode()).hexdigest(), 16) % delay.get("duration", 1)
            if naive_workday_add(start, delay["delay"] + b, holidays) <= day:
                return True
    return False


def naive_plan(catalog, hosts, day):
    return {host: sorted(dep["name"] for dep in catalog["deployments"]
                         if naive_reaches(catalog, dep, host, set(attrs), day))
            for host, attrs in hosts.items()}


# -- workday_add ---------------------------------------------------------------------------------

@pytest.mark.parametrize("start, n, holidays, expected", [
    ("2026-11-23", 0, [], "2026-11-23"),   # Monday + 0
    ("2026-11-27", 1, [], "2026-11-30"),   # Friday + 1 = Monday
    ("2026-11-27", 0, [], "2026-11-27"),   # Friday + 0
    ("2026-11-28", 0, [], "2026-11-30"),   # Saturday start counts from Monday
    ("2026-11-29", 0, [], "2026-11-30"),   # Sunday start: Monday (migasfree serves Tuesday)
    ("2026-11-29", 1, [], "2026-12-01"),   # Sunday + 1 = Tuesday
    ("2026-11-28", 1, [], "2026-12-01"),   # Saturday + 1 = Tuesday
    ("2026-11-27", 5, [], "2026-12-04"),   # Friday + 5 = next Friday
    ("2026-11-23", 10, [], "2026-12-07"),  # two weekends
    ("2026-12-24", 1, ["2026-12-25"], "2026-12-28"),                 # over a Friday holiday
    ("2026-12-25", 0, ["2026-12-25"], "2026-12-28"),                 # start on a holiday
    ("2026-12-24", 0, ["2026-12-24", "2026-12-25"], "2026-12-28"),  # consecutive holidays
    ("2026-12-04", 2, ["2026-12-08"], "2026-12-09"),                 # Fri + 2 over a Tuesday holiday
    ("2026-12-04", 2, ["2026-12-05", "2026-12-06"], "2026-12-08"),  # weekend holidays change nothing
    ("2026-12-31", 1, ["2027-01-01"], "2027-01-04"),                 # over New Year
])
def test_workday_add_hand_made(start, n, holidays, expected):
    assert workday_add(start, n, holidays) == D.fromisoformat(expected)
    assert workday_add(D.fromisoformat(start), n, [D.fromisoformat(h) for h in holidays]) \
        == D.fromisoformat(expected)


def test_workday_add_rejects_bad_input():
    with pytest.raises(ReleaseError, match=r"^field 'n': -1 is not an integer >= 0$"):
        workday_add("2026-12-01", -1)
    with pytest.raises(ReleaseError, match=r"^field 'start': '2026-02-30' is not a valid YYYY-MM-DD date$"):
        workday_add("2026-02-30", 1)


def test_is_workday():
    assert is_workday("2026-11-27")
    assert not is_workday("2026-11-28")
    assert not is_workday("2026-11-29")
    assert not is_workday("2026-12-25", ["2026-12-25"])


DATES = st.dates(min_value=D(2020, 1, 1), max_value=D(2030, 12, 31))
HOLIDAYS = st.sets(st.dates(min_value=D(2025, 12, 1), max_value=D(2026, 3, 1)), max_size=25)


@settings(max_examples=400, deadline=None)
@given(st.dates(min_value=D(2025, 11, 1), max_value=D(2026, 3, 1)), st.integers(0, 60), HOLIDAYS)
def test_workday_add_properties(start, n, holidays):
    result = workday_add(start, n, holidays)
    assert result.weekday() < 5 and result not in holidays           # a working day
    assert result >= start
    assert workday_add(start, n + 1, holidays) > result                # strictly monotonic in n
    assert result == naive_workday_add(start, n, holidays)
    cal = Calendar(holidays)                                           # last_index is its inverse
    assert cal.last_index(start.toordinal(), result.toordinal()) == n
    assert cal.last_index(start.toordinal(), result.toordinal() - 1) == n - 1


@settings(max_examples=200, deadline=None)
@given(DATES, st.integers(0, 400))
def test_workday_add_without_holidays_matches_naive_far_away(start, n):
    assert workday_add(start, n) == naive_workday_add(start, n, set())


# -- bucket --------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20), st.integers(1, 50))
def test_bucket_in_range_and_literal(deployment, host, duration):
    value = bucket(deployment, host, duration)
    assert 0 <= value < duration
    assert value == int(hashlib.sha256(f"{deployment}:{host}".encode()).hexdigest(), 16) % duration


def test_bucket_spreads_uniformly():
    counts = Counter(bucket("firefox-12", f"pc{i:04d}", 5) for i in range(5000))
    assert sorted(counts) == [0, 1, 2, 3, 4]
    assert all(900 <= c <= 1100 for c in counts.values()), counts


def test_bucket_rejects_zero_duration():
    with pytest.raises(ReleaseError):
        bucket("a", "b", 0)


# -- attributes ------------------------------------------------------------------------------------

FACTS = {  # trimmed from a real `setup` run on the controller
    "interfaces": ["lo", "eth0", "podman1", "veth0", "br-1a2b"],
    "lo": {"device": "lo", "ipv4": {"address": "127.0.0.1", "netmask": "255.0.0.0", "network": "127.0.0.0",
                                    "prefix": "8"}, "ipv6": [{"address": "::1", "prefix": "128", "scope": "host"}]},
    "eth0": {"device": "eth0", "ipv4": {"address": "192.0.2.2", "broadcast": "192.0.2.255",
                                        "netmask": "255.255.255.0", "network": "192.0.2.0", "prefix": "24"},
             "ipv4_secondaries": [{"address": "198.51.100.7", "netmask": "255.255.255.128"}],
             "ipv6": [{"address": "fd00::2", "prefix": "64", "scope": "global"},
                      {"address": "fe80::fc:ff:fe00:1", "prefix": "64", "scope": "link"}]},
    "podman1": {"device": "podman1", "ipv4": {"address": "10.89.0.1", "netmask": "255.255.255.0",
                                              "network": "10.89.0.0", "prefix": "24"}},
    "veth0": {"device": "veth0", "ipv4": None, "ipv6": [{"address": "fe80::94c7:94ff:fe81:560a", "prefix": "64"}]},
    "br_1a2b": {"device": "br-1a2b", "ipv4": {"address": "172.20.5.9", "netmask": "255.255.0.0"}},
    "default_ipv4": {"address": "192.0.2.2", "interface": "eth0", "netmask": "255.255.255.0"},
}
NETS = ["NET-10.89.0.0/24", "NET-172.20.0.0/16", "NET-192.0.2.0/24", "NET-198.51.100.0/25", "NET-fd00::/64"]


def test_network_attributes_from_ansible_facts():
    assert network_attributes(FACTS) == NETS
    assert network_attributes({"ansible_facts": FACTS}) == NETS


def test_network_attributes_from_injected_fact_variables():
    hostvars = {"ansible_" + k: v for k, v in FACTS.items()}
    assert network_attributes(hostvars) == NETS
    assert network_attributes({"inventory_hostname": "x"}) == []


def test_host_attributes():
    hv = {"ansible_facts": FACTS, "mo_fleet_attributes": ["CTX-PERSONAL", "canary"]}
    assert host_attributes("pc1", ["web", "canary"], hv) == sorted(
        ["all", "web", "canary", "HST-pc1", "CTX-PERSONAL"] + NETS)
    assert host_attributes("pc2", []) == ["HST-pc2", "all"]


def test_fleet_attributes_from_hostvars_and_groups():
    groups = {"all": ["c1", "w1", "x"], "ungrouped": ["x"], "canary": ["c1"], "web": ["w1", "c1"]}
    hostvars = {"c1": {"mo_fleet_attributes": ["EXTRA"]}, "w1": {}, "x": {}}
    assert fleet_attributes(hostvars, groups) == {
        "c1": ["EXTRA", "HST-c1", "all", "canary", "web"],
        "w1": ["HST-w1", "all", "web"],
        "x": ["HST-x", "all", "ungrouped"],
    }
    assert fleet_attributes(hostvars, groups, hosts=["w1"]) == {"w1": ["HST-w1", "all", "web"]}


@pytest.mark.parametrize("extra, message", [
    ("canary", "host 'c1': field 'mo_fleet_attributes': must be a list of strings"),
    (["ok", 3], "host 'c1': field 'mo_fleet_attributes[1]': 3 is not a non-empty string"),
])
def test_bad_mo_fleet_attributes(extra, message):
    with pytest.raises(ReleaseError) as info:
        fleet_attributes({"c1": {"mo_fleet_attributes": extra}}, {"all": ["c1"]})
    assert str(info.value) == message


# -- the rule on hand-made catalogs ----------------------------------------------------------------

def catalog(*deployments, holidays=(), delays=None):
    return {
        "holidays": list(holidays),
        "schedules": [{"name": "waves", "delays": delays or [
            {"delay": 0, "attributes": ["canary"]},
            {"delay": 2, "attributes": ["web"]},
            {"delay": 5, "attributes": ["all"]},
        ]}],
        "deployments": list(deployments),
    }


HOSTS = {
    "c1": ["all", "canary", "HST-c1"],
    "w1": ["all", "web", "HST-w1"],
    "w2": ["all", "web", "canary", "HST-w2"],
    "d1": ["all", "db", "HST-d1"],
    "d2": ["all", "db", "HST-d2", "NET-10.0.0.0/24"],
}


def who(cat, day, hosts=None, name="app"):
    return sorted(h for h, deps in release_plan(cat, hosts or HOSTS, day).items() if name in deps)


def test_schedule_waves_skip_weekends():
    cat = catalog({"name": "app", "start_date": "2026-12-04", "schedule": "waves"})  # a Friday
    assert who(cat, "2026-12-03") == []
    assert who(cat, "2026-12-04") == ["c1", "w2"]                  # delay 0: Friday
    assert who(cat, "2026-12-07") == ["c1", "w2"]                  # Monday is +1
    assert who(cat, "2026-12-08") == ["c1", "w1", "w2"]            # Tuesday is +2
    assert who(cat, "2026-12-10") == ["c1", "w1", "w2"]
    assert who(cat, "2026-12-11") == ["c1", "d1", "d2", "w1", "w2"]  # next Friday is +5


def test_sunday_start_serves_monday():
    cat = catalog({"name": "app", "start_date": "2026-11-29", "schedule": "waves"})
    assert who(cat, "2026-11-29") == []
    assert who(cat, "2026-11-30") == ["c1", "w2"]
    assert who(cat, "2026-12-02") == ["c1", "w1", "w2"]


def test_saturday_start_with_holidays():
    cat = catalog({"name": "app", "start_date": "2026-12-05", "schedule": "waves"},
                  holidays=["2026-12-07", "2026-12-08"])
    assert who(cat, "2026-12-08") == []
    assert who(cat, "2026-12-09") == ["c1", "w2"]
    assert who(cat, "2026-12-10") == ["c1", "w2"]
    assert who(cat, "2026-12-11") == ["c1", "w1", "w2"]


def test_included_attributes_count_from_the_start_date_itself():
    cat = catalog({"name": "app", "start_date": "2026-12-05", "included_attributes": ["db"]})
    assert who(cat, "2026-12-04") == []
    assert who(cat, "2026-12-05") == ["d1", "d2"]  # calendar day, no working-day shift for included


def test_exclusion_wins_over_included_and_schedule():
    cat = catalog({"name": "app", "start_date": "2026-12-01", "schedule": "waves",
                   "included_attributes": ["all"], "excluded_attributes": ["canary", "NET-10.0.0.0/24"]})
    assert who(cat, "2027-01-30") == ["d1", "w1"]


def test_disabled_deployment_reaches_nobody():
    cat = catalog({"name": "app", "start_date": "2026-12-01", "schedule": "waves", "enabled": False,
                   "included_attributes": ["all"]})
    assert who(cat, "2027-06-01") == []
    assert release_timeline(cat, HOSTS, "2026-12-01", "2026-12-03") == {
        "app": {"2026-12-01": [], "2026-12-02": [], "2026-12-03": []}}
    assert due_date(cat, "app", "c1", HOSTS["c1"]) is None


def test_earliest_of_several_delays_wins():
    delays = [{"delay": 6, "attributes": ["canary"]}, {"delay": 1, "attributes": ["canary", "db"]},
              {"delay": 3, "attributes": ["canary"], "duration": 4}]
    cat = catalog({"name": "app", "start_date": "2026-12-07", "schedule": "waves"}, delays=delays)
    assert who(cat, "2026-12-07") == []
    assert who(cat, "2026-12-08") == ["c1", "d1", "d2", "w2"]
    assert due_date(cat, "app", "c1", HOSTS["c1"]) == D(2026, 12, 8)


def test_included_earlier_than_schedule_wins():
    cat = catalog({"name": "app", "start_date": "2026-12-07", "schedule": "waves", "included_attributes": ["db"]})
    assert due_date(cat, "app", "d1", HOSTS["d1"]) == D(2026, 12, 7)      # not the delay-5 wave
    assert due_date(cat, "app", "w1", HOSTS["w1"]) == D(2026, 12, 9)
    assert due_date(cat, "app", "zz", ["other"]) is None


def test_duration_spreads_hosts_uniformly_over_working_days():
    hosts = {f"pc{i:04d}": ["all", f"HST-pc{i:04d}"] for i in range(2000)}
    delays = [{"delay": 1, "attributes": ["all"], "duration": 4}]
    cat = catalog({"name": "app", "start_date": "2026-12-03", "schedule": "waves"}, delays=delays)
    counts = release_timeline(cat, hosts, "2026-12-03", "2026-12-10", detail="count")["app"]
    assert counts == {**counts, "2026-12-03": 0}
    daily = [counts["2026-12-04"], counts["2026-12-07"] - counts["2026-12-04"],
             counts["2026-12-08"] - counts["2026-12-07"], counts["2026-12-09"] - counts["2026-12-08"]]
    assert sum(daily) == 2000 and counts["2026-12-10"] == 2000
    assert all(430 <= n <= 570 for n in daily), daily
    assert counts["2026-12-05"] == counts["2026-12-06"] == counts["2026-12-04"]  # nothing on the weekend
    engine = ReleaseEngine(cat)
    for day, count in counts.items():  # the one-day plan (a different code path) agrees, every day
        assert sum(1 for deps in engine.plan(hosts, day).values() if deps) == count
    for host in list(hosts)[:50]:
        expected = workday_add("2026-12-03", 1 + bucket("app", host, 4))
        assert due_date(cat, "app", host, hosts[host]) == expected


def test_halted_deployment_reaches_only_hosts_that_already_have_it():
    cat = catalog({"name": "app", "start_date": "2026-12-04", "schedule": "waves"})
    already = {"c1": ["app"], "w1": ["app"]}  # w1 is listed but not due yet: it keeps nothing new
    plan = release_plan(cat, HOSTS, "2026-12-20", halted={"app": {"reason": "postinst"}}, already=already)
    assert sorted(h for h, deps in plan.items() if deps) == ["c1", "w1"]
    plan = release_plan(cat, HOSTS, "2026-12-04", halted=["app"], already=already)
    assert sorted(h for h, deps in plan.items() if deps) == ["c1"]
    timeline = release_timeline(cat, HOSTS, "2026-12-04", "2026-12-20", halted=["app"], already=already)
    assert timeline["app"]["2026-12-04"] == ["c1"] and timeline["app"]["2026-12-20"] == ["c1", "w1"]
    assert due_date(cat, "app", "d1", HOSTS["d1"], halted=["app"], already=already) is None
    assert due_date(cat, "app", "c1", HOSTS["c1"], halted=["app"], already=already) == D(2026, 12, 4)


def test_plan_lists_are_sorted_and_cover_every_host():
    cat = catalog({"name": "zeta", "start_date": "2026-12-01", "included_attributes": ["all"]},
                  {"name": "alpha", "start_date": "2026-12-01", "schedule": "waves"})
    plan = release_plan(cat, HOSTS, "2027-01-04")
    assert plan == {h: ["alpha", "zeta"] for h in HOSTS}
    assert release_plan(cat, {"lonely": []}, "2027-01-04") == {"lonely": []}


def test_rollout_waves_order_hosts_by_their_newest_due_date():
    cat = catalog({"name": "app", "start_date": "2026-12-04", "schedule": "waves"},
                  {"name": "base", "start_date": "2026-01-05", "included_attributes": ["db"]})
    waves = rollout_waves(cat, HOSTS, "2026-12-08")
    assert waves == [
        {"due": "2026-01-05", "hosts": ["d1", "d2"]},
        {"due": "2026-12-04", "hosts": ["c1", "w2"]},
        {"due": "2026-12-08", "hosts": ["w1"]},
    ]
    assert rollout_waves(cat, {"x": ["nothing"]}, "2026-12-08") == [{"due": None, "hosts": ["x"]}]


def test_halt_threshold_and_should_halt():
    cat = catalog({"name": "app", "start_date": "2026-12-04", "halt_after_failures": 30},
                  {"name": "other", "start_date": "2026-12-04"})
    assert halt_threshold(cat, "app") == 30
    assert halt_threshold(cat, "other") == 0
    cat["halt_after_failures"] = 50
    assert halt_threshold(cat, "other") == 50
    assert should_halt(0, 1, 10) and not should_halt(0, 0, 10)
    assert not should_halt(30, 3, 10) and should_halt(30, 4, 10)
    assert not should_halt(0, 0, 0)


def test_bad_input_is_one_sentence():
    cat = catalog({"name": "app", "start_date": "2026-12-04", "schedule": "missing"})
    with pytest.raises(CatalogError, match=r"^deployment 'app': field 'schedule': names the schedule"):
        release_plan(cat, HOSTS, "2026-12-04")
    good = catalog({"name": "app", "start_date": "2026-12-04"})
    with pytest.raises(ReleaseError, match=r"^field 'date': '2026-12-32' is not a valid YYYY-MM-DD date$"):
        release_plan(good, HOSTS, "2026-12-32")
    with pytest.raises(ReleaseError, match=r"^field 'hosts': host 'a': attribute 5 is not a string$"):
        release_plan(good, {"a": ["x", 5]}, "2026-12-04")
    with pytest.raises(ReleaseError, match=r"^field 'hosts': host 'a' must map to a list of attributes$"):
        release_plan(good, {"a": "canary"}, "2026-12-04")
    with pytest.raises(ReleaseError, match=r"^field 'end': 2026-12-01 is before the start 2026-12-04$"):
        release_timeline(good, HOSTS, "2026-12-04", "2026-12-01")
    with pytest.raises(ReleaseError, match=r"^field 'deployment': 'nope' is not a deployment"):
        due_date(good, "nope", "a", [])


def test_engine_reuses_bucket_computations():
    hosts = {f"h{i}": ["all"] for i in range(100)}
    cat = catalog({"name": "app", "start_date": "2026-12-07", "schedule": "waves"},
                  delays=[{"delay": 0, "attributes": ["all"], "duration": 3}])
    engine = ReleaseEngine(cat)
    engine.plan(hosts, "2026-12-08")
    assert len(engine._hash_cache["app"]) == 100
    engine.plan(hosts, "2026-12-07")
    assert len(engine._hash_cache["app"]) == 100
    engine.plan(hosts, "2026-12-20")  # past the spread: no hashing needed at all
    fresh = ReleaseEngine(cat)
    fresh.plan(hosts, "2026-12-20")
    assert "app" not in fresh._hash_cache


# -- properties: the engine equals the naive rule --------------------------------------------------

WINDOW = [D(2026, 11, 26) + i * ONE for i in range(30)]
ATTRS = ["all", "canary", "web", "db", "HST-h0", "HST-h1", "NET-10.0.0.0/24", "x"]


@st.composite
def worlds(draw):
    holidays = draw(st.lists(st.sampled_from(WINDOW), max_size=6, unique=True))
    schedules = []
    for s in range(draw(st.integers(0, 2))):
        delays = draw(st.lists(st.fixed_dictionaries(
            {"delay": st.integers(0, 8), "attributes": st.lists(st.sampled_from(ATTRS), max_size=3, unique=True)},
            optional={"duration": st.integers(1, 5)}), min_size=1, max_size=4))
        schedules.append({"name": f"s{s}", "delays": delays})
    deployments = []
    for index in range(draw(st.integers(1, 5))):
        dep = {"name": f"d{index}", "start_date": draw(st.sampled_from(WINDOW)).isoformat(),
               "enabled": draw(st.booleans() | st.just(True)),
               "included_attributes": draw(st.lists(st.sampled_from(ATTRS), max_size=2, unique=True)),
               "excluded_attributes": draw(st.lists(st.sampled_from(ATTRS), max_size=2, unique=True))}
        if schedules and draw(st.booleans() | st.just(True)):
            dep["schedule"] = draw(st.sampled_from(schedules))["name"]
        deployments.append(dep)
    hosts = {}
    for index in range(draw(st.integers(0, 12))):
        attrs = draw(st.lists(st.sampled_from(ATTRS), max_size=4, unique=True))
        hosts[f"h{index}"] = sorted(set(attrs) | {"all", f"HST-h{index}"})
    cat = {"holidays": [h.isoformat() for h in holidays], "schedules": schedules, "deployments": deployments}
    return cat, hosts


@settings(max_examples=500, deadline=None)
@given(worlds(), st.sampled_from(WINDOW + [D(2027, 1, 20)]))
def test_plan_agrees_with_naive_rule(world, day):
    cat, hosts = world
    assert release_plan(cat, hosts, day) == naive_plan(cat, hosts, day)


@settings(max_examples=150, deadline=None)
@given(worlds(), st.integers(0, 20), st.integers(0, 12))
def test_timeline_agrees_with_plan_and_due_dates(world, offset, length):
    cat, hosts = world
    start = WINDOW[0] + offset * ONE
    end = start + length * ONE
    engine = ReleaseEngine(cat)
    timeline = engine.timeline(hosts, start, end)
    counts = engine.timeline(hosts, start, end, detail="count")
    added = engine.timeline(hosts, start, end, detail="added")
    assert sorted(timeline) == sorted(d["name"] for d in cat["deployments"])
    for day_index in range(length + 1):
        day = start + day_index * ONE
        plan = naive_plan(cat, hosts, day)
        for dep in cat["deployments"]:
            name = dep["name"]
            having = sorted(h for h, deps in plan.items() if name in deps)
            assert timeline[name][day.isoformat()] == having
            assert counts[name][day.isoformat()] == len(having)
            for host in having:  # due dates are consistent with the day they appear
                assert engine.due_date(name, host, hosts[host]) <= day
    for dep in cat["deployments"]:
        name = dep["name"]
        assert sorted(h for day in added[name].values() for h in day) == timeline[name][end.isoformat()]


@settings(max_examples=100, deadline=None)
@given(worlds(), st.sampled_from(WINDOW))
def test_halted_plan_is_plan_restricted_to_already(world, day):
    cat, hosts = world
    assume(cat["deployments"])
    halted = [cat["deployments"][0]["name"]]
    already = {h: halted for h in list(hosts)[::2]}
    plain = release_plan(cat, hosts, day)
    stopped = release_plan(cat, hosts, day, halted=halted, already=already)
    for host in hosts:
        expected = [n for n in plain[host] if n not in halted or host in already]
        assert stopped[host] == expected


# -- the filters (thin wrappers) and the renderers -------------------------------------------------

def test_filters_wrap_the_engine_and_fail_with_one_sentence():
    from collections.abc import Mapping

    from ansible.errors import AnsibleFilterError

    from ansible_collections.mo.fleet.plugins.filter import release as filters

    class HostVars(Mapping):  # like Ansible's HostVars: a Mapping, not a dict
        def __init__(self, data):
            self.data = data

        def __getitem__(self, key):
            return self.data[key]

        def __iter__(self):
            return iter(self.data)

        def __len__(self):
            return len(self.data)

    names = filters.FilterModule().filters()
    assert {"release_plan", "release_timeline", "host_attributes", "release_timeline_text",
            "release_timeline_html", "release_catalog"} <= set(names)
    assert "release_waves" not in names  # owned by plugins/filter/rollout.py
    attrs = filters.host_attributes(HostVars({"c1": {"mo_fleet_attributes": ["X"]}, "w1": {}}),
                                    {"all": ["c1", "w1"], "canary": ["c1"]})
    assert attrs == {"c1": ["HST-c1", "X", "all", "canary"], "w1": ["HST-w1", "all"]}
    cat = catalog({"name": "app", "start_date": "2026-12-04", "schedule": "waves"})
    assert filters.release_plan(cat, attrs, "2026-12-04") == {"c1": ["app"], "w1": []}
    today_plan = filters.release_plan(cat, attrs)
    assert set(today_plan) == {"c1", "w1"}
    timeline = filters.release_timeline(cat, attrs, "2026-12-04")
    assert list(timeline["app"]) == [(D(2026, 12, 4) + i * ONE).isoformat() for i in range(15)]
    assert filters.release_catalog(cat)["deployments"][0]["enabled"] is True
    bad = catalog({"name": "app", "start_date": "2026-12-04", "schedule": "nope"})
    sentence = "deployment 'app': field 'schedule': names the schedule 'nope', which is not in 'schedules'"
    for call in (lambda: filters.release_plan(bad, attrs, "2026-12-04"),
                 lambda: filters.release_timeline(bad, attrs, "2026-12-04"),
                 lambda: filters.release_catalog(bad)):
        with pytest.raises(AnsibleFilterError) as info:
            call()
        assert str(info.value).endswith(sentence)
    with pytest.raises(AnsibleFilterError, match="field 'date': 'monday' is not a valid YYYY-MM-DD date"):
        filters.release_plan(cat, attrs, "monday")
    with pytest.raises(AnsibleFilterError, match="catalog: must be a mapping"):
        filters.release_plan(["not", "a", "catalog"], attrs, "2026-12-04")
    with pytest.raises(AnsibleFilterError, match="timeline: must be the output of"):
        filters.release_timeline_html(["x"])


def test_renderers_escape_and_stay_self_contained():
    from ansible_collections.mo.fleet.plugins.module_utils._release.release_report import timeline_html, timeline_text

    timeline = {"app": {"2026-12-04": ["<b>&x"], "2026-12-05": ["<b>&x", "y"]}, "off": {"2026-12-04": [],
                                                                                        "2026-12-05": []}}
    assert timeline_text(timeline) == ["app 2026-12-04 Fri: 1 host(s): <b>&x",
                                       "app 2026-12-05 Sat: 2 host(s): <b>&x, y",
                                       "off 2026-12-04 Fri: 0 host(s)", "off 2026-12-05 Sat: 0 host(s)"]
    assert timeline_text(timeline, show_hosts=False)[1] == "app 2026-12-05 Sat: 2 host(s)"
    page = timeline_html(timeline, title="T <1>", holidays=["2026-12-04"])
    assert "<b>&x" not in page and "&lt;b&gt;&amp;x" in page and "T &lt;1&gt;" in page
    assert "<script" not in page and "href=" not in page and "src=" not in page
    assert 'data-deployment="app" data-day="2026-12-05" data-count="2"' in page
    assert page.count('class="off"') >= 2  # the holiday and the Saturday are shaded
    counts = timeline_html({"app": {"2026-12-04": 3}})
    assert 'data-count="3"' in counts and "<details" not in counts
    assert "No deployments" in timeline_html({})
