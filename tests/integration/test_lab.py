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
    # the mirror's names are pinned in /etc/hosts too, to this machine's answer for them
    sources = labctl.debian_mirror()[1]
    for name in labctl.source_hosts(sources):
        pinned = labctl.socket.getaddrinfo(name, 80, labctl.socket.AF_INET)[0][4][0]
        assert a.sh(f"getent -s files hosts {name}").stdout.split()[0] == pinned, name
    # other names come from the machine's own resolver,
    # never from podman's DNS server (it drops queries while it reloads)
    resolvers = [line.split()[1] for line in a.sh("cat /etc/resolv.conf").stdout.splitlines()
                 if line.startswith("nameserver")]
    network = labctl.network_state(labctl.load_spec()["network"])
    gateways = [subnet["gateway"] for subnet in network["subnets"]]
    assert resolvers and not set(resolvers) & set(gateways), (resolvers, gateways)
    run = a.sh("apt-get install -y -q --no-install-recommends hello && hello")
    assert "Hello, world!" in run.stdout


def test_hosts_fetch_debian_packages_through_the_package_cache(lab):
    host = lab.host()
    mirror_hosts = labctl.source_hosts(labctl.debian_mirror()[1])
    cache = f"http://host.containers.internal:{labctl.APT_CACHE_PORT}"
    proxies = dict(line.split(" ", 1) for line in host.sh("apt-config dump Acquire::http").stdout.splitlines()
                   if line.startswith("Acquire::http::Proxy::"))
    assert proxies == {f"Acquire::http::Proxy::{name}": f'"{cache}";' for name in mirror_hosts}, proxies
    host.sh("apt-get install -y -q --no-install-recommends cowsay")
    assert list(labctl.APT_CACHE_DIR.rglob("cowsay_*.deb")), "cowsay did not pass through the cache"
    # the cache serves the machine's Debian repositories and nothing else: it is no open proxy
    probe = ("import urllib.request as u, urllib.error as e\n"
             "try:\n"
             f"    u.build_opener(u.ProxyHandler({{'http': '{cache}'}})).open('http://example.org/')\n"
             "    print('served')\n"
             "except e.HTTPError as error:\n"
             "    print(error.code)\n")
    assert host.sh("python3", input_text=probe).stdout.strip() == "403"


def test_lab_bridge_keeps_its_address_while_hosts_come_and_go(lab):
    # A host remembers the gateway's MAC address; had the bridge taken a leaving port's address
    # as its own, the host's connections to the package cache would time out.
    a = lab.host()  # first, so that the network and its bridge exist on a new machine too
    state = labctl.network_state(labctl.load_spec()["network"])
    device = labctl.Path("/sys/class/net") / state["network_interface"]
    address = (device / "address").read_text().strip()
    assert (device / "addr_assign_type").read_text().strip() == labctl.NET_ADDR_SET
    b, c = lab.host(), lab.host()
    labctl.remove_hosts(b.name)
    assert (device / "address").read_text().strip() == address
    # removing hosts of which one is gone already still removes the others
    labctl.remove_hosts(b.name, c.name)
    assert labctl.container_state(c.name) is None
    gateway = state["subnets"][0]["gateway"]
    probe = ("import socket\n"
             f"socket.create_connection(('{gateway}', {labctl.APT_CACHE_PORT}), timeout=5).close()\n"
             f"print([line.split()[3] for line in open('/proc/net/arp') if line.startswith('{gateway} ')])\n")
    assert a.sh("python3", input_text=probe).stdout.strip() == repr([address])


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
        "- hosts: test_hosts\n  gather_facts: false\n  become: true\n  tasks:\n"
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
