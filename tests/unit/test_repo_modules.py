"""repo_package (action + module) and repo_publish run by ansible itself on the controller
(connection local, everything under tmp_path): wiring, check mode, diff, one-sentence errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

from debtools import build_deb, kill_agent, make_gpg_home

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def ansible(tmp_path, module, args, check=False, diff=False):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"), ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-remote"))
    cmd = [str(BIN / "ansible"), "-i", "localhost,", "-c", "local", "localhost", "-m", module,
           "-a", json.dumps(args), "-e", f"ansible_python_interpreter={sys.executable}"]
    cmd += ["--check"] if check else []
    cmd += ["--diff"] if diff else []
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    data = json.loads(proc.stdout[proc.stdout.find("{"):])
    return data["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_upload_then_publish_through_ansible(tmp_path):
    root = tmp_path / "repo"
    deb = build_deb(tmp_path / "src", "mod-mo")
    args = {"src": str(deb), "store": "main", "project": "demo", "root": str(root)}
    checked = ansible(tmp_path, "mo.fleet.repo_package", args, check=True)
    assert checked["changed"] and not root.exists()
    first = ansible(tmp_path, "mo.fleet.repo_package", args)
    assert first["changed"] and first["created_store"] and first["packages"][0]["filename"] == "main/mod-mo_1.0-1_all.deb"
    assert not ansible(tmp_path, "mo.fleet.repo_package", args)["changed"]
    bad = ansible(tmp_path, "mo.fleet.repo_package", dict(args, store="x/../y"))
    assert bad["failed"] and bad["msg"] == "store name 'x/../y' must not contain path separators."
    (tmp_path / "junk.deb").write_text("junk")
    junk = ansible(tmp_path, "mo.fleet.repo_package", dict(args, src=str(tmp_path / "junk.deb")))
    assert junk["failed"] and junk["msg"] == "junk.deb is not a .deb (no ar archive signature)."

    home, _ = make_gpg_home(tmp_path / "gnupg")
    try:
        catalog = {"project": {"name": "demo", "architectures": ["amd64"]},
                   "deployments": [{"name": "mod", "start_date": "2026-11-23", "packages": ["mod-mo_1.0-1_all.deb"]}]}
        pub = {"catalog": catalog, "root": str(root), "gnupg_home": str(home)}
        dry = ansible(tmp_path, "mo.fleet.repo_publish", pub, check=True, diff=True)
        assert dry["changed"] and dry["changed_deployments"] == ["mod"]
        assert "+ main/mod-mo_1.0-1_all.deb (mod-mo 1.0-1 all)" in dry["diff"][0]["after"]
        assert not (root / "demo" / "repos" / "mod").exists()
        done = ansible(tmp_path, "mo.fleet.repo_publish", pub)
        assert done["changed"] and done["deployments"]["mod"]["generation"] == 1
        assert not ansible(tmp_path, "mo.fleet.repo_publish", pub)["changed"]
        missing = dict(pub, catalog=dict(catalog, deployments=[dict(catalog["deployments"][0], packages=["gone_1_all.deb"])]))
        err = ansible(tmp_path, "mo.fleet.repo_publish", missing)
        assert err["failed"] and err["msg"] == "deployment 'mod' field packages names 'gone_1_all.deb', which is in no store."
        info = ansible(tmp_path, "mo.fleet.repo_info", {"catalog": catalog, "root": str(root)})
        assert info["orphans"] == [] and info["packages"][0]["deployments"] == ["mod"]
    finally:
        kill_agent(home)


def test_publish_with_missing_skip_warns_per_pending_deployment_and_stays_honest(tmp_path):
    root = tmp_path / "repo"
    ok = ansible(tmp_path, "mo.fleet.repo_package", {"src": str(build_deb(tmp_path / "src", "here-mo")), "store": "main",
                                                      "project": "demo", "root": str(root)})
    assert ok["changed"]
    home, _ = make_gpg_home(tmp_path / "gnupg")
    try:
        catalog = {"project": {"name": "demo", "architectures": ["amd64"]},
                   "deployments": [{"name": "here", "start_date": "2026-11-23", "packages": ["here-mo_1.0-1_all.deb"]},
                                   {"name": "later", "start_date": "2026-11-23",
                                    "packages": ["late-mo_1.0-1_all.deb", "late-b=2.0-1"]}]}
        pub = {"catalog": catalog, "root": str(root), "gnupg_home": str(home), "missing": "skip"}
        dry = ansible(tmp_path, "mo.fleet.repo_publish", pub, check=True, diff=True)
        assert dry["changed"] and dry["changed_deployments"] == ["here"]
        assert [p["deployment"] for p in dry["pending"]] == ["later"] and not (root / "demo" / "repos").exists()
        done = ansible(tmp_path, "mo.fleet.repo_publish", pub)
        assert done["changed"] and done["changed_deployments"] == ["here"]
        assert done["pending"] == [{"deployment": "later", "missing": ["late-mo_1.0-1_all.deb", "late-b=2.0-1"], "generation": None,
                                    "reason": "deployment 'later' names 2 packages or package sets that are not in the "
                                              "stores yet: 'late-mo_1.0-1_all.deb', 'late-b=2.0-1'."}]
        assert done["deployments"]["later"]["action"] == "pending"
        assert done["warnings"] == [
            "Deployment 'later' is pending: deployment 'later' names 2 packages or package sets that are not in the stores yet: "
            "'late-mo_1.0-1_all.deb', 'late-b=2.0-1'. Upload what it names and publish again; until then it is not served yet."]
        assert not (root / "demo" / "repos" / "later").exists()
        again = ansible(tmp_path, "mo.fleet.repo_publish", pub)
        assert not again["changed"] and len(again["warnings"]) == 1
        strict = ansible(tmp_path, "mo.fleet.repo_publish", dict(pub, missing="fail"))
        assert strict["failed"] and strict["msg"] == again["pending"][0]["reason"]
    finally:
        kill_agent(home)
