"""Unit tests for the renderers (module_utils/_render/api.py, filter/render.py, module_utils/_capture/verify.py)."""

import copy
import hashlib
import json
import os
import stat

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible.errors import AnsibleFilterError
from ansible.parsing.utils.yaml import from_yaml

from ansible_collections.mo.fleet.plugins.filter import render as render_filters
from ansible_collections.mo.fleet.plugins.module_utils._render import api as render
from ansible_collections.mo.fleet.plugins.module_utils._common import inert_yaml
from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._capture import verify

ALLOWED_MODULES = {
    "ansible.builtin.apt", "ansible.builtin.group", "ansible.builtin.user", "ansible.builtin.file",
    "ansible.builtin.copy", "ansible.builtin.systemd_service", "ansible.builtin.command",
}


def sha(data):
    return hashlib.sha256(data).hexdigest()


def fentry(path, content=b"x", **kw):
    entry = {"path": path, "type": "file", "size": len(content), "permissions": "0644", "owner": "root",
             "group": "root", "uid": 0, "gid": 0, "hash": sha(content), "bundled": True}
    entry.update(kw)
    return entry


CONTENT = {
    "/usr/local/bin/hello": b"#!/bin/sh\necho hello\n",
    "/etc/nginx/conf.d/site.conf": b"server { listen 8080; }\n",
    "/etc/hello.conf": b"greeting=hi\n",
}


def apt_template():
    """A hand-made capture of `apt-get install nginx` plus a make install and a config change."""
    ops = {
        "files_created": [
            fentry("/usr/local/bin/hello", CONTENT["/usr/local/bin/hello"], permissions="0755", owner="hello", group="hello",
                   uid=999, gid=999),
            fentry("/etc/nginx/conf.d/site.conf", CONTENT["/etc/nginx/conf.d/site.conf"], package="nginx-common",
                   conffile=True, conffile_changed=True),
            fentry("/usr/share/nginx/html/index.html", b"default", package="nginx-common", bundled=False,
                   package_default=True),
            fentry("/lib/systemd/system/nginx.service", b"[Unit]\n", package="nginx-common", bundled=False,
                   package_default=True),
        ],
        "files_modified": [
            fentry("/etc/hello.conf", CONTENT["/etc/hello.conf"], before={"type": "file", "permissions": "0600",
                                                                        "owner": "root", "group": "root",
                                                                        "hash": sha(b"old\n")},
                   before_bundled=True),
        ],
        "files_deleted": [fentry("/etc/obsolete.conf", b"gone\n", bundled=False, before_bundled=True)],
        "directories_created": [
            {"path": "/usr/local/share/hello", "type": "directory", "permissions": "0750", "owner": "hello", "group": "hello"},
            {"path": "/usr/share/nginx", "type": "directory", "permissions": "0755", "owner": "root", "group": "root",
             "package": "nginx-common"},
        ],
        "symlinks_created": [
            {"path": "/usr/local/bin/hi", "type": "symlink", "target": "hello", "owner": "root", "group": "root"},
            {"path": "/etc/nginx/sites-enabled/default", "type": "symlink", "target": "/etc/nginx/sites-available/default",
             "package": None},
        ],
        "permissions_changed": [
            {"path": "/var/www", "type": "directory", "before": {"permissions": "0755", "owner": "root", "group": "root"},
             "after": {"permissions": "0775", "owner": "root", "group": "www-data"}},
        ],
        "packages_installed": [
            {"name": "nginx", "version": "1.22.1-9", "architecture": "amd64", "manual": True},
            {"name": "nginx-common", "version": "1.22.1-9", "architecture": "all", "manual": False},
        ],
        "packages_removed": [{"name": "apache2", "version": "2.4.62-1", "architecture": "amd64"}],
        "packages_upgraded": [{"name": "libssl3", "version": "3.0.15-1", "version_before": "3.0.11-1",
                               "architecture": "amd64", "manual": False}],
        "units_added": [{"unit": "nginx.service", "path": "/lib/systemd/system/nginx.service", "state": "enabled"}],
        "units_enabled": [{"unit": "nginx.service", "before": None, "after": "enabled"}],
        "units_started": [{"unit": "nginx.service", "before": None, "after": "active"}],
        "users_created": [{"name": "hello", "uid": 999, "gid": 999, "home": "/var/lib/hello", "shell": "/usr/sbin/nologin",
                           "gecos": "Hello daemon", "system": True}],
        "groups_created": [{"name": "hello", "gid": 999, "system": True}],
    }
    return tpl.build({"argv": ["apt-get", "install", "-y", "nginx"], "timestamp": "2026-01-01T00:00:00",
                      "name": "nginx", "host": "h1", "status": "succeeded"}, ops,
                     {"config_roots": ["/etc"]})


