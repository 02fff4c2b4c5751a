"""Templates of the dpkg hook and of intercepted commands are pruned like every capture
(review finding 21): their names end with the capture time, so retention counts them under
the name without it; the hook runs the configured auto cleanup after writing a template, and
`mo-capture cleanup` removes what retention does not keep.  A temporary capture directory."""

import json
import os

import pytest

from ansible_collections.mo.fleet.plugins.module_utils._capture import host_cli
from ansible_collections.mo.fleet.plugins.module_utils._capture import host_config as hc
from ansible_collections.mo.fleet.plugins.module_utils._capture import pkg_hook
from ansible_collections.mo.fleet.plugins.module_utils._capture.capture_index import (
    Store, plan_cleanup, retention_name)

CHAIN = [("dpkg", "dpkg -i /src/x.deb", ["dpkg", "-i", "/src/x.deb"], 0), ("sh", "sh ./install.sh", ["sh"], 0)]


@pytest.mark.parametrize("name, counted", [
    ("dpkg-20261202T013018", "dpkg"),
    ("apt-get-install-nginx-20261202T013018", "apt-get-install-nginx"),
    ("unattended-upgrade-20261202T013018", "unattended-upgrade"),
    ("nginx", "nginx"),
    ("nginx-2026", "nginx-2026"),
    ("web-20261202T0130", "web-20261202T0130"),
    (None, ""),
])
def test_retention_name_drops_only_a_trailing_capture_time(name, counted):
    assert retention_name(name) == counted


def test_names_that_differ_only_by_their_capture_time_share_one_retention():
    rows = [{"id": f"h{i}", "name": f"dpkg-2026120{i}T010101", "created": float(i)} for i in range(4)]
    rows += [{"id": "n0", "name": "nginx", "created": 0.0}, {"id": "m0", "name": "dpkg", "created": 9.0}]
    remove, kept = plan_cleanup(rows, keep=2, max_age_days=0, now=10.0)
    # dpkg-<time> and a capture named plainly dpkg are one name: the newest two of them stay
    assert (remove, kept) == (["h0", "h1", "h2"], ["h3", "m0", "n0"])


def _module_capture(store, tid, name, created):
    path = os.path.join(store.templates, tid)
    os.makedirs(path)
    with open(os.path.join(path, "template.json"), "w") as fh:
        fh.write("{}")
    store.add_template({"id": tid, "name": name, "created": created, "command": "true", "status": "succeeded",
                        "rc": 0, "path": path, "archive": None, "summary": "{}", "bytes": 2})


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A configuration with max_count 2 and a store in TMP_PATH; dpkg's package set grows by
    one package per dpkg run."""
    store = Store(str(tmp_path / "store"))
    config = tmp_path / "capture.yaml"
    config.write_text(json.dumps({"capture_directory": store.root, "snapshots": {"max_count": 2, "auto_cleanup": True},
                                  "logging": {"file": str(tmp_path / "log/capture.log")}}))
    monkeypatch.setattr(hc, "CONFIG_PATH", str(config))
    assert hc.load_config(hc.CONFIG_PATH)["capture_directory"] == store.root  # never the machine's own store
    installed = {}

    def read_packages():
        return dict(installed), {}

    def dpkg_run(i):
        """One dpkg run that installs pkg<i>, with dpkg's pre and post hooks around it."""
        assert host_cli.main_hook(["pre"]) == 0
        installed[(f"pkg{i}", "all")] = {"name": f"pkg{i}", "version": "1", "architecture": "all",
                                         "status": "installed"}
        assert host_cli.main_hook(["post"]) == 0
    monkeypatch.setattr(pkg_hook, "read_packages", read_packages)
    monkeypatch.setattr(pkg_hook, "read_auto", lambda: set())
    monkeypatch.setattr(pkg_hook, "parents", lambda pid=None: CHAIN)
    monkeypatch.delenv("MO_FLEET_CAPTURE", raising=False)
    store.ensure()
    return store, config, dpkg_run


