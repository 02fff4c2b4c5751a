"""Issue 11, class 1, on a lab host: a hostile bundle stays data on every path to a task file.

The bundle carries `{{ lookup('pipe', 'touch ...mo-fleet-pwned-ID') }}` (a marker file the
controller would create if Ansible ever evaluated a value) in every place that reaches a
rendered task: directory, file, symlink and deleted paths, a symlink target, a modified
file, a user's gecos and home, the owner of a mode change, the header's host and command.
It is applied with the apply_template role under --check --diff and for real, undone with
playbooks/rollback.yml, and turned into a role by playbooks/template_to_role.yml that is
then applied.  One host serves the three paths, in that order (each leaves it as it found
it or checks what it made).  The marker never appears, on the controller or on the host,
the values land literally, and nothing outside the bundle's paths changes.
"""

import hashlib
import os
import shlex
import subprocess
import uuid
from pathlib import Path

import pytest

from labhosts import ANSIBLE_BIN, ROOT, ansible_env, run_playbook
from test_render_roundtrip import snapshot

pytestmark = pytest.mark.integration

ACCOUNT_FILES = ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/passwd-", "/etc/group-",
                 "/etc/shadow-", "/etc/gshadow-", "/etc/subuid", "/etc/subgid", "/etc/subuid-", "/etc/subgid-",
                 "/etc/.pwd.lock")


def hostile_bundle(root, marker):
    """(bundle dir, the template, the paths it touches)."""
    from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl

    pwn = "{{ lookup('pipe', 'touch /tmp/%s') }}" % marker
    # in a path segment: no '/', so the marker goes to $HOME (cd without an argument)
    seg = "{{ lookup('pipe', 'cd; touch %s') }}" % marker
    top = "/opt/mo-hostile"
    content, before = b"hostile\n", b"before\n"

    def sha(data):
        return hashlib.sha256(data).hexdigest()

    paths = {
        "dir": "%s/d-%s" % (top, seg),
        "file": "%s/d-%s/f-%s" % (top, seg, seg),
        "link": "%s/l-%s" % (top, seg),
        "gone": "%s/gone-%s" % (top, seg),
        "conf": "/etc/mo-hostile-%s.conf" % seg,
    }
    ops = {
        "directories_created": [{"path": top, "type": "directory", "permissions": "0755"},
                                {"path": paths["dir"], "type": "directory", "permissions": "0750"}],
        "files_created": [{"path": paths["file"], "type": "file", "permissions": "0644", "hash": sha(content),
                           "size": len(content), "bundled": True}],
        "files_modified": [{"path": paths["conf"], "type": "file", "permissions": "0644", "hash": sha(content),
                            "size": len(content), "bundled": True, "before_bundled": True,
                            "before": {"type": "file", "permissions": "0600", "hash": sha(before)}}],
        "files_deleted": [{"path": paths["gone"], "type": "file", "permissions": "0644"}],
        "symlinks_created": [{"path": paths["link"], "type": "symlink", "target": pwn}],
        "permissions_changed": [{"path": paths["conf"], "type": "file", "before": {"permissions": "0600", "group": "root"},
                                 "after": {"permissions": "0644", "group": "daemon"}}],
        "users_created": [{"name": "mohostile", "gecos": pwn, "home": "%s/home-%s" % (top, seg), "shell": "/bin/sh",
                           "system": True}],
        "groups_created": [{"name": "mohostile", "system": True}],
    }
    doc = tpl.build({"argv": ["sh", "-c", pwn + "\nx"], "timestamp": "2026-01-01T00:00:00", "host": pwn,
                     "name": "hostile"}, ops)
    bundle = Path(root) / "bundle"
    for path, data, area in ((paths["file"], content, "files"), (paths["conf"], content, "files"),
                             (paths["conf"], before, "before")):
        dest = bundle / area / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    (bundle / "template.json").write_text(tpl.dump(doc))
    return bundle, doc, paths, pwn, top


def no_marker(host, marker, tmp_path):
    """The marker file exists nowhere: not on the controller, not on the host."""
    places = [Path("/tmp"), Path.home(), ROOT, ROOT / "playbooks", tmp_path]
    found = [str(p / marker) for p in places if (p / marker).exists()]
    found += [str(p) for p in tmp_path.rglob(marker + "*")]
    assert not found, found
    on_host = host.sh("find / -xdev -name '%s*' 2>/dev/null; ls /tmp/%s ~/%s 2>/dev/null; true"
                      % (marker, marker, marker)).stdout.split()
    assert not on_host, on_host


def failures(run):
    """The failed tasks of RUN with their messages (for an assertion message)."""
    out = []
    for play in run.result.get("plays", []):
        for task in play.get("tasks", []):
            for res in task.get("hosts", {}).values():
                bad = [r for r in res.get("results", [res]) if r.get("failed")]
                out += [(task["task"]["name"], r.get("msg"), r.get("item")) for r in bad]
    return "%s\n%s" % (out, run.stderr[-2000:])


