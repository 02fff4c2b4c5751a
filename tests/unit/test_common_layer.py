# -*- coding: utf-8 -*-
"""The common layer: the one atomic writer, the one file lock, the one plain helper."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from ansible_collections.mo.fleet.plugins.module_utils._common import fs, layout, lock, plain


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "f"
    fs.atomic_write(str(target), "one\n", mode=0o600)
    assert target.read_text() == "one\n" and (target.stat().st_mode & 0o777) == 0o600

    def boom(handle):
        handle.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        fs.atomic_write(str(target), boom)
    assert target.read_text() == "one\n"
    assert sorted(os.listdir(tmp_path)) == ["f"]  # no temp file left behind


def test_write_if_changed_writes_new_content_and_puts_mode_and_owner_right(tmp_path):
    target = tmp_path / "sub" / "f"
    gid = os.getgid()
    assert fs.write_if_changed(str(target), "one\n", mode=0o640, owner=os.getuid(), group=gid, dir_mode=0o700) is True
    assert target.read_text() == "one\n" and (target.stat().st_mode & 0o777) == 0o640
    assert (target.parent.stat().st_mode & 0o777) == 0o700 and target.stat().st_gid == gid
    before = target.stat().st_ino
    assert fs.write_if_changed(str(target), b"one\n", mode=0o640) is False  # same: not rewritten
    assert target.stat().st_ino == before
    os.chmod(target, 0o666)
    assert fs.write_if_changed(str(target), "one\n", mode=0o640) is True  # same content, mode put right
    assert (target.stat().st_mode & 0o777) == 0o640 and target.stat().st_ino == before
    assert fs.write_if_changed(str(target), "one\ntwo\n", mode=0o640) is True
    assert target.read_text() == "one\ntwo\n" and target.stat().st_ino != before  # replaced by rename
    assert fs.write_if_changed(str(target), "one\n", mode=0o640) is True  # a prefix of it is a change too
    assert sorted(os.listdir(target.parent)) == ["f"]


def _hold(path, ready, release):
    with lock.FileLock(path, 1):
        ready.set()
        release.wait(10)


def test_lock_refuses_in_one_sentence_after_the_timeout_and_frees_on_exit(tmp_path):
    path = str(tmp_path / "state" / "lock")
    ready, release = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold, args=(path, ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        assert lock.held_by_other(path)
        with pytest.raises(lock.LockBusy) as err:
            lock.FileLock(path, 0.2, holder="another publish").acquire()
        assert str(err.value) == f"another publish held the lock {path} for more than 0.2 seconds; wait for it to finish."
    finally:
        release.set()
        holder.join(10)
    assert not lock.held_by_other(path)
    with lock.FileLock(path, 0) as taken:
        assert taken.fd is not None
    assert os.path.getsize(path) == 0  # taking the lock writes nothing


def test_lock_raises_the_callers_error_class(tmp_path):
    class Mine(Exception):
        pass

    path = str(tmp_path / "lock")
    with lock.FileLock(path, 0):
        with pytest.raises(Mine, match="held the lock"):
            # flock locks belong to the open file description: a second open conflicts
            lock.FileLock(path, 0, error=Mine).acquire()


def test_plain_gives_plain_containers():
    class Tagged(str):
        pass

    value = plain.plain({1: (Tagged("a"), {"b"}), "c": None})
    assert value == {"1": ["a", ["b"]], "c": None}
    assert type(value["1"][0]) is str


def test_layout_is_the_one_place_for_paths():
    paths = layout.project_paths("/r", "demo")
    assert paths["lock"] == "/r/demo/state/lock" and paths["stores"] == "/r/demo/stores"
    assert layout.gnupg_home("demo") == "/var/lib/mo-fleet/gnupg/demo"


# ---------------------------------------------------------------- the readers behind the lookups

def test_sync_records_reader_reads_what_the_writer_wrote_and_refuses_a_corrupt_record(tmp_path):
    from ansible_collections.mo.fleet.plugins.module_utils._release import rollout

    record = {"host": "web1", "time": "2026-12-02T01:00:00Z", "date": "2026-12-02", "deployments": ["base"]}
    rollout.write_sync_record(str(tmp_path), record)
    assert rollout.read_sync_records(str(tmp_path), ["web1", "web2"]) == {"web1": record}
    (tmp_path / "sync" / "web2.json").write_text('{"host": "web2", "deployments": "base"}')
    with pytest.raises(rollout.RolloutError, match=r"^sync record .*/sync/web2.json: field 'deployments'"):
        rollout.read_sync_records(str(tmp_path), ["web2"])
    (tmp_path / "sync" / "web2.json").write_text("{not json")
    with pytest.raises(rollout.RolloutError, match=r"^sync record .*/sync/web2.json: cannot be read"):
        rollout.read_sync_records(str(tmp_path), ["web2"])
    with pytest.raises(rollout.RolloutError, match="host '../x' is not a plain file name part"):
        rollout.read_sync_records(str(tmp_path), ["../x"])


def test_release_state_update_waits_for_the_lock_then_refuses_in_one_sentence(tmp_path):
    from ansible_collections.mo.fleet.plugins.module_utils._release import rollout

    path = str(tmp_path / "release-state.json")
    with lock.FileLock(path + ".lock", 0):
        with pytest.raises(rollout.RolloutError, match="another rollout or resume held the lock .* for more than 0.1 seconds"):
            rollout.update_state(path, halt={"base": {"rate": 1}}, lock_timeout=0.1)
    changed, state, halted, _resumed = rollout.update_state(path, halt={"base": {"rate": 1}}, lock_timeout=0.1)
    assert changed and halted == ["base"] and rollout.read_state(path) == state


def test_gpg_fingerprints_are_parsed_once_for_the_role_and_the_publisher():
    from ansible_collections.mo.fleet.plugins.filter.repo import gpg_fingerprints
    from ansible_collections.mo.fleet.plugins.module_utils._repo.repo_index import secret_key_fingerprints

    colons = ("sec:u:255:22:AAAA1111:1700000000:::u:::scESC:::+:::ed25519:::0:\n"
              "fpr:::::::::0123456789ABCDEF0123456789ABCDEF01234567:\n"
              "grp:::::::::ABCDEF:\n"
              "uid:u::::1700000000::HASH::mo.fleet <repo@example>::::::::::0:\n"
              "ssb:u:255:18:BBBB2222:1700000000::::::e:::+:::cv25519::\n"
              "fpr:::::::::FEDCBA9876543210FEDCBA9876543210FEDCBA98:\n")
    assert secret_key_fingerprints(colons) == ["0123456789ABCDEF0123456789ABCDEF01234567"]
    assert gpg_fingerprints(colons) == secret_key_fingerprints(colons)
    assert secret_key_fingerprints("fpr:::::::::X:\n") == []  # a subkey's fpr alone is no secret key


@pytest.mark.parametrize("path, pattern, expected", [
    ("/opt/app1/x", "/opt/app?", True),   # a glob's match selects what lies below it
    ("/opt/app1", "/opt/app?", True),
    ("/opt/app12", "/opt/app?", False),
    ("/opt/app/x", "/opt/app", True),     # a plain path selects itself and below
    ("/opt/apple", "/opt/app", False),
    ("/etc/x.conf", "/etc/*.conf", True),
    ("/ETC/x.conf", "/etc/*.conf", False),  # case-sensitive
])
def test_one_include_exclude_matcher_for_render_and_verify(path, pattern, expected):
    from ansible_collections.mo.fleet.plugins.module_utils._capture import verify
    from ansible_collections.mo.fleet.plugins.module_utils._common import paths

    assert paths.matches(path, pattern) is expected
    assert verify._selected(path, {"include": [pattern]}) is expected
    assert verify._selected(path, {"exclude": [pattern]}) is not expected


def test_read_tail_reads_at_most_its_limit_from_the_end(tmp_path):
    from ansible_collections.mo.fleet.plugins.module_utils._common.logtail import read_tail
    log = tmp_path / "history.log"
    log.write_bytes(b"old line\n" * 1000 + b"last \xff line\n")
    assert read_tail(str(log), 12) == "last \ufffd line\n"
    assert read_tail(str(log), 1 << 20).startswith("old line\n")
    assert read_tail(str(tmp_path / "missing.log"), 100) is None


def _read_capped_in_time(path, cap):
    """read_capped(PATH, CAP) in a thread: its result or exception, or a failure when it blocks."""
    import threading
    out = {}

    def run():
        try:
            out["data"] = fs.read_capped(str(path), cap)
        except (OSError, ValueError) as exc:
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), f"read_capped blocked on {path}"
    return out


def test_read_capped_reads_up_to_its_cap_and_refuses_more_before_reading(tmp_path):
    small = tmp_path / "small"
    small.write_bytes(b"x" * 100)
    assert fs.read_capped(str(small), 100) == b"x" * 100
    with pytest.raises(fs.TooLarge) as err:
        fs.read_capped(str(small), 99)
    assert (err.value.size, err.value.cap, str(err.value)) == (100, 99, f"{small} is larger than 99 bytes")
    huge = tmp_path / "huge"
    with open(huge, "wb") as handle:
        handle.truncate(1 << 40)  # sparse: refused by its size, never read
    with pytest.raises(fs.TooLarge) as err:
        fs.read_capped(str(huge), 1 << 20)
    assert err.value.size == 1 << 40
    # a file whose size says 0 but that holds more (a /proc file, or one growing while read)
    with pytest.raises(fs.TooLarge) as err:
        fs.read_capped("/proc/self/status", 10)
    assert err.value.size is None
    with pytest.raises(FileNotFoundError):
        fs.read_capped(str(tmp_path / "absent"), 10)


def test_read_capped_never_blocks_on_a_fifo_nor_reads_a_device_or_a_directory(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    os.symlink(fifo, link)  # a symlink is followed to what it names, and that is checked
    for path in (fifo, link, "/dev/zero", "/dev/null", tmp_path):
        out = _read_capped_in_time(path, 1 << 20)
        assert "data" not in out, path
        assert isinstance(out["error"], OSError) and out["error"].strerror == "not a regular file", path
    big = tmp_path / "big"
    big.write_bytes(b"y" * 11)
    os.symlink(big, tmp_path / "to-big")
    with pytest.raises(fs.TooLarge):
        fs.read_capped(str(tmp_path / "to-big"), 10)