@pytest.fixture
def bundle(tmp_path):
    doc = apt_template()
    root = tmp_path / "bundle"
    for path, data in CONTENT.items():
        dest = root / "files" / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    for path, data in (("/etc/hello.conf", b"old\n"), ("/etc/obsolete.conf", b"gone\n")):
        dest = root / "before" / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    (root / "template.json").write_text(tpl.dump(doc))
    return root


def modules_of(tasks):
    out = []
    for task in tasks:
        mods = [k for k in task if k.startswith("ansible.")]
        assert len(mods) == 1, task
        assert isinstance(task["name"], str) and task["name"][0].isupper()
        out.append(mods[0])
    return out


def by_name(tasks, text):
    hits = [t for t in tasks if text in t["name"]]
    assert hits, "no task named like %r in %s" % (text, [t["name"] for t in tasks])
    return hits[0]


def items(task):
    return task.get("loop", [])


# --------------------------------------------------------------------------- to_tasks

def test_to_tasks_uses_only_idempotent_fqcn_modules(bundle):
    tasks = render.to_tasks(str(bundle))
    assert set(modules_of(tasks)) <= ALLOWED_MODULES
    for task in tasks:
        if "ansible.builtin.command" in task:
            assert task["changed_when"] is False and task["check_mode"] is False


def test_to_tasks_packages_pinned_and_ordered(bundle):
    tasks = render.to_tasks(str(bundle))
    names = [t["name"] for t in tasks]
    install = by_name(tasks, "Install the packages")
    assert install["ansible.builtin.apt"]["name"] == ["nginx=1.22.1-9"]  # apt pulls nginx-common itself
    assert by_name(tasks, "Upgrade")["ansible.builtin.apt"]["name"] == ["libssl3=3.0.15-1"]
    assert by_name(tasks, "Remove the packages")["ansible.builtin.apt"] == {"name": ["apache2"], "state": "absent"}
    assert names.index(install["name"]) < names.index(by_name(tasks, "Copy the files")["name"])
    unpinned = render.to_tasks(str(bundle), {"pin_versions": False, "install_auto": True})
    assert by_name(unpinned, "Install the packages")["ansible.builtin.apt"]["name"] == ["nginx", "nginx-common"]
    assert by_name(unpinned, "Upgrade")["ansible.builtin.apt"]["state"] == "latest"


def test_package_files_not_copied_but_changed_conffiles_are(bundle):
    tasks = render.to_tasks(str(bundle))
    copied = [i["path"] for t in tasks if "ansible.builtin.copy" in t for i in items(t)]
    assert "/usr/share/nginx/html/index.html" not in copied
    assert "/lib/systemd/system/nginx.service" not in copied
    assert "/etc/nginx/conf.d/site.conf" in copied
    assert "/usr/local/bin/hello" in copied
    hello = [i for t in tasks if "ansible.builtin.copy" in t for i in items(t) if i["path"] == "/usr/local/bin/hello"][0]
    assert hello == {"path": "/usr/local/bin/hello", "mode": "0755", "owner": "hello", "group": "hello",
                     "src": str(bundle) + "/files/usr/local/bin/hello"}
    dirs = [i["path"] for i in items(by_name(tasks, "Create the directories"))]
    assert dirs == ["/usr/local/share/hello"]  # /usr/share/nginx comes with nginx-common


def test_config_change_restarts_its_service_inline_and_notify(bundle):
    tasks = render.to_tasks(str(bundle))
    conf = by_name(tasks, "Copy the configuration of nginx.service")
    assert [i["path"] for i in items(conf)] == ["/etc/nginx/conf.d/site.conf"]
    restart = by_name(tasks, "Restart nginx.service")
    assert restart["ansible.builtin.systemd_service"] == {"name": "nginx.service", "state": "restarted"}
    assert restart["when"][0] == "%s is changed" % conf["register"]
    notify = render.to_tasks(str(bundle), {"handlers": "notify"})
    assert by_name(notify, "Copy the configuration")["notify"] == ["Restart nginx.service"]
    assert not [t for t in notify if t["name"].startswith("Restart")]
    assert render.to_handlers(str(bundle), {"handlers": "notify"}) == [
        {"name": "Restart nginx.service", "ansible.builtin.systemd_service": {"name": "nginx.service", "state": "restarted"}}]


