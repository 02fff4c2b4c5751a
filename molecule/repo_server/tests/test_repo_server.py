"""The repository server role: nginx serving /pub/, the layout, a private signing key."""

import shlex

import pytest

PROJECT = "/var/lib/mo-fleet/repo/molecule"
GNUPG = "/var/lib/mo-fleet/gnupg/molecule"


def http_status(host, path):
    script = (
        "import sys, urllib.request, urllib.error\n"
        "try:\n"
        f"    print(urllib.request.urlopen('http://127.0.0.1{path}', timeout=5).status)\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code)\n"
    )
    return int(host.run(f"python3 -c {shlex.quote(script)}").stdout.strip())


def test_nginx_runs_and_is_enabled(host):
    nginx = host.service("nginx")
    assert nginx.is_running and nginx.is_enabled


def test_layout(host):
    for sub in ("stores", "repos"):
        assert host.file(f"{PROJECT}/{sub}").is_directory, sub
    assert host.file(f"{PROJECT}/archive-key.asc").contains("BEGIN PGP PUBLIC KEY BLOCK")


def test_signing_key_is_private(host):
    gnupg = host.file(GNUPG)
    assert gnupg.is_directory and gnupg.mode == 0o700 and gnupg.user == "root"
    secret = host.run(f"find {GNUPG} -type f -path '*private-keys*' -printf '%m\\n'").stdout.split()
    assert secret and set(secret) == {"600"}


def test_listing_and_public_key_are_served(host):
    assert http_status(host, "/pub/") == 200
    assert http_status(host, "/pub/molecule/archive-key.asc") == 200


@pytest.mark.parametrize("path", [
    "/pub/molecule/state/",
    "/pub/molecule/state/lock",
    "/pub/../gnupg/molecule/pubring.kbx",
    "/pub/molecule/.gnupg/",
    "/gnupg/molecule/",
])
def test_keys_and_state_are_not_served(host, path):
    assert http_status(host, path) in (403, 404)
