"""Drive ansible against lab hosts from pytest: disposable hosts, playbooks, modules.

The fixtures in conftest.py hand these out; tests never touch the shared `make lab` fleet.
"""

import json
import os
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "lab"))
import labctl  # noqa: E402  (lab/labctl.py, the one place that knows how hosts are made)

ANSIBLE_BIN = Path(sys.executable).parent


def ansible_env(**extra):
    env = dict(os.environ)
    env.update({
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": f"{ROOT / '.collections'}:{env.get('ANSIBLE_COLLECTIONS_PATH', '')}".rstrip(":"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
        "CONTAINERS_CONF": str(labctl.CONTAINERS_CONF),
        "PATH": f"{ANSIBLE_BIN}:{env.get('PATH', '')}",
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


@dataclass
class Host:
    """A disposable lab host: a fresh Debian container running systemd.

    Ansible reaches it as `hostvars` say (by default over SSH as the login user, escalating
    with become); `sh` is the test's own root shell on it (podman exec)."""

    name: str
    groups: list = field(default_factory=list)
    hostvars: dict = field(default_factory=dict)
    suite: str = labctl.SUITE

    def sh(self, script, check=True, input_text=None):
        """Run a shell script as root on the host; return the CompletedProcess (text)."""
        proc = subprocess.run(
            ["podman", "exec", "-i", self.name, "sh", "-c", script],
            input=input_text, text=True, capture_output=True, env=labctl.podman_env(), check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{self.name}: {script!r} exited {proc.returncode}: {proc.stderr}")
        return proc

    def read(self, path):
        return self.sh(f"cat {path!r}").stdout


def write_inventory(path, hosts, group_vars=None):
    """An inventory file holding HOSTS (Host objects), each in its own groups."""
    groups = {}
    for host in hosts:
        for group in host.groups:
            groups.setdefault(group, {"hosts": {}})["hosts"][host.name] = None
    inventory = {"all": {
        "vars": dict(group_vars or {}),
        "hosts": {h.name: dict(h.hostvars) for h in hosts},
        "children": groups,
    }}
    Path(path).write_text(yaml.safe_dump(inventory, sort_keys=False))
    return Path(path)


class LabFactory:
    """Hands out fresh hosts and removes them when the test ends."""

    def __init__(self, tmp_path):
        self.tmp_path = Path(tmp_path)
        self.hosts = []

    def host(self, groups=(), privileged=False, rootfs=False, ssh=False, prefix="mo-t",
             suite=labctl.SUITE, connection=None):
        """A fresh Debian SUITE host (bookworm or trixie), reached the way fleets are: over
        SSH as the login user `mo`, escalating with sudo (playbooks say `become: true`).

        connection: "ssh" (that, the default), "root" (SSH as root) or "podman"
        (containers.podman.podman, as root); ssh=True is connection="root".
        rootfs=True: privileged, on a plain directory root (fanotify works)."""
        connection = connection or ("root" if ssh else "ssh")
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        hostvars = labctl.new_host(name, privileged=privileged, rootfs=rootfs, suite=suite,
                                   connection=connection)
        host = Host(name=name, groups=list(groups), hostvars=hostvars, suite=suite)
        self.hosts.append(host)
        labctl.link_hosts([h.name for h in self.hosts])
        return host

    def hosts_side_by_side(self, *specs, **kwargs):
        """One fresh host per entry of SPECS (its groups, or a dict of host()'s arguments;
        KWARGS for every one), booted side by side rather than one after another, every one
        linked to all the others."""
        specs = [spec if isinstance(spec, dict) else {"groups": spec} for spec in specs]
        with ThreadPoolExecutor(len(specs)) as pool:
            hosts = list(pool.map(lambda spec: self.host(**kwargs, **spec), specs))
        labctl.link_hosts([h.name for h in self.hosts])  # each host() linked the ones it saw; now all
        return hosts

    def inventory(self, *hosts, group_vars=None):
        hosts = hosts or tuple(self.hosts)
        return write_inventory(self.tmp_path / f"inventory-{uuid.uuid4().hex[:6]}.yml", hosts, group_vars)

    def cleanup(self, wait=True):
        """Remove the hosts; with WAIT false in a background thread (remove_later)."""
        names = [h.name for h in self.hosts]
        if wait:
            labctl.remove_hosts(*names)
        else:
            remove_later(names)


_REMOVALS = []


def remove_later(names):
    """Remove hosts NAMES in a thread of their own, so the test's worker goes on to its next
    test meanwhile (`podman rm` of a systemd host took 1-11 s here); wait_for_removals(), or
    the interpreter's exit, waits for every one of them."""
    thread = threading.Thread(target=labctl.remove_hosts, args=tuple(names), name="lab-remove")
    thread.start()
    _REMOVALS.append(thread)


def wait_for_removals():
    while _REMOVALS:
        _REMOVALS.pop().join()


# ---------------------------------------------------------------- the order tests start in

def estimates(nodeids, marked_long, known):
    """Seconds each of NODEIDS is expected to take: its KNOWN duration, else the median of the
    known ones (a new test); tests in MARKED_LONG (@pytest.mark.long) count as the longest."""
    median = sorted(known.values())[len(known) // 2] if known else 1.0
    top = max(known.values(), default=1.0)
    return {n: top * 2 + known.get(n, 0) if n in marked_long else known.get(n, median) for n in nodeids}


def worksteal_order(nodeids, cost, workers):
    """NODEIDS ordered for `--dist worksteal` with WORKERS, by COST (seconds per test).

    That scheduler hands worker i the i-th contiguous slice (len // workers, then of what is
    left ...), and an idle worker then steals the last half (by count) of the longest queue.
    Tests go longest first into the slice with the least seconds and room left; each slice
    starts with its longest test, so every worker starts with one of the longest, and goes on
    shortest first, so that what is stolen from its tail is its longer tests, not its shortest.
    """
    order = sorted(nodeids, key=lambda n: -cost[n])
    if workers <= 1:
        return order
    sizes, left = [], len(order)
    for i in range(workers):
        sizes.append(left // (workers - i))
        left -= sizes[-1]
    slices = [[] for _ in range(workers)]
    totals = [0.0] * workers
    for nodeid in order:
        i = min((i for i in range(workers) if len(slices[i]) < sizes[i]), key=lambda i: totals[i])
        slices[i].append(nodeid)
        totals[i] += cost[nodeid]
    return [n for part in slices for n in part[:1] + part[1:][::-1]]


@dataclass
class AnsibleRun:
    rc: int
    stdout: str
    stderr: str
    result: dict

    @property
    def stats(self):
        return self.result.get("stats", {})

    def changed(self, host):
        return self.stats.get(host, {}).get("changed", 0)

    def failed(self, host):
        s = self.stats.get(host, {})
        return s.get("failures", 0) + s.get("unreachable", 0)

    def task_results(self, host, name=None):
        """Results of every task on HOST (optionally only tasks named NAME), in order."""
        out = []
        for play in self.result.get("plays", []):
            for task in play.get("tasks", []):
                if name is not None and task["task"]["name"] != name:
                    continue
                if host in task.get("hosts", {}):
                    out.append(task["hosts"][host])
        return out


def _parse(proc):
    text = proc.stdout
    start = text.find("{")
    try:
        result = json.loads(text[start:]) if start >= 0 else {}
    except json.JSONDecodeError:
        result = {}
    return AnsibleRun(proc.returncode, proc.stdout, proc.stderr, result)


def run_playbook(playbook, inventory, extra_vars=None, check=False, diff=False, limit=None,
                 cwd=None, env=None, args=()):
    """Run ansible-playbook; return an AnsibleRun with the json callback's result."""
    cmd = [str(ANSIBLE_BIN / "ansible-playbook"), "-i", str(inventory), str(ROOT / playbook)
           if not Path(playbook).is_absolute() else str(playbook)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if limit:
        cmd += ["--limit", limit]
    cmd += list(args)
    proc = subprocess.run(cmd, text=True, capture_output=True, cwd=cwd or ROOT,
                          env=ansible_env(**(env or {})), check=False)
    return _parse(proc)


def run_module(inventory, pattern, module, args="", check=False, diff=False, cwd=None, env=None,
               become=True):
    """Run one module ad hoc (`ansible PATTERN [--become] -m MODULE -a ARGS`), with --become
    unless BECOME is false, as a user reaching a fleet as a login user would; return an AnsibleRun."""
    cmd = [str(ANSIBLE_BIN / "ansible"), "-i", str(inventory), pattern, "-m", module]
    if become:
        cmd.append("--become")
    if args:
        cmd += ["-a", args if isinstance(args, str) else json.dumps(args)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    proc = subprocess.run(cmd, text=True, capture_output=True, cwd=cwd or ROOT,
                          env=ansible_env(**(env or {})), check=False)
    return _parse(proc)