def test_units_users_links_perms_deletions(bundle):
    tasks = render.to_tasks(str(bundle))
    units = by_name(tasks, "Set the units")
    assert items(units) == [{"name": "nginx.service", "enabled": True, "state": "started"}]
    users = items(by_name(tasks, "Create the users"))
    assert users == [{"name": "hello", "system": True, "group": "hello", "home": "/var/lib/hello",
                      "shell": "/usr/sbin/nologin", "comment": "Hello daemon"}]
    assert "uid" not in users[0]
    with_ids = render.to_tasks(str(bundle), {"account_ids": True})
    assert items(by_name(with_ids, "Create the groups")) == [{"name": "hello", "system": True, "gid": 999}]
    assert items(by_name(with_ids, "Create the users"))[0]["uid"] == 999
    links = items(by_name(tasks, "Create the symlinks"))
    assert {"path": "/usr/local/bin/hi", "src": "hello", "owner": "root", "group": "root"} in links
    perms = items(by_name(tasks, "Apply the mode and owner"))
    assert perms == [{"path": "/var/www", "mode": "0775", "owner": "root", "group": "www-data"}]
    gone = items(by_name(tasks, "Remove the files and symlinks the capture deleted"))
    assert gone == [{"path": "/etc/obsolete.conf"}]


def test_include_exclude_and_skip_services(bundle):
    only = render.to_tasks(str(bundle), {"include": ["/usr/local"], "skip_services": True})
    paths = [i.get("path") for t in only for i in items(t) if "path" in i]
    assert paths and all(p.startswith("/usr/local/") for p in paths)
    assert "ansible.builtin.systemd_service" not in modules_of(only)
    assert not [t for t in only if "register" in t and "config" in t["register"]]
    ex = render.to_tasks(str(bundle), {"exclude": ["/etc/nginx/*"]})
    copied = [i["path"] for t in ex if "ansible.builtin.copy" in t for i in items(t)]
    assert "/etc/nginx/conf.d/site.conf" not in copied
    skip_one = render.to_tasks(str(bundle), {"skip_services": ["nginx.service"]})
    assert not [t for t in skip_one if t["name"].startswith("Set the units")]


