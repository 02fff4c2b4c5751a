"""mo.fleet.capture against fresh lab hosts: real apt, real systemd, real files."""

import json
import os
import shlex

import pytest

from labhosts import run_module, run_playbook

from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl


def _result(run, host):
    results = run.task_results(host.name, name="Run and capture the command")
    assert results, run.stdout + run.stderr
    return results[-1]


def _adhoc(lab, host, args, tmp_path, check=False):
    """Run mo.fleet.capture ad hoc from TMP_PATH (so ./captures lands there)."""
    return run_module(lab.inventory(host), host.name, "mo.fleet.capture", args, check=check, cwd=tmp_path)


def _ad_result(run, host):
    plays = run.result.get("plays", [])
    assert plays, run.stdout + run.stderr
    return plays[0]["tasks"][0]["hosts"][host.name]


def _canonical(host, paths):
    """Map dpkg's path spelling to the real path the walk sees (usrmerge: /lib -> /usr/lib)."""
    script = "for p in %s; do d=$(readlink -f \"$(dirname \"$p\")\"); echo \"$p $d/$(basename \"$p\")\"; done" % (
        " ".join(shlex.quote(p) for p in paths))
    out = host.sh(script).stdout.split("\n")
    return dict(line.split(" ", 1) for line in out if line)


@pytest.mark.parametrize("root", ["overlay", "rootfs"])
def test_apt_install_with_service_and_system_user(lab, tmp_path, root):
    """overlay: fanotify refused, walk fallback; rootfs: plain directory root, fanotify used."""
    host = lab.host(groups=["capture_hosts"], rootfs=(root == "rootfs"))
    run = run_playbook("playbooks/capture.yml", lab.inventory(host), cwd=tmp_path, extra_vars={
        "capture_cmd": "apt-get install -y --no-install-recommends memcached",
        "capture_name": "memcached", "capture_creates": "/usr/bin/memcached"})
    assert run.rc == 0, run.stdout + run.stderr
    res = _result(run, host)
    bundle = tmp_path / "captures" / host.name / "memcached"
    assert res["dest"] == str(bundle)
    assert res["changed"] is True
    doc = tpl.verify_bundle(str(bundle))
    ops = doc["operations"]
    assert doc["MO_template"]["status"] == "succeeded" and doc["MO_template"]["rc"] == 0
    if root == "overlay":
        # overlay root: fanotify is refused, auto falls back to the walk and says why
        assert doc["metadata"]["trace"]["used"] == "walk"
        assert doc["metadata"]["trace"]["fallback"]
    else:
        assert doc["metadata"]["trace"]["used"] == "fanotify", doc["metadata"]["trace"]
        assert doc["metadata"]["analysis_method"] == "fanotify_and_snapshot"

    installed = {p["name"]: p for p in ops["packages_installed"]}
    version = host.sh("dpkg-query -W -f='${Version} ${Architecture}' memcached").stdout.split()
    assert installed["memcached"]["version"] == version[0]
    assert installed["memcached"]["architecture"] == version[1]
    assert installed["memcached"]["manual"] is True
    auto = [p for p in installed.values() if p["name"] != "memcached"]
    assert auto and all(p["manual"] is False for p in auto)

    listed = {}
    for op in tpl.FILE_OPERATIONS:
        for entry in ops[op]:
            listed[entry["path"]] = entry
    redacted = {r["path"] for r in ops["redacted"]}
    files = host.sh("dpkg -L memcached | while read p; do [ -d \"$p\" ] || echo \"$p\"; done").stdout.split()
    assert len(files) > 5
    canon = _canonical(host, files)
    for path in files:
        real = canon[path]
        if any(tpl.is_within(real, x) for x in doc["metadata"]["exclude"]):
            continue
        assert real in listed or real in redacted, "dpkg -L file %s missing from the template" % path
        if real in listed:
            assert listed[real]["package"] == "memcached", listed[real]
    conf = listed["/etc/default/memcached"]
    assert conf["conffile"] is True and conf["conffile_changed"] is False and conf["bundled"] is False
    # written by the maintainer script, not shipped: a new config file the bundle must carry
    generated = listed["/etc/memcached.conf"]
    assert generated["package"] is None and generated["bundled"] is True
    assert (bundle / "files/etc/memcached.conf").read_bytes() == host.sh("cat /etc/memcached.conf").stdout.encode()
    binary = listed["/usr/bin/memcached"]
    assert binary["package_default"] is True and binary["bundled"] is False
    assert binary["hash"] == host.sh("sha256sum /usr/bin/memcached").stdout.split()[0]

    assert "memcached.service" in {u["unit"] for u in ops["units_added"]}
    assert "memcached.service" in {u["unit"] for u in ops["units_enabled"]}
    assert "memcached.service" in {u["unit"] for u in ops["units_started"]}
    users = {u["name"]: u for u in ops["users_created"]}
    assert users["memcache"]["system"] is True
    assert users["memcache"]["uid"] == int(host.sh("id -u memcache").stdout)

    # the target keeps the bundle and indexes it
    info = run_module(lab.inventory(host), host.name, "mo.fleet.capture_info", "name=memcached")
    got = info.result["plays"][0]["tasks"][0]["hosts"][host.name]
    assert got["status"]["templates"] == 1 and got["status"]["snapshots"] == 2
    assert got["status"]["pending_archives"] == 0 and got["status"]["locked"] is False

    # creates= makes the second run a no-op that writes nothing
    again = run_playbook("playbooks/capture.yml", lab.inventory(host), cwd=tmp_path, extra_vars={
        "capture_cmd": "apt-get install -y --no-install-recommends memcached",
        "capture_name": "memcached", "capture_creates": "/usr/bin/memcached"})
    assert again.rc == 0 and again.changed(host.name) == 0, again.stdout


