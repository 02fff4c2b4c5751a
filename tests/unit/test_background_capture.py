"""An intercepted command returns as soon as its after-snapshot is taken; its template is
built by a detached background process that holds the store's lock.  Real processes: the
CLI runs as a child (python3), `make install` in a temporary tree on the ext4 root, the
finisher forks for real; the listings, the next interception and a failure in the background
are seen through the CLI as an admin sees them."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from ansible_collections.mo.fleet.plugins.module_utils._capture.capture_index import FINISHING, Store

COLLECTIONS = Path(__file__).resolve().parents[2] / ".collections"
MAKEFILE = """install:
\tmkdir -p $(DEST)/opt/app && echo app > $(DEST)/opt/app/bin && echo installed $(DEST)
fail-install:
\t@echo failing >&2; exit 3
"""
CLI = ("import sys; sys.path.insert(0, %r); from ansible_collections.mo.fleet.plugins.module_utils._capture."
       "host_cli import main_capture; sys.exit(main_capture(sys.argv[1:]))" % str(COLLECTIONS))


@pytest.fixture
def host():
    """A tree to capture, a store and a configuration that intercepts make (on /var/tmp: ext4)."""
    base = tempfile.mkdtemp(prefix="mo-fleet-bg-", dir="/var/tmp")
    root, src = os.path.join(base, "root"), os.path.join(base, "src")
    os.makedirs(os.path.join(root, "etc"))
    os.makedirs(src)
    Path(src, "Makefile").write_text(MAKEFILE)
    config = Path(base, "capture.yaml")
    config.write_text(json.dumps({
        "store": os.path.join(base, "store"), "capture_directories": [root], "ignore_patterns": [],
        "config_directories": [os.path.join(root, "etc")], "trace": "none", "analyze_config": False,
        "intercepted_commands": ["make"], "logging": {"file": os.path.join(base, "log/capture.log")}}))
    os.chmod(config, 0o644)
    yield base, root, src, str(config)
    subprocess.run(["chattr", "-R", "-i", os.path.join(base, "store")], capture_output=True, check=False)
    shutil.rmtree(base, ignore_errors=True)


def cli(config, *args):
    env = {k: v for k, v in os.environ.items() if k != "MO_FLEET_CAPTURE"}
    return subprocess.run([sys.executable, "-I", "-c", CLI, "--config", config] + list(args), text=True,
                          capture_output=True, env=env, check=False, timeout=120)


def templates(config):
    listed = cli(config, "list-templates", "--json")
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def log_lines(base):
    return Path(base, "log/capture.log").read_text().splitlines()


def test_the_command_returns_its_own_status_and_output_and_the_template_follows(host):
    base, root, src, config = host
    bare = subprocess.run(["make", "-C", src, "install", "DEST=" + root], text=True, capture_output=True,
                          check=False)
    shutil.rmtree(os.path.join(root, "opt"))
    typed = cli(config, "--intercept", "make", "-C", src, "install", "DEST=" + root)
    assert (typed.returncode, typed.stdout, typed.stderr) == (0, bare.stdout, bare.stderr)
    failed = cli(config, "--intercept", "make", "-C", src, "fail-install")
    assert failed.returncode == 2 and "failing" in failed.stderr and "Error 3" in failed.stderr

    # list-templates waits for both background processes: complete templates, nothing pending
    rows = {r["command"].split()[3]: r for r in templates(config)}
    assert sorted(rows) == ["fail-install", "install"]
    assert (rows["install"]["status"], rows["fail-install"]["status"], rows["fail-install"]["rc"]) == (
        "succeeded", "failed", 2)
    doc = json.loads(Path(rows["install"]["path"], "template.json").read_text())
    created = {e["path"]: e for e in doc["operations"]["files_created"]}
    assert created[root + "/opt/app/bin"]["bundled"]
    assert Path(rows["install"]["path"], "files", (root + "/opt/app/bin").lstrip("/")).read_text() == "app\n"
    assert doc["metadata"]["origin"] == "intercepted"
    store = Store(json.loads(Path(config).read_text())["store"])
    assert store.finishing() == [] and store.failures() == [] and not store.locked_by_other()
    # the template was written by another process than the one that returned the status
    (returned,) = [line for line in log_lines(base) if "make -C %s install" % src in line and
                   "finished in the background" in line]
    (finished,) = [line for line in log_lines(base) if "background capture %s finished" % rows["install"]["id"]
                   in line]
    assert returned.split()[2] != finished.split()[2]
    status = dict(line.split("  ", 1) for line in cli(config, "status").stdout.splitlines())
    assert (status["finishing"], status["failed_in_background"], status["last_background_failure"]) == (
        "0", "0", "-")


def test_a_failure_in_the_background_is_logged_and_shown_by_status(host):
    base, root, src, config = host
    store = Store(json.loads(Path(config).read_text())["store"])
    store.ensure()
    if subprocess.run(["chattr", "+i", store.templates], capture_output=True, check=False).returncode != 0:
        pytest.skip("chattr +i is not supported here")
    typed = cli(config, "--intercept", "make", "-C", src, "install", "DEST=" + root)
    assert typed.returncode == 0 and "installed" in typed.stdout  # the command's own result, whatever follows
    assert os.path.isfile(os.path.join(root, "opt/app/bin"))
    assert templates(config) == []
    status = dict(line.split("  ", 1) for line in cli(config, "status").stdout.splitlines())
    assert status["failed_in_background"] == "1" and status["finishing"] == "0"
    assert "The capture failed on" in status["last_background_failure"]
    assert "make -C %s install" % src in status["last_background_failure"]
    assert any("background capture" in line and " failed: The capture failed on" in line for line in log_lines(base))
    assert os.listdir(store.work) == []  # no half-built bundle left
    subprocess.run(["chattr", "-i", store.templates], check=True)
    assert cli(config, "reset").returncode == 0
    assert store.failures() == []


def test_the_next_interception_waits_for_a_capture_being_finished_but_not_for_any_other(host):
    base, root, src, config = host
    store = Store(json.loads(Path(config).read_text())["store"])
    holder = Store(store.root).lock(wait=0)
    holder.mark(FINISHING, "20261202-000000-earlier-abc123", {"command": "make install", "time": 1.0,
                                                             "pid": os.getpid()})

    def finished():
        holder.unlock()
        holder.unmark(FINISHING, "20261202-000000-earlier-abc123")
    timer = threading.Timer(1.0, finished)
    timer.start()
    try:
        typed = cli(config, "--intercept", "make", "-C", src, "install", "DEST=" + root)
    finally:
        timer.join()
    assert typed.returncode == 0
    assert [r["command"].split()[3] for r in templates(config)] == ["install"]  # captured, not stepped aside

    # a capture (no background finishing) holds the lock: the command runs without one, at once
    holder = Store(store.root).lock(wait=0)
    try:
        shutil.rmtree(os.path.join(root, "opt"))
        typed = cli(config, "--intercept", "make", "-C", src, "install", "DEST=" + root)
        assert typed.returncode == 0 and os.path.isfile(os.path.join(root, "opt/app/bin"))
    finally:
        holder.unlock()
    assert len(templates(config)) == 1


def _pkgs(*items):
    return {(n, a): {"name": n, "version": v, "architecture": a, "status": "installed"} for n, v, a in items}


def test_the_capture_records_the_package_changes_the_hook_stepped_aside_for(tmp_path):
    from ansible_collections.mo.fleet.plugins.module_utils._capture import drift, pkg_hook

    store = Store(str(tmp_path / "store"))
    before = _pkgs(("keep", "1", "all"), ("old", "1", "all"))
    after = _pkgs(("keep", "1", "all"), ("hello", "2.10-3", "amd64"))
    argv = ["apt-get", "install", "-y", "hello"]
    assert pkg_hook.record_capture(store, argv, "20261202-x", before, before) is None  # no change, no record
    record = pkg_hook.record_capture(store, argv, "20261202-x", before, after, environ={"SUDO_USER": "alice"})
    (kept,) = pkg_hook.read_records(store)
    assert kept == record
    assert (record["command"], record["argv"], record["capture"], record["user"]) == (
        "apt-get install -y hello", argv, "20261202-x", "alice")
    assert sorted((p["name"], p["change"]) for p in record["packages"]) == [("hello", "installed"), ("old", "removed")]
    ops = {"packages_installed": [{"name": "hello", "version": "2.10-3", "architecture": "amd64"}],
           "packages_removed": [], "packages_upgraded": []}
    (source,) = drift.attribute(ops, pkg_hook.read_records(store), [])
    assert (source["source"], source["command"], source["user"]) == ("dpkg-hook", "apt-get install -y hello", "alice")
