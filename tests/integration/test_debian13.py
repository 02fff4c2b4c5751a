"""Debian 13 (trixie) targets (issue 15): capture, apply, the repository server and the release
client on trixie hosts, and a template captured on Debian 12 applied to Debian 13.

Every host here is reached the way fleets are: over SSH as the login user, playbooks escalating
with `become: true`.
"""

from labhosts import run_module, run_playbook

from test_release_rollout import build_deb, host_state, ok, role_playbook, set_up_server

from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl


def capture(lab, host, tmp_path, package):
    """Capture `apt-get install PACKAGE` on HOST with playbooks/capture.yml; return the bundle."""
    ok(run_playbook("playbooks/capture.yml", lab.inventory(host), cwd=tmp_path, extra_vars={
        "capture_cmd": f"apt-get install -y --no-install-recommends {package}",
        "capture_name": package}), f"capture of {package} on {host.name}")
    return tmp_path / "captures" / host.name / package


def installed(doc, package):
    return {p["name"]: p["version"] for p in doc["operations"]["packages_installed"]}.get(package)


def archive_version(host, package):
    return host.sh(f"apt-cache policy {package} | sed -n 's/^ *Candidate: //p'").stdout.strip()


def dpkg_version(host, package):
    return host.sh(f"dpkg-query -W -f '${{Version}}' {package} 2>/dev/null || true").stdout


def apply(lab, host, tmp_path, bundle, **extra):
    return run_playbook("playbooks/apply_template.yml", lab.inventory(host), cwd=tmp_path,
                        extra_vars=dict({"bundle": str(bundle)}, **extra))


def test_trixie_host_is_debian_13_reached_as_a_login_user_with_sudo(lab):
    host = lab.host(suite="trixie")
    assert host.sh("cat /etc/debian_version").stdout.startswith("13")
    assert host.hostvars["ansible_user"] == "mo"
    inventory = lab.inventory(host)
    facts = run_module(inventory, host.name, "ansible.builtin.setup", "filter=ansible_distribution*")
    facts = facts.result["plays"][0]["tasks"][0]["hosts"][host.name]["ansible_facts"]
    assert (facts["ansible_distribution"], facts["ansible_distribution_major_version"]) == ("Debian", "13")
    for become, uid in ((False, "1000"), (True, "0")):
        run = run_module(inventory, host.name, "ansible.builtin.command", "id -u", become=become)
        assert run.result["plays"][0]["tasks"][0]["hosts"][host.name]["stdout"] == uid, run.stdout


def test_large_bundle_comes_home_from_the_become_users_archive_over_ssh(lab, tmp_path):
    """The login user's tmp directory holds the archive the module (root, by become) wrote:
    it is fetched over SFTP by the login user, and goes with the directory."""
    host = lab.host(suite="trixie")
    host.sh("mkdir -p /opt/app && echo one > /opt/app/a")
    args = {"cmd": "sh -c 'echo two >> /opt/app/a; echo new > /opt/app/b'", "name": "big",
            "roots": ["/opt"], "inline_max": 1}
    run = run_module(lab.inventory(host), host.name, "mo.fleet.capture", args, cwd=tmp_path,
                     env={"ANSIBLE_VERBOSITY": "3", "ANSIBLE_VERBOSE_TO_STDERR": "1"})
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " FETCH /home/mo/.ansible/tmp/ansible-tmp-" in run.stderr
    doc = tpl.verify_bundle(str(tmp_path / "captures" / host.name / "big"))
    assert "/opt/app/b" in {e["path"] for e in doc["operations"]["files_created"]}
    assert host.sh("ls -A /home/mo/.ansible/tmp").stdout == ""


def test_capture_on_trixie_applies_to_trixie_and_a_second_apply_changes_nothing(lab, tmp_path):
    source, target = lab.host(suite="trixie"), lab.host(suite="trixie")
    bundle = capture(lab, source, tmp_path, "hello")
    doc = tpl.verify_bundle(str(bundle))
    assert installed(doc, "hello") == archive_version(source, "hello") == dpkg_version(source, "hello")
    first = ok(apply(lab, target, tmp_path, bundle), "apply")
    assert first.changed(target.name) > 0
    assert dpkg_version(target, "hello") == installed(doc, "hello")
    assert target.sh("/usr/bin/hello").stdout == "Hello, world!\n"
    second = ok(apply(lab, target, tmp_path, bundle), "second apply")
    assert second.changed(target.name) == 0, second.stdout[-3000:]


def test_bookworm_capture_on_trixie_unpinned_installs_and_pinned_says_the_archive_lacks_it(lab, tmp_path):
    """hello is 2.10-3 in Debian 12 and 2.10-5 in Debian 13: the pinned template cannot be
    applied and says so in one sentence naming the package and version (ansible.builtin.apt's,
    from the rendered install task); unpinned, it installs trixie's own version."""
    source, target = lab.host(), lab.host(suite="trixie")
    bundle = capture(lab, source, tmp_path, "hello")
    captured = installed(tpl.verify_bundle(str(bundle)), "hello")
    assert captured == dpkg_version(source, "hello") and captured != archive_version(target, "hello")
    pinned = apply(lab, target, tmp_path, bundle)
    assert pinned.rc != 0
    failure = [r for r in pinned.task_results(target.name) if r.get("failed")][0]
    assert failure["msg"] == f"no available installation candidate for hello={captured}", failure["msg"]
    assert dpkg_version(target, "hello") == ""
    ok(apply(lab, target, tmp_path, bundle, pin_versions=False), "unpinned apply")
    assert dpkg_version(target, "hello") == archive_version(target, "hello")


def test_repository_server_on_trixie_serves_trixie_and_bookworm_clients(lab, tmp_path):
    debs = [build_deb(tmp_path, "mo-base"), build_deb(tmp_path, "mo-tool")]
    catalog = {
        "project": {"name": "acme", "architectures": ["amd64"]},
        "stores": [{"name": "main"}],
        "deployments": [{"name": "base", "start_date": "2026-01-05", "included_attributes": ["all"],
                         "packages": ["main/mo-base_1.0_all.deb", "main/mo-tool_1.0_all.deb"],
                         "packages_to_install": ["mo-base", "mo-tool"]}],
    }
    server, *clients = lab.hosts_side_by_side({"groups": ["repo_server"], "suite": "trixie"},
                                              {"groups": ["web"], "suite": "trixie"}, ["web"])
    inventory = lab.inventory(server, *clients, group_vars={
        "mo_fleet_catalog": catalog, "mo_fleet_reports_dir": str(tmp_path / "reports"),
        "mo_fleet_today": "2026-01-05"})
    set_up_server(inventory, server, debs)
    playbook = role_playbook(tmp_path)
    ok(run_playbook(playbook, inventory), "release run")
    for client in clients:
        assert host_state(client) == (["base"], {"mo-base": ("1.0", "ii"), "mo-tool": ("1.0", "ii")}), client.suite
    again = ok(run_playbook(playbook, inventory), "second release run")
    assert all(again.changed(c.name) == 0 for c in clients), again.stdout[-3000:]
