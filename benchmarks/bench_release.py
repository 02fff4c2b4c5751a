"""Benchmark the release engine: 10,000 hosts x 200 deployments x 5 delays over 30 days.

    .venv/bin/python benchmarks/bench_release.py [--hosts N] [--deployments N] [--days N] [--out PATH]
        [--planner-hosts 100000] [--planner-deployments 500]

Measures, side by side in one run: the one-day plan (target: under 1 s), the same on a warm
engine, a worst case where every deployment is mid-spread over every host on the day, the
30-day timeline in its three forms, and a naive per-(host, deployment) evaluation of the rule
(straight from the issue text) on a sample, extrapolated; then the planner's row: the one-day
plan for 100,000 hosts and 500 deployments (target: under 2 s; 0 hosts skips it).  Writes
docs/benchmarks/release.md.
"""

import argparse
import datetime
import gc
import hashlib
import os
import platform
import random
import resource
import sys
import time
from operator import methodcaller
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / ".collections"))

from ansible_collections.mo.fleet.plugins.module_utils._repo.catalog import load_catalog  # noqa: E402
from ansible_collections.mo.fleet.plugins.module_utils._release.release import (  # noqa: E402
    ReleaseEngine, release_plan,
)
from ansible_collections.mo.fleet.plugins.module_utils._release.release_report import timeline_html  # noqa: E402

D = datetime.date
ONE = datetime.timedelta(days=1)
TARGET = 1.0
PLANNER_TARGET = 2.0
T_HASH = []
START = D(2026, 12, 1)


def fleet(n_hosts, rng):
    depts = [f"CTX-DEPT{i:02d}" for i in range(20)]
    nets = [f"NET-10.{i}.0.0/16" for i in range(8)]
    hosts = {}
    for i in range(n_hosts):
        name = f"pc{i:05d}.example.lan"
        attrs = {"all", f"HST-{name}", rng.choice(depts), rng.choice(nets), rng.choice(["web", "db", "desk"])}
        if i % 100 == 0:
            attrs.add("canary")
        hosts[name] = sorted(attrs)
    return hosts, depts, nets


def catalog(n_deployments, depts, nets, rng, worst=False):
    holidays = ["2026-12-08", "2026-12-24", "2026-12-25", "2026-12-31", "2027-01-01", "2027-01-06"]
    schedules = []
    for s in range(4):
        schedules.append({"name": f"sched{s}", "delays": [
            {"delay": 0, "attributes": ["canary"]},
            {"delay": 2 + s, "attributes": rng.sample(depts, 3), "duration": 2},
            {"delay": 4 + s, "attributes": ["web", rng.choice(nets)]},
            {"delay": 6 + s, "attributes": rng.sample(depts, 5) + ["db"], "duration": 3},
            {"delay": 9 + s, "attributes": ["all"], "duration": 5},
        ]})
    if worst:
        schedules = [{"name": "sched0", "delays": [
            {"delay": d, "attributes": ["all"] if d == 4 else [rng.choice(depts)], "duration": 5 if d == 4 else 2}
            for d in range(5)]}]
    deployments = []
    for i in range(n_deployments):
        if worst:  # the plan day is in the middle of every deployment's spread over all hosts
            start = "2026-12-07"
        else:
            start = (START + rng.randrange(-40, 30) * ONE).isoformat()
        dep = {"name": f"dep{i:03d}", "start_date": start, "schedule": rng.choice(schedules)["name"],
               "packages_to_install": ["hello"], "excluded_attributes": [f"HST-pc{rng.randrange(10000):05d}.example.lan"]}
        if i % 10 == 0:
            dep["included_attributes"] = [rng.choice(depts)]
        if i % 25 == 7:
            dep["enabled"] = False
        deployments.append(dep)
    return {"project": {"name": "bench"}, "holidays": holidays, "schedules": schedules, "deployments": deployments}


CPU = {}


def timed(fn, repeat=1):
    """Best wall-clock seconds of REPEAT runs (its CPU seconds go to CPU[wall]) and the result."""
    best, result = None, None
    for _attempt in range(repeat):
        result = None  # free the previous result outside the measurement
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        if best is None or elapsed < best:
            best = elapsed
            CPU[best] = cpu
    return best, result


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


