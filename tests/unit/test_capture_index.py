"""capture_index.py: what capture_info (Store.report) and capture_directory (Store.cleanup) do."""

import json
import os

import pytest

from ansible_collections.mo.fleet.plugins.module_utils._capture.capture_index import (
    LockBusy, Store, plan_cleanup,
)

DAY = 86400.0
NOW = 1_000_000_000.0


def add(store, tid, name, age_days, archive=True):
    path = os.path.join(store.templates, tid)
    os.makedirs(path)
    with open(os.path.join(path, "template.json"), "w") as fh:
        fh.write("{}")
    if archive:
        with open(os.path.join(store.outbox, tid + ".tar.gz"), "wb") as fh:
            fh.write(b"x")
    store.add_template({"id": tid, "name": name, "created": NOW - age_days * DAY, "command": "true",
                        "status": "succeeded", "rc": 0, "path": path, "archive": None,
                        "summary": json.dumps({}), "bytes": 2})
    store.add_snapshot({"id": tid + "-pre", "created": NOW - age_days * DAY, "phase": "pre", "template_id": tid,
                        "roots": json.dumps(["/"]), "entries": 1, "packages": 0, "units": 0, "method": "walk"})


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "store"))
    s.ensure()
    for i in range(3):
        add(s, f"a{i}", "a", i)
    add(s, "b0", "b", 9, archive=False)
    os.makedirs(os.path.join(s.work, "killed-run"))     # a killed capture's work directory
    os.makedirs(os.path.join(s.templates, "stray"))     # a bundle the index does not know
    return s


def listing(store):
    return {sub: sorted(os.listdir(os.path.join(store.root, sub))) for sub in ("templates", "outbox", "work")}


@pytest.mark.parametrize("option", ["capture_directory", "store"])
def test_the_capture_directory_option_and_its_old_name_store_both_reach_the_module(store, option, capsys):
    """capture_info reads the capture directory it is given, under the new name or the old one
    (an alias Ansible itself marks deprecated)."""
    from ansible.module_utils.testing import patch_module_args
    from ansible_collections.mo.fleet.plugins.modules import capture_info as module

    with patch_module_args({option: store.root}):
        with pytest.raises(SystemExit):
            module.main()
    out = json.loads(capsys.readouterr().out)
    assert out["status"]["capture_directory"] == store.root == out["status"]["store"]
    assert out["status"]["templates"] == 4


def test_report_counts_and_filters_by_name(store):
    full = store.report()
    assert full["status"]["exists"] and not full["status"]["locked"]
    assert (full["status"]["templates"], full["status"]["snapshots"], full["status"]["pending_archives"]) == (4, 4, 3)
    assert full["status"]["bytes"] > 0
    only_b = store.report("b")
    assert [t["id"] for t in only_b["templates"]] == ["b0"]
    assert [s["id"] for s in only_b["snapshots"]] == ["b0-pre"]
    with store.lock(wait=0):
        other = Store(store.root)
        assert other.report()["status"]["locked"]


def test_report_of_a_missing_store_changes_nothing(tmp_path):
    missing = Store(str(tmp_path / "nope"))
    assert missing.report()["status"] == {"capture_directory": missing.root, "store": missing.root, "exists": False, "locked": False, "snapshots": 0,
                                          "templates": 0, "bytes": 0, "pending_archives": 0}
    assert not os.path.exists(missing.root)


def test_cleanup_check_mode_reports_and_writes_nothing(store):
    before = listing(store)
    removed, kept = store.cleanup(keep=1, now=NOW, check_mode=True)
    assert kept == ["a0", "b0"]
    assert removed == ["a1", "a2", "templates/stray", "outbox/a1.tar.gz", "outbox/a2.tar.gz", "work/killed-run"]
    assert listing(store) == before and len(store.list_templates()) == 4


def test_cleanup_keeps_newest_and_removes_the_rest(store):
    removed, kept = store.cleanup(keep=1, max_age_days=0, now=NOW)
    assert kept == ["a0", "b0"]
    assert sorted(removed) == sorted(["a1", "a2", "templates/stray", "outbox/a1.tar.gz", "outbox/a2.tar.gz",
                                      "work/killed-run"])
    assert listing(store) == {"templates": ["a0", "b0"], "outbox": ["a0.tar.gz"], "work": []}
    assert [t["id"] for t in store.list_templates()] == ["b0", "a0"]
    assert sorted(s["template_id"] for s in store.list_snapshots()) == ["a0", "b0"]
    assert store.cleanup(keep=1, now=NOW) == ([], ["a0", "b0"])  # second run: nothing to do
    assert not store.locked_by_other()


def test_cleanup_reset_removes_everything(store):
    removed, kept = store.cleanup(reset=True)
    assert kept == [] and {"a0", "a1", "a2", "b0", "templates/stray", "work/killed-run"} <= set(removed)
    assert listing(store) == {"templates": [], "outbox": [], "work": []}
    assert store.list_templates() == [] and store.list_snapshots() == []


def test_cleanup_waits_for_a_running_capture_then_says_so(store):
    with store.lock(wait=0):
        with pytest.raises(LockBusy, match="Another capture held the lock"):
            Store(store.root).cleanup(keep=0, wait=0.3)
    assert len(store.list_templates()) == 4


@pytest.mark.parametrize("recorded", ["/", "{victim}", "{templates}/../../victim", "{templates}/a1/.."])
def test_cleanup_never_removes_what_a_hostile_index_points_at(store, tmp_path, recorded):
    from ansible_collections.mo.fleet.plugins.module_utils._capture.capture_index import StoreError

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep\n")
    recorded = recorded.format(victim=victim, templates=store.templates)
    with store.db() as db:
        db.execute("UPDATE templates SET path = ? WHERE id = 'a1'", (recorded,))
    with pytest.raises(StoreError, match="which is not"):
        store.cleanup(keep=1, max_age_days=0, now=NOW)
    assert (victim / "precious").read_text() == "keep\n"
    assert os.path.isdir(os.path.join(store.templates, "a1"))
    assert not store.locked_by_other()


@pytest.mark.parametrize("bad", ["..", "a/b", "", "x\ny", "."])
def test_template_dir_refuses_ids_that_are_not_a_plain_name(store, bad):
    from ansible_collections.mo.fleet.plugins.module_utils._capture.capture_index import StoreError

    with pytest.raises(StoreError, match="template id"):
        store.template_dir(bad)
