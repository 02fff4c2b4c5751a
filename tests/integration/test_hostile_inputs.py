"""Issue 11 on lab hosts: hostile names, oversized packages and wrong types end in one sentence.

One test per class, each as cheap as the class allows:

* names (class 3): a catalog whose deployment, store or project name ends in a line break, and
  an ``origin`` or ``label`` holding one, are refused by the repository server in one sentence
  naming the field; the served repository stays byte for byte as it was.
* resources (class 5): a ``.deb`` whose control archive decompresses past the cap is refused at
  upload in one sentence; the stores stay as they were.
* tracebacks (class 6): a bundle whose template has a list where a gid belongs, given to
  playbooks/template_info.yml, and ``plan_halted=5`` given to playbooks/plan.yml, fail with one
  sentence naming the field, never a traceback.
"""

import json
import sys
import zlib
from pathlib import Path

import pytest

from labhosts import run_module, run_playbook
from test_plan_playbook import write_inventory as plan_inventory

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from debtools import build_deb  # noqa: E402
from test_repo_server import PROJECT, catalog, failed_msg, store_state  # noqa: E402

pytestmark = pytest.mark.integration

NOT_IN_A_SENTENCE = ("\n", "\r", "\u2028", "\x85", "Traceback", "_Ansible", "<class")


def one_sentence(msg):
    """One line of words: no line break, no traceback, no Python class name."""
    return bool(msg) and len(msg) < 1000 and not any(b in msg for b in NOT_IN_A_SENTENCE)


def served_state(server):
    """Every file of the project's repository tree except the server's own bookkeeping (state/)."""
    return server.sh(f"cd /var/lib/mo-fleet/repo/{PROJECT} && find . -path ./state -prune -o -type f -print "
                     "| sort | xargs -r sha256sum; "
                     "find . -path ./state -prune -o -printf '%y %p -> %l\\n' | sort").stdout


def converged_server(lab, deployments):
    """A repository server host converged with a catalog of DEPLOYMENTS (role + first publish)."""
    server = lab.host(groups=["repo_server"])
    good = catalog(deployments)
    inventory = lab.inventory(server, group_vars={"mo_fleet_catalog": good})
    first = run_playbook("playbooks/repo_server.yml", inventory)
    assert first.rc == 0, first.stdout[-3000:] + first.stderr[-2000:]
    return server, inventory, good


def test_names_with_line_breaks_are_refused_and_the_repository_is_unchanged(lab, tmp_path):
    server, inventory, good = converged_server(lab, [{"name": "hello", "packages": []}])
    pub = run_playbook("playbooks/publish.yml", inventory, extra_vars={"mo_fleet_catalog": good})
    assert pub.rc == 0, failed_msg(pub, server.name) or pub.stdout[-2000:]
    before = served_state(server)
    assert "/hello/InRelease" in before and "l ./repos/hello/dists -> " in before, before

    def with_(mutate):
        cat = json.loads(json.dumps(good))
        mutate(cat)
        return cat

    bad_catalogs = [
        (with_(lambda c: c["deployments"][0].update(name="hello\n")), ["deployment", "name", "'hello\\n'"]),
        (with_(lambda c: c["deployments"][0].update(name="hello\nSuite: evil")), ["name", "hello\\nSuite"]),
        (with_(lambda c: c["stores"][0].update(name="main\n")), ["store", "name", "'main\\n'"]),
        (with_(lambda c: c["project"].update(name="demo\n")), ["project", "name", "'demo\\n'"]),
        (with_(lambda c: c["deployments"][0].update(store="main\u2028")), ["store", "'main\\u2028'"]),
    ]
    for cat, words in bad_catalogs:
        run = run_playbook("playbooks/publish.yml", inventory, extra_vars={"mo_fleet_catalog": cat})
        msg = failed_msg(run, server.name)
        assert run.rc != 0 and all(w in msg for w in words), (words, msg, run.stdout[-2000:])
        assert one_sentence(msg), msg
        assert served_state(server) == before, words

    for option, value in [("origin", "mo.fleet\nSuite: evil"), ("label", "demo hello\r"),
                          ("origin", "mo\u2028fleet"), ("label", "demo\x85hello")]:
        run = run_module(inventory, "repo_server", "mo.fleet.repo_publish",
                         {"catalog": good, option: value})
        msg = failed_msg(run, server.name)
        assert run.rc != 0 and option in msg, (option, msg, run.stdout[-2000:])
        assert one_sentence(msg), msg
        assert served_state(server) == before, option


