#!/usr/bin/env bash
# Install the Debian packages the controller needs for the lab, tests and demo.
# Idempotent: installs only what is missing, and runs `apt-get update` only then.
set -euo pipefail
packages=(
  podman runc crun netavark aardvark-dns iptables catatonit uidmap  # containers with systemd
  iproute2                                                 # the lab bridge's fixed address
  debootstrap                                              # the base image
  apt-cacher-ng                                             # the lab's package cache
  openssh-client                                           # the SSH path into the lab
  gnupg dpkg-dev apt-utils fakeroot lintian                # signing, indexes, .deb tooling
  zstd                                                     # reads zstd-compressed .debs
  python3-apt                                              # apt's own deb822 parser for the hostile-input tests
  strace rsync git make shellcheck                         # capture baseline, sanity tree
  chromium                                                 # status pages seen as a person would
  graphviz                                                 # docs/architecture.svg (tools/import_graph.py)
)
# Every lab host runs systemd, which takes inotify instances of this machine's (root's) budget:
# with about 40 hosts at once (parallel tests) the default 128 ran out, and hosts then hung
# in boot ("Failed to create inotify object: Too many open files").
sysctl_conf=/etc/sysctl.d/60-mo-fleet-lab.conf
sysctl_text=$'fs.inotify.max_user_instances = 8192\nfs.inotify.max_user_watches = 1048576\n'
if [ "$(cat "$sysctl_conf" 2>/dev/null)"$'\n' != "$sysctl_text" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "host-deps: $sysctl_conf is missing; run as root first" >&2
    exit 1
  fi
  printf '%s' "$sysctl_text" > "$sysctl_conf"
  sysctl -q -p "$sysctl_conf"
  echo "host-deps: raised the inotify limits ($sysctl_conf)"
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "host-deps: all ${#packages[@]} packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "host-deps: missing ${missing[*]}; run as root (or install them) first" >&2
  exit 1
fi
echo "host-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "host-deps: installed ${#missing[@]} package(s)"
