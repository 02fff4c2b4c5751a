"""Pull mode on real lab hosts (issue 16): a repository server, two hosts that pull their
release with ansible-pull (the mo.fleet.pull role, its systemd service) and one pushed host
(playbooks/rollout.yml) go through a two-day rollout with a halt found by the server in a
pulled record, a resume, the record upload's authentication and a tampered pull repository.
"""

import json
import time

import pytest

from labhosts import run_playbook
from test_release_rollout import FAIL_MARKER, RISKY_POSTINST, build_deb, host_state, ok, publish, upload

PROJECT = "acme"
DAY1, DAY2 = "2026-12-07", "2026-12-08"  # Monday, Tuesday
SERVER_STATE = "/var/lib/mo-fleet/www/status/release-state.json"
PULLED = "/var/lib/mo-fleet/pull/state/reports/sync"
STATUS_JSON = "/var/lib/mo-fleet/www/status/status.json"
NO_REGISTRY = {"PIP_NO_INDEX": "1"}  # the ansible-core wheel comes from the cache make setup filled


def catalog():
    return {
        "project": {"name": PROJECT, "architectures": ["amd64"]},
        "halt_after_failures": 0,
        "stores": [{"name": "main"}],
        "schedules": [{"name": "canary-first", "delays": [
            {"delay": 0, "attributes": ["canary"]}, {"delay": 1, "attributes": ["all"]}]}],
        "deployments": [
            {"name": "tools", "start_date": DAY1, "store": "main", "packages": ["mo-tool_1.0_all.deb"],
             "packages_to_install": ["mo-tool"], "included_attributes": ["all"]},
            {"name": "risky", "start_date": DAY1, "schedule": "canary-first", "store": "main",
             "packages": ["mo-risky_1.0_all.deb"], "packages_to_install": ["mo-risky"]},
        ],
    }


