"""Interception, the dpkg hook, drift and harvest on a real lab host prepared by mo.fleet.target.

One host for the module: the role installs the CLI, the login-shell wrappers, the dpkg hook
and the baseline; then root types installs in an interactive login shell, a script calls
dpkg -i, a file is written and a conffile edited by hand, and harvest.yml brings it all home.
"""

import json
import subprocess
import uuid

import pytest

from labhosts import LabFactory, run_playbook
from test_capture import BUILD_DEB, MAKE_PROJECT

import labctl
from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl

ROLE_PLAY = "- hosts: all\n  gather_facts: false\n  become: true\n  roles:\n    - role: mo.fleet.target\n"


def login_shell(host, line, user="root"):
    """LINE typed into an interactive login shell of USER on HOST (bash -l -i)."""
    return subprocess.run(["podman", "exec", "-i", "-u", user, host.name, "bash", "-l", "-i", "-c", line],
                          text=True, capture_output=True, env=labctl.podman_env(), check=False)


def _clean(stderr):
    """bash -i without a terminal says so on stderr; that is bash, not the command."""
    return "\n".join(line for line in stderr.splitlines() if "job control" not in line and
                     "terminal process group" not in line)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("interception")
    lab = LabFactory(tmp)
    try:
        host = lab.host(groups=["capture_hosts"], prefix="mo-icpt")
        inventory = lab.inventory(host)
        (tmp / "role.yml").write_text(ROLE_PLAY)
        run = run_playbook(str(tmp / "role.yml"), inventory)
        assert run.rc == 0 and not run.failed(host.name), run.stdout[-3000:] + run.stderr
        again = run_playbook(str(tmp / "role.yml"), inventory)
        changed = [t["task"]["name"] for p in again.result.get("plays", []) for t in p.get("tasks", [])
                   if t["hosts"].get(host.name, {}).get("changed")]
        assert again.rc == 0 and again.changed(host.name) == 0, changed
        host.sh(MAKE_PROJECT)
        host.sh(BUILD_DEB)
        host.sh("useradd -m -s /bin/bash alice")
        yield tmp, host, inventory
    finally:
        lab.cleanup()


def harvest(tmp, inventory, check=False, **extra):
    return run_playbook("playbooks/harvest.yml", inventory, dict(harvest_dest=str(tmp / "captures"), **extra),
                        check=check, cwd=tmp)


def _harvested(run, host):
    (result,) = run.task_results(host.name, name="Fetch the templates not harvested yet")
    return result


def test_typed_installs_and_a_dpkg_script_come_home_and_drift_finds_the_rest(prepared):
    """One test, in this order: the drift capture's package attribution needs the intercepted
    install before it (tests of a module can run on different xdist workers, in any order)."""
    typed_installs_and_a_dpkg_script_come_home_through_harvest(prepared)
    drift_finds_a_hand_written_file_and_diffs_the_changed_conffile(prepared)


