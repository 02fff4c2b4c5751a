"""`make lab` is idempotent and `make lab-down` leaves nothing but the cached images."""

import subprocess
import sys
import uuid

import yaml

from labhosts import ROOT, labctl, run_module


def labctl_cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "lab" / "labctl.py"), *args],
                          capture_output=True, text=True, env=labctl.podman_env(), check=False)


def podman_names(kind):
    fmt = "{{.Names}}" if kind == "container" else "{{.Name}}"
    out = subprocess.run(["podman", kind, "ls", *(["-a"] if kind == "container" else []), "--format", fmt],
                         capture_output=True, text=True, env=labctl.podman_env(), check=False).stdout
    return set(out.split())


def test_lab_up_twice_changes_nothing_and_down_removes_everything(tmp_path):
    tag = uuid.uuid4().hex[:6]
    net, a, b = f"mo-fleet-lt-{tag}", f"mo-lt-{tag}-a", f"mo-lt-{tag}-b"
    spec = tmp_path / "hosts.yml"
    spec.write_text(yaml.safe_dump({"network": net, "hosts": {a: ["web"], b: ["db", "web"]},
                                    "connections": {b: "root"}}))
    inventory = tmp_path / "inventory.yml"
    try:
        first = labctl_cli("up", "--hosts", str(spec), "--inventory", str(inventory))
        assert first.returncode == 0, first.stderr
        assert "2 hosts up" in first.stdout and ", 0 change(s)" not in first.stdout
        ids = {n: labctl.container_state(n)["Id"] for n in (a, b)}
        text = inventory.read_text()

        second = labctl_cli("up", "--hosts", str(spec), "--inventory", str(inventory))
        assert second.returncode == 0, second.stderr
        assert "2 hosts up, 0 change(s)" in second.stdout
        assert {n: labctl.container_state(n)["Id"] for n in (a, b)} == ids
        assert inventory.read_text() == text

        groups = yaml.safe_load(text)["all"]["children"]
        assert set(groups["web"]["hosts"]) == {a, b} and set(groups["db"]["hosts"]) == {b}
        assert groups["lab_ssh"]["hosts"][a]["ansible_user"] == labctl.LOGIN_USER
        assert groups["lab_root_ssh"]["hosts"][b]["ansible_user"] == "root"
        pong = run_module(inventory, "web", "ansible.builtin.command", "id -un")
        assert pong.rc == 0, pong.stdout
        users = {h: r["stdout"] for h, r in pong.result["plays"][0]["tasks"][0]["hosts"].items()}
        assert users == {a: "root", b: "root"}  # a: the login user with sudo (--become), b: root
    finally:
        down = labctl_cli("down", "--hosts", str(spec), "--inventory", str(inventory))
    assert down.returncode == 0, down.stderr
    assert not {a, b} & podman_names("container")
    assert net not in podman_names("network")
    assert not inventory.exists()
    assert labctl.image_exists(), "the cached base image stays"
    assert "lab-down-all" in down.stdout
