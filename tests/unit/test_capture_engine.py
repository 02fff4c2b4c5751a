"""capture.py engine run for real on this machine, confined to temp trees and a temp store."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from ansible_collections.mo.fleet.plugins.module_utils._capture import capture as cap
from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._capture import trace as tr
from ansible_collections.mo.fleet.plugins.module_utils._capture.capture_index import LockBusy, Store
from ansible_collections.mo.fleet.plugins.module_utils._capture.capture_index import plan_cleanup

COLLECTIONS = Path(__file__).resolve().parents[2] / ".collections"


@pytest.fixture
def area():
    """A tree on the ext4 root (fanotify works there) plus a store beside it."""
    base = tempfile.mkdtemp(prefix="mo-fleet-cap-", dir="/var/tmp")
    root = os.path.join(base, "root")
    os.makedirs(os.path.join(root, "etc"))
    os.makedirs(os.path.join(root, "opt/old"))
    with open(os.path.join(root, "etc/app.conf"), "w") as handle:
        handle.write("v=1\n")
    with open(os.path.join(root, "opt/old/f"), "w") as handle:
        handle.write("old\n")
    yield base, root
    shutil.rmtree(base, ignore_errors=True)


def options(root, script, **extra):
    opts = {"argv": ["sh", "-c", script, "sh", root], "roots": [root], "exclude": [],
            "config_roots": [root + "/etc"], "name": "t"}
    opts.update(extra)
    return opts


CHANGE = 'echo v=2 >> "$1/etc/app.conf"; rm -rf "$1/opt/old"; mkdir "$1/opt/new"; echo n > "$1/opt/new/bin"; chmod 700 "$1/opt/new/bin"'


def file_ops(doc):
    out = {}
    for op in tpl.PATH_OPERATIONS:
        out[op] = sorted(e["path"] for e in doc["operations"][op])
    return out


@pytest.mark.parametrize("mode", ["none", "auto"] + (["strace"] if shutil.which("strace") else []))
def test_every_trace_mode_records_the_same_changes(area, mode):
    base, root = area
    result = cap.capture(options(root, CHANGE, trace=mode), store=Store(base + "/store"))
    doc = result["template"]
    assert result["rc"] == 0 and result["status"] == "succeeded"
    assert tpl.validate(doc, use_jsonschema=True) == []
    ops = file_ops(doc)
    assert ops["files_modified"] == [root + "/etc/app.conf"]
    assert ops["files_deleted"] == [root + "/opt/old/f"]
    assert ops["directories_deleted"] == [root + "/opt/old"]
    assert ops["directories_created"] == [root + "/opt/new"]
    assert ops["files_created"] == [root + "/opt/new/bin"]
    used = doc["metadata"]["trace"]["used"]
    if mode == "auto":
        assert used == ("fanotify" if tr.probe("/var/tmp") is None else "walk")
    assert used == {"none": "walk", "strace": "strace"}.get(mode, used)
    # bundle on the target: finished dir + archive, indexed; no work left behind
    store = Store(base + "/store")
    bundle = result["bundle"]["path"]
    assert tpl.verify_bundle(bundle) == doc
    assert open(os.path.join(bundle, "before", (root + "/etc/app.conf").lstrip("/"))).read() == "v=1\n"
    assert os.path.isfile(result["bundle"]["archive"])
    assert [t["id"] for t in store.list_templates()] == [result["bundle"]["id"]]
    assert [s["phase"] for s in store.list_snapshots()] == ["pre", "post"]
    assert store.stale_work() == []


def test_same_result_with_and_without_fanotify(area):
    if tr.probe("/var/tmp") is not None:
        pytest.skip("fanotify unsupported here")
    base, root = area
    walked = cap.capture(options(root, CHANGE, trace="none"), store=Store(base + "/s1"))
    subprocess.run(["sh", "-c", 'rm -rf "$1/opt/new"; mkdir -p "$1/opt/old"; echo old > "$1/opt/old/f"; echo v=1 > "$1/etc/app.conf"',
                    "sh", root], check=True)
    traced = cap.capture(options(root, CHANGE, trace="fanotify"), store=Store(base + "/s2"))
    assert traced["trace"]["used"] == "fanotify"
    strip = lambda ops: {k: v for k, v in ops.items() if k != "excluded"}  # noqa: E731  (store paths differ)
    assert strip(file_ops(traced["template"])) == strip(file_ops(walked["template"]))


def test_errors_are_one_sentence(area, tmp_path):
    base, root = area
    store = Store(base + "/store")
    with pytest.raises(cap.CaptureError, match="^The command no-such-cmd-x was not found on the target's PATH.$"):
        cap.capture({"cmd": "no-such-cmd-x", "roots": [root], "exclude": []}, store=store)
    with pytest.raises(cap.CaptureError, match="^chdir /no/where does not exist or is not a directory.$"):
        cap.capture({"cmd": "true", "chdir": "/no/where"}, store=store)
    with pytest.raises(cap.CaptureError, match="Exactly one of cmd or argv"):
        cap.resolve_argv(cmd="a", argv=["b"])
    with pytest.raises(cap.CaptureError, match="trace must be one of"):
        cap.capture({"cmd": "true", "trace": "magic"}, store=store)
    with pytest.raises(cap.CaptureError, match="roots: The path 'rel' is not absolute"):
        cap.capture({"cmd": "true", "roots": ["rel"]}, store=store)
    with pytest.raises(cap.CaptureError, match="^roots: /no/such/root does not exist or is not a directory.$"):
        cap.capture({"cmd": "true", "roots": ["/no/such/root"]}, store=store)
    assert cap.resolve_argv(cmd="echo 'a b'") == ["echo", "a b"]
    assert cap.resolve_argv(cmd="echo a | tr a b", shell=True) == ["/bin/sh", "-c", "echo a | tr a b"]
    (tmp_path / "made").write_text("")
    assert cap.skip_reason(creates="made", chdir=str(tmp_path)) == "skipped, since made exists"
    assert cap.skip_reason(removes=str(tmp_path / "nope*")).endswith("does not exist")
    assert cap.skip_reason(creates=str(tmp_path / "nope")) is None
    assert not os.path.exists(os.path.join(base, "store", "templates")) or not os.listdir(os.path.join(base, "store", "templates"))


def test_failed_command_still_yields_a_template(area):
    base, root = area
    result = cap.capture(options(root, 'touch "$1/opt/half"; echo bad >&2; exit 4'), store=Store(base + "/store"))
    assert result["rc"] == 4 and result["status"] == "failed" and "bad" in result["stderr"]
    assert result["template"]["MO_template"]["status"] == "failed"
    assert result["template"]["operations"]["files_created"][0]["path"] == root + "/opt/half"


def _sleepers(tag):
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if tag in open("/proc/%s/cmdline" % pid, "rb").read().decode(errors="replace"):
                    found.append(int(pid))
            except OSError:
                pass
    return found


def test_timeout_kills_the_whole_process_tree():
    tag = "97.%d" % os.getpid()
    res = cap.run_command(["sh", "-c", "sleep %s & setsid sleep %s & sleep %s" % (tag, tag, tag)], timeout=1)
    assert res.timed_out and res.rc != 0
    time.sleep(0.2)
    assert _sleepers("sleep\x00" + tag) == []


def test_lock_keeps_two_captures_apart(area):
    base, _root = area
    first = Store(base + "/store").lock(wait=0)
    try:
        with pytest.raises(LockBusy, match="Another capture held the lock"):
            Store(base + "/store").lock(wait=0.3)
        assert Store(base + "/store").locked_by_other()
    finally:
        first.unlock()
    assert not Store(base + "/store").locked_by_other()


def test_killed_capture_leaves_no_stale_lock_and_no_half_written_template(area):
    base, root = area
    tag = "93.%d" % os.getpid()
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys
        sys.path.insert(0, %r)
        from ansible_collections.mo.fleet.plugins.module_utils._capture import capture as cap
        from ansible_collections.mo.fleet.plugins.module_utils._capture.capture_index import Store
        cap.capture({"argv": ["sleep", %r], "roots": [%r], "exclude": [], "trace": "none"},
                    store=Store(%r))
    """ % (str(COLLECTIONS), tag, root, base + "/store"))])
    store = Store(base + "/store")
    deadline = time.monotonic() + 30
    while not _sleepers("sleep\x00" + tag):
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.05)
    assert store.locked_by_other()
    child.send_signal(signal.SIGKILL)
    child.wait()
    for pid in _sleepers("sleep\x00" + tag):
        os.kill(pid, signal.SIGKILL)
    assert not store.locked_by_other()
    store.lock(wait=0).unlock()
    assert os.listdir(store.templates) == [] and os.listdir(store.outbox) == []
    assert store.list_templates() == []
    assert len(store.stale_work()) == 1  # capture_directory cleanup removes it