def _names(store):
    return sorted(t["name"] for t in store.list_templates())


def test_the_hook_prunes_its_templates_with_the_configured_max_count(host):
    store, _config, dpkg_run = host
    for i in range(3):
        _module_capture(store, f"nginx{i}", "nginx", 100.0 + i)
    for i in range(4):
        dpkg_run(i)
    hook = [t for t in store.list_templates() if t["name"].startswith("dpkg-")]
    # the newest two dpkg runs keep their templates; the first two went with their directories
    assert len(hook) == 2
    assert sorted(os.listdir(store.templates)) == sorted(t["id"] for t in store.list_templates())
    kept_packages = sorted(json.load(open(os.path.join(t["path"], "template.json")))["operations"]
                           ["packages_installed"][0]["name"] for t in hook)
    assert kept_packages == ["pkg2", "pkg3"]
    # the same retention for every capture: nginx keeps its newest two too
    assert sorted(t["id"] for t in store.list_templates() if t["name"] == "nginx") == ["nginx1", "nginx2"]
    # the hook's records are pruned with them: the newest two of the program that asked (dpkg)
    assert [r["packages"][0]["name"] for r in pkg_hook.read_records(store)] == ["pkg2", "pkg3"]


def test_without_auto_cleanup_the_hook_keeps_everything_until_mo_capture_cleanup(host, capsys):
    store, config, dpkg_run = host
    config.write_text(json.dumps(dict(json.loads(config.read_text()), snapshots={"max_count": 2,
                                                                                  "auto_cleanup": False})))
    for i in range(4):
        dpkg_run(i)
    _module_capture(store, "apt1", "apt-get-install-nginx-20261201T010101", 1.0)
    _module_capture(store, "apt2", "apt-get-install-nginx-20261202T010101", 2.0)
    assert len(store.list_templates()) == 6
    assert host_cli.main_capture(["--config", str(config), "cleanup", "--keep", "1"]) == 0
    # four dpkg-<time> templates (the newest one stays) and two apt-get ones; of the four dpkg
    # records the newest one stays too
    assert capsys.readouterr().out == "cleanup: removed 4, kept 2; 3 record(s) of the dpkg hook removed.\n"
    assert [r["packages"][0]["name"] for r in pkg_hook.read_records(store)] == ["pkg3"]
    left = store.list_templates()
    assert [t["id"] for t in left if t["name"].startswith("apt-get-")] == ["apt2"]
    (newest_hook,) = [t for t in left if t["name"].startswith("dpkg-")]
    assert json.load(open(os.path.join(newest_hook["path"], "template.json")))["operations"][
        "packages_installed"][0]["name"] == "pkg3"
    # without --keep: snapshots.max_count
    assert host_cli.main_capture(["--config", str(config), "cleanup"]) == 0
    assert capsys.readouterr().out == "cleanup: removed 0, kept 2.\n"
    assert host_cli.main_capture(["--config", str(config), "cleanup", "--keep"]) == 2
    assert "--keep needs a value" in capsys.readouterr().err


def test_a_busy_store_never_fails_the_hook_and_the_template_stays(host, monkeypatch):
    store, _config, dpkg_run = host
    for i in range(3):
        dpkg_run(i)
    assert len(store.list_templates()) == 2
    holder = Store(store.root).lock(wait=0)
    try:
        monkeypatch.setattr(pkg_hook, "LOCK_WAIT", 0.2, raising=False)
        dpkg_run(3)  # the hook cannot write its template: dpkg still goes on (status 0)
    finally:
        holder.unlock()
    assert len(store.list_templates()) == 2
    # the run's record is written all the same (the last auto cleanup left the newest two)
    assert [r["packages"][0]["name"] for r in pkg_hook.read_records(store)] == ["pkg1", "pkg2", "pkg3"]
