"""The lab itself: fresh hosts boot systemd, reach apt and each other, answer ansible."""

from labhosts import labctl, run_module, run_playbook


def test_fresh_host_runs_systemd_and_answers_ansible(lab):
    host = lab.host(groups=["web"])
    assert host.sh("systemctl is-system-running").stdout.strip() in ("running", "degraded")
    assert host.sh("cat /etc/debian_version").stdout.startswith("12")
    result = run_module(lab.inventory(host), "web", "ansible.builtin.setup", "filter=ansible_distribution*")
    facts = result.result["plays"][0]["tasks"][0]["hosts"][host.name]["ansible_facts"]
    assert facts["ansible_distribution"] == "Debian"
    assert facts["ansible_distribution_major_version"] == "12"


def test_hosts_reach_each_other_by_name_and_reach_the_mirror(lab):
    a, b = lab.host(), lab.host()
    assert a.sh(f"getent hosts {b.name}").returncode == 0
    # the network's own DNS server is the only resolver, so a slow answer is retried there
    # instead of being asked of the upstream resolver, which does not know lab names
    nameservers = [line.split()[1] for line in a.sh("cat /etc/resolv.conf").stdout.splitlines()
                   if line.startswith("nameserver")]
    assert len(nameservers) == 1, nameservers
    run = a.sh("apt-get install -y -q --no-install-recommends hello && hello")
    assert "Hello, world!" in run.stdout


def test_apt_module_is_idempotent_on_a_lab_host(lab, tmp_path):
    host = lab.host(groups=["test_hosts"])
    playbook = tmp_path / "apt.yml"
    playbook.write_text(
        "- hosts: test_hosts\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.apt:\n        name: hello\n        state: present\n"
    )
    first = run_playbook(playbook, lab.inventory(host))
    assert first.rc == 0, first.stdout
    assert first.changed(host.name) == 1
    second = run_playbook(playbook, lab.inventory(host))
    assert second.rc == 0 and second.changed(host.name) == 0


def test_rootfs_host_boots_on_a_plain_directory_root(lab):
    host = lab.host(rootfs=True)
    assert host.sh("systemctl is-system-running").stdout.strip() in ("running", "degraded")
    fstype = host.sh("stat -f -c %T /").stdout.strip()
    assert fstype != "overlayfs", fstype
    root = labctl.container_state(host.name)["Config"]["Labels"]["mo.fleet.lab.rootfs"]
    assert root.startswith(str(labctl.ROOTFS_DIR))
    labctl.remove_hosts(host.name)
    assert not labctl.Path(root).exists()
