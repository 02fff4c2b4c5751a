"""The repository server's natural order (issue 15): the server comes up with the full catalog
before anything is uploaded and says which deployments are pending and why; upload, then
publish completes them, an apt client installs them, and a rerun changes nothing."""

import sys
from pathlib import Path

from labhosts import run_playbook
from test_repo_server import PROJECT, add_source, catalog, changed_tasks, clean_update, failed_msg, trust_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from debtools import build_deb  # noqa: E402

REPOS = f"/var/lib/mo-fleet/repo/{PROJECT}/repos"


def role_publish(run, host):
    """The result of the role's publish task on HOST (the callback may prefix the role name)."""
    found = [task["hosts"][host] for play in run.result.get("plays", []) for task in play.get("tasks", [])
             if task["task"]["name"].endswith("Publish the enabled deployments") and host in task.get("hosts", {})]
    assert len(found) == 1, [t["task"]["name"] for p in run.result.get("plays", []) for t in p.get("tasks", [])]
    return found[0]


def test_server_comes_up_with_the_full_catalog_then_upload_and_publish_complete_it(lab, tmp_path):
    server = lab.host(groups=["repo_server"])
    client = lab.host(groups=["clients"])
    first_deb = build_deb(tmp_path / "debs", "mo-first", files={"usr/bin/mo-first": "#!/bin/sh\necho first\n"})
    second_deb = build_deb(tmp_path / "debs", "mo-second", version="2.0-1", arch="amd64",
                           files={"usr/bin/mo-second": "#!/bin/sh\necho second\n"})
    full = catalog([{"name": "first", "packages": ["mo-first_1.0-1_all.deb"]},
                    {"name": "second", "packages": ["mo-second=2.0-1"]}])
    inventory = lab.inventory(server, client, group_vars={"mo_fleet_catalog": full})

    # the server comes up with the real catalog, nothing uploaded: the play succeeds and says
    # which deployments are pending and why; none of them is served half-made
    up = run_playbook("playbooks/repo_server.yml", inventory)
    assert up.rc == 0, failed_msg(up, server.name) or up.stdout[-3000:] + up.stderr[-2000:]
    res = role_publish(up, server.name)
    assert not res["changed"] and [p["deployment"] for p in res["pending"]] == ["first", "second"]
    assert res["pending"][0]["reason"] == "deployment 'first' field packages names 'mo-first_1.0-1_all.deb', which is in no store."
    assert res["pending"][1]["missing"] == ["mo-second=2.0-1"]
    warnings = res.get("warnings", [])
    assert len(warnings) == 2 and all("is pending" in w and "it is not served yet" in w for w in warnings), warnings
    assert "'mo-first_1.0-1_all.deb', which is in no store." in warnings[0] and "'mo-second=2.0-1'" in warnings[1]
    assert server.sh(f"ls -A {REPOS}").stdout.strip() == ""
    again = run_playbook("playbooks/repo_server.yml", inventory)
    assert again.rc == 0 and again.changed(server.name) == 0, changed_tasks(again, server.name)

    # check mode of the strict publish names the first missing package in one sentence
    dry = run_playbook("playbooks/publish.yml", inventory, check=True)
    assert dry.rc != 0 and failed_msg(dry, server.name) == res["pending"][0]["reason"]

    # upload, then publish (the strict default): both complete
    for deb in (first_deb, second_deb):
        sent = run_playbook("playbooks/upload.yml", inventory, extra_vars={"upload_src": str(deb), "upload_store": "main"})
        assert sent.rc == 0 and sent.changed(server.name) == 1, (failed_msg(sent, server.name), sent.stdout[-2000:])
    pub = run_playbook("playbooks/publish.yml", inventory)
    assert pub.rc == 0 and pub.changed(server.name) == 1, (failed_msg(pub, server.name), pub.stdout[-2000:])
    done = pub.task_results(server.name, "Publish")[0]
    assert done["pending"] == [] and done["changed_deployments"] == ["first", "second"]
    assert all(done["deployments"][d]["reason"] == "first publish" for d in ("first", "second"))

    # an apt client sees them and installs them
    trust_server(client, server)
    for dep in ("first", "second"):
        add_source(client, server, dep)
        clean_update(client, dep)
    client.sh("apt-get install -y -q mo-first mo-second")
    assert client.sh("mo-first").stdout.strip() == "first" and client.sh("mo-second").stdout.strip() == "second"

    # reruns change nothing: the publish, and the role (whose publish now has nothing pending)
    rerun = run_playbook("playbooks/publish.yml", inventory)
    assert rerun.rc == 0 and rerun.changed(server.name) == 0, changed_tasks(rerun, server.name)
    role_again = run_playbook("playbooks/repo_server.yml", inventory)
    assert role_again.rc == 0 and role_again.changed(server.name) == 0, changed_tasks(role_again, server.name)
    assert role_publish(role_again, server.name)["pending"] == []
