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
    c = lab.host()  # a later host is added to the earlier ones too
    for host, other in ((a, b), (b, a), (a, c), (c, a)):
        line = host.sh(f"getent hosts {other.name}").stdout.split()
        assert line[0] == labctl.host_ip(other.name, labctl.load_spec()["network"]), line
    # lab names come from /etc/hosts; every other name from the machine's own resolver,
    # never from podman's DNS server (it drops queries while it reloads)
    resolvers = [line.split()[1] for line in a.sh("cat /etc/resolv.conf").stdout.splitlines()
                 if line.startswith("nameserver")]
    network = labctl.json.loads(labctl.podman("network", "inspect", labctl.load_spec()["network"]).stdout)[0]
    gateways = [subnet["gateway"] for subnet in network["subnets"]]
    assert resolvers and not set(resolvers) & set(gateways), (resolvers, gateways)
    run = a.sh("apt-get install -y -q --no-install-recommends hello && hello")
    assert "Hello, world!" in run.stdout


def test_link_hosts_is_idempotent_and_repairs_a_changed_address(lab):
    a, b = lab.host(), lab.host()
    network = labctl.load_spec()["network"]
    assert labctl.link_hosts([a.name, b.name], network) == 0
    hosts_file = labctl.Path(labctl.container_state(a.name)["HostsPath"])
    hosts_file.write_text(hosts_file.read_text().replace(labctl.host_ip(b.name, network), "10.0.0.99"))
    assert labctl.link_hosts([a.name, b.name], network) == 1
    assert a.sh(f"getent hosts {b.name}").stdout.split()[0] == labctl.host_ip(b.name, network)
    assert a.sh("grep -c 10.0.0.99 /etc/hosts", check=False).stdout.strip() == "0"


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