def wait_for_record(server, host, since, timeout=120):
    """The server's checked record of HOST once the ingest took one newer than SINCE."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = server.sh(f"cat {PULLED}/{host.name}.json 2>/dev/null", check=False)
        if proc.returncode == 0:
            record = json.loads(proc.stdout)
            if record["time"] >= since and not server.sh(
                    "ls /var/lib/mo-fleet/pull/records/*.json 2>/dev/null", check=False).stdout.strip():
                if server.sh("systemctl is-active mo-fleet-pull-ingest.service", check=False).stdout.strip() != "activating":
                    return record
        time.sleep(2)
    raise AssertionError(f"no record of {host.name} newer than {since} on the server: "
                         + server.sh("journalctl -u mo-fleet-pull-ingest --no-pager | tail -30", check=False).stdout)


def wait_for_page(server, host, day, since="", timeout=120):
    """The server's status page (the ingest's, from its records) once it shows HOST's sync of DAY
    made at SINCE or later."""
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        proc = server.sh(f"cat {STATUS_JSON}", check=False)
        if proc.returncode == 0:
            seen = (json.loads(proc.stdout)["hosts"].get(host.name) or {})
            if seen.get("date") == day and seen.get("time", "") >= since:
                return seen, server.read(STATUS_JSON.replace("status.json", "index.html"))
        time.sleep(2)
    raise AssertionError(f"the server's page shows no sync of {host.name} on {day} (last: {seen}): "
                         + server.sh("journalctl -u mo-fleet-pull-ingest --no-pager | tail -30", check=False).stdout)


def pull(host, expect_ok=True):
    """Run one pull cycle on HOST (the timer's service, started now); return its journal."""
    start = host.sh("date -u +%Y-%m-%dT%H:%M:%SZ").stdout.strip()
    proc = host.sh("systemctl start mo-fleet-pull.service", check=False)
    journal = host.sh("journalctl -u mo-fleet-pull.service --no-pager -n 80", check=False).stdout
    if expect_ok:
        assert proc.returncode == 0, journal
    return start, proc.returncode, journal


def server_halted(server):
    proc = server.sh(f"cat {SERVER_STATE}", check=False)
    return json.loads(proc.stdout)["halted"] if proc.returncode == 0 else {}


@pytest.mark.long
def test_pull_mode_two_days_halt_resume_auth_and_trust(lab, tmp_path):
    server = lab.host(groups=["repo_server"])
    pull_a = lab.host(groups=["pull_hosts", "canary"])
    pull_b = lab.host(groups=["pull_hosts"])
    push1 = lab.host(groups=["web"])
    reports = tmp_path / "reports"
    inventory = lab.inventory(server, pull_a, pull_b, push1, group_vars={
        "mo_fleet_catalog": catalog(), "mo_fleet_reports_dir": str(reports)})
    debs = [build_deb(tmp_path, "mo-tool"), build_deb(tmp_path, "mo-risky", postinst=RISKY_POSTINST)]
    pull_a.sh(f"touch {FAIL_MARKER}")  # the canary fails to configure mo-risky

    # day 1: the server with its pull repository, the hosts switched to pull mode (short timers)
    ok(run_playbook("playbooks/repo_server.yml", inventory, env=NO_REGISTRY,
                    extra_vars={"repo_server_publish": False, "mo_fleet_today": DAY1}), "repo_server.yml")
    for deb in debs:
        upload(inventory, server, deb)
    publish(inventory)
    timers = {"pull_first_delay": "1h", "pull_interval": "2h", "pull_randomized_delay": "30s"}
    ok(run_playbook("playbooks/pull.yml", inventory, extra_vars=timers), "pull.yml")
    again = ok(run_playbook("playbooks/pull.yml", inventory, extra_vars=timers), "pull.yml again")
    assert again.changed(pull_a.name) == 0 and again.changed(pull_b.name) == 0, again.stdout[-3000:]
    unit = pull_a.sh("systemctl cat mo-fleet-pull.timer").stdout
    assert "RandomizedDelaySec=30s" in unit and "OnUnitActiveSec=2h" in unit
    assert pull_a.sh("systemctl is-active mo-fleet-pull.timer").stdout.strip() == "active"
    assert pull_a.sh("stat -c %a /var/lib/mo-fleet/pull-client/secret").stdout.strip() == "600"
    version = pull_a.sh("/var/lib/mo-fleet/pull-client/venv/bin/ansible --version").stdout
    assert "core 2." in version, version

    since, _rc, journal = pull(pull_a, expect_ok=False)  # mo-risky fails on the canary
    record = wait_for_record(server, pull_a, since)
    assert record["status"] == "error" and record["failed_deployments"] == ["risky"], record
    assert "risky" in server_halted(server), journal
    assert server_halted(server)["risky"]["hosts"] == [pull_a.name]
    since, _rc, _j = pull(pull_b)
    assert wait_for_record(server, pull_b, since)["deployments"] == ["tools"]
    assert host_state(pull_b)[0] == ["tools"]
    run = ok(run_playbook("playbooks/rollout.yml", inventory, extra_vars={"mo_fleet_today": DAY1}), "rollout day 1")
    assert pull_a.name not in run.stats and pull_b.name not in run.stats  # push skips pull hosts
    assert host_state(push1)[0] == ["tools"]
    # the rollout delivered the pushed host's record: the server's page shows its sync of the day
    shown, html = wait_for_page(server, push1, DAY1)
    assert shown["status"] == "ok" and shown["deployments"] == ["tools"], shown
    assert f'data-host="{push1.name}" data-status="ok"' in html
    assert server.sh(f"test -f {PULLED}/{push1.name}.json && ls /var/lib/mo-fleet/pull/records-push/").stdout == ""

    # day 2: risky is due everywhere but halted: neither the pulled nor the pushed hosts get it
    ok(run_playbook("playbooks/repo_server.yml", inventory, env=NO_REGISTRY,
                    extra_vars={"repo_server_publish": False, "mo_fleet_today": DAY2}), "repo_server.yml day 2")
    since, _rc, _j = pull(pull_b)
    assert wait_for_record(server, pull_b, since)["deployments"] == ["tools"]
    ok(run_playbook("playbooks/rollout.yml", inventory, extra_vars={"mo_fleet_today": DAY2}), "rollout day 2")
    assert host_state(push1)[0] == ["tools"]
    shown, _html = wait_for_page(server, push1, DAY2)
    assert shown["planned"] == ["tools"] and "risky" in shown["halted"], shown
    assert "risky" in json.loads((reports / "release-state.json").read_text())["halted"]

    # record authentication: a host writes only its own record, and nobody reads records
    url = f"http://{server.hostvars.get('ansible_host', server.name)}/records"
    secret = pull_a.read("/var/lib/mo-fleet/pull-client/secret").strip()
    curl = (f"python3 -c \"import sys,urllib.request as u,base64;r=u.Request(sys.argv[1],data=b'{{}}',method=sys.argv[2],"
            f"headers={{'Authorization':'Basic '+base64.b64encode(sys.argv[3].encode()).decode()}});\n"
            f"try: print(u.urlopen(r).status)\nexcept u.HTTPError as e: print(e.code)\" ")
    assert pull_a.sh(curl + f"{url}/{pull_b.name}.json PUT {pull_a.name}:{secret}").stdout.strip() == "403"
    assert pull_a.sh(curl + f"{url}/{pull_a.name}.json PUT {pull_a.name}:wrong").stdout.strip() == "401"
    assert pull_a.sh(curl + f"{url}/{pull_a.name}.json GET {pull_a.name}:{secret}").stdout.strip() == "403"

    # resume: the canary is fixed; the next pulls and the rollout give risky to everyone due
    pull_a.sh(f"rm -f {FAIL_MARKER}")
    ok(run_playbook("playbooks/resume.yml", inventory, extra_vars={"resume": "risky"}), "resume")
    assert server_halted(server) == {}
    time.sleep(5)  # the path unit rebuilds the pull repository from the resumed state
    for host in (pull_a, pull_b):
        since, _rc, journal = pull(host)
        record = wait_for_record(server, host, since)
        assert record["status"] == "ok" and record["deployments"] == ["risky", "tools"], (record, journal)
        assert host_state(host)[1]["mo-risky"][1] == "ii"
    since = server.sh("date -u +%Y-%m-%dT%H:%M:%SZ").stdout.strip()
    ok(run_playbook("playbooks/rollout.yml", inventory, extra_vars={"mo_fleet_today": DAY2}), "rollout resumed")
    assert host_state(push1)[0] == ["risky", "tools"]
    shown, _html = wait_for_page(server, push1, DAY2, since)
    assert shown["deployments"] == ["risky", "tools"], shown
    page = json.loads(server.read(STATUS_JSON))
    assert page["summary"] == {"ok": 3, "error": 0, "never": 1}, page["summary"]  # the server itself never syncs
    assert {page["hosts"][h.name]["date"] for h in (pull_a, pull_b, push1)} == {DAY2}

    # trust: a commit the server did not sign is refused and nothing runs
    server.sh("cd /var/lib/mo-fleet/pull/state/work && echo tampered > TAMPERED && "
              "export GIT_DIR=/var/lib/mo-fleet/pull/fleet.git GIT_WORK_TREE=/var/lib/mo-fleet/pull/state/work "
              "GIT_INDEX_FILE=/var/lib/mo-fleet/pull/state/git-index && git add -A && "
              "git -c user.name=x -c user.email=x@x commit -q -m tampered && git update-server-info")
    _since, rc, journal = pull(pull_b, expect_ok=False)
    assert rc != 0 and "Failed to verify GPG signature" in journal, journal
    assert "nothing uploaded" in journal, journal
