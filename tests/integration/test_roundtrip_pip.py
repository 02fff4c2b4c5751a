"""Round trip of a real `pip install` on lab hosts (issue 4, third capture).

A local pure-Python project (no package index: lab hosts have no PyPI access) is installed
with pip into a virtualenv under /opt on host A while mo.fleet.capture watches. Then:
the bundle is applied on a fresh host B, prepared the same way as A (same packages, same
virtualenv, created before the capture), while B is captured, and both templates must agree;
A is rolled back and its snapshot must equal the one taken before the capture; the generated
role gives the same files on a fresh host; the .deb from template_to_deb.yml, installed with
apt on a fresh host, gives the same files and its console script runs.

Helpers come from test_render_roundtrip.py (the apt and make install round trips).
"""

import os
import subprocess

import pytest

from labhosts import ANSIBLE_BIN, ROOT, ansible_env, labctl, run_playbook
from test_render_roundtrip import (
    apply, assert_same_snapshot, capture, capture_while, comparable, diff_report, generated_role_on_fresh_host, load,
    prepare, snapshot,
)

pytestmark = pytest.mark.integration

VENV = "/opt/venv"
# A real pip project: a package, a module-level data file and a console script.
PY_PROJECT = r"""
set -e
mkdir -p /src/mohello/mohello
cat > /src/mohello/pyproject.toml <<'TOML'
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"
[project]
name = "mohello"
version = "1.2"
description = "hello from a pip install"
[project.scripts]
mohello = "mohello.cli:main"
[tool.setuptools.package-data]
mohello = ["greeting.txt"]
TOML
cat > /src/mohello/mohello/__init__.py <<'PY'
__version__ = "1.2"
PY
cat > /src/mohello/mohello/cli.py <<'PY'
import os


def main():
    here = os.path.dirname(__file__)
    with open(os.path.join(here, "greeting.txt")) as f:
        print(f.read().strip())
PY
printf 'hello from mohello 1.2\n' > /src/mohello/mohello/greeting.txt
/opt/venv/bin/pip wheel -q --no-deps --no-index --no-build-isolation --no-cache-dir -w /src/dist /src/mohello
"""
# The wheel is built before the capture (like `make` before `make install`): what is
# captured is the installation only.
PIP = "%s/bin/pip install --no-index --no-cache-dir /src/dist/mohello-1.2-py3-none-any.whl" % VENV


def prepare_python(host):
    """What A had before the capture: python3-apt, the venv tools, and the virtualenv itself."""
    prepare(host, "python3-venv python3-setuptools python3-wheel")
    host.sh("python3 -m venv --system-site-packages %s" % VENV)


def console_script(host):
    return host.sh("%s/bin/mohello" % VENV, check=False)


