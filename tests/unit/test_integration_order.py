"""The order integration tests start in (tests/integration/labhosts.py): longest first, spread
over the slices that pytest-xdist's worksteal scheduler hands its workers."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from labhosts import estimates, worksteal_order  # noqa: E402


def slices(order, workers):
    """The contiguous slices worksteal hands out first (xdist's check_schedule arithmetic)."""
    out, rest = [], list(order)
    for i in range(workers):
        n = len(rest) // (workers - i)
        out.append(rest[:n])
        rest = rest[n:]
    return out


def makespan(order, cost, workers):
    """Seconds until the last worker is done, under worksteal's rules: the first slices, then
    an idle worker steals the last half (by count) of the longest queue."""
    queues, clock = slices(order, workers), [0.0] * workers
    idle = set()
    while any(queues):
        i = min((i for i in range(workers) if i not in idle), key=lambda i: clock[i])
        if not queues[i]:
            j = max(range(workers), key=lambda j: len(queues[j]))
            half = len(queues[j]) // 2
            if half == 0:
                idle.add(i)
                continue
            queues[i], queues[j] = queues[j][-half:], queues[j][:-half]
        clock[i] += cost[queues[i].pop(0)]
    return max(clock)


COST = {"rollout": 900.0, "docs2": 600.0, "docs1": 400.0, "roundtrip": 350.0, "server": 300.0,
        **{f"t{i:02d}": 20.0 + 3 * i for i in range(25)}}


def test_each_worker_starts_with_one_of_the_longest_tests():
    order = worksteal_order(list(COST), COST, 3)
    assert sorted(order) == sorted(COST)  # every test once
    parts = slices(order, 3)
    assert {part[0] for part in parts} == {"rollout", "docs2", "docs1"}
    for part in parts:  # then shortest first: a steal from the tail takes the longer ones
        rest = [COST[n] for n in part[1:]]
        assert rest == sorted(rest) and COST[part[0]] >= max(rest)


def test_the_run_ends_sooner_than_with_the_long_tests_first_in_collection_order():
    naive = sorted(COST, key=lambda n: -COST[n])  # the first worker got every long test
    ours = worksteal_order(list(COST), COST, 3)
    bound = max(max(COST.values()), sum(COST.values()) / 3)
    assert makespan(ours, COST, 3) < makespan(naive, COST, 3)
    assert makespan(ours, COST, 3) <= bound * 1.15


def test_one_worker_runs_longest_first():
    cost = {"a": 1.0, "b": 5.0, "c": 3.0}
    assert worksteal_order(["a", "b", "c"], cost, 1) == ["b", "c", "a"]


def test_new_tests_count_as_the_median_and_long_marked_ones_as_the_longest():
    known = {"x": 10.0, "y": 30.0, "z": 500.0}
    cost = estimates(["x", "y", "new", "marked"], {"marked"}, known)
    assert cost["new"] == 30.0 and cost["x"] == 10.0
    assert cost["marked"] > max(known.values())
    # a marked test that was measured keeps its place above the measured ones
    assert estimates(["z", "y"], {"y"}, known)["y"] > 500.0
    assert estimates(["a"], set(), {}) == {"a": 1.0}  # no durations file (a clean clone)
