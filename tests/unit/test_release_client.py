"""Unit tests of the client side of a release: release_client, rollout, status_site, filters."""

import json
import multiprocessing
from pathlib import Path


import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.mo.fleet.plugins.filter.rollout import (
    release_batches, release_halts, release_sources, release_waves,
)
from ansible_collections.mo.fleet.plugins.filter.status import release_status_site
from ansible_collections.mo.fleet.plugins.module_utils._release import release_client as rc
from ansible_collections.mo.fleet.plugins.module_utils._release.release import release_plan
from ansible_collections.mo.fleet.plugins.module_utils._release.rollout import (
    RolloutError, client_entries, halt_decisions, read_state, sync_record_paths, update_state,
    wave_batches, write_sync_record,
)
from ansible_collections.mo.fleet.plugins.module_utils._repo.status_site import build_site

CATALOG = {
    "project": {"name": "acme", "architectures": ["amd64"]},
    "halt_after_failures": 0,
    "stores": [{"name": "main"}],
    "schedules": [{"name": "waves", "delays": [
        {"delay": 0, "attributes": ["canary"]},
        {"delay": 2, "attributes": ["web"]},
        {"delay": 3, "attributes": ["db"], "duration": 2},
    ]}],
    "deployments": [
        {"name": "base", "start_date": "2026-12-07", "included_attributes": ["all"],
         "packages_to_install": ["mo-base"]},
        {"name": "tools", "start_date": "2026-12-07", "schedule": "waves", "halt_after_failures": 50,
         "packages_to_install": ["mo-tool"], "packages_to_remove": ["mo-old"]},
        {"name": "ext", "start_date": "2026-12-07", "source": "external", "base_url": "http://deb.example.invalid/debian",
         "suite": "bookworm", "components": ["main", "contrib"], "included_attributes": ["web"]},
    ],
}
HOSTS = {
    "c1": ["all", "canary", "HST-c1"],
    "w1": ["all", "web", "HST-w1"],
    "w2": ["all", "web", "HST-w2"],
    "d1": ["all", "db", "HST-d1"],
}


# -- release_client ---------------------------------------------------------------------------

def test_sources_text_is_deb822_with_signed_by():
    entry = rc.check_entry({"name": "base", "uri": "http://repo1/pub/acme/repos/base/"})
    text = rc.sources_text(entry, "/etc/apt/keyrings/mo-fleet-acme.asc")
    assert "Types: deb\nURIs: http://repo1/pub/acme/repos/base\nSuites: base\nComponents: main\n" in text
    assert text.endswith("Signed-By: /etc/apt/keyrings/mo-fleet-acme.asc\n")
    unsigned = rc.check_entry({"name": "ext", "uri": "http://x/y", "suite": "bookworm",
                               "components": ["main", "contrib"], "signed": False})
    text = rc.sources_text(unsigned, "/k.asc")
    assert "Signed-By" not in text and "Components: main contrib" in text


@pytest.mark.parametrize("entry, field", [
    ({"name": "../x", "uri": "http://a/b"}, "name"),
    ({"name": "a", "uri": "ftp://a/b"}, "uri"),
    ({"name": "a", "uri": "http://a/b", "suite": "bad suite"}, "suite"),
    ({"name": "a", "uri": "http://a/b", "packages_to_install": ["Bad_Name"]}, "packages_to_install[0]"),
    ({"name": "a", "uri": "http://a/b", "components": "main"}, "components"),
])
def test_check_entry_names_the_field(entry, field):
    with pytest.raises(rc.ClientError) as err:
        rc.check_entry(entry)
    assert f"'{field}'" in str(err.value) and str(err.value).count("\n") == 0


def test_file_names_round_trip():
    assert rc.source_file_name("base") == "mo-fleet-base.sources"
    assert rc.deployment_of_file("mo-fleet-base.sources") == "base"
    assert rc.deployment_of_file("debian.sources") is None
    assert rc.deployment_of_file("mo-fleet-..sources") is None