SCRIPT = r"""#!/bin/sh
set -e
rm -f /etc/mo-gone.conf
chmod 0600 /opt/app/mode
chown nobody:nogroup /opt/app/owner
echo changed >> /etc/mo-edit.conf
mkdir -p /opt/app/new/sub
echo built > /opt/app/new/sub/tool
ln -sf /opt/app/new/sub/tool /usr/local/bin/tool
rm -rf /opt/app/olddir
install -d -m 700 /root/.ssh
printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n' > /root/.ssh/id_deploy
echo 'machine example.invalid login me password x' > /root/.netrc
"""


@pytest.mark.parametrize("trace", ["none", "fanotify"])
def test_script_deletes_chmods_chowns_and_secrets_are_redacted(lab, tmp_path, trace):
    host = lab.host(rootfs=(trace == "fanotify"))
    host.sh("mkdir -p /opt/app/olddir/x && echo old > /opt/app/olddir/x/f && echo m > /opt/app/mode "
            "&& echo o > /opt/app/owner && echo gone > /etc/mo-gone.conf && echo orig > /etc/mo-edit.conf")
    host.sh("cat > /root/change.sh && chmod +x /root/change.sh", input_text=SCRIPT)

    check = _adhoc(lab, host, "cmd=/root/change.sh name=script", tmp_path, check=True)
    res = _ad_result(check, host)
    assert res["changed"] is True and "would run /root/change.sh" in res["msg"]
    assert host.sh("test -e /etc/mo-gone.conf").returncode == 0
    assert not (tmp_path / "captures").exists()

    run = _adhoc(lab, host, "cmd=/root/change.sh name=script trace=%s" % trace, tmp_path)
    res = _ad_result(run, host)
    assert run.rc == 0, run.stdout
    bundle = tmp_path / "captures" / host.name / "script"
    doc = tpl.verify_bundle(str(bundle))
    assert doc["metadata"]["trace"]["used"] == ("walk" if trace == "none" else "fanotify")
    ops = doc["operations"]
    paths = lambda op: {e["path"]: e for e in ops[op]}  # noqa: E731

    assert "/etc/mo-gone.conf" in paths("files_deleted")
    gone = paths("files_deleted")["/etc/mo-gone.conf"]
    assert gone["before_bundled"] and (bundle / "before/etc/mo-gone.conf").read_text() == "gone\n"
    edit = paths("files_modified")["/etc/mo-edit.conf"]
    assert edit["bundled"] and edit["before_bundled"]
    assert (bundle / "files/etc/mo-edit.conf").read_text() == "orig\nchanged\n"
    assert (bundle / "before/etc/mo-edit.conf").read_text() == "orig\n"
    perms = paths("permissions_changed")
    assert perms["/opt/app/mode"]["before"]["permissions"] == "0644"
    assert perms["/opt/app/mode"]["after"]["permissions"] == "0600"
    assert perms["/opt/app/owner"]["before"]["owner"] == "root"
    assert perms["/opt/app/owner"]["after"]["owner"] == "nobody"
    assert perms["/opt/app/owner"]["after"]["group"] == "nogroup"
    assert {"/opt/app/olddir", "/opt/app/olddir/x"} <= set(paths("directories_deleted"))
    assert "/opt/app/olddir/x/f" in paths("files_deleted")
    assert {"/opt/app/new", "/opt/app/new/sub"} <= set(paths("directories_created"))
    tool = paths("files_created")["/opt/app/new/sub/tool"]
    assert tool["bundled"] and (bundle / "files/opt/app/new/sub/tool").read_text() == "built\n"
    assert paths("symlinks_created")["/usr/local/bin/tool"]["target"] == "/opt/app/new/sub/tool"

    redacted = {r["path"]: r["reason"] for r in ops["redacted"]}
    assert "private key" in redacted["/root/.ssh/id_deploy"]
    assert "netrc" in redacted["/root/.netrc"]
    everything = "\n".join(str(p) for p in bundle.rglob("*"))
    assert "id_deploy" not in everything and ".netrc" not in everything
    assert "BEGIN OPENSSH PRIVATE KEY" not in (bundle / "template.json").read_text()