def test_full_disk_is_one_sentence_and_leaves_nothing(area):
    base, root = area
    small = os.path.join(base, "small")
    os.makedirs(small)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", small]).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        store = Store(small)
        with pytest.raises(cap.CaptureError, match="^The target ran out of disk space while writing the capture under"):
            cap.capture(options(root, 'head -c 400000 /dev/urandom > "$1/opt/big"', trace="none"), store=store)
        assert os.listdir(store.templates) == [] and os.listdir(store.work) == []
        assert not store.locked_by_other()
    finally:
        subprocess.run(["umount", small])


def test_plan_cleanup_keeps_newest_per_name():
    now = 1_000_000.0
    rows = [{"id": "a%d" % i, "name": "a", "created": now - i * 86400} for i in range(4)]
    rows += [{"id": "b0", "name": "b", "created": now - 10 * 86400}]
    assert plan_cleanup(rows, keep=2, max_age_days=0, now=now) == (["a2", "a3"], ["a0", "a1", "b0"])
    assert plan_cleanup(rows, keep=1, max_age_days=3, now=now) == (["a3"], ["a0", "a1", "a2", "b0"])
    assert plan_cleanup(rows, keep=0, max_age_days=0, now=now)[1] == []


def test_archive_placement_outbox_inline_and_archive_dir(area, tmp_path):
    """Without inline_max the outbox keeps the archive and the index records it; with it, a small
    archive comes back base64-encoded and a large one lands in archive_dir, neither indexed."""
    import base64
    import hashlib
    base, root = area
    store = Store(base + "/store")
    kept = cap.capture(options(root, "true", name="kept"), store=store)
    assert os.path.dirname(kept["bundle"]["archive"]) == store.outbox and "content" not in kept["bundle"]

    inline = cap.capture(options(root, "true", name="inline", inline_max=4 << 20), store=store)
    data = base64.b64decode(inline["bundle"]["content"], validate=True)
    assert inline["bundle"]["archive"] is None
    assert hashlib.sha256(data).hexdigest() == inline["bundle"]["sha256"] and len(data) == inline["bundle"]["size"]

    handoff = str(tmp_path / "handoff")
    os.makedirs(handoff)
    large = cap.capture(options(root, "true", name="large", inline_max=1, archive_dir=handoff), store=store)
    assert "content" not in large["bundle"]
    assert os.path.dirname(large["bundle"]["archive"]) == handoff
    assert tpl.sha256_file(large["bundle"]["archive"]) == large["bundle"]["sha256"]

    # the outbox holds only the archive left there on purpose, and the index says exactly that
    assert store.outbox_files() == [kept["bundle"]["archive"]]
    recorded = dict((t["name"], t["archive"]) for t in store.list_templates())
    assert recorded == {"kept": kept["bundle"]["archive"], "inline": None, "large": None}
    assert store.stale_work() == []


@pytest.mark.parametrize("extra, field", [({"archive_dir": "relative/dir"}, "archive_dir"),
                                          ({"archive_dir": "/nonexistent/mo-fleet"}, "archive_dir"),
                                          ({"inline_max": -1}, "inline_max")])
def test_bad_archive_options_are_one_sentence_and_run_nothing(area, extra, field):
    base, root = area
    marker = os.path.join(root, "ran")
    with pytest.raises(cap.CaptureError) as info:
        cap.capture(options(root, 'touch "$1/ran"', **extra), store=Store(base + "/store"))
    message = str(info.value)
    assert message.startswith(field) and message.endswith(".") and message.count(". ") == 0
    assert not os.path.exists(marker)
