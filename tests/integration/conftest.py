"""Fixtures that hand out fresh lab hosts (see labhosts.py)."""

import pytest

from labhosts import LabFactory, wait_for_removals


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
    # the longest tests first: with -n N a worker takes each at the start, and the others
    # share the rest, instead of all waiting at the end for the one that started last
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture
def lab(tmp_path):
    """Factory for disposable hosts: `lab.host(groups=[...])`, `lab.inventory(h1, h2)`."""
    factory = LabFactory(tmp_path)
    yield factory
    factory.cleanup(wait=False)  # removed while the next test runs


def pytest_sessionfinish(session):
    wait_for_removals()


@pytest.fixture
def fresh_host(lab):
    """One fresh Debian 12 host running systemd, reached over SSH as the login user with sudo,
    removed after the test."""
    return lab.host(groups=["test_hosts"])