def changed_paths(before, after):
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def allowed(path, top, paths):
    parents = set()
    for p in list(paths.values()) + [top]:
        while p not in ("/", ""):
            p = os.path.dirname(p)
            parents.add(p)
    return path.startswith(top + "/") or path == top or path in paths.values() or path in ACCOUNT_FILES \
        or path in parents


def test_hostile_bundle_stays_data_through_apply_rollback_and_role(lab, tmp_path):
    marker = "mo-fleet-pwned-%s" % uuid.uuid4().hex[:10]
    bundle, doc, paths, pwn, top = hostile_bundle(tmp_path, marker)
    host = lab.host(groups=["test_hosts"])
    inventory = lab.inventory(host)
    conf = shlex.quote(paths["conf"])
    host.sh("printf 'before\\n' > %s && chmod 0600 %s" % (conf, conf))
    start = snapshot(host)

    def apply(playbook, check=False, diff=False):
        run = run_playbook(playbook, inventory, {"bundle": str(bundle)}, limit=host.name, check=check, diff=diff,
                           cwd=tmp_path)
        assert run.rc == 0 and run.failed(host.name) == 0, failures(run)
        no_marker(host, marker, tmp_path)
        return run

    # 1. the apply_template role, --check --diff: reports, evaluates nothing, changes nothing
    dry = apply("playbooks/apply_template.yml", check=True, diff=True)
    assert dry.changed(host.name) > 0
    assert changed_paths(start, snapshot(host)) == []

    # 2. for real: every value lands literally
    apply("playbooks/apply_template.yml")
    assert host.sh("cat %s" % shlex.quote(paths["file"])).stdout == "hostile\n"
    assert host.sh("readlink %s" % shlex.quote(paths["link"])).stdout.strip() == pwn
    passwd = host.sh("getent passwd mohostile").stdout.strip().split(":")
    assert passwd[4] == pwn and passwd[5] == "%s/home-%s" % (top, "{{ lookup('pipe', 'cd; touch %s') }}" % marker)
    assert host.sh("stat -c %G " + shlex.quote(paths["conf"])).stdout.strip() == "daemon"
    applied = snapshot(host)
    outside = [p for p in changed_paths(start, applied) if not allowed(p, top, paths)]
    assert not outside, outside
    again = apply("playbooks/apply_template.yml")
    assert again.changed(host.name) == 0, again.stdout[-3000:]

    # 3. rollback.yml: back to the start, nothing evaluated
    apply("playbooks/rollback.yml")
    back = [p for p in changed_paths(start, snapshot(host)) if p not in ACCOUNT_FILES]
    assert not back, back
    assert host.sh("getent passwd mohostile", check=False).returncode != 0

    # 4. a role written by template_to_role.yml, applied without mo.fleet
    role_dir = tmp_path / "roles" / "hostile"
    made = run_playbook("playbooks/template_to_role.yml", inventory,
                        {"template": str(bundle), "role_dir": str(role_dir), "role_name": "hostile"}, cwd=tmp_path)
    assert made.rc == 0, failures(made)
    no_marker(host, marker, tmp_path)
    readme = (role_dir / "README.md").read_text()
    assert "\nx\n" not in readme and "\\x0ax" in readme  # the header's line break stays in its line
    lint = subprocess.run([str(ANSIBLE_BIN / "ansible-lint"), "--profile", "production", str(role_dir)],
                          cwd=tmp_path, capture_output=True, text=True, env=ansible_env())
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-2000:]
    play = tmp_path / "site.yml"
    play.write_text("- name: Apply the generated role\n  hosts: all\n  gather_facts: false\n  become: true\n"
                    "  roles:\n    - role: hostile\n      vars:\n        hostile_install_packages: false\n")
    empty = tmp_path / "no-collections"
    empty.mkdir(exist_ok=True)
    env = {"ANSIBLE_COLLECTIONS_PATH": str(empty), "ANSIBLE_ROLES_PATH": str(tmp_path / "roles")}
    for check in (True, False):
        run = run_playbook(str(play), inventory, env=env, cwd=tmp_path, check=check, diff=check)
        assert run.rc == 0 and run.failed(host.name) == 0, failures(run)
        no_marker(host, marker, tmp_path)
    assert host.sh("getent passwd mohostile").stdout.strip().split(":")[4] == pwn
    assert host.sh("readlink %s" % shlex.quote(paths["link"])).stdout.strip() == pwn
    outside = [p for p in changed_paths(start, snapshot(host)) if not allowed(p, top, paths)]
    assert not outside, outside