def typed_installs_and_a_dpkg_script_come_home_through_harvest(prepared):
    tmp, host, inventory = prepared
    typed = login_shell(host, "apt-get install -y -q --no-install-recommends hello")
    assert typed.returncode == 0 and "Setting up hello" in typed.stdout, typed.stderr
    made = login_shell(host, "cd /src/app-1.0 && make install")
    assert made.returncode == 0, made.stderr
    host.sh("printf '#!/bin/sh\\ndpkg -i /src/mo-demo_1.2-3_all.deb\\n' > /root/install-demo.sh && "
            "sh /root/install-demo.sh >/dev/null")

    before = sorted((tmp / "captures").rglob("*")) if (tmp / "captures").exists() else []
    listed = harvest(tmp, inventory, check=True)
    assert listed.rc == 0, listed.stdout[-3000:]
    would = {t["name"]: t for t in _harvested(listed, host)["templates"]}
    assert (sorted((tmp / "captures").rglob("*")) if (tmp / "captures").exists() else []) == before  # check mode writes nothing

    run = harvest(tmp, inventory)
    assert run.rc == 0 and run.changed(host.name) == 1, run.stdout[-3000:]
    came = {t["name"]: t for t in _harvested(run, host)["templates"]}
    assert set(came) == set(would)
    by_origin = {}
    for name, item in came.items():
        doc = tpl.verify_bundle(str(tmp / "captures" / host.name / name))
        by_origin.setdefault(doc["metadata"].get("origin"), []).append(doc)

    (apt,) = [d for d in by_origin["intercepted"] if d["MO_template"]["command"] == "apt-get"]
    assert [p["name"] for p in apt["operations"]["packages_installed"]] == ["hello"]
    assert "/usr/bin/hello" in {e["path"] for e in apt["operations"]["files_created"]}
    (make,) = [d for d in by_origin["intercepted"] if d["MO_template"]["command"] == "make"]
    created = {e["path"]: e for e in make["operations"]["files_created"]}
    assert created["/usr/local/bin/app"]["bundled"] and make["MO_template"]["chdir"] == "/src/app-1.0"
    assert (tmp / "captures" / host.name / make["MO_template"]["name"] / "files/usr/local/bin/app").read_text() \
        == host.read("/usr/local/bin/app")
    # the script's dpkg -i bypassed every shell wrapper: the hook recorded it, with who asked
    (demo,) = [d for d in by_origin["dpkg-hook"] if d["operations"]["packages_installed"] and
               d["operations"]["packages_installed"][0]["name"] == "mo-demo"]
    assert demo["metadata"]["requested_by"]["command"] == "dpkg -i /src/mo-demo_1.2-3_all.deb"
    assert demo["metadata"]["requested_by"]["parent"] == "sh /root/install-demo.sh"
    assert demo["metadata"]["requested_by"]["user"] == "root"
    records = [json.loads(line) for line in host.read("/var/lib/mo-fleet/hook/records.jsonl").splitlines()]
    hello = [r for r in records if any(p["name"] == "hello" for p in r["packages"])]
    assert hello and hello[0]["capture"] == apt["metadata"]["bundle"]["id"]

    again = harvest(tmp, inventory)
    assert again.rc == 0 and again.changed(host.name) == 0, again.stdout[-3000:]
    assert _harvested(again, host)["templates"] == []


def drift_finds_a_hand_written_file_and_diffs_the_changed_conffile(prepared):
    tmp, host, inventory = prepared
    host.sh("echo 'written by hand' > /etc/motd.local && sed -i 's|^#DSHELL=/bin/bash$|DSHELL=/bin/sh|' /etc/adduser.conf")
    name = "drift-" + uuid.uuid4().hex[:4]
    run = harvest(tmp, inventory, harvest_drift=name)
    assert run.rc == 0, run.stdout[-3000:]
    bundle = tmp / "captures" / host.name / name
    doc = tpl.verify_bundle(str(bundle))
    assert doc["metadata"]["origin"] == "drift"
    created = {e["path"] for e in doc["operations"]["files_created"]}
    assert "/etc/motd.local" in created and (bundle / "files/etc/motd.local").read_text() == "written by hand\n"
    # hello came in after the baseline: attributed to the intercepted apt-get by the hook record
    sources = {s["package"]: s for s in doc["metadata"]["package_sources"]}
    assert sources["hello"]["source"] == "dpkg-hook"
    assert sources["hello"]["command"] == "apt-get install -y -q --no-install-recommends hello"
    (diff,) = [d for d in doc["metadata"]["conffile_diffs"] if d["path"] == "/etc/adduser.conf"]
    assert diff["package"] == "adduser" and "+DSHELL=/bin/sh\n" in diff["diff"] and "-#DSHELL=/bin/bash\n" in diff["diff"]
    info = host.sh("mo-install --info %s" % name).stdout
    assert "conffile /etc/adduser.conf changed from adduser" in info and "  +DSHELL=/bin/sh" in info
    assert host.sh("MO-install --verify %s" % name).stdout.startswith("OK: ")
    shown = run_playbook("playbooks/template_info.yml", inventory, {"bundle": str(bundle)}, cwd=tmp)
    assert shown.rc == 0, shown.stdout[-3000:]
    (diffs,) = shown.task_results("localhost", name="Show the changed conffiles against their packaged defaults")
    lines = [line for r in diffs["results"] if r["item"]["path"] == "/etc/adduser.conf" for line in r["msg"]]
    assert "+DSHELL=/bin/sh" in lines