def test_account_databases_are_never_copied(tmp_path):
    ops = {"files_modified": [fentry("/etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
                              fentry("/etc/ld.so.cache", b"cache")]}
    doc = tpl.build({"argv": ["useradd", "x"], "timestamp": "t"}, ops)
    tasks = render.to_tasks(doc, {"verify_bundle": False})
    assert not [t for t in tasks if "ansible.builtin.copy" in t]


# --------------------------------------------------------------------------- rollback

def test_rollback_tasks(bundle):
    tasks = render.to_rollback_tasks(str(bundle))
    assert set(modules_of(tasks)) <= ALLOWED_MODULES
    names = [t["name"] for t in tasks]
    stop = by_name(tasks, "Stop and disable")
    assert items(stop) == [{"name": "nginx.service", "state": "stopped", "enabled": False}]
    purge = by_name(tasks, "Purge")["ansible.builtin.apt"]
    assert purge == {"name": ["nginx", "nginx-common"], "state": "absent", "purge": True}
    assert by_name(tasks, "Reinstall")["ansible.builtin.apt"]["name"] == ["apache2=2.4.62-1"]
    down = by_name(tasks, "former versions")["ansible.builtin.apt"]
    assert down["name"] == ["libssl3=3.0.11-1"] and down["allow_downgrade"] is True
    removed = [i["path"] for i in items(by_name(tasks, "Remove the files and symlinks the capture created"))]
    assert "/usr/local/bin/hello" in removed and "/usr/share/nginx/html/index.html" not in removed
    restore = items(by_name(tasks, "Restore the files"))
    assert {"path": "/etc/hello.conf", "mode": "0600", "owner": "root", "group": "root",
            "src": str(bundle) + "/before/etc/hello.conf"} in restore
    assert "/etc/obsolete.conf" in [i["path"] for i in restore]
    assert items(by_name(tasks, "Revert the mode"))[0] == {"path": "/var/www", "mode": "0755", "owner": "root",
                                                           "group": "root"}
    assert names.index(by_name(tasks, "Remove the users")["name"]) > names.index(purge and by_name(tasks, "Purge")["name"])
    assert names.index(by_name(tasks, "Remove the groups")["name"]) > names.index(by_name(tasks, "Remove the users")["name"])


def test_rollback_removes_only_the_top_most_created_directories():
    doc = apt_template()
    ops = doc["operations"]
    for path in ("/opt/app", "/opt/app/lib", "/opt/app/lib/deep", "/usr/local/share/app"):
        ops["directories_created"].append({"path": path, "type": "directory", "permissions": "0755",
                                           "owner": "root", "group": "root", "uid": 0, "gid": 0})
    for path in ("/opt/app/lib/deep/x.so", "/opt/app/README", "/usr/local/share/app/data", "/opt/apple"):
        ops["files_created"].append(fentry(path, bundled=False))
    doc["summary"] = tpl.summarize(ops)
    tasks = render.to_rollback_tasks(doc, {"verify_bundle": False})
    dirs = [i["path"] for i in items(by_name(tasks, "Remove the directories the capture created"))]
    assert "/opt/app" in dirs and "/usr/local/share/app" in dirs
    assert "/opt/app/lib" not in dirs and "/opt/app/lib/deep" not in dirs
    removed = [i["path"] for i in items(by_name(tasks, "Remove the files and symlinks the capture created"))]
    assert "/opt/apple" in removed and "/usr/local/bin/hello" in removed
    assert not [p for p in removed if p.startswith(("/opt/app/", "/usr/local/share/app/"))]


# --------------------------------------------------------------------------- bad input

def mutate(doc, fn):
    doc = copy.deepcopy(doc)
    fn(doc)
    return doc


@pytest.mark.parametrize("change, words", [
    (lambda d: d["operations"]["files_created"][0].update(path="usr/local/bin/hello"), "usr/local/bin/hello"),
    (lambda d: d["operations"]["files_created"][0].update(path="/usr/local/../bin/x"), "/usr/local/../bin/x"),
    (lambda d: d["operations"]["files_created"][0].update(path="/proc/self/x"), "outside the allowed roots"),
    (lambda d: d["MO_template"].update(version="9.9"), "9.9"),
    (lambda d: d["operations"]["files_created"][0].update(permissions=420), "permissions"),
    (lambda d: d["operations"]["packages_installed"][0].update(name="nginx; rm -rf /"), "nginx; rm -rf /"),
    (lambda d: d["operations"]["users_created"][0].update(name="bad user"), "bad user"),
    (lambda d: d["operations"]["units_enabled"][0].update(unit="x; y"), "x; y"),
    # A path holding Jinja is no longer refused: it is emitted inert (tests/unit/test_hostile_render.py).
])
def test_bad_templates_refused_with_one_sentence(change, words):
    doc = mutate(apt_template(), change)
    with pytest.raises(render.RenderError) as err:
        render.to_tasks(doc, {"verify_bundle": False})
    msg = str(err.value)
    assert words in msg
    assert msg.endswith(".") and "\n" not in msg
    for func in (render.to_rollback_tasks, render.to_dockerfile, render.to_deb):
        with pytest.raises(render.RenderError):
            func(doc, {"verify_bundle": False})


def test_allowed_roots_configurable():
    doc = apt_template()
    with pytest.raises(render.RenderError, match="outside the allowed roots"):
        render.to_tasks(doc, {"allowed_roots": ["/usr/local"]})
    assert render.to_tasks(doc, {"allowed_roots": ["/"]})


def test_bundle_file_missing_or_wrong_sha(bundle):
    (bundle / "files/usr/local/bin/hello").write_bytes(b"tampered")
    with pytest.raises(render.RenderError, match="files/usr/local/bin/hello does not match its sha256"):
        render.to_tasks(str(bundle))
    (bundle / "files/usr/local/bin/hello").unlink()
    with pytest.raises(render.RenderError, match="lacks files/usr/local/bin/hello"):
        render.to_tasks(str(bundle))


def test_bad_options_and_sources(bundle):
    with pytest.raises(render.RenderError, match="Unknown renderer option 'pin'"):
        render.to_tasks(str(bundle), {"pin": True})
    with pytest.raises(render.RenderError, match="pin_versions"):
        render.to_tasks(str(bundle), {"pin_versions": "yes"})
    with pytest.raises(render.RenderError, match="does not exist"):
        render.to_tasks(str(bundle / "nope"))
    with pytest.raises(render.RenderError, match="not valid JSON"):
        render.to_tasks("{not json")
    with pytest.raises(render.RenderError):
        render.to_tasks(42)


def test_legacy_v21_template_renders():
    legacy = {"MO_template": {"version": "2.1", "system": "Linux", "timestamp": "2024-01-01T00:00:00",
                              "command": "make", "arguments": ["install"], "snapshots": {"pre": "a", "post": "b"},
                              "generator": "MO-capture"},
              "operations": {"files_created": [{"path": "/usr/local/bin/app", "permissions": "755", "owner": "0:0"}],
                             "directories_created": [{"path": "/usr/local/share/app"}], "permissions_changed": []},
              "summary": {}, "metadata": {"analysis_method": "strace_and_snapshot"}}
    tasks = render.to_tasks(legacy)
    assert [i["path"] for i in items(by_name(tasks, "Create the directories"))] == ["/usr/local/share/app"]


# --------------------------------------------------------------------------- Dockerfile, deb, role

def test_dockerfile(bundle):
    out = render.to_dockerfile(str(bundle))
    text = out["Dockerfile"]
    assert "FROM localhost/mo-fleet-base:bookworm" in text
    assert "apt-get install -y nginx=1.22.1-9" in text and "COPY files/ /" in text
    assert ("files/usr/local/bin/hello", str(bundle) + "/files/usr/local/bin/hello") in out["files"]
    assert "useradd --no-create-home --system --gid hello" in out["setup.sh"]
    assert "chmod 0755 -- /usr/local/bin/hello" in out["setup.sh"]
    assert "systemctl enable nginx.service" in out["setup.sh"]
    assert "FROM debian:12" in render.to_dockerfile(str(bundle), {"base_image": "debian:12"})["Dockerfile"]


def make_install_template():
    ops = {"files_created": [fentry("/usr/local/bin/hello", CONTENT["/usr/local/bin/hello"], permissions="0755"),
                             fentry("/etc/hello.conf", CONTENT["/etc/hello.conf"])],
           "directories_created": [{"path": "/usr/local/share/hello", "type": "directory", "permissions": "0755"}],
           "packages_installed": [{"name": "libc6-dev", "version": "2.36-9", "architecture": "amd64", "manual": True}],
           "units_enabled": [{"unit": "hello.service", "after": "enabled"}],
           "users_created": [{"name": "hello", "uid": 998, "gid": 998, "home": "/nonexistent", "shell": "/usr/sbin/nologin",
                              "system": True}],
           "groups_created": [{"name": "hello", "gid": 998, "system": True}]}
    return tpl.build({"argv": ["make", "install"], "timestamp": "t", "name": "hello"}, ops)


def test_deb_data():
    out = render.to_deb(make_install_template(), {"version": "2.12-1", "pin_versions": True})
    assert out["package"] == "hello" and "Version: 2.12-1" in out["control"]
    assert "Depends: libc6-dev (= 2.36-9)" in out["control"]
    assert out["conffiles"] == ["/etc/hello.conf"]
    assert ("/usr/local/bin/hello", "files/usr/local/bin/hello", "0755") in out["files"]
    assert "useradd" in out["postinst"] and "deb-systemd-helper enable hello.service" in out["postinst"]
    assert "deb-systemd-invoke stop hello.service" in out["prerm"]
    with pytest.raises(render.RenderError, match="not a Debian version"):
        render.to_deb(make_install_template(), {"version": "1 0"})


def test_role_data(bundle):
    out = render.to_role(str(bundle), role_name="nginx_site", origin="captures/h1/nginx")
    files = out["files"]
    assert set(files) == {"tasks/main.yml", "handlers/main.yml", "defaults/main.yml", "meta/main.yml",
                          "meta/argument_specs.yml", "README.md"}
    assert "captures/h1/nginx" in files["README.md"]
    assert files["defaults/main.yml"] == {"nginx_site_manage_services": True, "nginx_site_install_packages": True}
    srcs = [i["src"] for t in files["tasks/main.yml"] if "ansible.builtin.copy" in t for i in items(t)]
    assert "usr/local/bin/hello" in srcs
    assert ("files/usr/local/bin/hello", str(bundle) + "/files/usr/local/bin/hello") in out["copies"]
    with pytest.raises(render.RenderError, match="role name"):
        render.to_role(str(bundle), role_name="Bad-Name")


# --------------------------------------------------------------------------- filters

def test_filters(bundle):
    f = render_filters.FilterModule().filters()
    assert f["to_tasks"](str(bundle)) == render.to_tasks(str(bundle))
    assert f["to_rollback_tasks"](apt_template(), verify_bundle=False)
    assert f["to_dockerfile"](str(bundle))["Dockerfile"].startswith("# Generated")
    role = f["to_role"](str(bundle), role_name="nginx")
    assert from_yaml(role["files"]["tasks/main.yml"])[0]["name"]  # Ansible's loader: !unsafe
    assert role["files"]["tasks/main.yml"].startswith("---\n")
    assert f["to_deb"](make_install_template())["files"][0]["path"] == "/etc/hello.conf"
    with pytest.raises(AnsibleFilterError, match=r"^mo\.fleet\.to_tasks: .*outside the allowed roots"):
        f["to_tasks"](mutate(apt_template(), lambda d: d["operations"]["files_created"][0].update(path="/sys/x")))
    with pytest.raises(AnsibleFilterError, match="must be a template mapping or a bundle path"):
        f["to_tasks"](3)


# --------------------------------------------------------------------------- verify

class FakeProbe(object):
    def __init__(self, files, packages, units, users):
        self.files, self.packages, self.units, self.users = files, packages, units, users

    def lstat(self, path):
        f = self.files.get(path)
        if f is None:
            return None
        kind = {"file": stat.S_IFREG, "directory": stat.S_IFDIR, "symlink": stat.S_IFLNK}[f["type"]]
        return os.stat_result((kind | int(f.get("mode", "0644"), 8), 0, 0, 1, f.get("uid", 0), f.get("gid", 0), 0, 0, 0, 0))

    def sha256(self, path):
        return self.files[path].get("sha256")

    def readlink(self, path):
        return self.files[path].get("target")

    def user_name(self, uid):
        return {0: "root", 999: "hello"}.get(uid)

    def group_name(self, gid):
        return {0: "root", 999: "hello", 33: "www-data"}.get(gid)

    def user(self, name):
        return self.users.get(name)

    def group(self, name):
        return {} if name in self.users else None

    def package(self, name):
        return self.packages.get(name)

    def unit(self, name):
        return self.units.get(name, {"enabled": None, "active": "inactive"})


def conforming_probe():
    files = {
        "/usr/local/bin/hello": {"type": "file", "mode": "0755", "uid": 999, "gid": 999, "sha256": sha(CONTENT["/usr/local/bin/hello"])},
        "/etc/nginx/conf.d/site.conf": {"type": "file", "sha256": sha(CONTENT["/etc/nginx/conf.d/site.conf"])},
        "/usr/share/nginx/html/index.html": {"type": "file", "sha256": sha(b"default")},
        "/lib/systemd/system/nginx.service": {"type": "file", "sha256": sha(b"[Unit]\n")},
        "/etc/hello.conf": {"type": "file", "sha256": sha(CONTENT["/etc/hello.conf"])},
        "/usr/local/share/hello": {"type": "directory", "mode": "0750", "uid": 999, "gid": 999},
        "/usr/share/nginx": {"type": "directory", "mode": "0755"},
        "/usr/local/bin/hi": {"type": "symlink", "target": "hello"},
        "/etc/nginx/sites-enabled/default": {"type": "symlink", "target": "/etc/nginx/sites-available/default"},
        "/var/www": {"type": "directory", "mode": "0775", "gid": 33},
    }
    packages = {"nginx": "1.22.1-9", "nginx-common": "1.22.1-9", "libssl3": "3.0.15-1"}
    units = {"nginx.service": {"enabled": "enabled", "active": "active"}}
    users = {"hello": {"home": "/var/lib/hello", "shell": "/usr/sbin/nologin"}}
    return FakeProbe(files, packages, units, users)


def test_verify_conforming_and_drift():
    doc = apt_template()
    result = verify.check(doc, {}, conforming_probe())
    assert result["conforms"], result["drift"]
    probe = conforming_probe()
    probe.files["/usr/local/bin/hello"]["mode"] = "0700"
    probe.files["/etc/hello.conf"]["sha256"] = sha(b"edited")
    probe.files["/etc/obsolete.conf"] = {"type": "file"}
    probe.packages["nginx"] = "1.22.1-8"
    probe.packages["apache2"] = "2.4.62-1"
    probe.units["nginx.service"] = {"enabled": "disabled", "active": "inactive"}
    del probe.users["hello"]
    drift = verify.check(doc, {}, probe)["drift"]
    found = set((d["name"], d["check"]) for d in drift)
    assert found == {("/usr/local/bin/hello", "mode"), ("/etc/hello.conf", "content"), ("/etc/obsolete.conf", "present"),
                     ("nginx", "version"), ("apache2", "installed"), ("nginx.service", "enabled"),
                     ("nginx.service", "active"), ("hello", "present")}
    assert verify.describe_drift(drift[0])
    loose = verify.check(doc, {"check_versions": False, "skip_services": True, "check_content": False,
                               "exclude": ["/usr/local", "/etc/obsolete.conf"]}, probe)["drift"]
    assert set((d["name"], d["check"]) for d in loose) == {("apache2", "installed"), ("hello", "present")}


# --------------------------------------------------------------------------- property tests

SEGMENT = st.text(alphabet=st.sampled_from("abcXYZ019._-{}% $;:'\"\\\n"), min_size=1, max_size=6)
PATH = st.one_of(
    st.builds(lambda r, parts: r + "/" + "/".join(parts), st.sampled_from(["/etc", "/usr/local", "/opt", "/proc", "", "/srv"]),
              st.lists(SEGMENT, min_size=1, max_size=3)),
    st.sampled_from(["relative/x", "/usr/../etc/x", "/etc/./x", "/", "//etc//x", "/etc/x\x00y"]),
)
NAME = st.one_of(st.sampled_from(["nginx", "hello", "www-data", "root"]), st.text(min_size=0, max_size=8))
MODE = st.one_of(st.none(), st.sampled_from(["0644", "0755", "4755", "0000"]), st.text(max_size=5), st.integers(0, 4095))
OWNER = st.one_of(st.none(), NAME)


def file_entries(kind):
    return st.builds(
        lambda path, mode, owner, group, bundled, package, target, conffile: dict(
            {"path": path, "type": kind, "permissions": mode, "owner": owner, "group": group, "bundled": bundled,
             "hash": sha(path.encode("utf-8", "replace")) if bundled else None, "package": package},
            **({"target": target} if kind == "symlink" else {}), **({"conffile": conffile} if conffile else {})),
        PATH, MODE, OWNER, OWNER, st.booleans(), st.one_of(st.none(), st.sampled_from(["nginx", "nginx-common", "Bad Pkg"])),
        st.one_of(st.none(), SEGMENT), st.booleans())


PACKAGE = st.builds(lambda n, v, a, m: {"name": n, "version": v, "architecture": a, "manual": m},
                    st.one_of(st.sampled_from(["nginx", "nginx-common", "libssl3"]), NAME),
                    st.one_of(st.sampled_from(["1.0-1", "2:3.4~rc1"]), st.text(max_size=6)),
                    st.sampled_from(["amd64", "all", "x y"]), st.one_of(st.none(), st.booleans()))
UNIT = st.builds(lambda u: {"unit": u}, st.one_of(st.sampled_from(["nginx.service", "a@.service", "x.timer"]), NAME))
ACCOUNT = st.builds(lambda n, h, s, uid: {"name": n, "home": h, "shell": s, "uid": uid, "gid": uid, "system": True},
                    NAME, st.one_of(st.none(), PATH), st.one_of(st.none(), st.sampled_from(["/bin/sh", "nologin"])),
                    st.one_of(st.none(), st.integers(-1, 70000)))

OPERATIONS = st.fixed_dictionaries({}, optional={
    "files_created": st.lists(file_entries("file"), max_size=4),
    "files_modified": st.lists(file_entries("file"), max_size=3),
    "files_deleted": st.lists(file_entries("file"), max_size=2),
    "directories_created": st.lists(file_entries("directory"), max_size=3),
    "directories_deleted": st.lists(file_entries("directory"), max_size=2),
    "symlinks_created": st.lists(file_entries("symlink"), max_size=3),
    "packages_installed": st.lists(PACKAGE, max_size=3),
    "packages_removed": st.lists(PACKAGE, max_size=2),
    "packages_upgraded": st.lists(PACKAGE, max_size=2),
    "units_enabled": st.lists(UNIT, max_size=2),
    "units_started": st.lists(UNIT, max_size=2),
    "users_created": st.lists(ACCOUNT, max_size=2),
    "groups_created": st.lists(ACCOUNT, max_size=2),
})

OPTIONS = st.fixed_dictionaries({}, optional={
    "pin_versions": st.booleans(), "install_auto": st.booleans(),
    "skip_services": st.one_of(st.booleans(), st.lists(st.sampled_from(["nginx.service"]))),
    "handlers": st.sampled_from(["inline", "notify", "none", "bogus"]),
    "include": st.lists(st.sampled_from(["/etc", "/usr/local", "/opt/*", "relative"]), max_size=2),
    "exclude": st.lists(st.sampled_from(["/etc/x", "/srv"]), max_size=1),
    "account_ids": st.booleans(),
})


def raw_template(operations):
    """A template assembled without build()'s normalisation, so bad data reaches the renderers."""
    ops = tpl.empty_operations()
    for op, entries in operations.items():
        ops[op] = entries
    return {"MO_template": {"version": tpl.TEMPLATE_VERSION, "system": "", "timestamp": "t", "command": "x",
                            "arguments": "", "snapshots": {"pre": None, "post": None}, "generator": "g",
                            "status": "succeeded"},
            "operations": ops, "summary": tpl.summarize(ops),
            "metadata": {"analysis_method": "snapshot", "template_version": tpl.TEMPLATE_VERSION}}


def check_task_list(tasks):
    assert isinstance(tasks, list)
    assert set(modules_of(tasks)) <= ALLOWED_MODULES
    # plain data, written by the one emitter and read back the same by Ansible's loader
    assert json.loads(json.dumps(from_yaml(inert_yaml.dump(tasks)))) == json.loads(json.dumps(tasks))
    json.dumps(tasks)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPERATIONS, OPTIONS)
