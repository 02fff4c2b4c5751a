"""The collection as users get it: built, installed, used by FQCN from anywhere."""

import subprocess
import tarfile

import yaml

from labhosts import ANSIBLE_BIN, ROOT, ansible_env, run_playbook


def galaxy_version():
    return yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]


def test_build_install_and_use_by_fqcn_from_another_directory(lab, tmp_path):
    dist, installed, elsewhere = tmp_path / "dist", tmp_path / "collections", tmp_path / "elsewhere"
    elsewhere.mkdir()
    bare_cfg = elsewhere / "ansible.cfg"
    bare_cfg.write_text("[defaults]\n")
    build = subprocess.run(
        [str(ANSIBLE_BIN / "ansible-galaxy"), "collection", "build", str(ROOT), "--output-path", str(dist)],
        capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stderr
    artifact = dist / f"mo-fleet-{galaxy_version()}.tar.gz"
    assert artifact.exists()

    with tarfile.open(artifact) as tar:
        names = tar.getnames()
    assert "galaxy.yml" not in names and "MANIFEST.json" in names
    assert not [n for n in names if n.startswith(("tests/", "lab/", "molecule/", ".venv", ".collections"))]
    assert "roles/target/meta/argument_specs.yml" in names

    install = subprocess.run(
        [str(ANSIBLE_BIN / "ansible-galaxy"), "collection", "install", "--force", str(artifact), "-p", str(installed)],
        capture_output=True, text=True, check=False, cwd=elsewhere,
        env=ansible_env(ANSIBLE_COLLECTIONS_PATH=installed, ANSIBLE_CONFIG=bare_cfg))
    assert install.returncode == 0, install.stderr
    assert (installed / "ansible_collections/mo/fleet/MANIFEST.json").exists(), install.stdout

    # no ansible.cfg of ours and no checkout link: only the installed copy can answer
    env = ansible_env(ANSIBLE_COLLECTIONS_PATH=installed, ANSIBLE_CONFIG=bare_cfg)
    doc = subprocess.run([str(ANSIBLE_BIN / "ansible-doc"), "-t", "role", "mo.fleet.target"],
                         capture_output=True, text=True, cwd=elsewhere, env=env, check=False)
    assert doc.returncode == 0, doc.stderr
    assert "target_packages" in doc.stdout

    host = lab.host(groups=["targets"])
    playbook = elsewhere / "use.yml"
    playbook.write_text("- hosts: targets\n  become: true\n  roles:\n    - role: mo.fleet.target\n")
    run = run_playbook(playbook, lab.inventory(host), cwd=elsewhere,
                       env={"ANSIBLE_COLLECTIONS_PATH": installed, "ANSIBLE_CONFIG": bare_cfg})
    assert run.rc == 0, run.stdout[-3000:]
    assert host.sh("stat -c %a /var/lib/mo-fleet").stdout.strip() == "755"
    assert host.sh("dpkg-query -W -f='${Status}' strace").stdout == "install ok installed"
