"""Fixtures that hand out fresh lab hosts (see labhosts.py), and the order tests start in."""

import json
import os
from pathlib import Path

import pytest

from labhosts import LabFactory, estimates, wait_for_removals, worksteal_order

# Seconds each integration test took in a whole run (setup + call + teardown), by node id:
# the order below starts the longest first. `MO_FLEET_STORE_DURATIONS=1 make integration`
# writes it again from that run.
DURATIONS = Path(__file__).with_name("durations.json")


def _known_durations():
    try:
        return {k: float(v) for k, v in json.loads(DURATIONS.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
    # the integration tests last, longest first in worksteal's slices (labhosts.worksteal_order);
    # every xdist worker computes the same order, as they must collect the same
    others = [item for item in items if "/integration/" not in str(item.fspath)]
    by_id = {item.nodeid: item for item in items if "/integration/" in str(item.fspath)}
    marked_long = {n for n, item in by_id.items() if item.get_closest_marker("long") is not None}
    cost = estimates(list(by_id), marked_long, _known_durations())
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    items[:] = others + [by_id[n] for n in worksteal_order(list(by_id), cost, workers)]


_RAN = {}


def pytest_runtest_logreport(report):
    _RAN[report.nodeid] = _RAN.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session):
    wait_for_removals()
    if os.environ.get("MO_FLEET_STORE_DURATIONS") and not hasattr(session.config, "workerinput") and _RAN:
        merged = dict(_known_durations(), **{k: round(v, 1) for k, v in _RAN.items() if "/integration/" in k})
        tmp = DURATIONS.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(dict(sorted(merged.items())), indent=1) + "\n")
        tmp.replace(DURATIONS)


@pytest.fixture
def lab(tmp_path):
    """Factory for disposable hosts: `lab.host(groups=[...])`, `lab.inventory(h1, h2)`."""
    factory = LabFactory(tmp_path)
    yield factory
    factory.cleanup(wait=False)  # removed while the next test runs


@pytest.fixture
def fresh_host(lab):
    """One fresh Debian 12 host running systemd, reached over SSH as the login user with sudo,
    removed after the test."""
    return lab.host(groups=["test_hosts"])