def naive_plan(cat, hosts, day):
    holidays = {D.fromisoformat(h) for h in cat["holidays"]}
    schedules = {s["name"]: s for s in cat["schedules"]}
    out = {}
    for host, attrs in hosts.items():
        attrs = set(attrs)
        names = []
        for dep in cat["deployments"]:
            if not dep.get("enabled", True) or set(dep.get("excluded_attributes", [])) & attrs:
                continue
            start = D.fromisoformat(dep["start_date"])
            ok = bool(set(dep.get("included_attributes", [])) & attrs) and start <= day
            for delay in schedules[dep["schedule"]]["delays"] if not ok else []:
                if set(delay["attributes"]) & attrs:
                    b = int(hashlib.sha256(f"{dep['name']}:{host}".encode()).hexdigest(), 16) \
                        % delay.get("duration", 1)
                    if naive_workday_add(start, delay["delay"] + b, holidays) <= day:
                        ok = True
                        break
            if ok:
                names.append(dep["name"])
        out[host] = sorted(names)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10000)
    parser.add_argument("--deployments", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--naive-sample", type=int, default=500)
    parser.add_argument("--planner-hosts", type=int, default=100000)
    parser.add_argument("--planner-deployments", type=int, default=500)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "release.md"))
    args = parser.parse_args()

    rng = random.Random(6)
    hosts, depts, nets = fleet(args.hosts, rng)
    cat = catalog(args.deployments, depts, nets, rng)
    worst = catalog(args.deployments, depts, nets, random.Random(7), worst=True)
    day = START + (args.days // 2) * ONE
    end = START + (args.days - 1) * ONE
    pairs = args.hosts * args.deployments
    rows = []

    def row(what, seconds, note=""):
        cpu = CPU.get(seconds, float("nan"))
        rows.append((what, seconds, cpu, note))
        print(f"{what:<64} {seconds:9.3f} s wall {cpu:9.3f} s cpu  {note}", flush=True)

    t, _catalog = timed(lambda: load_catalog(cat), repeat=3)
    row("validate catalog (pure Python + jsonschema)", t)
    t, engine = timed(lambda: ReleaseEngine(cat), repeat=3)
    row("validate + compile engine", t)
    t_plan, plan = timed(lambda: release_plan(cat, hosts, day), repeat=3)
    row(f"release_plan() one day, end to end, cold ({day})", t_plan, f"{t_plan / TARGET:.2f}x the 1 s target")
    warm = ReleaseEngine(cat)
    warm.plan(hosts, day)
    t, _plan = timed(lambda: warm.plan(hosts, day), repeat=3)
    row("engine.plan() one day, warm engine", t)
    t30, _plans = timed(lambda: [warm.plan(hosts, START + i * ONE) for i in range(args.days)])
    row(f"engine.plan() for each of {args.days} days (one engine)", t30, f"{t30 / args.days:.3f} s/day")
    t_worst, worst_plan = timed(lambda: release_plan(worst, hosts, "2026-12-15"), repeat=3)
    row("worst case: every deployment mid-spread over all hosts, cold", t_worst,
        f"{t_worst / TARGET:.2f}x the 1 s target")
    encoded = [f"dep000:{h}".encode() for h in hosts]
    t_hash, _digests = timed(lambda: list(map(methodcaller("digest"), map(hashlib.sha256, encoded))), repeat=3)
    T_HASH.append(t_hash)
    row(f"  (for scale: {args.hosts} sha256 digests alone)", t_hash)

    for detail in ("count", "added", "hosts"):
        t, timeline = timed(lambda: ReleaseEngine(cat).timeline(hosts, START, end, detail=detail))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        row(f"release_timeline {args.days} days, detail={detail}", t, f"process peak RSS so far {peak:.0f} MiB")
        if detail == "hosts":
            having = {n for n, row_ in timeline.items() if plan_host_count(plan, n) != len(row_[day.isoformat()])}
            assert not having, f"timeline and plan disagree for {sorted(having)[:3]}"
            t, page = timed(lambda: timeline_html(timeline))
            row("release_timeline_html of that timeline (plan.yml's page)", t,
                f"{len(page.encode()) / 2**20:.1f} MiB of HTML")
            del page
        del timeline

    sample = dict(list(hosts.items())[: args.naive_sample])
    t_naive, naive = timed(lambda: naive_plan(cat, sample, day))
    expected = {h: plan[h] for h in sample}
    assert naive == expected, "naive rule and engine disagree"
    extrapolated = t_naive * args.hosts / len(sample)
    row(f"naive rule per (host, deployment), {len(sample)} hosts", t_naive,
        f"~{extrapolated:.1f} s extrapolated to {args.hosts} hosts: engine is {extrapolated / t_plan:.0f}x faster")

    reached = sum(len(v) for v in plan.values())
    planner = planner_row(args, row, day) if args.planner_hosts > 0 else None
    write_report(args, rows, pairs, reached, t_plan, t_worst, day, planner)


def planner_row(args, row, day):
    """The one-day plan of a large fleet (the planner's figure): (wall s, CPU s, pairs, reached)."""
    rng = random.Random(16)
    hosts, depts, nets = fleet(args.planner_hosts, rng)
    cat = catalog(args.planner_deployments, depts, nets, rng)
    def cold():
        engine = ReleaseEngine(cat)  # what release_plan() does, keeping the engine to count its digests
        return engine, engine.plan(hosts, day)

    t_big, (engine, big) = timed(cold, repeat=2)
    reached = sum(map(len, big.values()))
    digests = sum(map(len, engine._hash_cache.values()))
    row(f"release_plan() one day, {args.planner_hosts:,} hosts x {args.planner_deployments} deployments, cold",
        t_big, f"{t_big / PLANNER_TARGET:.2f}x the 2 s target; {reached:,} (host, deployment) reached")
    encoded = [f"dep000:{h}".encode() for h in hosts]
    t_hash, _digests = timed(lambda: list(map(methodcaller("digest"), map(hashlib.sha256, encoded))))
    row(f"  (for scale: {args.planner_hosts:,} sha256 digests alone)", t_hash)
    return t_big, CPU.get(t_big, float("nan")), args.planner_hosts * args.planner_deployments, reached, \
        digests, t_hash


def plan_host_count(plan, name):
    return sum(1 for deps in plan.values() if name in deps)


def write_report(args, rows, pairs, reached, t_plan, t_worst, day, planner=None):
    cpu_plan, cpu_worst = CPU.get(t_plan, float("nan")), CPU.get(t_worst, float("nan"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Release engine benchmark",
        "",
        f"`benchmarks/bench_release.py`: {args.hosts:,} hosts x {args.deployments} deployments x 5 delays, "
        f"{args.days} days from {START}; plan day {day}. Hosts carry 5-6 attributes (all, HST-, a department, "
        "a NET-, a role, 1% canary); 4 schedules of 5 delays with durations 1-5; 10% of deployments also "
        "have included attributes, 4% are disabled, each excludes one host; six holidays.",
        "",
        f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on "
        f"{platform.machine()}, Python {platform.python_version()}, 2 cores shared with other jobs "
        f"(load average {os.getloadavg()[0]:.1f} at the end), best of 3 where repeated. Wall clock "
        "suffers from the sharing; CPU seconds of the process are the steadier figure.",
        "",
        "| measurement | wall s | CPU s | note |",
        "|---|---:|---:|---|",
    ]
    lines += [f"| {what} | {sec:.3f} | {cpu:.3f} | {note} |" for what, sec, cpu, note in rows]
    lines += [
        "",
        f"**Target** (one-day plan under 1 s, end to end including validation): {t_plan:.3f} s wall / "
        f"{cpu_plan:.3f} s CPU, ratio {t_plan / TARGET:.2f} / {cpu_plan / TARGET:.2f} of the target "
        f"({'met' if t_plan < TARGET else 'NOT met'}); {pairs:,} (host, deployment) pairs, {reached:,} "
        "reached that day.",
        "",
        f"**Worst case** (all {args.deployments} deployments spreading over all {args.hosts:,} hosts on the "
        f"same day, so every (deployment, host) bucket must be hashed): {t_worst:.3f} s wall / "
        f"{cpu_worst:.3f} s CPU, ratio {t_worst / TARGET:.2f} ({'met' if t_worst < TARGET else 'NOT met'}). "
        f"The floor here is the rule's own sha256: {args.deployments * args.hosts:,} digests cost about "
        f"{CPU.get(T_HASH[0], 0) * args.deployments:.2f} s CPU by themselves "
        "(200 x the 'sha256 digests alone' row). A reused engine hashes each pair once, so the following "
        "days of the spread cost no hashing.",
        "",
    ]
    if planner:
        t_big, cpu_big, big_pairs, big_reached, digests, t_hash = planner
        lines += [
            f"**Planner** (one-day plan for {args.planner_hosts:,} hosts and {args.planner_deployments} deployments "
            f"under 2 s): {t_big:.3f} s wall / {cpu_big:.3f} s CPU, ratio {t_big / PLANNER_TARGET:.2f} / "
            f"{cpu_big / PLANNER_TARGET:.2f} (CPU {'met' if cpu_big < PLANNER_TARGET else 'NOT met'}, wall "
            f"{'met' if t_big < PLANNER_TARGET else 'NOT met'} under the load above); {big_pairs:,} pairs, "
            f"{big_reached:,} reached. Where it goes (cProfile): the rule's own sha256, one digest per (deployment, "
            f"host) whose spread is in progress that day, {digests:,} here, about "
            f"{CPU.get(t_hash, 0) * digests / args.planner_hosts:.2f} s CPU by themselves (the 'digests alone' "
            "row scaled), and the engine's cache of their buckets; then building 100,000 lists "
            f"({big_reached:,} entries): each host's shared deployments merged with its host-by-host ones, which "
            "a spread in progress hands over as flags in the order of the group's members (no lookup per host "
            "and deployment); the cyclic GC is paused meanwhile. The plan is computed once per rollout run (per slice), "
            "before any host is touched.",
            "",
        ]
    lines += [
        "How: the catalog is compiled once (attribute -> delays, dominated delays pruned); the plan "
        "groups hosts by the attributes of theirs that the catalog names (hosts of one group get the "
        "same deployments but for spreads in progress and halts), so a deployment's reach is a few "
        "set unions over groups and each group's list is built once; the timeline indexes "
        "attribute -> set of hosts; "
        "working-day arithmetic is O(1) plus a bisect over holidays and cached per (start, day); "
        "`sha256` is computed only for hosts in a delay whose spread is in progress on the day "
        "(duration > 1 and the day inside it), once per (deployment, host) per engine.",
        "",
    ]
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
