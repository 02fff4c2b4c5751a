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


def test_each_worker_starts_with_one_of_the_longest_tests_and_the_slices_are_balanced():
    cost = {"rollout": 900.0, "docs2": 600.0, "docs1": 400.0, "roundtrip": 350.0}
    cost.update({f"t{i:02d}": 20.0 + i for i in range(20)})
    order = worksteal_order(list(cost), cost, 3)
    assert sorted(order) == sorted(cost)  # every test once
    parts = slices(order, 3)
    assert {part[0] for part in parts} == {"rollout", "docs2", "docs1"}
    for part in parts:  # each slice longest first: steals take its short tail
        assert [cost[n] for n in part] == sorted((cost[n] for n in part), reverse=True)
    totals = [sum(cost[n] for n in part) for part in parts]
    # a plain longest-first order gives the first worker rollout, docs2, docs1 and roundtrip
    naive = [sum(cost[n] for n in part) for part in slices(sorted(cost, key=lambda n: -cost[n]), 3)]
    assert max(naive) == 900 + 600 + 400 + 350 + 39 + 38 + 37 + 36
    # here the rollout's slice holds only short tests (slices are 8 long)
    assert max(totals) == totals[order.index("rollout") // 8] <= 900 + 7 * 39 < max(naive)


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