def test_property_every_renderer_gives_a_valid_result_or_a_clear_error(operations, options):
    doc = raw_template(operations)
    opts = dict(options, verify_bundle=False)
    for func in (render.to_tasks, render.to_rollback_tasks, render.to_handlers):
        try:
            check_task_list(func(doc, opts))
        except render.RenderError as exc:
            msg = str(exc)
            assert msg and msg.endswith(".") and "Traceback" not in msg
    for func in (render.to_dockerfile, render.to_deb):
        try:
            out = func(doc, opts)
            assert isinstance(out, dict)
        except render.RenderError as exc:
            assert str(exc).endswith(".")
    try:
        role = render.to_role(doc, {k: v for k, v in opts.items() if k != "handlers"}, role_name="r")
        check_task_list(role["files"]["tasks/main.yml"])
        check_task_list(role["files"]["handlers/main.yml"])
    except render.RenderError as exc:
        assert str(exc).endswith(".")


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
                    lambda children: st.one_of(st.lists(children, max_size=3),
                                               st.dictionaries(st.text(max_size=8), children, max_size=4)),
                    max_leaves=12))
def test_property_garbage_is_refused_cleanly(garbage):
    for candidate in (garbage, {"MO_template": garbage, "operations": garbage}):
        if isinstance(candidate, str):
            candidate = "{" + candidate
        for func in (render.to_tasks, render.to_rollback_tasks, render.to_dockerfile, render.to_deb):
            with pytest.raises(render.RenderError):
                func(candidate, {"verify_bundle": False})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPERATIONS)
