"""The release role left the host on its deployments of 2026-12-09 (hello, not later)."""

import json
import os
from pathlib import Path


def test_one_source_per_deployment_with_signed_by(host):
    sources = host.file("/etc/apt/sources.list.d/mo-fleet-hello.sources")
    assert sources.is_file and sources.mode == 0o644
    text = sources.content_string
    assert "URIs: http://localhost/pub/molecule/repos/hello" in text
    assert "Signed-By: /etc/apt/keyrings/mo-fleet-molecule.asc" in text
    assert not host.file("/etc/apt/sources.list.d/mo-fleet-later.sources").exists


def test_key_stored_and_package_installed_from_the_signed_repo(host):
    assert "BEGIN PGP PUBLIC KEY BLOCK" in host.file("/etc/apt/keyrings/mo-fleet-molecule.asc").content_string
    assert host.package("mo-mol-hello").is_installed
    policy = host.run("apt-cache policy mo-mol-hello").stdout
    assert "http://localhost/pub/molecule/repos/hello hello/main" in policy


def test_sync_record_on_the_controller(host):
    name = f"mo-mol-{os.environ.get('MOLECULE_SCENARIO_NAME', 'release')}"
    path = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "reports" / "sync" / f"{name}.json"
    record = json.loads(path.read_text())
    assert record["status"] == "ok" and record["deployments"] == ["hello"]
    assert record["date"] == "2026-12-09"