def test_dpkg_state_and_installed_checks():
    state = rc.parse_dpkg_query("a\t1.0\tii \nb\t2.0\tiF \nc\t\tun \nd\t3\trc \n")
    assert rc.is_installed("a", state) and rc.is_installed("a:amd64=1.0", state)
    assert not rc.is_installed("a=2.0", state)
    assert not rc.is_installed("b", state) and rc.is_present("b", state)
    assert not rc.is_present("c", state) and not rc.is_present("d", state) and not rc.is_present("z", state)


def test_simulation_and_failures_are_parsed():
    sim = rc.parse_simulation("NOTE: x\nInst mo-a (1.0 acme [all])\nInst mo-b [1.0] (1.1 acme [all])\n"
                              "Conf mo-a (1.0 acme [all])\nRemv mo-old [1.0]\n")
    assert sim == {"install": ["mo-a", "mo-b"], "remove": ["mo-old"], "configure": ["mo-a"]}
    out = ("Setting up mo-risky (1.0) ...\ndpkg: error processing package mo-risky (--configure):\n"
           "Errors were encountered while processing:\n mo-risky\n mo-other:amd64\nE: Sub-process returned an error code (1)\n")
    assert rc.failed_packages(out) == ["mo-risky", "mo-other"]


def test_state_changes_and_attribution():
    before = {"a": ("1", "ii"), "b": ("1", "ii"), "c": ("1", "iF")}
    after = {"a": ("2", "ii"), "c": ("1", "ii"), "d": ("1", "ii")}
    assert rc.state_changes(before, after) == {"installed": ["c=1", "d=1"], "removed": ["b=1"],
                                               "upgraded": ["a=1->2"]}
    entries = [rc.check_entry({"name": "x", "uri": "http://s/x", "packages_to_install": ["mo-x"]}),
               rc.check_entry({"name": "y", "uri": "http://s/y"})]
    assert rc.attribute_failure(["mo-x"], entries, {}, ["y"]) == ["x"]
    assert rc.attribute_failure(["mo-z"], entries, {"y": {"mo-z"}}, []) == ["y"]
    assert rc.attribute_failure(["other"], entries, {}, ["y"]) == ["y"]


def test_packages_index():
    text = "Package: a\nVersion: 1\n\nPackage: b\nVersion: 2\nDescription: x\n"
    assert rc.parse_packages_index(text) == [("a", "1"), ("b", "2")]


# -- rollout ------------------------------------------------------------------------------------

def test_client_entries_internal_and_external():
    entries = client_entries(CATALOG, ["tools", "ext"], "http://repo1/")
    assert [e["name"] for e in entries] == ["ext", "tools"]
    ext, tools = entries
    assert ext["uri"] == "http://repo1/pub/acme/external/ext" and ext["suite"] == "bookworm"
    assert ext["components"] == ["main", "contrib"] and ext["signed"] is False
    assert tools["uri"] == "http://repo1/pub/acme/repos/tools" and tools["suite"] == "tools"
    assert tools["signed"] and tools["packages_to_remove"] == ["mo-old"]
    with pytest.raises(RolloutError, match="'names'"):
        client_entries(CATALOG, ["nope"], "http://repo1")
    with pytest.raises(RolloutError, match="'server_url'"):
        client_entries(CATALOG, ["base"], "repo1")


def test_waves_follow_due_dates_and_batches_never_mix_waves():
    waves = release_waves(CATALOG, HOSTS, "2026-12-10")
    # c1 got tools on Mon 7, w1/w2 on Wed 9, d1 (duration 2) on Thu 10 or Fri 11
    assert waves[0]["hosts"] == ["c1"] and waves[0]["due"] == "2026-12-07"
    assert waves[1]["hosts"] == ["w1", "w2"] and waves[1]["due"] == "2026-12-09"
    assert waves[0]["plan"]["c1"] == release_plan(CATALOG, HOSTS, "2026-12-10")["c1"]
    batches = wave_batches(waves, 1)
    assert batches["order"][:3] == ["c1", "w1", "w2"] and batches["serial"][:3] == [1, 1, 1]
    assert [b["wave"] for b in batches["batches"]][:3] == [1, 2, 2]
    assert release_batches(waves, 0)["serial"][:2] == [1, 2]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.text("abc", min_size=1, max_size=3), max_size=6, unique=True), max_size=5),
       st.integers(min_value=0, max_value=4))