def _host_templates(host):
    return {t["id"]: t["name"] for t in json.loads(host.sh("mo-capture list-templates --json").stdout)}


def test_harvest_remove_takes_from_the_host_only_what_came_home(prepared):
    """harvest_remove=true: check mode lists what would go and removes nothing; the run brings
    the bundle home, then removes it from the host and from the harvest state; a second run
    changes nothing. Its own destination, so the other tests' harvests are not touched."""
    tmp, host, inventory = prepared
    name = "rm-" + uuid.uuid4().hex[:6]
    host.sh(f"mo-capture --name {name} sh -c 'echo kept > /etc/{name}' >/dev/null")
    (mine,) = [i for i, n in _host_templates(host).items() if n == name]
    extra = {"harvest_dest": str(tmp / "captures-rm"), "harvest_remove": True}
    listed = run_playbook("playbooks/harvest.yml", inventory, extra, check=True, cwd=tmp)
    assert listed.rc == 0, listed.stdout[-3000:]
    assert mine in _harvested(listed, host)["removed"] and mine in _host_templates(host)

    run = run_playbook("playbooks/harvest.yml", inventory, extra, cwd=tmp)
    assert run.rc == 0 and run.changed(host.name) == 1, run.stdout[-3000:]
    assert mine in _harvested(run, host)["removed"]
    home = tmp / "captures-rm" / host.name / name
    assert (home / "files" / "etc" / name).read_text() == "kept\n" and tpl.verify_bundle(str(home))
    assert mine not in _host_templates(host)
    assert host.sh(f"test -e /var/lib/mo-fleet/templates/{mine}", check=False).returncode == 1
    state = json.loads((tmp / "captures-rm" / host.name / ".harvested.json").read_text())
    assert mine not in state["harvested"]

    again = run_playbook("playbooks/harvest.yml", inventory, extra, cwd=tmp)
    assert again.rc == 0 and again.changed(host.name) == 0, again.stdout[-3000:]
    assert _harvested(again, host)["removed"] == [] and home.is_dir()


def test_a_non_root_apt_get_and_a_non_change_behave_as_without_mo_fleet(prepared):
    _tmp, host, _inventory = prepared
    line = "apt-get install -y -q --no-install-recommends cowsay; echo rc=$?"
    with_wrappers = login_shell(host, line, user="alice")
    root_help = login_shell(host, "apt-get --help; echo rc=$?")
    host.sh("mv /etc/profile.d/mo-fleet-capture.sh /root/ && mv /etc/dpkg/dpkg.cfg.d/mo-fleet /root/")
    try:
        without = login_shell(host, line, user="alice")
        bare_help = login_shell(host, "apt-get --help; echo rc=$?")
    finally:
        host.sh("mv /root/mo-fleet-capture.sh /etc/profile.d/ && mv /root/mo-fleet /etc/dpkg/dpkg.cfg.d/")
    assert "rc=100" in with_wrappers.stdout
    assert (with_wrappers.returncode, with_wrappers.stdout, _clean(with_wrappers.stderr)) == (
        without.returncode, without.stdout, _clean(without.stderr))
    assert (root_help.returncode, root_help.stdout, _clean(root_help.stderr)) == (
        bare_help.returncode, bare_help.stdout, _clean(bare_help.stderr))
    assert "rc=0" in root_help.stdout
    # root's wrappers are really there: the alias is what the shell runs
    assert "mo-capture --intercept apt-get" in login_shell(host, "alias apt-get").stdout


