"""trace.py: fanotify on this machine's own ext4 root, strace log parsing and a real strace run.

The lab's containers run on podman's overlay root, where fanotify filesystem marks are refused;
this machine (root on ext4) supports them, so the fanotify path is tested here on a temp dir.
"""

import os
import shutil
import subprocess
import tempfile

import pytest

from ansible_collections.mo.fleet.plugins.module_utils._capture import snapshot as snap
from ansible_collections.mo.fleet.plugins.module_utils._capture import trace as tr

REASON = tr.probe("/var/tmp")
needs_fanotify = pytest.mark.skipif(REASON is not None, reason="fanotify unsupported here: %s" % REASON)


@pytest.fixture
def ext4_dir():
    path = tempfile.mkdtemp(prefix="mo-fleet-trace-", dir="/var/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


SCRIPT = """
set -e
cd "$1"
mkdir -p new/a/b && echo hi > new/a/b/c
chmod 600 keep
rm -rf old
ln -s keep lnk
mkdir stage && echo s > stage/f && mv stage moved
echo more >> edit
mv edit edited
"""


def prepare(root):
    os.makedirs(os.path.join(root, "old/sub/deeper"))
    for rel, text in (("old/sub/f", "x"), ("old/sub/deeper/g", "y"), ("keep", "k"), ("edit", "e")):
        with open(os.path.join(root, rel), "w") as handle:
            handle.write(text)


@needs_fanotify
def test_fanotify_sees_every_change_and_rescan_matches_a_full_walk(ext4_dir):
    prepare(ext4_dir)
    before = snap.walk([ext4_dir], [])
    tracer = tr.FanotifyTracer(list(before.devices.values())).start()
    try:
        subprocess.run(["sh", "-c", SCRIPT, "sh", ext4_dir], check=True)
    finally:
        result = tracer.stop()
    assert result.lossy is None
    touched = {p: ev for p, ev in result.touched.items() if p.startswith(ext4_dir)}
    j = lambda rel: os.path.join(ext4_dir, rel)  # noqa: E731
    assert "create" in touched[j("new")] and "create" in touched[j("new/a/b/c")]
    assert "attrib" in touched[j("keep")]
    assert "delete" in touched[j("old")]
    assert "moved_from" in touched[j("stage")] and "moved_to" in touched[j("moved")]
    assert "moved_to" in touched[j("edited")]
    assert result.processes[j("keep")]  # "comm[pid]", or "[pid]" once the process has exited
    fast = snap.rescan(before, touched, [ext4_dir], [])
    full = snap.walk([ext4_dir], [])
    assert snap.diff(before, fast) == snap.diff(before, full)
    assert fast.entries == full.entries


def test_fanotify_refusal_is_a_clear_reason(tmp_path):
    # /proc cannot be marked with file handles anywhere
    reason = tr.probe("/proc")
    assert reason and "fanotify" in reason


STRACE_LOG = r'''
101 execve("/usr/bin/dpkg", ["dpkg", "-i", "x.deb"], 0x7ffd /* 20 vars */) = 0
101 openat(AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3
101 openat(AT_FDCWD, "/usr/bin/tool.dpkg-new", O_WRONLY|O_CREAT|O_EXCL, 0755) = 4
101 rename("/usr/bin/tool.dpkg-new", "/usr/bin/tool") = 0
102 execve("/bin/chmod", ["chmod", "600", "rel"], 0x1 /* 1 vars */) = 0
102 fchmodat(AT_FDCWD, "rel", 0600) = 0
103 mkdir("/opt/x", 0777 <unfinished ...>
103 <... mkdir resumed>) = 0
104 unlinkat(AT_FDCWD, "/etc/old", 0) = 0
104 symlinkat("/usr/bin/tool", AT_FDCWD, "/usr/local/bin/t") = 0
105 openat(AT_FDCWD, "/etc/caf\303\251", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3
'''


def test_parse_strace_attributes_paths_to_processes():
    result = tr.parse_strace(STRACE_LOG, cwd="/srv")
    assert result.method == "strace"
    assert "/etc/ld.so.cache" not in result.touched  # read-only open
    assert result.touched["/usr/bin/tool.dpkg-new"] == {"create", "moved_from"}
    assert result.touched["/usr/bin/tool"] == {"moved_to"}
    assert result.processes["/usr/bin/tool"] == {"dpkg[101]"}
    assert result.touched["/srv/rel"] == {"attrib"} and result.processes["/srv/rel"] == {"chmod[102]"}
    assert result.touched["/opt/x"] == {"create"}
    assert result.touched["/etc/old"] == {"delete"}
    assert result.touched["/usr/local/bin/t"] == {"create"}
    assert "/etc/café" in result.touched


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_real_strace_run(tmp_path):
    log = str(tmp_path / "log")
    target = tmp_path / "out"
    argv = tr.strace_argv(["sh", "-c", "mkdir %s && echo x > %s/f && chmod 600 %s/f" % ((target,) * 3)], log)
    subprocess.run(argv, check=True)
    result = tr.parse_strace(open(log).read())
    assert "create" in result.touched[str(target)]
    assert any(w.startswith("mkdir[") for w in result.processes[str(target)])
    assert any(w.startswith("chmod[") for w in result.processes[str(target / "f")])


# --------------------------------------------------------------------------- property: real fanotify

from hypothesis import given, settings, strategies as st  # noqa: E402

NAMES = st.sampled_from(["a", "b", "c", "d"])
OPS = st.lists(st.tuples(st.sampled_from(["file", "mkdir", "rm", "rmtree", "rename", "chmod", "append", "symlink"]),
                         st.lists(NAMES, min_size=1, max_size=3), st.lists(NAMES, min_size=1, max_size=3)),
               min_size=1, max_size=12)


def _apply(root, ops):
    for op, src, dst in ops:
        a = os.path.join(root, *src)
        b = os.path.join(root, *dst)
        try:
            if op == "file":
                with open(a, "w") as handle:
                    handle.write("x")
            elif op == "mkdir":
                os.makedirs(a)
            elif op == "rm":
                os.unlink(a)
            elif op == "rmtree":
                shutil.rmtree(a)
            elif op == "rename":
                os.rename(a, b)
            elif op == "chmod":
                os.chmod(a, 0o700)
            elif op == "append":
                with open(a, "a") as handle:
                    handle.write("y")
            elif op == "symlink":
                os.symlink(dst[-1], a)
        except OSError:
            pass


@needs_fanotify
@settings(max_examples=60, deadline=None)
@given(OPS, OPS)
def test_rescan_of_fanotify_events_always_equals_a_full_walk(setup, ops):
    root = tempfile.mkdtemp(prefix="mo-fleet-prop-", dir="/var/tmp")
    try:
        _apply(root, setup)
        before = snap.walk([root], [])
        tracer = tr.FanotifyTracer([root], record_processes=False).start()
        try:
            _apply(root, ops)
        finally:
            result = tracer.stop()
        assert result.lossy is None
        touched = {p: ev for p, ev in result.touched.items() if p == root or p.startswith(root + "/")}
        fast = snap.rescan(before, touched, [root], [])
        full = snap.walk([root], [])
        assert fast.entries == full.entries
    finally:
        shutil.rmtree(root, ignore_errors=True)
