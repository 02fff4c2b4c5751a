"""A .deb users can ship (issue 13), built by mo.fleet.deb_build through template_to_deb.yml.

1. A make install of a C program linked to a library from the archive (jq's binary, which
   needs libjq.so.1): the package Depends on the owning packages with at least the versions
   installed on the capture host, and on a fresh minimal host `apt-get install ./file.deb`
   pulls those libraries (and theirs) from the lab's archive.  Check mode writes nothing, a
   second build reports changed=0; relocated to /usr, lintian reports no error at all.
2. The demo package (GNU hello 2.10 from its Debian source, make install into /usr/local,
   built as demo/run.sh does, stripped): lintian shows no error other than files under /usr/local; relocation is refused because
   the program embeds its /usr/local prefix.  Its findings are written to
   tests/output/lintian-demo.txt for the record.
"""

import json
import subprocess

import pytest

from debian_source import install_tree
from labhosts import ROOT, labctl, run_playbook
from test_render_roundtrip import capture, discard, load, prepare

pytestmark = pytest.mark.integration

MAKEFILE = (
    "PREFIX ?= /usr/local\n"
    "install:\n"
    "\tinstall -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/jqc\n"
    "\tinstall -m 0755 /usr/bin/jq $(DESTDIR)$(PREFIX)/bin/jqc\n"
    "\tinstall -m 0644 filter.jq $(DESTDIR)$(PREFIX)/share/jqc/filter.jq\n"
)


def deb_task(run):
    """The deb_build result of a template_to_deb.yml run."""
    for play in run.result["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == "Build the package":
                return next(iter(task["hosts"].values()))
    raise AssertionError("no Build the package task in the run")


def build(inventory, bundle, out, tmp_path, check=False, **extra):
    variables = {"template": str(bundle), "deb_dir": str(out), "deb_version": "1.6-1"}
    variables.update(extra)
    run = run_playbook("playbooks/template_to_deb.yml", inventory, variables, check=check, cwd=tmp_path)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return deb_task(run)


def test_deb_depends_on_the_libraries_and_apt_pulls_them(lab, tmp_path):
    a = lab.host(groups=["test_hosts"])
    inventory = lab.inventory(a)
    prepare(a, "make jq")
    a.sh("mkdir -p /src/jqc && cat > /src/jqc/Makefile", input_text=MAKEFILE)
    a.sh("cat > /src/jqc/filter.jq", input_text=".name\n")
    query = a.sh("dpkg-query -W -f='${Package} ${Version}\\n' libjq1 libc6").stdout
    versions = dict(line.split() for line in query.strip().split("\n"))
    bundle = capture(inventory, a, "make install", "jqc", tmp_path / "captures", chdir="/src/jqc")
    doc = load(bundle)
    binary = next(e for e in doc["operations"]["files_created"] if e["path"] == "/usr/local/bin/jqc")
    assert binary["elf_needed"] == ["libc.so.6", "libjq.so.1"]
    libs = {lib["soname"]: lib for lib in doc["metadata"]["shared_libraries"]}
    assert libs["libjq.so.1"]["package"] == "libjq1" and libs["libjq.so.1"]["version"] == versions["libjq1"]
    discard(lab, a)

    out = tmp_path / "debs"
    dry = build(inventory, bundle, out, tmp_path, check=True)
    assert dry["changed"] is True and not out.exists()
    first = build(inventory, bundle, out, tmp_path)
    assert first["changed"] is True
    assert first["depends"] == [f"libc6 (>= {versions['libc6']})", f"libjq1 (>= {versions['libjq1']})"]
    assert first["unresolved_libraries"] == []
    errors = [line for line in first["lintian"] if line.startswith("E:")]
    assert errors and all("usr/local" in line for line in errors), first["lintian"]
    assert not any("maintainer" in line or "changelog" in line or "copyright-file" in line for line in errors)
    again = build(inventory, bundle, out, tmp_path)
    assert again["changed"] is False and again["sha256"] == first["sha256"]
    info = subprocess.run(["dpkg-deb", "--info", first["path"]], capture_output=True, text=True, check=True).stdout
    assert "Depends: libc6 (>= " in info and "root@localhost" not in info
    contents = subprocess.run(["dpkg-deb", "--contents", first["path"]], capture_output=True, text=True,
                              check=True).stdout
    assert "./usr/share/doc/jqc/changelog.Debian.gz" in contents and "./usr/share/doc/jqc/copyright" in contents

    # a fresh minimal host: apt resolves Depends from the lab's archive
    c = lab.host(groups=["test_hosts"])
    assert c.sh("dpkg -s libjq1 libonig5", check=False).returncode != 0
    subprocess.run(["podman", "cp", first["path"], f"{c.name}:/tmp/jqc.deb"], check=True, env=labctl.podman_env())
    c.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y /tmp/jqc.deb >/dev/null")
    assert c.sh("dpkg -s libjq1 libonig5 | grep -c '^Status: install ok installed'").stdout.strip() == "2"
    assert c.sh("echo '{\"name\": \"ok\"}' | /usr/local/bin/jqc -f /usr/local/share/jqc/filter.jq").stdout == '"ok"\n'
    discard(lab, c)

    # relocated into /usr: nothing under /usr/local, and lintian finds no error at all
    moved = build(inventory, bundle, tmp_path / "debs-usr", tmp_path, deb_relocate="/usr")
    assert moved["relocated_to"] == "/usr"
    listing = subprocess.run(["dpkg-deb", "--contents", moved["path"]], capture_output=True, text=True,
                             check=True).stdout
    assert "./usr/bin/jqc" in listing and "usr/local" not in listing
    assert not [line for line in moved["lintian"] if line.startswith("E:")], moved["lintian"]


def test_demo_package_lintian(lab, tmp_path):
    a = lab.host(groups=["test_hosts"])
    inventory = lab.inventory(a)
    prepare(a)
    tree = install_tree(a)
    bundle = capture(inventory, a, "make install", "hello", tmp_path / "captures", chdir=tree)
    discard(lab, a)
    made = build(inventory, bundle, tmp_path / "debs", tmp_path, deb_name="mo-hello", deb_version="2.10-1",
                 deb_strip=True)
    assert made["depends"] and made["depends"][0].startswith("libc6 (>= ")
    errors = [line for line in made["lintian"] if line.startswith("E:")]
    tags = {line.split()[2] for line in errors}
    assert errors and tags == {"dir-in-usr-local", "file-in-usr-local"}, made["lintian"]
    record = ROOT / "tests" / "output" / "lintian-demo.txt"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text("\n".join(made["lintian"]) + "\n" + json.dumps({"depends": made["depends"]}) + "\n")
    refused = run_playbook("playbooks/template_to_deb.yml", inventory,
                           {"template": str(bundle), "deb_dir": str(tmp_path / "debs-usr"), "deb_relocate": "/usr"},
                           cwd=tmp_path)
    assert refused.rc != 0
    assert "'/usr/local/bin/hello' holds the string /usr/local" in refused.stdout, refused.stdout[-2000:]
