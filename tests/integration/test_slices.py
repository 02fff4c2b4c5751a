"""A rollout day split into 3 slices run at once (as AWX job slicing runs them): one release state.

Six fresh clients and a repository server. Sorted by name, the hosts go round robin into the
slices 1/3, 2/3 and 3/3, two each: a canary (due since yesterday, so in the first batch) and a
later host (due today, second batch). The canary of slice 1 fails the deployment 'risky'
(threshold 0): slice 1 halts it. The canaries of slices 2 and 3 hold their first batch open
(a package whose postinst waits for a gate file) until the halt is in the controller's state,
so their second batches certainly start after it: none of the later hosts gets 'risky'. The
state, the sync records, the server's copy and the status page then agree.
"""

import datetime
import json
import subprocess
import textwrap
import time

import pytest

from labhosts import ANSIBLE_BIN, ROOT, ansible_env, run_playbook
from test_release_rollout import FAIL_MARKER, RISKY_POSTINST, build_deb, ok, read_json, set_up_server

PROJECT = "acme"
DAY = datetime.date(2026, 12, 8)  # a Tuesday: the canaries became due on Monday
GATE = "/etc/mo-test-gate"
GATE_POSTINST = textwrap.dedent(f"""\
    #!/bin/sh
    set -e
    n=0
    while [ ! -e {GATE} ] && [ $n -lt 600 ]; do sleep 0.5; n=$((n+1)); done
    exit 0
    """)


def catalog():
    return {
        "project": {"name": PROJECT, "architectures": ["amd64"]},
        "halt_after_failures": 0,
        "stores": [{"name": "main"}],
        "schedules": [{"name": "waves", "delays": [
            {"delay": 0, "attributes": ["canary"]},
            {"delay": 1, "attributes": ["later"]},
        ]}],
        "deployments": [
            {"name": "risky", "start_date": "2026-12-07", "schedule": "waves",
             "packages": ["main/mo-risky_1.0_all.deb"], "packages_to_install": ["mo-risky"]},
            {"name": "gate", "start_date": "2026-12-07", "included_attributes": ["gated"],
             "packages": ["main/mo-gate_1.0_all.deb"], "packages_to_install": ["mo-gate"]},
        ],
    }


def start_slice(inventory, spec):
    cmd = [str(ANSIBLE_BIN / "ansible-playbook"), "-i", str(inventory), str(ROOT / "playbooks" / "rollout.yml"),
           "-e", json.dumps({"mo_fleet_today": DAY.isoformat(), "rollout_slice": spec, "rollout_batch_size": 1,
                             "rollout_max_fail_percentage": 100})]
    return subprocess.Popen(cmd, cwd=ROOT, env=ansible_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.long
def test_three_slices_at_once_share_one_release_state(lab, tmp_path):
    debs = [build_deb(tmp_path, "mo-risky", postinst=RISKY_POSTINST),
            build_deb(tmp_path, "mo-gate", postinst=GATE_POSTINST)]
    # names sort as canaries a0 a1 a2, then later hosts b0 b1 b2: slice k holds a(k-1) and b(k-1)
    server, *clients = lab.hosts_side_by_side(
        ["repo_server"], *({"groups": ["canary"] + (["gated"] if n else []), "prefix": f"mo-sa{n}"} for n in range(3)),
        *({"groups": ["later"], "prefix": f"mo-sb{n}"} for n in range(3)))
    canaries, later = clients[:3], clients[3:]
    reports = tmp_path / "reports"
    inventory = lab.inventory(server, *clients, group_vars={"mo_fleet_catalog": catalog(),
                                                           "mo_fleet_reports_dir": str(reports)})
    set_up_server(inventory, server, debs)
    canaries[0].sh(f"touch {FAIL_MARKER}")
    state_file = reports / "release-state.json"

    runs = [start_slice(inventory, f"{k}/3") for k in (1, 2, 3)]
    deadline = time.monotonic() + 900
    while "risky" not in ((read_json(state_file) or {}).get("halted") or {}):
        assert time.monotonic() < deadline and runs[0].poll() is None, "slice 1 never halted risky"
        time.sleep(1)
    for host in canaries[1:]:  # the halt is in the state: let slices 2 and 3 go on
        host.sh(f"touch {GATE}")
    outs = [run.communicate(timeout=900) for run in runs]
    for k, (run, (out, err)) in enumerate(zip(runs, outs), 1):
        assert run.returncode == 0, f"slice {k}/3 (rc {run.returncode}):\n{out[-5000:]}\n{err[-2000:]}"

    # each slice converged its own two hosts, and every host exactly once
    records = {h.name: read_json(reports / "sync" / f"{h.name}.json") for h in clients}
    assert all(r and r["date"] == DAY.isoformat() for r in records.values()), records
    history = {h.name: list((reports / "sync" / "history" / h.name).glob("*.json")) for h in clients}
    assert all(len(files) == 1 for files in history.values()), history

    # the halt: decided once, by slice 1, from its canary; the other canaries kept risky
    state = read_json(state_file)
    assert list(state["halted"]) == ["risky"]
    assert state["halted"]["risky"]["hosts"] == [canaries[0].name], state
    assert records[canaries[0].name]["status"] == "error"
    assert records[canaries[0].name]["failed_deployments"] == ["risky"]
    for host in canaries[1:]:
        assert records[host.name]["status"] == "ok" and "risky" in records[host.name]["deployments"]
    # every later host, in every slice, started after the halt: none got risky
    for host in later:
        record = records[host.name]
        assert "risky" in record["halted"] and "risky" not in record["deployments"], record
        assert "mo-risky" not in host.sh("dpkg-query -W -f '${Package} ${db:Status-Abbrev}\\n' 'mo-*' "
                                         "2>/dev/null || true").stdout
    served = json.loads(server.read("/var/lib/mo-fleet/www/status/release-state.json"))
    assert served == state

    # the status page built from those records says the same
    ok(run_playbook("playbooks/report.yml", inventory, extra_vars={"mo_fleet_today": DAY.isoformat()}), "report")
    status = json.loads((reports / "status" / "status.json").read_text())
    assert list(status["halted"]) == ["risky"]
    assert status["summary"]["error"] == 1 and status["summary"]["ok"] == 5, status["summary"]
    assert {h: (r or {}).get("deployments") for h, r in status["hosts"].items()} == \
        {h: r["deployments"] for h, r in records.items()}