def test_the_engines_compiled_modules_and_the_index_are_roots_only(prepared):
    """The role makes the pycache directory root's and 0755 before any entry script can create
    it under some other umask, and the store's index (every captured command line) is 0600;
    an ordinary user cannot list it through the CLI either."""
    _tmp, host, _inventory = prepared
    assert host.sh("stat -c '%U:%G %a' /var/cache/mo-fleet /var/cache/mo-fleet/pycache "
                   "/var/lib/mo-fleet/index.db").stdout.split() == ["root:root", "755", "root:root", "755",
                                                                     "root:root", "600"]
    listed = login_shell(host, "mo-capture list-templates; echo rc=$?", user="alice")
    assert "rc=2" in listed.stdout and "mo-capture list-templates must run as root." in listed.stderr


PATCH_PLAY = """- hosts: all
  gather_facts: false
  become: true
  tasks:
    - name: Converge the captured conffile
      mo.fleet.bundle_apply:
        bundle: "{{ conf_bundle }}"
        options:
          include: [/etc/adduser.conf]
      register: applied
"""


def test_a_captured_conffile_edit_is_applied_as_a_patch_that_keeps_the_targets_own_lines(prepared):
    """One line of /etc/adduser.conf changed by a CLI capture on A (its diff against the packaged
    default recorded) is applied to B, whose copy differs elsewhere: B keeps its own line and
    gets A's; nothing but the plan is shipped for it, and a second run changes nothing."""
    tmp, host, inventory = prepared
    # Another test of this module may have edited DSHELL on A; the conffile's diff against the
    # packaged default would then carry that line too. Put it back before the capture.
    host.sh("sed -i 's|^DSHELL=/bin/sh$|#DSHELL=/bin/bash|' /etc/adduser.conf")
    made = login_shell(host, "mo-capture --name conf-edit sed -i 's/^#DIR_MODE=0700$/DIR_MODE=0750/' "
                             "/etc/adduser.conf")
    assert made.returncode == 0, made.stderr
    run = harvest(tmp, inventory)
    assert run.rc == 0, run.stdout[-3000:]
    bundle = tmp / "captures" / host.name / "conf-edit"
    doc = tpl.verify_bundle(str(bundle))
    (diff,) = [d for d in doc["metadata"]["conffile_diffs"] if d["path"] == "/etc/adduser.conf"]
    assert "+DIR_MODE=0750\n" in diff["diff"]

    (tmp / "b").mkdir(exist_ok=True)
    lab = LabFactory(tmp / "b")
    try:
        other = lab.host(prefix="mo-patch")
        other.sh("sed -i 's/^#EXTRA_GROUPS=\"users\"$/EXTRA_GROUPS=\"users staff\"/' /etc/adduser.conf")
        theirs = other.read("/etc/adduser.conf")
        assert 'EXTRA_GROUPS="users staff"' in theirs
        play = tmp / "patch.yml"
        play.write_text(PATCH_PLAY)
        other_inventory = lab.inventory(other)
        preview = run_playbook(str(play), other_inventory, {"conf_bundle": str(bundle)}, check=True, diff=True)
        assert preview.rc == 0, preview.stdout[-3000:]
        (seen,) = preview.task_results(other.name, name="Converge the captured conffile")
        assert [c["what"] for c in seen["changes"] if c["path"] == "/etc/adduser.conf"] == [["content (patch)"]]
        assert other.read("/etc/adduser.conf") == theirs  # check mode wrote nothing
        applied = run_playbook(str(play), other_inventory, {"conf_bundle": str(bundle)})
        assert applied.rc == 0 and applied.changed(other.name) == 1, applied.stdout[-3000:]
        (result,) = applied.task_results(other.name, name="Converge the captured conffile")
        assert result["shipped"] == 0
        text = other.read("/etc/adduser.conf")
        assert "\nDIR_MODE=0750\n" in text and '\nEXTRA_GROUPS="users staff"\n' in text
        assert text == theirs.replace("\n#DIR_MODE=0700\n", "\nDIR_MODE=0750\n")
        again = run_playbook(str(play), other_inventory, {"conf_bundle": str(bundle)})
        assert again.rc == 0 and again.changed(other.name) == 0, again.stdout[-3000:]
    finally:
        lab.cleanup()