def test_batches_keep_every_host_in_wave_order(hosts_per_wave, size):
    waves = [{"due": None, "hosts": hosts} for hosts in hosts_per_wave]
    out = wave_batches(waves, size)
    assert out["order"] == [h for w in hosts_per_wave for h in w]
    assert sum(out["serial"]) == len(out["order"])
    assert all(n >= 1 and (size == 0 or n <= size) for n in out["serial"])
    assert [h for b in out["batches"] for h in b["hosts"]] == out["order"]


def test_halt_decisions_use_each_threshold():
    records = {
        "c1": {"status": "error", "deployments": ["base", "tools"], "failed_deployments": ["tools"]},
        "w1": {"status": "ok", "deployments": ["base", "tools"]},
        "w2": {"status": "error", "deployments": ["base", "tools"], "failed_deployments": ["base"]},
        "d1": {"status": "error", "deployments": ["base"], "failed_deployments": []},  # server down
    }
    out = halt_decisions(CATALOG, records)
    # base: threshold 0, 1 of 4 failed -> halted; tools: threshold 50, 1 of 3 -> kept
    assert list(out) == ["base"] and out["base"]["failed"] == 1 and out["base"]["total"] == 4
    assert out["base"]["hosts"] == ["w2"]
    assert halt_decisions(CATALOG, records, threshold=30) == {
        "tools": {"failed": 1, "total": 3, "threshold": 30.0, "hosts": ["c1"]}}
    assert "base" not in halt_decisions(CATALOG, records, halted={"base": {}})
    with pytest.raises(AnsibleFilterError, match="threshold"):
        release_halts(records, CATALOG, threshold=150)


def test_state_updates_are_atomic_and_idempotent(tmp_path):
    path = tmp_path / "state" / "release-state.json"
    assert read_state(path) == {"version": 1, "halted": {}}
    changed, state, now, _ = update_state(str(path), halt={"tools": {"failed": 1}}, check=True)
    assert changed and now == ["tools"] and not path.exists()
    changed, state, now, _ = update_state(str(path), halt={"tools": {"failed": 1}})
    assert changed and json.loads(path.read_text())["halted"] == {"tools": {"failed": 1}}
    changed, state, now, _ = update_state(str(path), halt={"tools": {"failed": 9}})
    assert not changed and state["halted"]["tools"] == {"failed": 1}
    changed, state, _, resumed = update_state(str(path), resume=["tools", "other"])
    assert changed and resumed == ["tools"] and state["halted"] == {}
    assert sorted(p.name for p in path.parent.iterdir()) == ["release-state.json", "release-state.json.lock"]  # no temp left
    path.write_text("{not json")
    with pytest.raises(RolloutError, match="cannot be read"):
        read_state(path)


RECORD = {"host": "web1", "time": "2026-11-29T09:30:00Z", "date": "2026-12-07", "status": "ok",
          "deployments": ["base"]}


def test_sync_record_goes_to_the_last_record_and_the_history(tmp_path):
    last, kept = sync_record_paths(str(tmp_path), RECORD)
    assert last == str(tmp_path / "sync" / "web1.json")
    assert kept == str(tmp_path / "sync" / "history" / "web1" / "2026-11-29T093000Z-2026-12-07.json")
    assert write_sync_record(str(tmp_path), RECORD) == [last, kept]
    assert json.loads(Path(last).read_text()) == RECORD == json.loads(Path(kept).read_text())
    again = dict(RECORD, time="2026-11-29T10:00:00Z", status="error")
    assert write_sync_record(str(tmp_path), again, history=False) == [last]
    assert json.loads(Path(last).read_text())["status"] == "error"
    assert sorted(p.name for p in (tmp_path / "sync" / "history" / "web1").iterdir()) == [Path(kept).name]
    assert sorted(p.name for p in (tmp_path / "sync").iterdir()) == ["history", "web1.json"]  # no temp left


@pytest.mark.parametrize("field, value", [("host", "../etc"), ("host", ".."), ("host", ""), ("date", "a/b"),
                                          ("time", None), ("host", 7)])