def test_failing_command_yields_failed_template_and_clear_errors(lab, tmp_path):
    host = lab.host()
    run = _adhoc(lab, host, {"cmd": "sh -c 'touch /opt/half; echo broken >&2; exit 3'", "name": "broken"}, tmp_path)
    res = _ad_result(run, host)
    assert run.rc != 0 and res["failed"] is True
    assert res["rc"] == 3 and "broken" in res["stderr"] and "rc 3" in res["msg"]
    doc = tpl.verify_bundle(str(tmp_path / "captures" / host.name / "broken"))
    assert doc["MO_template"]["status"] == "failed" and doc["MO_template"]["rc"] == 3
    assert "/opt/half" in {e["path"] for e in doc["operations"]["files_created"]}

    allowed = _adhoc(lab, host, {"cmd": "false", "name": "allowed", "allow_failure": True}, tmp_path)
    assert allowed.rc == 0, allowed.stdout
    assert _ad_result(allowed, host)["status"] == "failed"

    missing = _ad_result(_adhoc(lab, host, "cmd=no-such-program-here", tmp_path), host)
    assert missing["failed"] and missing["msg"] == "The command no-such-program-here was not found on the target's PATH."
    nodir = _ad_result(_adhoc(lab, host, "cmd=true chdir=/no/such/dir", tmp_path), host)
    assert nodir["failed"] and "chdir /no/such/dir does not exist" in nodir["msg"]

    slow = _adhoc(lab, host, {"cmd": "sh -c 'sleep 300 & sleep 300'", "name": "slow", "timeout": 2}, tmp_path)
    res = _ad_result(slow, host)
    assert res["failed"] and "did not finish within 2 seconds" in res["msg"]
    assert host.sh("pgrep -x sleep", check=False).returncode == 1, "the process tree survived the timeout"
    info = _ad_result(run_module(lab.inventory(host), host.name, "mo.fleet.capture_info", ""), host)
    assert info["status"]["locked"] is False
    assert {t["status"] for t in info["templates"]} == {"failed", "timeout"}
    # the module's and the option's old names still work (meta/runtime.yml redirect, option alias)
    old_names = run_module(lab.inventory(host), host.name, "mo.fleet.capture_store", "keep=0 store=/var/lib/mo-fleet",
                           check=True)
    assert _ad_result(old_names, host)["changed"] is True and _ad_result(old_names, host)["removed"]
    assert host.sh("ls /var/lib/mo-fleet/templates | wc -l").stdout.strip() != "0"
    cleaned = run_module(lab.inventory(host), host.name, "mo.fleet.capture_directory",
                         "keep=0 capture_directory=/var/lib/mo-fleet")
    assert _ad_result(cleaned, host)["changed"] is True
    assert host.sh("ls /var/lib/mo-fleet/templates | wc -l").stdout.strip() == "0"


