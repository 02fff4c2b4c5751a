"""mo.fleet.bundle_apply behind apply_template, rollback.yml and generated roles (issue 13).

The small make install project, captured on A: on a fresh B, --check --diff shows every
file's diff and changes nothing, the apply captured on B equals the capture on A, a second
run changes nothing and ships nothing, drift in content and mode is shown and repaired;
rollback on A gives back the host of before the capture; the role template_to_role.yml
writes does the same with plain ansible-core.
"""

import pytest

from labhosts import run_playbook
from test_render_roundtrip import (
    MAKE_PROJECT, assert_same_snapshot, capture, capture_while, comparable, diff_report,
    generated_role_on_fresh_host, load, prepare, snapshot,
)

pytestmark = pytest.mark.integration

ONE_RUN = "Converge the directories, files, links, modes and owners of the capture (one run)"


def apply(inventory, host, bundle, check=False, diff=False):
    return run_playbook("playbooks/apply_template.yml", inventory, {"bundle": str(bundle)},
                        limit=host.name, check=check, diff=diff)


def one_run(run, host):
    hits = [task["hosts"][host.name] for play in run.result["plays"] for task in play["tasks"]
            if task["task"]["name"].endswith(ONE_RUN) and host.name in task["hosts"]]
    assert len(hits) == 1, [t["task"]["name"] for p in run.result["plays"] for t in p["tasks"]]
    return hits[0]


def per_item_tasks(run):
    return [t["task"]["name"] for p in run.result["plays"] for t in p["tasks"]
            if t["task"]["name"].endswith(("Create the directories the capture created",
                                           "Copy the files the capture created or changed"))]


def project_on(a):
    prepare(a, "make")
    a.sh("mkdir -p /src/hello-1.0")
    for name, text in MAKE_PROJECT.items():
        a.sh("cat > /src/hello-1.0/%s" % name, input_text=text)


def test_apply_check_diff_second_run_drift_and_rollback_in_one_module_run(lab, tmp_path):
    a, b = lab.host(groups=["test_hosts"]), lab.host(groups=["test_hosts"])
    inventory = lab.inventory(a, b)
    project_on(a)
    prepare(b)
    before_a = snapshot(a)
    bundle = capture(inventory, a, "make install", "hello", tmp_path / "captures", chdir="/src/hello-1.0")
    tpl_a = comparable(load(bundle))
    start_b = snapshot(b)

    # --check --diff on the fresh host: one module run lists every path, each file's text as
    # its diff, nothing is shipped or written
    dry = apply(inventory, b, bundle, check=True, diff=True)
    assert dry.rc == 0 and dry.failed(b.name) == 0, dry.stdout[-3000:]
    shown = one_run(dry, b)
    assert shown["changed"] is True and shown["shipped"] == 0 and not per_item_tasks(dry)
    paths = [c["path"] for c in shown["changes"]]
    assert "/usr/local/bin/hello" in paths and "/usr/local/share/hello" in paths and "/usr/local/bin/hi" in paths
    greeting = [d for d in shown["diff"] if d["after_header"] == "/usr/local/share/hello/greeting.txt"]
    assert greeting and greeting[0]["before"] == "" and greeting[0]["after"] == "hello, world\n"
    assert snapshot(b) == start_b

    # for real, captured on B: the same template as on A
    bundle_b, run = capture_while(inventory, b, "hello-applied", tmp_path / "captures",
                                  lambda: apply(inventory, b, bundle))
    assert run.rc == 0, run.stdout[-3000:]
    done = one_run(run, b)
    assert done["changed"] is True and done["shipped"] == 2  # the script and the greeting
    diff = diff_report(tpl_a, comparable(load(bundle_b)))
    assert not diff, "\n".join(diff[:40])

    # a second run: one module run, nothing shipped, changed=0
    again = apply(inventory, b, bundle)
    assert again.rc == 0 and again.changed(b.name) == 0, again.stdout[-3000:]
    assert one_run(again, b)["shipped"] == 0

    # drift in content and mode: --check --diff shows the text diff and the mode, changes nothing
    b.sh("echo drift >> /usr/local/share/hello/greeting.txt && chmod 0700 /usr/local/bin/hello")
    drifted = apply(inventory, b, bundle, check=True, diff=True)
    shown = one_run(drifted, b)
    assert dict((c["path"], c["what"]) for c in shown["changes"]) == {
        "/usr/local/share/hello/greeting.txt": ["content"], "/usr/local/bin/hello": ["mode 0700 -> 0755"]}
    greeting = [d for d in shown["diff"] if d["after_header"] == "/usr/local/share/hello/greeting.txt"][0]
    assert greeting["before"] == "hello, world\ndrift\n" and greeting["after"] == "hello, world\n"
    assert "/usr/local/bin/hello (file): mode 0700 -> 0755" in shown["diff"][-1]["after"]
    assert b.sh("cat /usr/local/share/hello/greeting.txt").stdout == "hello, world\ndrift\n"
    fixed = apply(inventory, b, bundle)
    assert fixed.rc == 0 and one_run(fixed, b)["shipped"] == 1, fixed.stdout[-3000:]
    assert b.sh("cat /usr/local/share/hello/greeting.txt").stdout == "hello, world\n"
    assert b.sh("stat -c %a /usr/local/bin/hello").stdout.strip() == "755"
    assert apply(inventory, b, bundle).changed(b.name) == 0

    # rollback on A through the same module: A is the host of before the capture, twice
    undo = run_playbook("playbooks/rollback.yml", inventory, {"bundle": str(bundle)}, limit=a.name)
    assert undo.rc == 0, undo.stdout[-3000:]
    assert [t for p in undo.result["plays"] for t in p["tasks"] if "(one run)" in t["task"]["name"]]
    assert_same_snapshot(before_a, snapshot(a), load(bundle))
    undo2 = run_playbook("playbooks/rollback.yml", inventory, {"bundle": str(bundle)}, limit=a.name)
    assert undo2.rc == 0 and undo2.changed(a.name) == 0, undo2.stdout[-3000:]


