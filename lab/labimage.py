"""The lab's images and package cache: what every lab host is made from.

labctl.py (hosts, networks, the command line) imports these; see docs/lab.md.

Two images per Debian suite (bookworm, trixie):

- the base image, localhost/mo-fleet-base:SUITE: debootstrap --variant=minbase from this
  machine's own mirror, apt pointed at SUITE through the lab's package cache (molecule and the
  Dockerfile renderer start from it);
- the host image, localhost/mo-fleet-lab:SUITE: the base image with sudo and the login user
  LOGIN_USER (passwordless sudo) and sshd making its own host keys on first boot: lab hosts
  are reached the way fleets are, over SSH as an ordinary user escalating with become.
"""

import fcntl
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

LAB_DIR = Path(__file__).resolve().parent
STATE_DIR = LAB_DIR / ".state"
CONTAINERS_CONF = LAB_DIR / "containers.conf"
LABEL = "mo.fleet.lab"
SUITES = ("bookworm", "trixie")
SUITE = os.environ.get("MO_FLEET_LAB_SUITE", "bookworm")
LOGIN_USER = "mo"
BASE_PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "python3", "openssh-server",
    "iproute2", "procps", "ca-certificates",
]
# machine-wide, one per suite: every checkout on this machine builds the same image names
IMAGE_LOCK = "/run/lock/mo-fleet-lab-image-{suite}.lock"


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


def run(cmd):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise LabError(f"{' '.join(cmd[:3])} failed:\n{proc.stdout.decode()[-2000:]}")
    return proc


# ---------------------------------------------------------------- mirror

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


# Raise when an image's content changes: an image built by an older recipe is rebuilt.
IMAGE_REVISION = "3"        # the base image (label mo.fleet.lab.revision)
HOST_IMAGE_REVISION = "2"   # the host image (label mo.fleet.lab.host-revision and its tag)


def base_image(suite=SUITE):
    return f"localhost/mo-fleet-base:{suite}"


def host_image(suite=SUITE):
    """SUITE's host image, its tag naming the recipe's revision: checkouts of other revisions
    on one machine keep their own image instead of building each other's over and over."""
    return f"localhost/mo-fleet-lab:{suite}-r{HOST_IMAGE_REVISION}"


BASE_IMAGE = base_image()
HOST_IMAGE = host_image()


def image_exists(image=BASE_IMAGE, revision=IMAGE_REVISION, label="mo.fleet.lab.revision"):
    """Whether IMAGE exists, built by this recipe (any recipe when REVISION is None)."""
    proc = podman("image", "inspect", "--format", f"{{{{ index .Labels \"{label}\" }}}}", image, check=False)
    if proc.returncode != 0:
        return False
    return revision is None or proc.stdout.decode().strip() == revision


def check_suite(suite):
    if suite not in SUITES:
        raise LabError(f"suite {suite!r} is not one the lab builds ({', '.join(SUITES)})")
    return suite


def build_image(force=False, suite=SUITE):
    """Build SUITE's base and host images unless cached; return True if anything was built."""
    check_suite(suite)
    lock_path = Path(IMAGE_LOCK.format(suite=suite))
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers build it once
        built = _build_base_image(force, suite)
        return _build_host_image(force or built, suite) or built


def _build_base_image(force, suite):
    image = base_image(suite)
    if image_exists(image) and not force:
        return False
    if image_exists(image, revision=None):
        say(f"base image {image} was built by an older recipe: building it again")
    mirror, sources = debian_mirror()
    say(f"building {image} with debootstrap from {mirror} (about a minute)")
    work = Path(tempfile.mkdtemp(prefix="mo-fleet-rootfs-", dir="/var/tmp"))
    try:
        rootfs = work / "rootfs"
        run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
             suite, str(rootfs), mirror])
        prepare_rootfs(rootfs, sources, suite)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."],
                               stdout=subprocess.PIPE)
        podman("import", "--change", 'CMD ["/sbin/init"]', "--change", "STOPSIGNAL=SIGRTMIN+3",
               "--change", f"LABEL mo.fleet.lab.revision={IMAGE_REVISION}", "-", image, stdin=tar.stdout)
        if tar.wait() != 0:
            raise LabError("tar of the debootstrap root failed")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say(f"built {image}")
    return True


def host_codename():
    """This machine's Debian codename (VERSION_CODENAME in /etc/os-release)."""
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    raise LabError("/etc/os-release names no VERSION_CODENAME")


