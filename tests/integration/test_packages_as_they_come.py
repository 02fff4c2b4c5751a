"""Packages as they come (issue 15): .debs built with dpkg-deb -Z{zstd,xz,gzip,none}, one with
an epoch uploaded under the file name dpkg-deb gave it, go through the real repository server
role, upload and publish, and a real apt client installs every one of them."""

import sys
from pathlib import Path

from labhosts import run_playbook
from test_repo_server import PROJECT, add_source, catalog, changed_tasks, clean_update, failed_msg, trust_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from debtools import build_deb, deb_members  # noqa: E402


def test_zstd_and_epoch_packages_upload_publish_and_install(lab, tmp_path):
    server = lab.host(groups=["repo_server"])
    client = lab.host(groups=["clients"])
    debs = {}
    for kind, name, version in [("zstd", "mo-zst", "1:2.0-1"), ("xz", "mo-xz", "1.0-1"),
                                ("gzip", "mo-gz", "3:0.5-2"), ("none", "mo-plain", "1.0-1")]:
        # the file name dpkg-deb itself writes: no epoch in it
        upstream = version.split(":", 1)[-1]
        debs[name] = build_deb(tmp_path / "build", name, version=version, arch="amd64", compress=kind,
                               files={f"usr/bin/{name}": f"#!/bin/sh\necho {name} {version}\n"},
                               out=tmp_path / "debs" / f"{name}_{upstream}_amd64.deb")
    assert [n for n, _ in deb_members(debs["mo-zst"])] == ["debian-binary", "control.tar.zst", "data.tar.zst"]
    inventory = lab.inventory(server, client, group_vars={"mo_fleet_catalog": catalog([{"name": "hello", "packages": []}])})

    first = run_playbook("playbooks/repo_server.yml", inventory)
    assert first.rc == 0, first.stdout[-3000:] + first.stderr[-2000:]
    assert server.sh("command -v zstd").stdout.strip(), "the role installs the zstd command on the server"

    # upload each file as dpkg-deb named it; the server stores it under the pool name
    for name, path in debs.items():
        up = run_playbook("playbooks/upload.yml", inventory, extra_vars={"upload_src": str(path), "upload_store": "main"})
        assert up.rc == 0 and up.changed(server.name) == 1, (name, failed_msg(up, server.name), up.stdout[-2000:])
    stored = server.sh(f"cd /var/lib/mo-fleet/repo/{PROJECT}/stores/main && ls").stdout.split()
    assert sorted(stored) == ["mo-gz_3%3a0.5-2_amd64.deb", "mo-plain_1.0-1_amd64.deb", "mo-xz_1.0-1_amd64.deb",
                              "mo-zst_1%3a2.0-1_amd64.deb"]

    # the catalog names them as uploaded, by the pool's name and by name=version
    full = catalog([{"name": "hello", "packages": ["mo-zst_2.0-1_amd64.deb", "main/mo-gz_3%3a0.5-2_amd64.deb",
                                                   "mo-xz=1.0-1", "mo-plain_1.0-1_amd64.deb"]}])
    pub = run_playbook("playbooks/publish.yml", inventory, extra_vars={"mo_fleet_catalog": full})
    assert pub.rc == 0 and pub.changed(server.name) == 1, (failed_msg(pub, server.name), pub.stdout[-2000:])
    again = run_playbook("playbooks/publish.yml", inventory, extra_vars={"mo_fleet_catalog": full})
    assert again.rc == 0 and again.changed(server.name) == 0, changed_tasks(again, server.name)
    packages = server.read(f"/var/lib/mo-fleet/repo/{PROJECT}/repos/hello/dists/hello/main/binary-amd64/Packages")
    assert "Filename: pool/main/mo-zst_1%3a2.0-1_amd64.deb\n" in packages and "Version: 1:2.0-1\n" in packages

    # an epoch-less name for a version that is not there: one sentence, as before
    bad = catalog([{"name": "hello", "packages": ["mo-zst_2.0-2_amd64.deb"]}])
    run = run_playbook("playbooks/publish.yml", inventory, extra_vars={"mo_fleet_catalog": bad})
    msg = failed_msg(run, server.name)
    assert run.rc != 0 and "names 'mo-zst_2.0-2_amd64.deb', which is in no store." in msg, msg

    # the apt client installs every compression, the epoch version included
    trust_server(client, server)
    add_source(client, server, "hello")
    clean_update(client, "hello")
    client.sh("apt-get install -y -q mo-zst mo-xz mo-gz mo-plain")
    shown = client.sh("dpkg-query -W -f '${Package} ${Version}\\n' mo-zst mo-xz mo-gz mo-plain").stdout.split("\n")
    assert sorted(filter(None, shown)) == ["mo-gz 3:0.5-2", "mo-plain 1.0-1", "mo-xz 1.0-1", "mo-zst 1:2.0-1"]
    assert client.sh("mo-zst").stdout.strip() == "mo-zst 1:2.0-1"