def test_strace_mode_records_processes(lab, tmp_path):
    host = lab.host()
    host.sh("apt-get install -y -q --no-install-recommends strace >/dev/null")
    run = _adhoc(lab, host, {"argv": ["sh", "-c", "mkdir -p /opt/s && echo x > /opt/s/f && chmod 600 /opt/s/f"],
                             "name": "traced", "trace": "strace"}, tmp_path)
    assert run.rc == 0, run.stdout
    doc = tpl.verify_bundle(str(tmp_path / "captures" / host.name / "traced"))
    assert doc["metadata"]["analysis_method"] == "strace_and_snapshot"
    entry = {e["path"]: e for e in doc["operations"]["files_created"]}["/opt/s/f"]
    assert any(p.startswith("sh[") for p in entry["processes"])
    assert any(p["process"].startswith("mkdir[") for p in doc["metadata"]["processes"])
    assert json.loads((tmp_path / "captures" / host.name / "traced" / "template.json").read_text()) == doc
    assert not os.path.exists(tmp_path / "captures" / host.name / "traced" / "files" / "opt" / "s" / "missing")


BUILD_DEB = r"""
set -e
mkdir -p /src/pkg/DEBIAN /src/pkg/opt/mo-demo/bin /src/pkg/etc
printf '#!/bin/sh\necho demo\n' > /src/pkg/opt/mo-demo/bin/demo
chmod 755 /src/pkg/opt/mo-demo/bin/demo
echo 'greeting=hello' > /src/pkg/etc/mo-demo.conf
echo /etc/mo-demo.conf > /src/pkg/DEBIAN/conffiles
cat > /src/pkg/DEBIAN/control <<CTL
Package: mo-demo
Version: 1.2-3
Architecture: all
Maintainer: mo.fleet tests <tests@example.invalid>
Description: demo package for capture tests
CTL
printf '#!/bin/sh\nset -e\necho "from postinst" > /etc/mo-demo.generated\n' > /src/pkg/DEBIAN/postinst
chmod 755 /src/pkg/DEBIAN/postinst
dpkg-deb --build /src/pkg /src/mo-demo_1.2-3_all.deb >/dev/null
"""


def test_dpkg_i_of_a_local_deb_then_a_conffile_edit(lab, tmp_path):
    host = lab.host()
    host.sh(BUILD_DEB)
    run = _adhoc(lab, host, "cmd='dpkg -i /src/mo-demo_1.2-3_all.deb' name=demo", tmp_path)
    assert run.rc == 0, run.stdout
    doc = tpl.verify_bundle(str(tmp_path / "captures" / host.name / "demo"))
    ops = doc["operations"]
    assert ops["packages_installed"] == [{"name": "mo-demo", "version": "1.2-3", "architecture": "all",
                                          "manual": True, "status": "installed"}]
    files = {e["path"]: e for e in ops["files_created"]}
    assert files["/opt/mo-demo/bin/demo"]["package"] == "mo-demo"
    assert files["/opt/mo-demo/bin/demo"]["permissions"] == "0755"
    assert files["/opt/mo-demo/bin/demo"]["bundled"] is False
    assert files["/etc/mo-demo.conf"]["conffile"] is True and files["/etc/mo-demo.conf"]["conffile_changed"] is False
    assert files["/etc/mo-demo.generated"]["package"] is None and files["/etc/mo-demo.generated"]["bundled"] is True

    # editing the conffile afterwards: flagged as changed from the packaged default, old content kept
    run = _adhoc(lab, host, {"cmd": "sed -i s/hello/bonjour/ /etc/mo-demo.conf", "name": "edit"}, tmp_path)
    assert run.rc == 0, run.stdout
    bundle = tmp_path / "captures" / host.name / "edit"
    doc = tpl.verify_bundle(str(bundle))
    conf = {e["path"]: e for e in doc["operations"]["files_modified"]}["/etc/mo-demo.conf"]
    assert conf["conffile"] and conf["conffile_changed"] and conf["package"] == "mo-demo"
    assert (bundle / "files/etc/mo-demo.conf").read_text() == "greeting=bonjour\n"
    assert (bundle / "before/etc/mo-demo.conf").read_text() == "greeting=hello\n"


PY_PROJECT = r"""
set -e
mkdir -p /src/mopkg/mopkg
cat > /src/mopkg/pyproject.toml <<TOML
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"
[project]
name = "mopkg"
version = "0.3"
[project.scripts]
mopkg = "mopkg:main"
TOML
printf 'def main():\n    print("mopkg")\n' > /src/mopkg/mopkg/__init__.py
"""


