"""Issue 11 on lab hosts: secrets stay out of bundles unless asked for, and a hostile
inventory_hostname never leads the capture action outside its dest."""

import json

import yaml

from labhosts import run_module

from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl

SECRETS = ("mkdir -p /root/.ssh /etc/sudoers.d && echo 'ssh-ed25519 AAAAC3Nza attacker' > /root/.ssh/authorized_keys"
           " && echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/90-deploy && chmod 440 /etc/sudoers.d/90-deploy"
           " && echo 'plain' > /etc/mo-plain.conf")


def _hosts(run):
    plays = run.result.get("plays", [])
    assert plays, run.stdout + run.stderr
    return plays[0]["tasks"][0]["hosts"]


def test_authorized_keys_and_sudoers_are_redacted_by_default_and_kept_when_asked(lab, tmp_path):
    host = lab.host()
    inventory = lab.inventory(host)
    # the script lives on the host, so the secrets are not on the captured command line
    host.sh("cat > /root/secrets.sh && chmod +x /root/secrets.sh", input_text="#!/bin/sh\n" + SECRETS + "\n")
    run = run_module(inventory, host.name, "mo.fleet.capture",
                     {"cmd": "/root/secrets.sh", "name": "secrets"}, cwd=tmp_path)
    assert run.rc == 0, run.stdout + run.stderr
    bundle = tmp_path / "captures" / host.name / "secrets"
    doc = tpl.verify_bundle(str(bundle))
    redacted = {r["path"]: r["reason"] for r in doc["operations"]["redacted"]}
    assert redacted["/root/.ssh/authorized_keys"] == "SSH authorized keys"
    assert redacted["/etc/sudoers.d/90-deploy"] == "sudo rules"
    created = {e["path"] for e in doc["operations"]["files_created"]}
    assert "/etc/mo-plain.conf" in created
    assert not {"/root/.ssh/authorized_keys", "/etc/sudoers.d/90-deploy"} & created
    assert not (bundle / "files/root/.ssh/authorized_keys").exists()
    assert not (bundle / "files/etc/sudoers.d/90-deploy").exists()
    text = (bundle / "template.json").read_text()
    assert "attacker" not in text and "NOPASSWD" not in text

    host.sh("rm -rf /root/.ssh /etc/sudoers.d/90-deploy /etc/mo-plain.conf")
    run = run_module(inventory, host.name, "mo.fleet.capture",
                     {"cmd": "/root/secrets.sh", "name": "kept",
                      "keep_secrets": ["/root/.ssh/authorized_keys", "/etc/sudoers.d"]}, cwd=tmp_path)
    assert run.rc == 0, run.stdout + run.stderr
    kept = tmp_path / "captures" / host.name / "kept"
    doc = tpl.verify_bundle(str(kept))
    assert not doc["operations"]["redacted"]
    assert doc["metadata"]["keep_secrets"] == ["/root/.ssh/authorized_keys", "/etc/sudoers.d"]
    assert "attacker" in (kept / "files/root/.ssh/authorized_keys").read_text()
    assert "NOPASSWD" in (kept / "files/etc/sudoers.d/90-deploy").read_text()


def test_an_inventory_hostname_of_dotdot_is_refused_and_the_sibling_is_untouched(lab, tmp_path):
    host = lab.host()
    inventory = tmp_path / "dotdot.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"..": dict(host.hostvars)}}}))
    sibling = tmp_path / "victim"
    sibling.mkdir()
    (sibling / "precious").write_text("keep me\n")
    run = run_module(inventory, "all", "mo.fleet.capture", {"cmd": "true", "name": "victim"}, cwd=tmp_path)
    results = _hosts(run)
    assert list(results) == [".."], run.stdout
    res = results[".."]
    assert run.rc != 0 and res["failed"] is True, json.dumps(res)[:2000]
    assert res["msg"].startswith("The capture did not run: inventory_hostname must be a plain file name part")
    assert "'..'" in res["msg"] and res["msg"].count(". ") == 0
    assert (sibling / "precious").read_text() == "keep me\n"
    assert sorted(p.name for p in sibling.iterdir()) == ["precious"]
    captures = tmp_path / "captures"
    assert not captures.exists() or not any(captures.rglob("template.json"))
