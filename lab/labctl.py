"""Build and run the mo.fleet lab: real Debian hosts as podman containers running systemd.

    labctl.py image [--force]     build the cached base image from debootstrap (once)
    labctl.py cache               start the lab's package cache (apt-cacher-ng) unless it runs
    labctl.py up                  start the fleet from lab/hosts.yml, write lab/inventory.yml
    labctl.py down [--image]      remove every container and network the lab made
    labctl.py status              show the lab's containers
    labctl.py new NAME [-g GROUP] start one disposable host (tests use this through the API)
    labctl.py rm NAME...          remove disposable hosts

Every command is idempotent and says what it changed.  `down` stops the package cache
and keeps its files and the base image (and removes the image when asked, `down --image`).
"""

import argparse
import fcntl
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import yaml

LAB_DIR = Path(__file__).resolve().parent
STATE_DIR = LAB_DIR / ".state"
INVENTORY = LAB_DIR / "inventory.yml"
HOSTS_FILE = LAB_DIR / "hosts.yml"
CONTAINERS_CONF = LAB_DIR / "containers.conf"

SUITE = os.environ.get("MO_FLEET_LAB_SUITE", "bookworm")
BASE_IMAGE = f"localhost/mo-fleet-base:{SUITE}"
LABEL = "mo.fleet.lab"
BASE_PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "python3", "openssh-server",
    "iproute2", "procps", "ca-certificates",
]
SSH_KEY = STATE_DIR / "id_ed25519"


class LabError(Exception):
    pass


def podman_env():
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
    return env


def podman(*args, check=True, input_bytes=None, stdin=None):
    proc = subprocess.run(
        ["podman", *args], env=podman_env(), input=input_bytes, stdin=stdin,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
    )
    if check and proc.returncode != 0:
        raise LabError(f"podman {' '.join(args[:3])} failed: {proc.stderr.decode().strip()}")
    return proc


def say(msg):
    print(f"lab: {msg}", flush=True)


# ---------------------------------------------------------------- base image

def debian_mirror():
    """The Debian mirror this machine's apt uses, read at run time."""
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    if deb822.exists():
        for stanza in deb822.read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1) for line in stanza.splitlines()
                if ":" in line and not line.startswith("#")
            )
            uris = fields.get("URIs", "").split()
            suites = fields.get("Suites", "").split()
            if uris and any(not s.endswith("-security") for s in suites):
                return uris[0], deb822
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            m = re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m and not m.group(2).endswith("-security"):
                return m.group(1), legacy
    raise LabError("no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list")