def _bomb_deb(path):
    """A .deb whose control.tar.gz is 64 MiB of zeros squeezed into about 64 KiB."""
    bomb = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    blob = bomb.compress(b"\0" * (64 << 20)) + bomb.flush()
    data = b"!<arch>\n"
    for name, part in (("debian-binary", b"2.0\n"), ("control.tar.gz", blob), ("data.tar.gz", b"")):
        data += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(part):<10}`\n".encode() + part \
            + (b"\n" if len(part) % 2 else b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_control_archive_bomb_is_refused_at_upload_and_the_stores_are_unchanged(lab, tmp_path):
    server, inventory, _ = converged_server(lab, [{"name": "hello", "packages": []}])
    hello = build_deb(tmp_path / "debs", "mo-hello")
    up = run_playbook("playbooks/upload.yml", inventory, extra_vars={"upload_src": str(hello), "upload_store": "main"})
    assert up.rc == 0, failed_msg(up, server.name) or up.stdout[-2000:]
    before = store_state(server)
    assert "mo-hello" in before, before

    bomb = _bomb_deb(tmp_path / "bomb" / "mo-bomb_1.0_all.deb")
    assert bomb.stat().st_size < 1 << 20
    for extra in ({"upload_src": str(bomb), "upload_store": "main"},
                  {"upload_src": str(bomb.parent), "upload_store": "base", "upload_set": "bombs"}):
        run = run_playbook("playbooks/upload.yml", inventory, extra_vars=extra)
        msg = failed_msg(run, server.name)
        assert run.rc != 0 and "mo-bomb_1.0_all.deb" in msg and "16 MiB" in msg, (extra, msg, run.stdout[-2000:])
        assert one_sentence(msg), msg
        assert store_state(server) == before, extra
    assert server.sh("find / -xdev -name 'mo-bomb*' -not -path '/proc/*' 2>/dev/null", check=False).stdout == ""


def _bundle_with_a_list_gid(root):
    from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl

    doc = tpl.build(
        {"argv": ["apt-get", "install", "-y", "hello"], "timestamp": "2026-01-01T00:00:00+00:00",
         "system": "debian 12 (x86_64)", "status": "succeeded", "rc": 0, "name": "hello"},
        {"users_created": [{"name": "hello", "uid": 120, "gid": 130, "system": True}]},
        {"analysis_method": "snapshot"})
    assert tpl.validate(doc) == []
    doc["operations"]["users_created"][0]["gid"] = [130, "{{ lookup('pipe','id') }}"]
    root.mkdir(parents=True)
    (root / "template.json").write_text(json.dumps(doc, indent=2))
    return root


def test_wrong_types_fail_with_one_sentence_naming_the_field_not_a_traceback(tmp_path):
    # controller only: template_info.yml and plan.yml run on localhost
    bundle = _bundle_with_a_list_gid(tmp_path / "bundle")
    info = run_playbook("playbooks/template_info.yml", tmp_path / "none.yml", extra_vars={"bundle": str(bundle)},
                        args=["-i", "localhost,"])
    failed = [r for r in info.task_results("localhost", "Validate the bundle") if r.get("failed")]
    assert info.rc != 0 and failed, info.stdout[-3000:] + info.stderr[-2000:]
    msg = failed[0]["msg"]
    assert "operations/users_created/0/gid" in msg and one_sentence(msg), msg
    assert "uid=" not in info.stdout and "Traceback" not in info.stdout + info.stderr

    inventory = plan_inventory(tmp_path / "inventory.yml")
    html = tmp_path / "plan.html"
    plan = run_playbook("playbooks/plan.yml", inventory, extra_vars={"plan_html": str(html), "plan_halted": 5})
    failed = [r for r in plan.task_results("localhost") if r.get("failed")]
    assert plan.rc != 0 and failed, plan.stdout[-3000:] + plan.stderr[-2000:]
    msg = failed[0]["msg"]
    assert "field 'halted'" in msg and "not an integer" in msg and one_sentence(msg), msg
    assert "Traceback" not in plan.stdout + plan.stderr
    assert not html.exists()
