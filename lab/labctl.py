"""Build and run the mo.fleet lab: real Debian hosts as podman containers running systemd.

    labctl.py image [--force] [--suite S]  build the cached base and host images (once per suite)
    labctl.py cache               start the lab's package cache (apt-cacher-ng) unless it runs
    labctl.py up                  start the fleet from lab/hosts.yml, write lab/inventory.yml
    labctl.py down [--image]      remove every container and network the lab made
    labctl.py status              show the lab's containers
    labctl.py new NAME [--suite S] [--connection ssh|root|podman]
                                  start one disposable host (tests use this through the API)
    labctl.py rm NAME...          remove disposable hosts

Every command is idempotent and says what it changed.  `down` stops the package cache
and keeps its files and the base image (and removes the image when asked, `down --image`).
"""

import argparse
import fcntl
import json
import shutil
import socket  # noqa: F401  (tests reach the resolver through labctl)
import sys
import time
from pathlib import Path

import yaml

from labimage import (  # noqa: F401  (the lab's one namespace for tests and the command line)
    APT_CACHE_DIR, APT_CACHE_PORT, BASE_IMAGE, CONTAINERS_CONF, HOST_IMAGE, HOST_PACKAGES, IMAGE_REVISION, LAB_DIR,
    LABEL, LOGIN_USER, STATE_DIR, SUITE, SUITES, LabError, apt_cache_client_config, apt_cache_config,
    base_image, build_image, check_suite, debian_mirror, ensure_apt_cache, host_image, image_exists,
    pinned_mirror_hosts, podman, podman_env, run, say, source_hosts, source_uris, stop_apt_cache,
)

INVENTORY = LAB_DIR / "inventory.yml"
HOSTS_FILE = LAB_DIR / "hosts.yml"
SSH_KEY = STATE_DIR / "id_ed25519"
# How Ansible reaches a host: "ssh" as LOGIN_USER escalating with sudo (the way fleets are
# reached, and the default), "root" over SSH as root, "podman" through containers.podman.podman.
CONNECTIONS = ("ssh", "root", "podman")


# ---------------------------------------------------------------- hosts

def load_spec(path=HOSTS_FILE):
    return yaml.safe_load(Path(path).read_text())


NETWORK_LOCK = Path("/run/lock/mo-fleet-lab-network.lock")


def network_state(name):
    """`podman network inspect NAME` as a dict, or None when there is no such network."""
    proc = podman("network", "inspect", name, check=False)
    return json.loads(proc.stdout)[0] if proc.returncode == 0 else None