def test_pip_install_round_trip_role_and_deb(lab, tmp_path):
    a, b = lab.host(groups=["test_hosts"]), lab.host(groups=["test_hosts"])
    inventory = lab.inventory(a, b)
    for host in (a, b):
        prepare_python(host)
    a.sh(PY_PROJECT)
    before_a = snapshot(a)
    bundle_a = capture(inventory, a, PIP, "mohello", tmp_path / "captures")
    doc_a = load(bundle_a)
    tpl_a = comparable(doc_a)
    site = [p for p in tpl_a["files"] if p.endswith("/site-packages/mohello/cli.py")]
    assert len(site) == 1, sorted(tpl_a["files"])
    op, kind, _digest, mode = tpl_a["files"]["%s/bin/mohello" % VENV][:4]
    assert (op, kind, mode) == ("files_created", "file", "0755")
    assert any("/site-packages/mohello-1.2.dist-info/RECORD" in p for p in tpl_a["files"])
    assert all(not p.startswith("/src/") for p in tpl_a["files"]), [p for p in tpl_a["files"] if p.startswith("/src/")]
    assert tpl_a["packages"]["packages_installed"] == []
    assert console_script(a).stdout == "hello from mohello 1.2\n"

    # B, prepared like A, does not have it yet; apply while capturing: the templates agree
    assert console_script(b).returncode != 0
    bundle_b, run = capture_while(inventory, b, "mohello-applied", tmp_path / "captures",
                                  lambda: apply(inventory, b, bundle_a))
    assert run.rc == 0, run.stdout[-3000:]
    diff = diff_report(tpl_a, comparable(load(bundle_b)))
    assert not diff, "\n".join(diff[:40])
    again = apply(inventory, b, bundle_a)
    assert again.rc == 0 and again.changed(b.name) == 0, again.stdout[-3000:]
    assert console_script(b).stdout == "hello from mohello 1.2\n"
    assert "mohello" in b.sh("%s/bin/pip list --format=freeze" % VENV).stdout

    # roll back on A: its snapshot equals the one taken before the capture
    undo = run_playbook("playbooks/rollback.yml", inventory, {"bundle": str(bundle_a)}, limit=a.name)
    assert undo.rc == 0, undo.stdout[-3000:]
    assert_same_snapshot(before_a, snapshot(a), doc_a)
    assert console_script(a).returncode != 0
    undo2 = run_playbook("playbooks/rollback.yml", inventory, {"bundle": str(bundle_a)}, limit=a.name)
    assert undo2.rc == 0 and undo2.changed(a.name) == 0, undo2.stdout[-3000:]
    # at most three lab hosts at once: B is done
    labctl.remove_hosts(b.name)
    lab.hosts.remove(b)

    # the generated role, on a fresh host prepared like A, without mo.fleet installed
    role_dir, c, inv_c, apply_role = generated_role_on_fresh_host(lab, inventory, bundle_a, tmp_path,
                                                                  "mohello", prepare_python)
    first = apply_role()
    assert first.rc == 0, first.stdout[-3000:] + first.stderr[-2000:]
    second = apply_role()
    assert second.rc == 0 and second.changed(c.name) == 0, second.stdout[-3000:]
    verified = run_playbook("playbooks/verify.yml", inv_c, {"bundle": str(bundle_a)}, limit=c.name)
    assert verified.rc == 0, verified.stdout[-3000:]
    assert console_script(c).stdout == "hello from mohello 1.2\n"
    labctl.remove_hosts(c.name)
    lab.hosts.remove(c)

    # the .deb, installed with apt on a fresh host prepared like A, gives the same files
    made = run_playbook("playbooks/template_to_deb.yml", inventory,
                        {"template": str(bundle_a), "deb_dir": str(tmp_path / "debs"), "deb_version": "1.2-1"},
                        cwd=tmp_path)
    assert made.rc == 0, made.stdout[-3000:]
    debs = list((tmp_path / "debs").glob("*.deb"))
    assert len(debs) == 1
    d = lab.host(groups=["test_hosts"])
    prepare_python(d)
    subprocess.run(["podman", "cp", str(debs[0]), "%s:/tmp/mohello.deb" % d.name], check=True,
                   env=dict(os.environ, CONTAINERS_CONF=str(ROOT / "lab/containers.conf")))
    d.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y /tmp/mohello.deb >/dev/null")
    package = subprocess.run(["dpkg-deb", "--field", str(debs[0]), "Package"], capture_output=True, text=True,
                             check=True).stdout.strip()
    owned = set(d.sh("dpkg -L %s" % package).stdout.split())
    for entry in doc_a["operations"]["files_created"]:
        got = d.sh("stat -c %%a %s && sha256sum %s" % (entry["path"], entry["path"]), check=False)
        assert got.returncode == 0, entry["path"]
        mode, digest = got.stdout.split()[:2]
        assert (digest, mode.zfill(4)) == (entry["hash"], entry["permissions"]), entry["path"]
        assert entry["path"] in owned
    assert console_script(d).stdout == "hello from mohello 1.2\n"
    lint = subprocess.run([str(ANSIBLE_BIN / "ansible-lint"), "--profile", "production", str(role_dir)],
                          cwd=tmp_path, capture_output=True, text=True, env=ansible_env())
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-2000:]