def suite_sources(text, suite, codename):
    """TEXT, an apt sources file of this machine (suite CODENAME), naming SUITE instead:
    bookworm, bookworm-updates and bookworm-security become trixie, trixie-updates, ..."""
    def swap(match):
        return re.sub(rf"\b{re.escape(codename)}\b", suite, match.group(0))
    return re.sub(r"(?m)^(\s*Suites:.*|\s*deb(?:-src)?\s.*)$", swap, text)


def prepare_rootfs(rootfs, sources, suite=SUITE):
    """Make the debootstrapped tree a good container image: the machine's apt sources (naming
    SUITE), fresh package lists, no shared SSH host keys, sshd off until a host asks for it."""
    apt_dir = rootfs / "etc/apt"
    text = suite_sources(Path(sources).read_text(), suite, host_codename())
    if sources.name == "debian.sources":
        (apt_dir / "sources.list").unlink(missing_ok=True)
        (apt_dir / "sources.list.d/debian.sources").write_text(text)
    else:
        (apt_dir / "sources.list").write_text(text)
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


# What every lab host has beyond the base image: sudo for the login user; python3-apt, which
# the apt module and mo.fleet.target need on every target; make, which the capture and
# round-trip tests run (before, each of those hosts installed them itself, seconds of apt each).
HOST_PACKAGES = ["sudo", "python3-apt", "make"]
# Timers of the base packages that no test starts: apt's daily update and upgrade reach the
# mirror, and dpkg's database backup, fstrim and e2scrub write or scan at midnight or on
# Mondays, in the middle of whatever capture runs then.
MASKED_TIMERS = ["apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer",
                 "e2scrub_all.timer", "fstrim.timer"]

# Run in a container of the base image, through the package cache; USER is LOGIN_USER,
# PACKAGES is HOST_PACKAGES, TIMERS is MASKED_TIMERS.
# sshd has one host key, ed25519, made by each host on its first boot (none are shared):
# `ssh-keygen -A` also made RSA 3072 and ECDSA keys, and the RSA key alone took 1-15 s of CPU
# on every boot. `apt-cache gencaches` after `apt-get clean` keeps apt's binary caches in the
# image, so a host's first apt command does not build them (about a second of CPU each).
HOST_IMAGE_SCRIPT = r"""set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
apt-get clean
apt-cache gencaches >/dev/null
useradd --create-home --shell /bin/bash "$USER"
printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$USER" > /etc/sudoers.d/mo-fleet-lab
chmod 0440 /etc/sudoers.d/mo-fleet-lab
visudo -cq
install -d /etc/systemd/system/ssh.service.d /etc/ssh/sshd_config.d
cat > /etc/systemd/system/ssh.service.d/mo-fleet-lab-host-keys.conf <<'EOF'
[Service]
ExecStartPre=
ExecStartPre=/bin/sh -c 'test -s /etc/ssh/ssh_host_ed25519_key || exec ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key'
ExecStartPre=/usr/sbin/sshd -t
EOF
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\n' > /etc/ssh/sshd_config.d/mo-fleet-lab-host-key.conf
systemctl enable ssh >/dev/null 2>&1
systemctl mask $TIMERS >/dev/null 2>&1
"""


def _build_host_image(force, suite, network="podman"):
    """The host image of SUITE from its base image: sudo, LOGIN_USER with passwordless sudo,
    sshd on with host keys made by each host on its first boot (none are shared)."""
    image = host_image(suite)
    if image_exists(image, HOST_IMAGE_REVISION, "mo.fleet.lab.host-revision") and not force:
        return False
    ensure_apt_cache()
    builder = f"mo-fleet-build-{suite}-{os.getpid()}"
    say(f"building {image} from {base_image(suite)}: sudo and the login user {LOGIN_USER}")
    try:
        podman("run", "--name", builder, "--network", network, "-e", f"USER={LOGIN_USER}",
               "-e", f"PACKAGES={' '.join(HOST_PACKAGES)}", "-e", f"TIMERS={' '.join(MASKED_TIMERS)}",
               base_image(suite), "sh", "-c", HOST_IMAGE_SCRIPT)
        podman("commit", "-q", "--change", 'CMD ["/sbin/init"]',
               "--change", f"LABEL mo.fleet.lab.host-revision={HOST_IMAGE_REVISION}", builder, image)
    finally:
        podman("rm", "-f", "--ignore", builder, check=False)
    say(f"built {image}")
    return True
