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