def test_generated_role_converges_in_one_run_with_ansible_core_only(lab, tmp_path):
    a = lab.host(groups=["test_hosts"])
    inventory = lab.inventory(a)
    project_on(a)
    bundle = capture(inventory, a, "make install", "hello", tmp_path / "captures", chdir="/src/hello-1.0")
    role_dir, c, inv_c, apply_role = generated_role_on_fresh_host(lab, inventory, bundle, tmp_path, "hello", prepare)
    assert (role_dir / "library" / "mo_fleet_bundle_apply.py").is_file()
    assert (role_dir / "files" / "mo-fleet-plan.json").is_file()
    assert not (role_dir / "files" / "mo-fleet-files.tar").exists()
    start = snapshot(c)

    def role_run(check=False, diff=False):
        return run_playbook(str(tmp_path / "site.yml"), inv_c, check=check, diff=diff, cwd=tmp_path,
                            env={"ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "no-collections"),
                                 "ANSIBLE_ROLES_PATH": str(tmp_path / "roles")})

    dry = role_run(check=True, diff=True)
    assert dry.rc == 0 and dry.failed(c.name) == 0, dry.stdout[-3000:] + dry.stderr[-2000:]
    shown = one_run(dry, c)
    assert shown["changed"] is True and shown["shipped"] == 0
    assert [d for d in shown["diff"] if d["after_header"] == "/usr/local/share/hello/greeting.txt"][0][
        "after"] == "hello, world\n"
    assert snapshot(c) == start

    first = apply_role()
    assert first.rc == 0, first.stdout[-3000:] + first.stderr[-2000:]
    assert one_run(first, c)["shipped"] == 2
    assert c.sh("cat /usr/local/share/hello/greeting.txt").stdout == "hello, world\n"
    assert c.sh("readlink /usr/local/bin/hi").stdout.strip() == "hello"
    assert c.sh("systemctl is-enabled hello.service").stdout.strip() == "enabled"
    second = apply_role()
    assert second.rc == 0 and second.changed(c.name) == 0, second.stdout[-3000:]
    assert one_run(second, c)["shipped"] == 0
    verified = run_playbook("playbooks/verify.yml", inv_c, {"bundle": str(bundle)}, limit=c.name)
    assert verified.rc == 0, verified.stdout[-3000:]
