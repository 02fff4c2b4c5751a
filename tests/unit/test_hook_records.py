"""The dpkg hook's records.jsonl has the capture directory's retention (issue 14): the newest
KEEP records per requesting program, plus those since the drift baseline, rewritten atomically
under the capture directory's lock and the records' own lock, so no line appended meanwhile is
lost.  A temporary capture directory."""

import datetime
import os
import threading
import time

import pytest

from ansible_collections.mo.fleet.plugins.module_utils._capture import hook_records
from ansible_collections.mo.fleet.plugins.module_utils._capture.capture_index import LockBusy, Store
from ansible_collections.mo.fleet.plugins.module_utils._common.lock import FileLock


def _record(program, when, name="pkg", argv=True):
    stamp = datetime.datetime.fromtimestamp(when, datetime.timezone.utc).replace(microsecond=0).isoformat()
    item = {"time": stamp, "packages": [{"name": name, "change": "installed", "version": "1"}],
            "command": f"/usr/bin/{program} install {name}"}
    if argv:
        item["argv"] = [f"/usr/bin/{program}", "install", name]
    return item


def _names(store):
    return [r["packages"][0]["name"] for r in hook_records.read(store.hook)]


@pytest.fixture
def store(tmp_path):
    store = Store(str(tmp_path / "cd"))
    store.ensure()
    return store


@pytest.mark.parametrize("record, name", [
    ({"argv": ["/usr/bin/apt-get", "install", "-y", "nginx"]}, "apt-get"),
    ({"argv": [], "command": "/usr/bin/unattended-upgrade --verbose"}, "unattended-upgrade"),
    ({"command": "dpkg -i /src/x.deb"}, "dpkg"),
    ({"argv": [7], "command": None}, "dpkg"),
    ({}, "dpkg"),
])
def test_a_record_is_counted_under_the_program_that_asked(record, name):
    assert hook_records.record_name(record) == name


def test_plan_keeps_the_newest_per_program_and_everything_since_the_baseline():
    records = [_record("dpkg", 100 + i, f"d{i}") for i in range(4)]
    records.insert(1, _record("apt-get", 101, "a0"))
    records.append(_record("apt-get", 200, "a1"))
    records.append({"packages": [], "time": "not a time", "command": "cron"})  # no time: as old as can be
    names = [r["packages"][0]["name"] if r["packages"] else "-" for r in records]
    keep = [names[i] for i in hook_records.plan(records, keep=2)]
    assert keep == ["a0", "d2", "d3", "a1", "-"]
    # since the baseline (whole seconds, as records have them) everything stays, whatever KEEP says
    assert [names[i] for i in hook_records.plan(records, keep=0, since=102.6)] == ["d2", "d3", "a1"]
    assert [names[i] for i in hook_records.plan(records, keep=0, max_age_days=1, now=200 + 86400 - 50)] == ["a1"]


def test_cleanup_prunes_the_records_atomically_and_keeps_the_file_private(store):
    for i in range(5):
        hook_records.append(store.hook, _record("dpkg", 100 + i, f"d{i}"))
    hook_records.append(store.hook, _record("apt-get", 105, "a0"))
    path = os.path.join(store.hook, hook_records.RECORDS)
    with open(path, "a") as handle:
        handle.write("half a line\n")
    removed, kept = store.cleanup(keep=2, check_mode=True)
    assert (removed, kept) == (["hook/records.jsonl: 3 record(s)"], [])
    assert len(_names(store)) == 6  # check mode writes nothing
    removed, _kept = store.cleanup(keep=2)
    assert removed == ["hook/records.jsonl: 3 record(s)"]
    assert _names(store) == ["d3", "d4", "a0"]
    assert "half a line" not in open(path).read()
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert [n for n in os.listdir(store.hook) if n.startswith(".tmp-")] == []
    inode = os.stat(path).st_ino
    assert store.cleanup(keep=2) == ([], [])
    assert os.stat(path).st_ino == inode  # nothing to remove: the file is not rewritten


def test_the_baseline_keeps_what_drift_attributes_from_even_through_reset(store):
    for i in range(4):
        hook_records.append(store.hook, _record("dpkg", 1000 + i * 10, f"d{i}"))
    os.makedirs(os.path.dirname(store.baseline))
    with open(store.baseline, "wb") as handle:
        handle.write(b"baseline")
    os.utime(store.baseline, (1015.5, 1015.5))  # drift.take_baseline dates its file so
    assert store.cleanup(keep=1)[0] == ["hook/records.jsonl: 2 record(s)"]
    assert _names(store) == ["d2", "d3"]  # d3 the newest, d2 since the baseline
    store.cleanup(reset=True)
    assert _names(store) == ["d2", "d3"]
    os.unlink(store.baseline)
    assert store.cleanup(reset=True)[0] == ["hook/records.jsonl: 2 record(s)"]
    assert _names(store) == []


def test_take_baseline_dates_its_file_at_its_creation(store, tmp_path):
    from ansible_collections.mo.fleet.plugins.module_utils._capture import drift
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f").write_text("x")
    info = drift.take_baseline(store, [str(tree)], [])
    assert os.stat(store.baseline).st_mtime == pytest.approx(info["created"], abs=1e-3)
    assert store.baseline_time() == pytest.approx(info["created"], abs=1e-3)


def test_a_record_appended_during_a_prune_is_not_lost(store, monkeypatch):
    for i in range(3):
        hook_records.append(store.hook, _record("dpkg", 100 + i, f"d{i}"))
    appended, workers = threading.Event(), []
    real_write = hook_records.atomic_write

    def slow_write(path, data, mode=0o644):
        """The prune has read the file: a dpkg run appends now."""
        workers.append(threading.Thread(target=lambda: (
            hook_records.append(store.hook, _record("dpkg", 200, "late")), appended.set())))
        workers[0].start()
        time.sleep(0.3)
        assert not appended.is_set()  # the appender waits for the prune's lock
        real_write(path, data, mode)

    monkeypatch.setattr(hook_records, "atomic_write", slow_write)
    store.cleanup(keep=1)
    workers[0].join(5)
    assert appended.is_set()
    assert _names(store) == ["d2", "late"]


def test_a_busy_records_lock_never_loses_a_record_and_fails_a_cleanup_in_one_sentence(store, monkeypatch):
    hook_records.append(store.hook, _record("dpkg", 100, "d0"))
    hook_records.append(store.hook, _record("dpkg", 101, "d1"))
    monkeypatch.setattr(hook_records, "APPEND_WAIT", 0.1)
    monkeypatch.setattr(hook_records, "PRUNE_WAIT", 0.1)
    with FileLock(os.path.join(store.hook, hook_records.RECORDS_LOCK), 0):
        hook_records.append(store.hook, _record("dpkg", 102, "d2"))  # after the wait: appended anyway
        with pytest.raises(LockBusy, match="held the lock"):
            store.cleanup(keep=1)
    assert _names(store) == ["d0", "d1", "d2"]
    assert store.cleanup(keep=1)[0] == ["hook/records.jsonl: 2 record(s)"]