def source_uris(sources):
    """Every repository URI in an apt sources file (one-line or deb822), in order, once."""
    text = Path(sources).read_text()
    uris = [u for line in re.findall(r"^\s*URIs:\s*(.+)$", text, re.M) for u in line.split()]
    uris += re.findall(r"^\s*deb(?:-src)?\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M)
    return list(dict.fromkeys(u.rstrip("/") for u in uris))


def source_hosts(sources):
    """The host names of every URI in an apt sources file."""
    return sorted({urlsplit(u).hostname for u in source_uris(sources) if urlsplit(u).hostname})


_PINNED = {}


def pinned_mirror_hosts(attempts=20, pause=3.0):
    """podman `--add-host` options giving each name in this machine's apt sources the IPv4
    address this machine resolves for it, looked up once per process.

    apt goes through the package cache (apt_cache_client_config); these addresses serve what
    a lab host fetches from the mirror itself, such as repo1's nginx proxying an external
    deployment, without a DNS lookup: on a loaded machine the resolver behind the lab went
    unanswered for a minute at a time. A name this machine cannot resolve either is left to
    the host's own resolver.
    """
    if "options" not in _PINNED:
        options = []
        for name in source_hosts(debian_mirror()[1]):
            address = None
            for attempt in range(attempts):
                try:
                    address = socket.getaddrinfo(name, 80, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
                    break
                except OSError:
                    time.sleep(pause if attempt + 1 < attempts else 0)
            if address:
                options += ["--add-host", f"{name}:{address}"]
            else:
                say(f"could not resolve {name}; lab hosts will ask their own resolver for it")
        _PINNED["options"] = options
    return _PINNED["options"]


# ---------------------------------------------------------------- package cache

APT_CACHE_PORT = 3143  # baked into the image (apt_cache_client_config)
APT_CACHE_DIR = Path(os.environ.get("MO_FLEET_APT_CACHE_DIR", "/var/cache/mo-fleet-lab/apt"))
APT_CACHE_RUN = Path("/run/mo-fleet-lab/apt-cache")
APT_CACHE_CLIENT_CONFIG = "/etc/apt/apt.conf.d/01mo-fleet-lab-cache"


def apt_cache_config(uris, cache_dir=APT_CACHE_DIR, run_dir=APT_CACHE_RUN, port=APT_CACHE_PORT):
    """apt-cacher-ng's configuration: a cache of URIS (the machine's Debian repositories) and
    of nothing else (ForceManaged), so it is no open proxy."""
    lines = [f"CacheDir: {cache_dir}", f"LogDir: {cache_dir}.log", "SupportDir: /usr/lib/apt-cacher-ng",
             f"Port: {port}", f"PidFile: {run_dir}/pid", f"SocketPath: {run_dir}/socket",
             "ForceManaged: 1", "ExThreshold: 4"]
    lines += [f"Remap-mofleet{i}: {uri} ; {uri}" for i, uri in enumerate(uris)]
    return "\n".join(lines) + "\n"


def apt_cache_answers(port=APT_CACHE_PORT):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def ensure_apt_cache():
    """Start the lab's package cache (apt-cacher-ng on this machine) unless it runs; return
    True if it was started.

    Lab hosts fetch Debian packages through it (apt_cache_client_config), so a package that
    many tests install crosses the network once: this machine's way out throttles new
    connections and its resolver fails under many parallel lookups, which made apt in lab
    hosts fail now and then.
    """
    STATE_DIR.mkdir(exist_ok=True)
    with open(STATE_DIR / "apt-cache.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers start it once
        if apt_cache_answers():
            return False
        if shutil.which("apt-cacher-ng") is None:
            raise LabError("apt-cacher-ng is not installed: run `make setup` (lab/install-host-deps.sh) first")
        APT_CACHE_RUN.mkdir(parents=True, exist_ok=True)
        for directory in (APT_CACHE_DIR, Path(f"{APT_CACHE_DIR}.log")):
            directory.mkdir(parents=True, exist_ok=True)
        config = apt_cache_config(source_uris(debian_mirror()[1]))
        (APT_CACHE_RUN / "acng.conf").write_text(config)
        run(["apt-cacher-ng", "-c", str(APT_CACHE_RUN), "ForeGround=0"])
        deadline = time.monotonic() + 15
        while not apt_cache_answers():
            if time.monotonic() > deadline:
                raise LabError(f"apt-cacher-ng did not answer on port {APT_CACHE_PORT}; "
                               f"see {APT_CACHE_DIR}.log/apt-cacher.err")
            time.sleep(0.2)
    say(f"started the package cache on port {APT_CACHE_PORT} ({APT_CACHE_DIR})")
    return True


def stop_apt_cache():
    pid_file = APT_CACHE_RUN / "pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().strip()), 15)
    except (ValueError, ProcessLookupError):
        pass
    pid_file.unlink(missing_ok=True)
    say("stopped the package cache (its files stay in " + str(APT_CACHE_DIR) + ")")
    return True


def apt_cache_client_config(hosts, port=APT_CACHE_PORT):
    """The image's apt configuration: the Debian mirror's HOSTS through the lab's package cache
    on the controller, every other host (repo1, a test's repository) directly.

    No fallback to the mirror itself: that is the very path that failed under load. labctl
    starts the cache before it starts any host.
    """
    return "".join(f'Acquire::http::Proxy::{host} "http://host.containers.internal:{port}";\n'
                   for host in hosts)


# Raise when the image's content changes: an image built by an older recipe is rebuilt.
IMAGE_REVISION = "3"


def image_exists(image=BASE_IMAGE, revision=IMAGE_REVISION):
    """Whether IMAGE exists, built by this recipe (any recipe when REVISION is None)."""
    proc = podman("image", "inspect", "--format", "{{ index .Labels \"mo.fleet.lab.revision\" }}", image, check=False)
    if proc.returncode != 0:
        return False
    return revision is None or proc.stdout.decode().strip() == revision


def build_image(force=False):
    STATE_DIR.mkdir(exist_ok=True)
    with open(STATE_DIR / "image.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers build it once
        return _build_image(force)


def _build_image(force):
    if image_exists() and not force:
        say(f"base image {BASE_IMAGE} is cached, nothing to build")
        return False
    if image_exists(revision=None):
        say(f"base image {BASE_IMAGE} was built by an older recipe: building it again")
    mirror, sources = debian_mirror()
    say(f"building {BASE_IMAGE} with debootstrap from {mirror} (about a minute)")
    work = Path(tempfile.mkdtemp(prefix="mo-fleet-rootfs-", dir="/var/tmp"))
    try:
        rootfs = work / "rootfs"
        run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
             SUITE, str(rootfs), mirror])
        prepare_rootfs(rootfs, sources)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."],
                               stdout=subprocess.PIPE)
        podman("import", "--change", 'CMD ["/sbin/init"]', "--change", "STOPSIGNAL=SIGRTMIN+3",
               "--change", f"LABEL mo.fleet.lab.revision={IMAGE_REVISION}", "-", BASE_IMAGE, stdin=tar.stdout)
        if tar.wait() != 0:
            raise LabError("tar of the debootstrap root failed")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"built {BASE_IMAGE}")
    return True