def test_sync_record_refuses_names_that_are_no_plain_file_name(tmp_path, field, value):
    with pytest.raises(RolloutError, match=f"field '{field}'"):
        write_sync_record(str(tmp_path), dict(RECORD, **{field: value}))
    assert not (tmp_path / "sync").exists()
    with pytest.raises(RolloutError, match="mapping"):
        sync_record_paths(str(tmp_path), ["web1"])


def _halt_one(args):
    path, name = args
    update_state(path, halt={name: {"by": name}})


def test_concurrent_halts_are_all_kept(tmp_path):
    path = str(tmp_path / "release-state.json")
    names = [f"dep{i}" for i in range(12)]
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_halt_one, [(path, n) for n in names])
    assert sorted(read_state(path)["halted"]) == sorted(names)


def test_filters_fail_with_one_sentence():
    with pytest.raises(AnsibleFilterError, match=r"mo.fleet.release_sources: .*'start_date'"):
        release_sources({"deployments": [{"name": "x", "start_date": "2026-13-01"}]}, ["x"], "http://r")
    with pytest.raises(AnsibleFilterError, match="release_waves"):
        release_waves(CATALOG, {"h": "web"}, "2026-12-07")
    with pytest.raises(AnsibleFilterError, match="batch_size"):
        release_batches([], -1)


# -- status site --------------------------------------------------------------------------------

def test_status_site_shows_halts_hosts_packages_and_orphans():
    records = {"c1": {"status": "error", "time": "2026-12-09T10:00:00Z", "date": "2026-12-09",
                      "deployments": ["base", "tools"], "message": "apt-get install mo-tool failed"},
               "w1": {"status": "ok", "date": "2026-12-09", "deployments": ["base"], "installed": ["mo-base=1.0"]}}
    repo = {"packages": [{"path": "main/mo-base_1.0_all.deb", "name": "mo-base", "version": "1.0",
                          "architecture": "all", "deployments": ["base"]},
                         {"path": "main/mo-lost_1.0_all.deb", "name": "mo-lost", "version": "1.0",
                          "architecture": "all", "deployments": []}],
            "orphans": ["main/mo-lost_1.0_all.deb"]}
    halted = {"tools": {"failed": 1, "total": 1, "threshold": 50, "hosts": ["c1"], "date": "2026-12-07"}}
    site = build_site(CATALOG, HOSTS, records, halted, repo, "2026-12-05", "2026-12-12",
                      "2026-12-09T11:00:00Z", today="2026-12-09")
    page = site["index.html"]
    assert 'data-halted="tools"' in page
    assert 'data-host="c1" data-status="error"' in page and 'data-host="w1" data-status="ok"' in page
    assert 'data-host="d1" data-status="never"' in page
    assert 'data-deployment="tools" data-state="halted"' in page
    assert 'data-package="mo-lost" data-path="main/mo-lost_1.0_all.deb" data-orphan="yes"' in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    data = json.loads(site["status.json"])
    assert data["summary"] == {"ok": 1, "error": 1, "never": 2}
    assert data["plan"]["w1"] == ["base", "ext"]  # halted tools reaches no new host
    assert data["plan"]["c1"] == ["base", "tools"]  # c1 already has it and keeps it
    with pytest.raises(AnsibleFilterError, match="release_status_site"):
        release_status_site({"deployments": [{"name": "x"}]}, HOSTS)


def test_status_site_filter_defaults():
    site = release_status_site(CATALOG, HOSTS, today="2026-12-09")
    assert set(site) == {"index.html", "status.json"}
    assert json.loads(site["status.json"])["range"] == ["2026-12-02", "2026-12-23"]


def test_plain_turns_ansible_containers_into_dicts_and_lists():
    from collections import OrderedDict
    from ansible_collections.mo.fleet.plugins.module_utils._common.plain import plain
    value = OrderedDict([(1, ("a", frozenset({"b"}))), ("n", None), ("d", {"x": [OrderedDict(y=2)]})])
    out = plain(value)
    assert out == {"1": ["a", ["b"]], "n": None, "d": {"x": [{"y": 2}]}}
    assert type(out) is dict and type(out["d"]["x"][0]) is dict and type(out["1"]) is list