def test_pip_install_into_a_virtualenv(lab, tmp_path):
    host = lab.host()
    host.sh("apt-get install -y -q --no-install-recommends python3-venv python3-wheel >/dev/null "
            "&& python3 -m venv --system-site-packages /opt/venv")
    host.sh(PY_PROJECT)
    run = _adhoc(lab, host, {"argv": ["/opt/venv/bin/pip", "install", "--no-index", "--no-build-isolation",
                                      "/src/mopkg"], "name": "pip", "roots": ["/opt", "/usr/local"]}, tmp_path)
    assert run.rc == 0, run.stdout
    bundle = tmp_path / "captures" / host.name / "pip"
    doc = tpl.verify_bundle(str(bundle))
    created = {e["path"]: e for e in doc["operations"]["files_created"]}
    script = created["/opt/venv/bin/mopkg"]
    assert script["package"] is None and script["bundled"] is True
    assert (bundle / "files/opt/venv/bin/mopkg").read_bytes() == host.sh("cat /opt/venv/bin/mopkg").stdout.encode()
    init = [p for p in created if p.endswith("/site-packages/mopkg/__init__.py")]
    assert len(init) == 1 and (bundle / ("files" + init[0])).read_text() == "def main():\n    print(\"mopkg\")\n"
    assert any("/site-packages/mopkg-0.3.dist-info/" in p for p in created)
    assert doc["metadata"]["roots"] == ["/opt", "/usr/local"]
    assert doc["operations"]["packages_installed"] == []


MAKE_PROJECT = r"""
set -e
mkdir -p /src/app-1.0
cd /src/app-1.0
printf '#!/bin/sh\necho "app 1.0"\n' > app.in
printf 'color=blue\n' > app.conf
printf '.TH APP 1\n' > app.1
cat > Makefile <<'MK'
PREFIX ?= /usr/local
all: app
app: app.in
	sed 's/1.0/1.0-built/' app.in > app
install: app
	install -D -m 0755 app $(DESTDIR)$(PREFIX)/bin/app
	install -D -m 0644 app.conf $(DESTDIR)$(PREFIX)/etc/app.conf
	install -D -m 0644 app.1 $(DESTDIR)$(PREFIX)/share/man/man1/app.1
MK
make >/dev/null
"""


def test_make_install_bundles_every_installed_file(lab, tmp_path):
    host = lab.host()
    host.sh(MAKE_PROJECT)  # make is in the lab image (labimage.HOST_PACKAGES)
    run = _adhoc(lab, host, "cmd='make install' chdir=/src/app-1.0 name=app", tmp_path)
    assert run.rc == 0, run.stdout
    bundle = tmp_path / "captures" / host.name / "app"
    doc = tpl.verify_bundle(str(bundle))
    assert doc["MO_template"]["chdir"] == "/src/app-1.0"
    created = {e["path"]: e for e in doc["operations"]["files_created"]}
    installed = host.sh("find /usr/local -type f -newer /src/app-1.0/Makefile").stdout.split()
    assert sorted(installed) == sorted(p for p in created if p.startswith("/usr/local/"))
    for path in installed:
        assert created[path]["bundled"] and created[path]["package"] is None
        assert (bundle / ("files" + path)).read_bytes() == host.sh("cat %s" % path).stdout.encode()
    assert created["/usr/local/bin/app"]["permissions"] == "0755"
    assert "1.0-built" in (bundle / "files/usr/local/bin/app").read_text()


def test_template_info_playbook_shows_and_validates_on_the_controller(tmp_path):
    inventory = tmp_path / "inv.yml"
    inventory.write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
    seed = os.path.join(os.path.dirname(__file__), "..", "unit", "data", "mo_capture_v2_1.json")
    run = run_playbook("playbooks/template_info.yml", inventory, extra_vars={"bundle": os.path.abspath(seed)})
    assert run.rc == 0, run.stdout
    verified = run.task_results("localhost", name="Validate the bundle")[0]
    assert verified["valid"] is True and verified["validator"] == "builtin"  # issue 11: one validator everywhere
    assert verified["info"]["migrated_from"] == "2.1" and verified["info"]["command"] == "apt-get install -y nginx"

    bundle = tmp_path / "bundle"
    (bundle / "files/etc").mkdir(parents=True)
    doc = tpl.load(os.path.abspath(seed))
    doc["operations"]["files_created"][0].update(bundled=True, hash="0" * 64)
    (bundle / "template.json").write_text(tpl.dump(doc))
    (bundle / "files/usr/sbin").mkdir(parents=True)
    (bundle / "files/usr/sbin/nginx").write_text("tampered")
    bad = run_playbook("playbooks/template_info.yml", inventory, extra_vars={"bundle": str(bundle)})
    assert bad.rc != 0
    failed = bad.task_results("localhost", name="Validate the bundle")[0]
    assert failed["valid"] is False and "does not match its sha256" in failed["msg"]