def prepare_rootfs(rootfs, sources):
    """Make the debootstrapped tree a good container image: the machine's apt sources,
    fresh package lists, no shared SSH host keys, sshd off until a host asks for it."""
    apt_dir = rootfs / "etc/apt"
    if sources.name == "debian.sources":
        (apt_dir / "sources.list").unlink(missing_ok=True)
        shutil.copy(sources, apt_dir / "sources.list.d/debian.sources")
    else:
        shutil.copy(sources, apt_dir / "sources.list")
    shutil.copy("/etc/resolv.conf", rootfs / "etc/resolv.conf")
    run(["chroot", str(rootfs), "apt-get", "update", "-qq"])
    run(["chroot", str(rootfs), "apt-get", "clean"])
    for key in (rootfs / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    for link in (rootfs / "etc/systemd/system").rglob("ssh.service"):
        link.unlink()
    (rootfs / "etc/systemd/system/multi-user.target.wants/ssh.service").unlink(missing_ok=True)
    (rootfs / "etc/hostname").write_text("")
    (rootfs / "etc/resolv.conf").unlink()
    (rootfs / APT_CACHE_CLIENT_CONFIG.lstrip("/")).write_text(apt_cache_client_config(source_hosts(sources)))


def run(cmd):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise LabError(f"{' '.join(cmd[:3])} failed:\n{proc.stdout.decode()[-2000:]}")
    return proc


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


def start_host(name, network, kind="fleet", extra_args=()):
    """Make sure container NAME runs systemd from the base image; return True if it changed."""
    state = container_state(name)
    changed = False
    if state is None:
        podman("run", "-d", "--name", name, "--hostname", name, "--network", network,
               *pinned_mirror_hosts(), "--systemd=always", *labels(kind, network), *extra_args,
               BASE_IMAGE, "/sbin/init")
        pin_bridge_address(network)
        changed = True
        say(f"started {name}")
    elif not state["State"]["Running"]:
        podman("start", name)
        changed = True
        say(f"restarted {name}")
    wait_for_systemd(name)
    return changed


def wait_for_systemd(name, timeout=90):
    deadline = time.monotonic() + timeout
    while True:
        proc = podman("exec", name, "systemctl", "is-system-running", check=False)
        state = proc.stdout.decode().strip()
        if state in ("running", "degraded"):
            return state
        if time.monotonic() > deadline:
            raise LabError(f"{name}: systemd did not finish booting in {timeout}s (state {state!r})")
        time.sleep(0.3)


def ensure_ssh(name):
    """Turn on sshd in NAME with its own host keys and the lab's key authorised."""
    STATE_DIR.mkdir(exist_ok=True)
    with open(STATE_DIR / "ssh-key.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers make the key once
        if not SSH_KEY.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mo-fleet-lab", "-f", str(SSH_KEY)])
    pub = SSH_KEY.with_suffix(".pub").read_text()
    current = podman("exec", name, "cat", "/root/.ssh/authorized_keys", check=False).stdout.decode()
    active = podman("exec", name, "systemctl", "is-active", "ssh", check=False).stdout.decode().strip()
    if current == pub and active == "active":
        return False
    script = (
        "set -e; ssh-keygen -A >/dev/null; install -d -m 700 /root/.ssh; "
        "cat > /root/.ssh/authorized_keys; chmod 600 /root/.ssh/authorized_keys; "
        "systemctl enable --now ssh >/dev/null 2>&1"
    )
    podman("exec", "-i", name, "sh", "-c", script, input_bytes=pub.encode())
    say(f"enabled sshd on {name}")
    return True


def host_ip(name, network):
    state = container_state(name)
    return state["NetworkSettings"]["Networks"][network]["IPAddress"]


def ssh_hostvars(name, network):
    """Inventory variables that reach NAME over SSH with the lab key (after ensure_ssh)."""
    return {
        "ansible_host": host_ip(name, network),
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(SSH_KEY),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
    }


def inventory(spec):
    network = spec["network"]
    ssh_hosts = set(spec.get("ssh_hosts", []))
    groups = {}
    for host, host_groups in spec["hosts"].items():
        for group in host_groups:
            groups.setdefault(group, {"hosts": {}})["hosts"][host] = None
    podman_hosts = {h: {"ansible_host": h} for h in spec["hosts"] if h not in ssh_hosts}
    ssh = {h: ssh_hostvars(h, network) for h in sorted(ssh_hosts)}
    children = {
        "lab_podman": {"hosts": podman_hosts, "vars": {"ansible_connection": "containers.podman.podman"}},
        "lab_ssh": {"hosts": ssh, "vars": {"ansible_connection": "ansible.builtin.ssh"}},
    }
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
    changes = int(build_image())
    changes += ensure_apt_cache()
    changes += ensure_network(spec["network"])
    for host in spec["hosts"]:
        changes += start_host(host, spec["network"])
    changes += bool(link_hosts(list(spec["hosts"]), spec["network"]))
    for host in spec.get("ssh_hosts", []):
        changes += ensure_ssh(host)
    text = "# Written by `make lab` (lab/labctl.py up); do not edit.\n" + yaml.safe_dump(
        inventory(spec), sort_keys=False, default_flow_style=False)
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
    if remove_image and image_exists(revision=None):
        podman("rmi", BASE_IMAGE)
        removed += 1
        say(f"removed image {BASE_IMAGE}")
    elif image_exists(revision=None):
        say(f"kept the cached base image {BASE_IMAGE}; `make lab-down-all` removes it too")
    say(f"{removed} object(s) removed")


def status():
    proc = podman("ps", "-a", "--filter", f"label={LABEL}",
                  "--format", "{{.Names}}\t{{.Status}}\t{{.Labels}}")
    print(proc.stdout.decode() or "lab: no lab containers")


# ---------------------------------------------------------------- disposable hosts (tests)

def new_host(name, network=None, privileged=False, rootfs=False):
    """Start a fresh disposable host; return its inventory variables.

    rootfs=True gives the host a plain directory root (a copy of the base image under
    ROOTFS_DIR) instead of podman's overlay, and makes it privileged: that is where
    fanotify's FAN_MARK_FILESYSTEM works, as on a real machine.
    """
    network = network or load_spec()["network"]
    build_image()
    ensure_apt_cache()
    ensure_network(network)
    if container_state(name) is not None:
        raise LabError(f"a container named {name} exists already")
    extra = ["--privileged"] if privileged or rootfs else []
    if rootfs:
        root = copy_image_root(name)
        podman("run", "-d", "--name", name, "--hostname", name, "--network", network,
               *pinned_mirror_hosts(), "--systemd=always", *labels("test", network),
               "--label", f"{LABEL}.rootfs={root}",
               *extra, "--rootfs", str(root), "/sbin/init")
        pin_bridge_address(network)
        wait_for_systemd(name)
    else:
        start_host(name, network, kind="test", extra_args=extra)
    return {"ansible_host": name, "ansible_connection": "containers.podman.podman",
            "ansible_python_interpreter": "/usr/bin/python3"}


ROOTFS_DIR = Path("/var/tmp/mo-fleet-lab-roots")


def copy_image_root(name):
    """A private copy of the base image's files for one --rootfs host."""
    dest = ROOTFS_DIR / name
    ROOTFS_DIR.mkdir(parents=True, exist_ok=True)
    mounted = podman("image", "mount", BASE_IMAGE).stdout.decode().strip()
    try:
        run(["cp", "-a", "--reflink=auto", f"{mounted}/.", str(dest)])
    finally:
        podman("image", "unmount", BASE_IMAGE, check=False)
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
    p = sub.add_parser("rm")
    p.add_argument("names", nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "image":
            build_image(force=args.force)
        elif args.cmd == "up":
            up(args.hosts, args.inventory)
        elif args.cmd == "down":
            down(remove_image=args.image, spec_path=args.hosts, inventory_path=args.inventory)
        elif args.cmd == "status":
            status()
        elif args.cmd == "cache":
            ensure_apt_cache() or say(f"the package cache answers on port {APT_CACHE_PORT}")
        elif args.cmd == "new":
            print(json.dumps(new_host(args.name)))
        elif args.cmd == "rm":
            remove_hosts(*args.names)
    except LabError as exc:
        print(f"lab: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
