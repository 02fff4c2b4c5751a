"""The repository server's pull repository from an installed collection (docs/pull.md): the
collection is built, installed with ansible-galaxy into a temporary path, and the repo_server
role's packing step (tasks/pull_collection.yml) runs from that installed copy alone. Its archive
must install again with ansible-galaxy to the same files, and pass the pull repository's checks.
No lab host: the step runs on the controller."""

import json
import subprocess

from labhosts import ANSIBLE_BIN, ROOT, ansible_env

from ansible_collections.mo.fleet.plugins.module_utils._common import layout
from ansible_collections.mo.fleet.plugins.module_utils._repo import pull_repo

PLAYBOOK = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: The repo_server role's packing step
      ansible.builtin.include_role:
        name: mo.fleet.repo_server
        tasks_from: pull_collection.yml
      vars:
        repo_server_pull_wheel_cache: "{{ cache }}/wheels"
    - name: Show what it made
      ansible.builtin.debug:
        msg: "PACKED {{ repo_server_pull_build | to_json }}"
"""


def galaxy(*args, collections, cwd):
    proc = subprocess.run([str(ANSIBLE_BIN / "ansible-galaxy"), "collection", *args], capture_output=True,
                          text=True, check=False, cwd=cwd,
                          env=ansible_env(ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_CONFIG=cwd / "ansible.cfg"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def pack(playbook, collections, cache, cwd):
    inventory = cwd / "inventory.ini"
    inventory.write_text("localhost ansible_connection=local ansible_python_interpreter='{{ ansible_playbook_python }}'\n")
    proc = subprocess.run([str(ANSIBLE_BIN / "ansible-playbook"), "-i", str(inventory), str(playbook), "-e",
                           json.dumps({"cache": str(cache)})], capture_output=True, text=True, check=False, cwd=cwd,
                          env=ansible_env(ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_CONFIG=cwd / "ansible.cfg",
                                          ANSIBLE_STDOUT_CALLBACK="default"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    line = next(ln for ln in proc.stdout.splitlines() if "PACKED " in ln)
    return json.loads(line.split("PACKED ", 1)[1].rstrip('"').replace('\\"', '"'))


def tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def test_the_packing_step_runs_from_an_installed_collection(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "ansible.cfg").write_text("[defaults]\n")
    installed, again, cache = tmp_path / "installed", tmp_path / "again", tmp_path / "cache"
    built = galaxy("build", str(ROOT), "--output-path", str(tmp_path / "dist"), collections=installed, cwd=elsewhere)
    artifact = built.stdout.strip().split()[-1]
    galaxy("install", artifact, "-p", str(installed), collections=installed, cwd=elsewhere)
    root = installed / "ansible_collections/mo/fleet"
    assert not (root / "galaxy.yml").exists() and (root / "FILES.json").exists()

    playbook = elsewhere / "pack.yml"
    playbook.write_text(PLAYBOOK)
    first = pack(playbook, installed, cache, elsewhere)  # only the installed copy is on the path
    assert first["kind"] == "installed" and first["path"].startswith(str(cache)), first
    manifest = json.loads((root / "MANIFEST.json").read_text())
    assert first["files_sha256"] == manifest["file_manifest_file"]["chksum_sha256"]
    data = open(first["path"], "rb").read()
    second = pack(playbook, installed, cache, elsewhere)
    assert second["path"] == first["path"] and open(second["path"], "rb").read() == data  # kept as it was

    galaxy("install", first["path"], "-p", str(again), collections=again, cwd=elsewhere)
    assert tree(again / "ansible_collections/mo/fleet") == tree(root)
    galaxy("verify", "--offline", "mo.fleet", collections=again, cwd=elsewhere)

    # the pull repository takes it as it takes a build
    paths = layout.pull_paths(str(tmp_path / "pull"))
    catalog = {"project": {"name": "demo"}, "stores": [{"name": "main"}], "deployments": []}
    assert pull_repo.write_source(paths, catalog, {}, {"server_url": "http://repo1", "pull_hosts": []}, first["path"])
    assert (tmp_path / "pull/state/source/ansible_collections/mo/fleet/playbooks/pull_site.yml").is_file()


def test_the_packing_step_builds_a_source_tree(tmp_path):
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    playbook = tmp_path / "pack.yml"
    playbook.write_text(PLAYBOOK)
    packed = pack(playbook, ROOT / ".collections", tmp_path / "cache", tmp_path)
    assert packed["kind"] == "source" and packed["path"].endswith(".tar.gz")
    assert subprocess.run(["tar", "-tzf", packed["path"], "MANIFEST.json"], capture_output=True,
                          check=False).returncode == 0