def ensure_network(name):
    """Create the lab network without podman's DNS server; return True if it changed.

    Lab names come from each host's /etc/hosts (link_hosts) and every other name from the
    machine's own resolver. aardvark-dns, podman's DNS server, drops queries while it reloads,
    which it does each time a container joins or leaves the network: under parallel tests a
    host then failed to resolve its repository server.
    """
    NETWORK_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(NETWORK_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers create it once
        state = network_state(name)
        if state is not None:
            if not state.get("dns_enabled"):
                return False
            attached = podman("container", "ls", "-a", "--filter", f"network={name}",
                              "--format", "{{.Names}}").stdout.decode().split()
            if attached:
                raise LabError(f"network {name} was made with podman's DNS server by an older lab and "
                               f"still has containers ({' '.join(attached)}): run `make lab-down` first")
            podman("network", "rm", name)
        podman("network", "create", "--disable-dns", "--label", f"{LABEL}=network", name)
    say(f"created network {name}")
    return True


NET_ADDR_SET = "3"  # /sys/class/net/*/addr_assign_type of an address set by hand


def pin_bridge_address(network):
    """Keep the NETWORK bridge's MAC address at the one it has now; return True if it changed.

    A Linux bridge whose address was never set takes the lowest address of its ports, so it
    changes as hosts come and go. A host keeps the gateway's old address in its ARP cache, and
    once the port that owned that address is gone, its connections to the controller (the
    package cache) time out for a minute or more: apt failed in a host now and then. An
    address set by hand stays, whatever joins or leaves. Called after every host starts, as
    netavark makes the bridge anew when the network has had no host.
    """
    interface = network_state(network)["network_interface"]
    device = Path("/sys/class/net") / interface
    with open(NETWORK_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (device / "addr_assign_type").read_text().strip() == NET_ADDR_SET:
            return False
        run(["ip", "link", "set", "dev", interface, "address", (device / "address").read_text().strip()])
    return True


def hosts_file_text(text, name, ips):
    """TEXT, the hosts file of NAME, with one line for every other host in IPS ({name: ip})."""
    others = set(ips) - {name}
    kept = [line for line in text.splitlines() if not set(line.split()[1:]) & others]
    return "".join(line + "\n" for line in kept) + "".join(
        f"{ip}\t{other}\n" for other, ip in sorted(ips.items()) if other in others)


def link_hosts(names, network=None):
    """Give each of NAMES an /etc/hosts line for every other one; return how many files changed.

    The file is podman's per-container hosts file, bind-mounted into the host: it is rewritten
    in place (a rename would leave the container on the old file).
    """
    network = network or load_spec()["network"]
    ips = {name: host_ip(name, network) for name in names}
    changed = 0
    for name in names:
        path = Path(container_state(name)["HostsPath"])
        text = path.read_text()
        wanted = hosts_file_text(text, name, ips)
        if wanted != text:
            with open(path, "r+") as f:
                f.write(wanted)
                f.truncate()
            changed += 1
    return changed


def container_state(name):
    proc = podman("container", "inspect", name, check=False)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout)[0]


def labels(kind, network):
    return ["--label", f"{LABEL}={kind}", "--label", f"{LABEL}.network={network}"]


def start_host(name, network, kind="fleet", extra_args=(), suite=SUITE):
    """Make sure container NAME runs systemd from SUITE's host image; return True if it changed."""
    state = container_state(name)
    changed = False
    if state is None:
        podman("run", "-d", "--name", name, "--hostname", name, "--network", network,
               *pinned_mirror_hosts(), "--systemd=always", *labels(kind, network), *extra_args,
               host_image(suite), "/sbin/init")
        pin_bridge_address(network)
        changed = True
        say(f"started {name}")
    elif not state["State"]["Running"]:
        podman("start", name)
        changed = True
        say(f"restarted {name}")
    wait_for_systemd(name)
    return changed


# A host boots in 2-10 s; under a load average of 40 (five suites on two cores) a host of the
# r1 image was still "starting" after 90 s and failed its test. A slow boot is waited for,
# a hung one still ends in a LabError.
BOOT_TIMEOUT = 300


def wait_for_systemd(name, timeout=BOOT_TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        proc = podman("exec", name, "systemctl", "is-system-running", check=False)
        state = proc.stdout.decode().strip()
        if state in ("running", "degraded"):
            return state
        if time.monotonic() > deadline:
            raise LabError(f"{name}: systemd did not finish booting in {timeout}s (state {state!r})")
        time.sleep(0.3)


def lab_key():
    """The lab's SSH key (lab/.state/id_ed25519), made once; return its public half."""
    STATE_DIR.mkdir(exist_ok=True)
    with open(STATE_DIR / "ssh-key.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers make the key once
        if not SSH_KEY.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mo-fleet-lab", "-f", str(SSH_KEY)])
    return SSH_KEY.with_suffix(".pub").read_text()


# $1: the login user; stdin: the key. Prints "changed" when it changed anything.
AUTHORIZE_SCRIPT = r"""set -e
key=$(cat); home=$(getent passwd "$1" | cut -d: -f6)
if [ "$(cat "$home/.ssh/authorized_keys" 2>/dev/null)" = "$key" ] && systemctl is-active -q ssh; then exit 0; fi
install -d -m 700 -o "$1" -g "$1" "$home/.ssh"
printf '%s\n' "$key" > "$home/.ssh/authorized_keys"
chown "$1:" "$home/.ssh/authorized_keys"; chmod 600 "$home/.ssh/authorized_keys"
systemctl is-active -q ssh || { ssh-keygen -A >/dev/null; systemctl enable --now ssh >/dev/null 2>&1; }
echo changed
"""


def ensure_ssh(name, user="root"):
    """sshd on in NAME (host keys of its own) and the lab's key authorised for USER; return
    True if it changed. One podman exec."""
    pub = lab_key().strip()
    proc = podman("exec", "-i", name, "sh", "-c", AUTHORIZE_SCRIPT, "authorize", user, input_bytes=pub.encode())
    changed = proc.stdout.decode().strip() == "changed"
    if changed:
        say(f"authorised the lab key for {user} on {name}")
    return changed


def host_ip(name, network):
    state = container_state(name)
    return state["NetworkSettings"]["Networks"][network]["IPAddress"]


CONTROL_DIR = Path.home() / ".ansible" / "cp"


def ssh_hostvars(name, network, user="root"):
    """Inventory variables that reach NAME over SSH as USER with the lab key (after ensure_ssh).

    SSH multiplexes a host's connections (ControlPersist, ansible.cfg); the control socket is
    named after the container as well, as a later host may get a removed one's address.
    """
    CONTROL_DIR.mkdir(parents=True, exist_ok=True)
    return {
        "ansible_connection": "ansible.builtin.ssh",
        "ansible_host": host_ip(name, network),
        "ansible_user": user,
        "ansible_ssh_private_key_file": str(SSH_KEY),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                                   f"-o ControlPath={CONTROL_DIR}/{name}-%C",
    }


def connect(name, network, connection="ssh"):
    """Make NAME reachable the CONNECTION way (CONNECTIONS); return (its inventory variables,
    whether anything changed)."""
    if connection not in CONNECTIONS:
        raise LabError(f"connection {connection!r} is none of {', '.join(CONNECTIONS)}")
    hostvars = {"ansible_python_interpreter": "/usr/bin/python3"}
    if connection == "podman":
        return dict(hostvars, ansible_host=name, ansible_connection="containers.podman.podman"), False
    user = LOGIN_USER if connection == "ssh" else "root"
    changed = ensure_ssh(name, user)
    return dict(hostvars, **ssh_hostvars(name, network, user)), changed


def host_settings(spec, host):
    """(suite, connection) of HOST in a lab spec: `suites` and `connections` map host names
    to a suite and a connection; bookworm and ssh (the login user with sudo) by default."""
    suite = (spec.get("suites") or {}).get(host, SUITE)
    connection = (spec.get("connections") or {}).get(host, "ssh")
    if connection not in CONNECTIONS:
        raise LabError(f"{host}: connection {connection!r} is none of {', '.join(CONNECTIONS)}")
    return check_suite(suite), connection


def inventory(spec, hostvars):
    """The inventory of a lab spec, with each host's variables (HOSTVARS, from connect)."""
    groups = {}
    for host, host_groups in spec["hosts"].items():
        for group in host_groups:
            groups.setdefault(group, {"hosts": {}})["hosts"][host] = None
    by_way = {"ssh": "lab_ssh", "root": "lab_root_ssh", "podman": "lab_podman"}
    children = {group: {"hosts": {}} for group in by_way.values()}
    for host in spec["hosts"]:
        _suite, connection = host_settings(spec, host)
        children[by_way[connection]]["hosts"][host] = {k: v for k, v in hostvars[host].items()
                                                       if k != "ansible_python_interpreter"}
    children.update(dict(sorted(groups.items())))
    return {"all": {"vars": {"ansible_python_interpreter": "/usr/bin/python3"}, "children": children}}


def write_if_changed(path, text):
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True


def up(spec_path=HOSTS_FILE, inventory_path=INVENTORY):
    spec = load_spec(spec_path)
    inventory_path = Path(inventory_path)
    settings = {host: host_settings(spec, host) for host in spec["hosts"]}
    changes = 0
    for suite in sorted({suite for suite, _ in settings.values()}):
        changes += build_image(suite=suite)
    changes += ensure_apt_cache()
    changes += ensure_network(spec["network"])
    for host, (suite, _connection) in settings.items():
        changes += start_host(host, spec["network"], suite=suite)
    changes += bool(link_hosts(list(spec["hosts"]), spec["network"]))
    hostvars = {}
    for host, (_suite, connection) in settings.items():
        hostvars[host], changed = connect(host, spec["network"], connection)
        changes += changed
    text = "# Written by `make lab` (lab/labctl.py up); do not edit.\n" + yaml.safe_dump(
        inventory(spec, hostvars), sort_keys=False, default_flow_style=False)
    if write_if_changed(inventory_path, text):
        changes += 1
        say(f"wrote {inventory_path}")
    say(f"{len(spec['hosts'])} hosts up, {changes} change(s)")
    return changes


def lab_containers(network=None):
    label = f"{LABEL}.network={network}" if network else LABEL
    proc = podman("container", "ls", "-a", "--filter", f"label={label}", "--format", "{{.Names}}")
    return proc.stdout.decode().split()


def lab_networks():
    proc = podman("network", "ls", "--filter", f"label={LABEL}", "--format", "{{.Name}}")
    return proc.stdout.decode().split()


def down(remove_image=False, spec_path=None, inventory_path=INVENTORY):
    """Remove what the lab made: everything, or with SPEC_PATH only that spec's network."""
    network = load_spec(spec_path)["network"] if spec_path else None
    removed = 0
    names = lab_containers(network)
    if names:
        remove_hosts(*names)
        removed += len(names)
        say(f"removed containers: {' '.join(names)}")
    for net in lab_networks():
        if network in (None, net):
            podman("network", "rm", "-f", net)
            removed += 1
            say(f"removed network {net}")
    if Path(inventory_path).exists():
        Path(inventory_path).unlink()
        removed += 1
    if spec_path is None:
        removed += stop_apt_cache()
    images = [image(suite) for suite in SUITES for image in (host_image, base_image)
              if image_exists(image(suite), revision=None)]
    images += [i for i in older_host_images() if i not in images]
    if remove_image and images:
        podman("rmi", *images)
        removed += len(images)
        say(f"removed images {' '.join(images)}")
    elif images:
        say(f"kept the cached images {' '.join(images)}; `make lab-down-all` removes them too")
    say(f"{removed} object(s) removed")


def older_host_images():
    """Host images of other recipe revisions (named SUITE-rN, or SUITE before revision 2)."""
    proc = podman("images", "--filter", "label=mo.fleet.lab.host-revision",
                  "--format", "{{.Repository}}:{{.Tag}}", check=False)
    return sorted({i for i in proc.stdout.decode().split() if i.startswith("localhost/mo-fleet-lab:")}
                  - {host_image(suite) for suite in SUITES})


def status():
    proc = podman("ps", "-a", "--filter", f"label={LABEL}",
                  "--format", "{{.Names}}\t{{.Status}}\t{{.Labels}}")
    print(proc.stdout.decode() or "lab: no lab containers")


# ---------------------------------------------------------------- disposable hosts (tests)

def new_host(name, network=None, privileged=False, rootfs=False, suite=SUITE, connection="ssh"):
    """Start a fresh disposable Debian SUITE host; return its inventory variables, which
    reach it the CONNECTION way (CONNECTIONS: by default over SSH as LOGIN_USER with sudo).

    rootfs=True gives the host a plain directory root (a copy of the host image under
    ROOTFS_DIR) instead of podman's overlay, and makes it privileged: that is where
    fanotify's FAN_MARK_FILESYSTEM works, as on a real machine.
    """
    network = network or load_spec()["network"]
    build_image(suite=check_suite(suite))
    ensure_apt_cache()
    ensure_network(network)
    if container_state(name) is not None:
        raise LabError(f"a container named {name} exists already")
    extra = ["--privileged"] if privileged or rootfs else []
    if rootfs:
        root = copy_image_root(name, suite)
        podman("run", "-d", "--name", name, "--hostname", name, "--network", network,
               *pinned_mirror_hosts(), "--systemd=always", *labels("test", network),
               "--label", f"{LABEL}.rootfs={root}",
               *extra, "--rootfs", str(root), "/sbin/init")
        pin_bridge_address(network)
        wait_for_systemd(name)
    else:
        start_host(name, network, kind="test", extra_args=extra, suite=suite)
    return connect(name, network, connection)[0]


ROOTFS_DIR = Path("/var/tmp/mo-fleet-lab-roots")


def copy_image_root(name, suite=SUITE):
    """A private copy of SUITE's host image files for one --rootfs host."""
    dest = ROOTFS_DIR / name
    ROOTFS_DIR.mkdir(parents=True, exist_ok=True)
    image = host_image(suite)
    mounted = podman("image", "mount", image).stdout.decode().strip()
    try:
        run(["cp", "-a", "--reflink=auto", f"{mounted}/.", str(dest)])
    finally:
        podman("image", "unmount", image, check=False)
    return dest


def remove_hosts(*names):
    """Remove disposable hosts and the private roots of --rootfs hosts."""
    roots = []
    for name in names:
        state = container_state(name)
        root = ((state or {}).get("Config", {}).get("Labels") or {}).get(f"{LABEL}.rootfs")
        if root and Path(root).parent == ROOTFS_DIR:
            roots.append(root)
    if names:
        # --ignore: without it, podman 4.3 removes none of NAMES when one is already gone
        podman("rm", "-f", "-t", "0", "--ignore", *names, check=False)
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("image")
    p.add_argument("--force", action="store_true")
    p.add_argument("--suite", action="append", choices=SUITES,
                   help=f"build this suite's images (repeatable; default {SUITE})")
    p = sub.add_parser("up")
    p.add_argument("--hosts", default=HOSTS_FILE, help="lab spec (default lab/hosts.yml)")
    p.add_argument("--inventory", default=INVENTORY, help="inventory to write (default lab/inventory.yml)")
    p = sub.add_parser("down")
    p.add_argument("--image", action="store_true", help="also remove the cached base image")
    p.add_argument("--hosts", default=None, help="remove only this spec's hosts and network")
    p.add_argument("--inventory", default=INVENTORY)
    sub.add_parser("status")
    sub.add_parser("cache")
    p = sub.add_parser("new")
    p.add_argument("name")
    p.add_argument("--suite", choices=SUITES, default=SUITE)
    p.add_argument("--connection", choices=CONNECTIONS, default="ssh")
    p = sub.add_parser("rm")
    p.add_argument("names", nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "image":
            for suite in args.suite or [SUITE]:
                build_image(force=args.force, suite=suite) or say(f"the images of {suite} are cached")
        elif args.cmd == "up":
            up(args.hosts, args.inventory)
        elif args.cmd == "down":
            down(remove_image=args.image, spec_path=args.hosts, inventory_path=args.inventory)
        elif args.cmd == "status":
            status()
        elif args.cmd == "cache":
            ensure_apt_cache() or say(f"the package cache answers on port {APT_CACHE_PORT}")
        elif args.cmd == "new":
            print(json.dumps(new_host(args.name, suite=args.suite, connection=args.connection)))
        elif args.cmd == "rm":
            remove_hosts(*args.names)
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