def test_property_fast_checker_agrees_with_the_schema(operations):
    doc = raw_template(operations)
    assert bool(render.fast_errors(doc)) == bool(tpl.validate(doc))


def test_user_without_gid_joins_its_same_name_group():
    doc = tpl.build({"argv": ["x"], "timestamp": "t"}, {
        "users_created": [{"name": "svc", "system": True, "home": "/nonexistent"}],
        "groups_created": [{"name": "svc", "system": True}]})
    assert items(by_name(render.to_tasks(doc), "Create the users"))[0]["group"] == "svc"
    assert "useradd --no-create-home --system --gid svc" in render.to_dockerfile(doc)["setup.sh"]


def test_deb_architecture_follows_compiled_content(tmp_path):
    from ansible_collections.mo.fleet.plugins.module_utils._render.api import RenderError, deb_architecture
    elf, script = tmp_path / "bin", tmp_path / "script"
    elf.write_bytes(b"\x7fELF\x02\x01\x01")
    script.write_text("#!/bin/sh\n")
    assert deb_architecture(None, "debian 12 (x86_64)", [str(script)]) == "all"
    assert deb_architecture(None, "debian 12 (x86_64)", [str(script), str(elf)]) == "amd64"
    assert deb_architecture(None, "debian 12 (aarch64)", [str(elf)]) == "arm64"
    assert deb_architecture("armhf", "debian 12 (x86_64)", [str(elf)]) == "armhf"
    with pytest.raises(RenderError, match="names no known machine"):
        deb_architecture(None, "debian 12", [str(elf)])
    with pytest.raises(RenderError, match="not a Debian architecture"):
        deb_architecture("AMD 64", "debian 12 (x86_64)", [str(elf)])
