"""GNU hello 2.10 from its Debian source package, configured and built once for all tests.

Building needs build-essential (large) and a compile on shared cores, so it happens once per
base image: on a throwaway lab host (`apt-get source hello`, `./configure --prefix=/usr/local
&& make`, as demo/prepare-source.yml does), exported to the controller as a tarball under
/var/cache/mo-fleet-lab/debian-source/<base image id>/, beside the package cache: like the
images, it is made once per machine (a clean clone builds it again only when the base image
changed), not once per checkout. A file lock makes concurrent pytest-xdist workers (and
checkouts) wait for the one build instead of starting their own.

A test host then only needs `make` (in the lab image) and the unpacked tree (mtimes kept, so `make install`
finds everything up to date and compiles nothing; the test hosts have no compiler at all).
configure runs with --disable-dependency-tracking, as Debian's own package builds do: with
tracking on, .deps/*.Po name the build host's system headers (/usr/include/..., gcc's own
include dir) as prerequisites of every object, and on a host without them make would try
to recompile everything.
"""

import fcntl
import os
import subprocess
import uuid

from labhosts import Host, labctl

SOURCE = "hello"
VERSION = "2.10"
TREE = "/usr/local/src/hello-%s" % VERSION
CACHE = labctl.APT_CACHE_DIR.parent / "debian-source"

BUILD = r"""
set -e
sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources
export DEBIAN_FRONTEND=noninteractive
echo "Acquire::Retries \"5\";" > /etc/apt/apt.conf.d/80-retries
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends build-essential dpkg-dev >/dev/null
cd /usr/local/src
apt-get source -q hello >/dev/null 2>&1
test -f hello-2.10/configure
cd hello-2.10
./configure --prefix=/usr/local --disable-dependency-tracking >/dev/null
make >/dev/null 2>&1
test -x hello
"""


def _image_id():
    out = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", labctl.BASE_IMAGE],
                         capture_output=True, text=True, env=labctl.podman_env(), check=True)
    return out.stdout.strip()[:16]


def built_tree():
    """Path of a .tar.gz (on the controller) of /usr/local/src/hello-2.10, configured and built."""
    labctl.build_image()
    cache = CACHE / _image_id()
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / ("hello-%s-built.tar.gz" % VERSION)
    with open(cache / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not tarball.is_file():
            _build(tarball)
    return tarball


def _build(tarball):
    host = Host(name="mo-t-build-%s" % uuid.uuid4().hex[:8])
    labctl.new_host(host.name)
    try:
        host.sh(BUILD)
        tmp = tarball.with_name(tarball.name + ".%d.tmp" % os.getpid())
        with open(tmp, "wb") as out:
            subprocess.run(["podman", "exec", host.name, "tar", "-C", "/usr/local/src", "-czf", "-",
                            "hello-%s" % VERSION], stdout=out, env=labctl.podman_env(), check=True)
        os.replace(tmp, tarball)
    finally:
        labctl.remove_hosts(host.name)


def install_tree(host):
    """Put the built hello tree on HOST under /usr/local/src (mtimes kept); `make` is in the
    lab image (labimage.HOST_PACKAGES)."""
    tarball = built_tree()
    with open(tarball, "rb") as data:
        subprocess.run(["podman", "exec", "-i", host.name, "tar", "-C", "/usr/local/src", "-xzf", "-"],
                       stdin=data, env=labctl.podman_env(), check=True)
    return TREE
