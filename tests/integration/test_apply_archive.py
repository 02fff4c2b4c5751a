"""mo.fleet.apply_template shipping the bundle's files as one archive (issue 4, benchmark).

From apply_template_archive_min_files directories + files on, the role unpacks them from one
tar with ansible.builtin.unarchive instead of one file/copy item each. Forced here on the
small make install project (threshold 1): the application captured on a fresh host must
equal the original capture, a second run changes nothing, drift in content and mode is
repaired, and --check and --diff stay honest (the per-item loops run then).
"""

import pytest

from labhosts import run_playbook
from test_render_roundtrip import (
    MAKE_PROJECT, capture, capture_while, comparable, diff_report, load, prepare,
)

pytestmark = pytest.mark.integration


def apply(inventory, host, bundle, check=False, diff=False, minimum=1):
    return run_playbook("playbooks/apply_template.yml", inventory,
                        {"bundle": str(bundle), "apply_template_archive_min_files": minimum,
                         "apply_template_engine": "tasks"},
                        limit=host.name, check=check, diff=diff)


def named(run, host, text):
    for play in run.result["plays"]:
        for task in play["tasks"]:
            if text in task["task"]["name"] and host.name in task["hosts"]:
                return task["hosts"][host.name]
    raise AssertionError("no task %r in %s" % (text, [t["task"]["name"] for p in run.result["plays"]
                                                    for t in p["tasks"]]))


def test_apply_with_one_archive_round_trip_idempotence_drift_and_diff(lab, tmp_path):
    a, b = lab.host(groups=["test_hosts"]), lab.host(groups=["test_hosts"])
    inventory = lab.inventory(a, b)
    prepare(a, "make")
    prepare(b)
    a.sh("mkdir -p /src/hello-1.0")
    for name, text in MAKE_PROJECT.items():
        a.sh("cat > /src/hello-1.0/%s" % name, input_text=text)
    bundle = capture(inventory, a, "make install", "hello", tmp_path / "captures", chdir="/src/hello-1.0")
    tpl_a = comparable(load(bundle))

    # --check on the fresh host: unarchive skips tar archives in check mode, so the role
    # renders the per-item loops, which report the change; nothing is written
    dry = apply(inventory, b, bundle, check=True)
    assert dry.rc == 0 and dry.failed(b.name) == 0, dry.stdout[-3000:]
    assert named(dry, b, "Copy the files the capture created").get("changed") is True
    assert not [t for p in dry.result["plays"] for t in p["tasks"] if "(one archive)" in t["task"]["name"]]
    assert b.sh("test -e /usr/local/bin/hello", check=False).returncode != 0

    bundle_b, run = capture_while(inventory, b, "hello-applied", tmp_path / "captures",
                                  lambda: apply(inventory, b, bundle))
    assert run.rc == 0, run.stdout[-3000:]
    assert named(run, b, "(one archive)").get("changed") is True
    assert not [t for p in run.result["plays"] for t in p["tasks"] if "Copy the files the capture" in t["task"]["name"]]
    diff = diff_report(tpl_a, comparable(load(bundle_b)))
    assert not diff, "\n".join(diff[:40])
    again = apply(inventory, b, bundle)
    assert again.rc == 0 and again.changed(b.name) == 0, again.stdout[-3000:]

    # drift: content and mode; --check --diff shows the file's diff through the copy loop
    b.sh("echo drift >> /usr/local/share/hello/greeting.txt && chmod 0700 /usr/local/bin/hello")
    shown = apply(inventory, b, bundle, check=True, diff=True)
    assert shown.rc == 0, shown.stdout[-3000:]
    assert not [t for p in shown.result["plays"] for t in p["tasks"] if "(one archive)" in t["task"]["name"]]
    copies = named(shown, b, "Copy the files the capture created")["results"]
    greeting = [r for r in copies if r["item"]["path"] == "/usr/local/share/hello/greeting.txt"][0]
    assert greeting["changed"] and "drift" in str(greeting.get("diff"))
    fixed = apply(inventory, b, bundle)
    assert fixed.rc == 0 and named(fixed, b, "(one archive)").get("changed") is True, fixed.stdout[-3000:]
    assert b.sh("cat /usr/local/share/hello/greeting.txt").stdout == "hello, world\n"
    assert b.sh("stat -c %a /usr/local/bin/hello").stdout.strip() == "755"
    third = apply(inventory, b, bundle)
    assert third.rc == 0 and third.changed(b.name) == 0, third.stdout[-3000:]