def test_bundle_comes_back_inline_or_through_the_tmp_dir_and_nothing_is_left_behind(lab, tmp_path):
    """Small archive: inline in the result; forced large (inline_max=1): fetched from the task's
    remote tmp directory. Either way the same verified bundle, no archive or tmp dir left on
    the target, the index records no archive; fetch=false keeps it in the outbox, indexed."""
    host = lab.host()
    host.sh("mkdir -p /opt/app && echo one > /opt/app/a")
    change = "sh -c 'echo two >> /opt/app/a; echo new > /opt/app/b-%s'"
    for name, extra in (("inline", {}), ("fetched", {"inline_max": 1})):
        run = _adhoc(lab, host, dict({"cmd": change % name, "name": name, "roots": ["/opt"]}, **extra), tmp_path)
        res = _ad_result(run, host)
        assert run.rc == 0 and res["changed"] is True, run.stdout + run.stderr
        assert "content" not in res["bundle"] and res["bundle"]["archive"] is None
        doc = tpl.verify_bundle(str(tmp_path / "captures" / host.name / name))
        assert "/opt/app/b-" + name in {e["path"] for e in doc["operations"]["files_created"]}
        assert (tmp_path / "captures" / host.name / name / ("files/opt/app/b-" + name)).read_text() == "new\n"
        assert host.sh("find /root/.ansible/tmp /home/mo/.ansible/tmp -mindepth 1 2>/dev/null; "
                       "ls -A /var/lib/mo-fleet/outbox").stdout == ""  # the login user's tmp too
    kept = _ad_result(_adhoc(lab, host, {"cmd": change % "kept", "name": "kept", "roots": ["/opt"], "fetch": False},
                             tmp_path), host)
    assert kept["bundle"]["archive"] == "/var/lib/mo-fleet/outbox/%s.tar.gz" % kept["bundle"]["id"]
    assert "content" not in kept["bundle"] and not (tmp_path / "captures" / host.name / "kept").exists()
    assert host.sh("sha256sum %s" % kept["bundle"]["archive"]).stdout.split()[0] == kept["bundle"]["sha256"]
    info = _ad_result(run_module(lab.inventory(host), host.name, "mo.fleet.capture_info", ""), host)
    assert {t["name"]: t["archive"] for t in info["templates"]} == {
        "inline": None, "fetched": None, "kept": kept["bundle"]["archive"]}
    assert info["status"]["pending_archives"] == 1


def test_bundle_comes_home_over_ssh_with_pipelining(lab, tmp_path):
    """Over real SSH with the module pipelined (no module file sent): a small archive comes
    back inline; a large one (inline_max=1) is fetched over SFTP from the task's tmp directory,
    which the action plugin has even when pipelining, and goes with it."""
    host = lab.host(ssh=True)
    host.sh("mkdir -p /opt/app && echo one > /opt/app/a")
    change = "sh -c 'echo two >> /opt/app/a; echo new > /opt/app/b-%s'"
    for name, extra in (("inline", {}), ("fetched", {"inline_max": 1})):
        args = dict({"cmd": change % name, "name": name, "roots": ["/opt"]}, **extra)
        run = run_module(lab.inventory(host), host.name, "mo.fleet.capture", args, cwd=tmp_path,
                         env={"ANSIBLE_PIPELINING": "1", "ANSIBLE_VERBOSITY": "3",
                              "ANSIBLE_VERBOSE_TO_STDERR": "1"})
        res = _ad_result(run, host)
        assert run.rc == 0 and res["changed"] is True, run.stdout + run.stderr
        assert "Pipelining is enabled." in run.stderr and " PUT " not in run.stderr, run.stderr
        assert (" FETCH /root/.ansible/tmp/ansible-tmp-" in run.stderr) is (name == "fetched"), run.stderr
        assert res["bundle"]["archive"] is None
        doc = tpl.verify_bundle(str(tmp_path / "captures" / host.name / name))
        assert "/opt/app/b-" + name in {e["path"] for e in doc["operations"]["files_created"]}
        assert host.sh("ls -A /var/lib/mo-fleet/outbox").stdout == ""
        assert host.sh("ls -A /root/.ansible/tmp 2>/dev/null || true").stdout == ""
