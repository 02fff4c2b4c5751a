"""The apply engine (module_utils/_render/apply.py) on a temp directory tree, and the path plan
(module_utils/_render/apply_plan.py) rendered from a bundle whose paths lie in that tree."""

import hashlib
import io
import json
import os
import stat
import tarfile

import pytest

from ansible_collections.mo.fleet.plugins.module_utils._render import apply
from ansible_collections.mo.fleet.plugins.module_utils._render import apply_plan
from ansible_collections.mo.fleet.plugins.module_utils._render import api as render
from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.plugin_utils import _bundle_apply as engine

from test_render import bundle, by_name, fentry, sha  # noqa: F401 (bundle: a fixture)


def content_tar(path, blobs):
    """A content archive as the action plugin ships it: members named by sha256."""
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for data in blobs:
            info = tarfile.TarInfo(sha(data))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return apply.ContentArchive(str(path))


def tree_bundle(tmp_path, host):
    """A bundle whose paths lie below HOST (a temp directory standing in for a target)."""
    h = str(host)
    text, binary = b"line one\nline two\n", bytes(range(256)) * 4
    files = {h + "/app/etc/app.conf": text, h + "/app/bin/tool": binary, h + "/app/etc/copy.conf": text}
    ops = {
        "directories_created": [{"path": h + "/app", "type": "directory", "permissions": "0755", "owner": "root",
                                 "group": "root"},
                                {"path": h + "/app/bin", "type": "directory", "permissions": "0750"},
                                {"path": h + "/app/etc", "type": "directory", "permissions": "0755"}],
        "files_created": [fentry(p, data, permissions="0755" if p.endswith("tool") else "0640")
                          for p, data in sorted(files.items())],
        "symlinks_created": [{"path": h + "/app/current", "type": "symlink", "target": "bin"}],
        "files_deleted": [fentry(h + "/old.txt", b"old", bundled=False)],
        "permissions_changed": [{"path": h + "/shared", "type": "directory",
                                 "before": {"permissions": "0755"}, "after": {"permissions": "0750"}}],
    }
    doc = tpl.build({"argv": ["make", "install"], "timestamp": "2026-01-01T00:00:00", "name": "app",
                     "host": "h1", "status": "succeeded"}, ops, {})
    root = tmp_path / "bundle"
    for path, data in files.items():
        dest = root / "files" / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    (root / "template.json").write_text(tpl.dump(doc))
    return root, files


@pytest.fixture
def host(tmp_path):
    root = tmp_path / "host"
    root.mkdir()
    (root / "shared").mkdir(mode=0o755)
    (root / "shared").chmod(0o755)
    (root / "old.txt").write_bytes(b"old")
    return root


def plan_of(bundle_dir, host):
    return apply_plan.path_plan(str(bundle_dir), {"allowed_roots": [str(host)]})


def run(plan, tmp_path, check=False, diff=False, ship=True):
    items = apply.unpack(apply.pack(apply.check_plan(plan["items"])))  # as the module gets them
    probe = apply.converge(items, check=True, diff=diff)
    if check or not probe["changed"]:
        return probe
    blobs = [open(plan["sources"][d], "rb").read() for d in probe["need"]] if ship else []
    archive = content_tar(tmp_path / "content.tar", blobs) if probe["need"] else None
    return apply.converge(items, archive)


def snapshot(root):
    out = {}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(base, name)
            st = os.lstat(path)
            data = os.readlink(path) if stat.S_ISLNK(st.st_mode) else (
                open(path, "rb").read() if stat.S_ISREG(st.st_mode) else None)
            out[path] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, data)
    return out


def test_plan_follows_to_tasks_order_and_names_every_content(tmp_path, host):
    root, files = tree_bundle(tmp_path, host)
    plan = plan_of(root, host)
    states = [(i["state"], i["path"][len(str(host)):]) for i in plan["items"]]
    assert states == [("directory", "/app"), ("directory", "/app/bin"), ("directory", "/app/etc"),
                      ("file", "/app/bin/tool"), ("file", "/app/etc/app.conf"), ("file", "/app/etc/copy.conf"),
                      ("link", "/app/current"), ("attrs", "/shared"), ("absent", "/old.txt")]
    # two paths share one content: it is named (and shipped) once
    assert sorted(plan["sources"]) == sorted(set(sha(d) for d in files.values()))
    for digest, local in plan["sources"].items():
        assert sha(open(local, "rb").read()) == digest


def test_converge_check_is_exact_and_writes_nothing_then_apply_then_unchanged(tmp_path, host):
    root, files = tree_bundle(tmp_path, host)
    plan = plan_of(root, host)
    before = snapshot(host)
    dry = run(plan, tmp_path, check=True)
    assert snapshot(host) == before
    assert [(c["path"][len(str(host)):], c["what"]) for c in dry["changes"]] == [
        ("/app", ["created"]), ("/app/bin", ["created"]), ("/app/etc", ["created"]),
        ("/app/bin/tool", ["created"]), ("/app/etc/app.conf", ["created"]), ("/app/etc/copy.conf", ["created"]),
        ("/app/current", ["created"]), ("/shared", ["mode 0755 -> 0750"]), ("/old.txt", ["removed"])]
    assert dry["need"] == sorted(set(sha(d) for d in files.values()))

    done = run(plan, tmp_path)
    assert done["changed"] and len(done["changes"]) == len(dry["changes"])
    for path, data in files.items():
        assert open(path, "rb").read() == data
    assert stat.S_IMODE(os.stat(str(host) + "/app/bin").st_mode) == 0o750
    assert stat.S_IMODE(os.stat(str(host) + "/app/bin/tool").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(str(host) + "/app/etc/app.conf").st_mode) == 0o640
    assert os.readlink(str(host) + "/app/current") == "bin"
    assert stat.S_IMODE(os.stat(str(host) + "/shared").st_mode) == 0o750
    assert not os.path.exists(str(host) + "/old.txt")
    assert not [n for n in os.listdir(str(host) + "/app/etc") if n.startswith(".mo-fleet")]

    after = snapshot(host)
    again = run(plan, tmp_path)
    assert again == {"changed": False, "changes": [], "need": [], "before": {}, "after": {}}
    assert snapshot(host) == after


def test_drift_in_content_mode_and_link_is_found_and_repaired_with_a_diff(tmp_path, host):
    root, files = tree_bundle(tmp_path, host)
    plan = plan_of(root, host)
    run(plan, tmp_path)
    conf = str(host) + "/app/etc/app.conf"
    with open(conf, "ab") as handle:
        handle.write(b"drift\n")
    os.chmod(str(host) + "/app/bin/tool", 0o700)
    with open(str(host) + "/app/bin/tool", "r+b") as handle:
        handle.write(b"\xff\xfe")
    os.unlink(str(host) + "/app/current")
    os.symlink("elsewhere", str(host) + "/app/current")
    shown = run(plan, tmp_path, check=True, diff=True)
    assert [(c["path"][len(str(host)):], c["what"]) for c in shown["changes"]] == [
        ("/app/bin/tool", ["content"]), ("/app/etc/app.conf", ["content"]), ("/app/current", ["target"])]
    assert shown["before"][conf] == "line one\nline two\ndrift\n"
    assert shown["before"][str(host) + "/app/bin/tool"].startswith("(binary file of 1024 bytes, sha256 ")
    assert shown["need"] == sorted({sha(files[conf]), sha(files[str(host) + "/app/bin/tool"])})
    fixed = run(plan, tmp_path)
    assert len(fixed["changes"]) == 3
    assert open(conf, "rb").read() == files[conf]
    assert stat.S_IMODE(os.stat(str(host) + "/app/bin/tool").st_mode) == 0o755
    assert os.readlink(str(host) + "/app/current") == "bin"
    assert not run(plan, tmp_path)["changed"]


def test_mode_only_drift_needs_no_content(tmp_path, host):
    root, _files = tree_bundle(tmp_path, host)
    plan = plan_of(root, host)
    run(plan, tmp_path)
    os.chmod(str(host) + "/app/etc/app.conf", 0o666)
    probe = apply.converge(apply.check_plan(plan["items"]), check=True)
    assert probe["need"] == [] and probe["changes"][0]["what"] == ["mode 0666 -> 0640"]
    assert apply.converge(apply.check_plan(plan["items"]))["changed"]
    assert stat.S_IMODE(os.stat(str(host) + "/app/etc/app.conf").st_mode) == 0o640


def test_module_task_keeps_the_order_and_the_restart_of_a_changed_configuration(bundle):
    plan = apply_plan.path_plan(str(bundle), {})
    paths = [i["path"] for i in plan["items"]]
    assert "/usr/local/bin/hello" in paths
    assert "/etc/nginx/conf.d/site.conf" not in paths  # nginx's configuration: its own copy task
    # packages, accounts, the one module run, the restart-tied copy, units, the restart
    tasks = render.to_tasks(str(bundle), {"apply_module": True})
    names = [t["name"] for t in tasks]
    module = by_name(tasks, "(one run)")
    assert module["mo.fleet.bundle_apply"] == {"bundle": str(bundle), "options": {}}
    assert names.index("Install the packages the capture installed") < names.index(module["name"])
    assert names.index("Create the users the capture created") < names.index(module["name"])
    copy = by_name(tasks, "Copy the configuration of nginx.service")
    assert [i["path"] for i in copy["loop"]] == ["/etc/nginx/conf.d/site.conf"]
    assert names.index(module["name"]) < names.index(copy["name"]) < names.index(
        "Set the units to the state the capture left them in")
    restart = by_name(tasks, "Restart nginx.service")
    assert str(restart["when"][0]) == "%s is changed" % copy["register"]
    assert [t for t in tasks if "ansible.builtin.copy" in t or "ansible.builtin.file" in t] == [copy]
    only = by_name(render.to_tasks(str(bundle), {"apply_module": True, "include": ["/etc/nginx"]}), "(one run)")
    assert only["mo.fleet.bundle_apply"]["options"] == {"include": ["/etc/nginx"]}


def test_rollback_plan_removes_created_and_restores_before_content(bundle):
    plan = apply_plan.path_plan(str(bundle), {}, rollback=True)
    states = dict((i["path"], i["state"]) for i in plan["items"])
    assert states["/usr/local/bin/hello"] == "absent"
    assert states["/usr/local/share/hello"] == "absent"
    assert states["/etc/hello.conf"] == "file" and states["/etc/obsolete.conf"] == "file"
    restored = [i for i in plan["items"] if i["path"] == "/etc/hello.conf"][0]
    assert restored["sha256"] == sha(b"old\n") and restored["mode"] == "0600"
    assert open(plan["sources"][sha(b"old\n")], "rb").read() == b"old\n"
    assert states["/var/www"] == "attrs"
    tasks = render.to_rollback_tasks(str(bundle), {"apply_module": True})
    assert by_name(tasks, "(one run)")["mo.fleet.bundle_apply"]["rollback"] is True
    assert not [t for t in tasks if "ansible.builtin.copy" in t or "ansible.builtin.file" in t]


# --------------------------------------------------------------------------- hostile plans and content

@pytest.mark.parametrize("item, message", [
    ({"path": "/srv/../etc/passwd", "state": "file", "sha256": "0" * 64}, "items/0/path '/srv/../etc/passwd' contains a '.' or '..' component."),
    ({"path": "srv/x", "state": "directory"}, "items/0/path 'srv/x' is not absolute."),
    ({"path": "/", "state": "absent"}, "items/0/path is /, which no template may create or delete."),
    ({"path": "/srv/x", "state": "device"}, "items/0/state must be one of"),
    ({"path": "/srv/x", "state": "file", "sha256": "abc"}, "items/0/sha256 must be 64 lower-case hex digits"),
    ({"path": "/srv/x", "state": "file", "sha256": "0" * 64, "mode": "4755x"}, "items/0/mode must be an octal mode"),
    ({"path": "/srv/x", "state": "directory", "owner": "root\nx"}, "items/0/owner must be a user or group name"),
    ({"path": "/srv/x", "state": "link", "target": "a\nb"}, "items/0/target must be one line"),
    ([], "items/0 must be a mapping, not list."),
])
def test_hostile_items_are_refused_in_one_sentence(item, message):
    with pytest.raises(apply.ApplyError) as err:
        apply.check_plan([item])
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_a_path_below_a_symlink_of_the_plan_is_refused():
    items = [{"path": "/srv/link", "state": "link", "target": "/etc"},
             {"path": "/srv/link/shadow", "state": "file", "sha256": "0" * 64}]
    with pytest.raises(apply.ApplyError, match="lies below the symlink /srv/link"):
        apply.check_plan(items)


def test_host_symlink_at_a_file_path_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    (tmp_path / "d").mkdir()
    os.symlink(str(victim), str(tmp_path / "d" / "f"))
    data = b"new\n"
    items = apply.check_plan([{"path": str(tmp_path / "d" / "f"), "state": "file", "sha256": sha(data)}])
    apply.converge(items, content_tar(tmp_path / "c.tar", [data]))
    assert victim.read_bytes() == b"keep"
    assert not os.path.islink(str(tmp_path / "d" / "f")) and (tmp_path / "d" / "f").read_bytes() == data


@pytest.mark.skipif(os.geteuid() != 0, reason="a symlink owned by another user needs root to make")
@pytest.mark.parametrize("state", ["file", "directory", "attrs", "absent"])
def test_a_users_symlink_among_the_ancestors_is_never_followed(tmp_path, state):
    """An ordinary user who owns a directory of the plan swaps a subdirectory for a symlink to
    a root-owned place: the apply (root) refuses in one sentence, in check mode too, and
    nothing there changes."""
    target = tmp_path / "etc-ld.so.conf.d"
    target.mkdir()
    (target / "app.conf").write_bytes(b"root's\n")
    os.chmod(target / "app.conf", 0o600)
    app = tmp_path / "srv-app"
    app.mkdir()
    os.symlink(str(target), str(app / "conf"))
    os.lchown(str(app / "conf"), 1000, 1000)
    data = b"evil\n"
    item = {"path": str(app / "conf" / "app.conf"), "state": state}
    if state == "file":
        item.update(sha256=sha(data), mode="0644")
    elif state in ("directory", "attrs"):
        item.update(mode="0777", owner="1000")
    items = apply.check_plan([item])
    before = snapshot(target)
    for check in (True, False):
        with pytest.raises(apply.ApplyError, match=r"^.*/srv-app/conf/app\.conf lies below .*/srv-app/conf, a symlink "
                                                   r"on this host owned by uid 1000, not root; the apply does not follow it\.$"):
            apply.converge(items, content_tar(tmp_path / f"c{check}.tar", [data]), check=check)
    assert snapshot(target) == before


def test_roots_symlinks_among_the_ancestors_are_followed(tmp_path):
    """Merged /usr: /lib -> usr/lib is root's, and a unit below it is written through it."""
    (tmp_path / "usr" / "lib").mkdir(parents=True)
    os.symlink("usr/lib", str(tmp_path / "lib"))
    data = b"[Unit]\n"
    items = apply.check_plan([{"path": str(tmp_path / "lib" / "x.service"), "state": "file", "sha256": sha(data)}])
    apply.converge(items, content_tar(tmp_path / "c.tar", [data]))
    assert (tmp_path / "usr" / "lib" / "x.service").read_bytes() == data


def test_attributes_are_never_set_through_a_symlink(tmp_path):
    """A symlink swapped in where a regular file was checked: setting the mode fails (ELOOP)
    instead of changing the link's target."""
    victim = tmp_path / "shadow"
    victim.write_bytes(b"x")
    os.chmod(victim, 0o600)
    os.symlink(str(victim), str(tmp_path / "swapped"))
    with pytest.raises(OSError):
        apply._set_attrs({"path": str(tmp_path / "swapped"), "owner": None, "group": None, "mode": "0666"},
                         str(tmp_path / "swapped"), apply._Ids())
    assert stat.S_IMODE(os.stat(victim).st_mode) == 0o600


def test_content_archive_refuses_odd_members_oversize_and_wrong_bytes(tmp_path):
    odd = tmp_path / "odd.tar"
    with tarfile.open(odd, "w") as tar:
        info = tarfile.TarInfo("../../etc/passwd")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(apply.ApplyError, match="which is not a file named by its sha256"):
        apply.ContentArchive(str(odd))
    with tarfile.open(tmp_path / "link.tar", "w") as tar:
        info = tarfile.TarInfo("0" * 64)
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tar.addfile(info)
    with pytest.raises(apply.ApplyError, match="not a file named by its sha256"):
        apply.ContentArchive(str(tmp_path / "link.tar"))
    content_tar(tmp_path / "big.tar", [b"a" * 100, b"b" * 100])
    with pytest.raises(apply.ApplyError, match="more than 150 bytes"):
        apply.ContentArchive(str(tmp_path / "big.tar"), max_bytes=150)
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all" * 64)
    with pytest.raises(apply.ApplyError, match="cannot be read|not a valid tar"):
        apply.ContentArchive(str(tmp_path / "junk.tar"))
    # content that does not hash to what the plan says is never renamed into place
    lie = tmp_path / "lie.tar"
    with tarfile.open(lie, "w") as tar:
        info = tarfile.TarInfo(sha(b"good"))
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    (tmp_path / "t").mkdir()
    items = apply.check_plan([{"path": str(tmp_path / "t" / "f"), "state": "file", "sha256": sha(b"good")}])
    with pytest.raises(apply.ApplyError, match="does not match its sha256"):
        apply.converge(items, apply.ContentArchive(str(lie)))
    assert os.listdir(str(tmp_path / "t")) == []


def test_missing_owner_and_directory_in_the_way_fail_in_one_sentence(tmp_path):
    items = apply.check_plan([{"path": str(tmp_path / "x"), "state": "directory", "owner": "no-such-user-mo"}])
    with pytest.raises(apply.ApplyError, match=r"^The user no-such-user-mo of .* does not exist on this host\.$"):
        apply.converge(items)
    # check mode: the user task before this run creates it for real only; reported, not fatal
    (tmp_path / "x").mkdir()
    dry = apply.converge(items, check=True)
    assert dry["changes"][0]["what"] == ["owner 0 -> no-such-user-mo (not on this host yet)"]
    (tmp_path / "d").mkdir()
    items = apply.check_plan([{"path": str(tmp_path / "d"), "state": "file", "sha256": sha(b"x")}])
    with pytest.raises(apply.ApplyError, match="is a directory on this host, where the plan puts a file"):
        apply.converge(items, check=True)


def test_hostile_bundle_is_refused_before_any_plan(tmp_path, host):
    root, _files = tree_bundle(tmp_path, host)
    (root / "files" / "extra").write_bytes(b"unlisted")
    with pytest.raises(render.RenderError, match="does not list"):
        plan_of(root, host)
    os.unlink(str(root / "files" / "extra"))
    first = sorted((root / "files").rglob("app.conf"))[0]
    first.write_bytes(b"tampered\n")
    with pytest.raises(render.RenderError, match="does not match its sha256"):
        plan_of(root, host)
    assert hashlib  # (sha256 from test_render's helper)


def test_role_with_the_module_carries_its_code_and_plan(bundle, tmp_path):
    from ansible_collections.mo.fleet.plugins.filter import render as render_filters
    import json
    out = render_filters.to_role(str(bundle), role_name="web", apply_module=True)
    assert out["archive"] is None and out["archive_changed"] is False
    copies = dict((c["dest"], c["src"]) for c in out["copies"])
    for rel in ("library/mo_fleet_bundle_apply.py", "action_plugins/mo_fleet_bundle_apply.py",
                "action_plugins/mo_fleet_bundle_apply_engine.py", "module_utils/mo_fleet_fs.py",
                "module_utils/mo_fleet_apply.py", "module_utils/mo_fleet_paths.py", "module_utils/mo_fleet_names.py"):
        assert os.path.isfile(copies[rel]), rel
    assert copies["files/usr/local/bin/hello"].endswith("/files/usr/local/bin/hello")
    plan = json.loads(out["files"]["files/mo-fleet-plan.json"])
    hello = [i for i in plan["items"] if i["path"] == "/usr/local/bin/hello"][0]
    assert plan["sources"][hello["sha256"]] == "usr/local/bin/hello"  # relative to the role's files/
    tasks = out["files"]["tasks/main.yml"]
    assert "  mo_fleet_bundle_apply: !unsafe\n    plan: \"mo-fleet-plan.json\"\n" in tasks
    assert "mo.fleet." not in tasks and "Copy the configuration of nginx.service" in tasks
    assert "mo_fleet_bundle_apply" in out["files"]["README.md"]


def test_role_plan_sources_stay_below_the_plan_and_cover_every_file(tmp_path):
    import json
    from ansible.errors import AnsibleActionFail
    from ansible_collections.mo.fleet.plugins.action import bundle_apply as action
    files = tmp_path / "files"
    (files / "usr").mkdir(parents=True)
    (files / "usr" / "f").write_bytes(b"x")
    (tmp_path / "secret").write_bytes(b"s")
    item = {"path": "/usr/f", "state": "file", "sha256": sha(b"x")}
    plan = files / "plan.json"
    plan.write_text(json.dumps({"items": [item], "sources": {sha(b"x"): "usr/f"}}))
    items, sources = action.read_plan(str(plan))
    assert items == [item] and sources == {sha(b"x"): str(files / "usr" / "f")}
    for bad, message in (({sha(b"x"): "../secret"}, "which is not a file below it"),
                         ({}, "has no source for the file /usr/f")):
        plan.write_text(json.dumps({"items": [item], "sources": bad}))
        with pytest.raises(AnsibleActionFail, match=message):
            action.read_plan(str(plan))
    plan.write_text("{not json")
    with pytest.raises(AnsibleActionFail, match="is not JSON"):
        action.read_plan(str(plan))


def test_a_generated_roles_action_plugin_uses_its_own_copies_of_the_engine_and_the_reader(tmp_path):
    """The role's action_plugins/ copy loads the engine and fs.py the role carries (ansible-core
    imports no other file of a role), even where the collection is installed too, and they
    import nothing but the standard library and ansible-core."""
    import ast
    import importlib.util
    import json
    import shutil
    import sys
    role = tmp_path / "role"
    for rel, source in apply_plan.ROLE_CODE:
        (role / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, role / rel)
    spec = importlib.util.spec_from_file_location("ansible.plugins.action.mo_fleet_bundle_apply",
                                                  role / "action_plugins" / "mo_fleet_bundle_apply.py")
    action = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(action)
    assert action.engine.__file__ == str(role / "action_plugins" / "mo_fleet_bundle_apply_engine.py")
    assert action.fs.__file__ == str(role / "module_utils" / "mo_fleet_fs.py")
    (role / "files" / "usr").mkdir(parents=True)
    (role / "files" / "usr" / "f").write_bytes(b"x")
    item = {"path": "/usr/f", "state": "file", "sha256": sha(b"x")}
    (role / "files" / "plan.json").write_text(json.dumps({"items": [item], "sources": {sha(b"x"): "usr/f"}}))
    assert action.read_plan(str(role / "files" / "plan.json")) == ([item], {sha(b"x"): str(role / "files" / "usr" / "f")})
    for rel in ("action_plugins/mo_fleet_bundle_apply_engine.py", "module_utils/mo_fleet_fs.py"):
        tree = ast.parse((role / rel).read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
        names += [n.module for n in top if isinstance(n, ast.ImportFrom)]
        assert all(n.split(".")[0] in sys.stdlib_module_names | {"__future__", "ansible"} for n in names), (rel, names)


def test_a_fresh_host_is_told_by_one_shell_test_of_quoted_paths_that_runs_nothing_they_say(tmp_path):
    """ActionModule._fresh: every digest when none of the sampled files exists (so the content
    goes first and one module run follows), nothing once one of them exists, in check or diff
    mode, or over the cap; hostile file names stay words of the one command (run here by sh)."""
    import subprocess
    import types
    from ansible_collections.mo.fleet.plugins.action import bundle_apply as action
    names = ["plain", "it's", "$(touch PWNED)", "`touch PWNED`", "a b;touch PWNED", "line\nbreak", "*", "-e"]
    items = [{"path": str(tmp_path / "host" / name), "state": "file", "sha256": sha(name.encode())} for name in names]
    items += [{"path": str(tmp_path / "host"), "state": "directory"}, {"path": 7, "state": "file", "sha256": "x"}]
    source = tmp_path / "content"
    source.write_bytes(b"12345")
    sources = dict((item["sha256"], str(source)) for item in items if item["state"] == "file")
    commands = []

    def shell(cmd, sudoable=True):
        commands.append((cmd, sudoable))
        return {"rc": subprocess.run(["sh", "-c", cmd], cwd=str(tmp_path), check=False).returncode}

    fake = types.SimpleNamespace(_task=types.SimpleNamespace(check_mode=False, diff=False),
                                 _low_level_execute_command=shell)
    (tmp_path / "host").mkdir()
    assert action.ActionModule._fresh(fake, items, sources, 10 ** 6) == sorted(set(i["sha256"] for i in items[:8]))
    assert len(commands) == 1 and commands[0][1] is False and not (tmp_path / "PWNED").exists()
    (tmp_path / "host" / "line\nbreak").write_text("here")
    assert action.ActionModule._fresh(fake, items, sources, 10 ** 6) == []
    assert not (tmp_path / "PWNED").exists() and not list((tmp_path / "host").glob("touch*"))
    assert action.ActionModule._fresh(fake, items[:1], sources, 4) == []  # over the cap: no round trip
    fake._task.check_mode = True
    assert action.ActionModule._fresh(fake, items[:1], sources, 10 ** 6) == []
    fake._task.check_mode, fake._task.diff = False, True
    assert action.ActionModule._fresh(fake, items[:1], sources, 10 ** 6) == []
    assert len(commands) == 2


# --------------------------------------------------------------------------- what an item leaves out

def test_a_content_change_without_a_mode_keeps_the_existing_files_mode_and_owner(tmp_path):
    """A template without permissions (hand-written, or from the seed's format): the new content
    keeps the 0600 and the owner of the file it replaces, as ansible.builtin.copy does, and check
    mode says only what changes; a new file is 0644."""
    secret = tmp_path / "secret.conf"
    secret.write_bytes(b"password=old\n")
    os.chmod(secret, 0o600)
    os.chown(secret, 1000, 1000)
    data = b"password=new\n"
    items = apply.check_plan([{"path": str(secret), "state": "file", "sha256": sha(data)},
                              {"path": str(tmp_path / "new.conf"), "state": "file", "sha256": sha(data)}])
    probe = apply.converge(items, check=True)
    assert [c["what"] for c in probe["changes"]] == [["content"], ["created"]]
    apply.converge(items, content_tar(tmp_path / "c.tar", [data]))
    st = os.stat(secret)
    assert (secret.read_bytes(), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (data, 0o600, 1000, 1000)
    assert stat.S_IMODE(os.stat(tmp_path / "new.conf").st_mode) == 0o644
    assert apply.converge(items, check=True)["changed"] is False


@pytest.mark.parametrize("item, message", [
    ({"path": "/srv/x", "state": "directory", "owner": "\u00b2"}, "items/0/owner must be a user or group name or a number"),
    ({"path": "/srv/x", "state": "directory", "group": "\u0663"}, "items/0/group must be a user or group name or a number"),
    ({"path": "/srv/x", "state": "file", "sha256": "0" * 64, "size": -1}, "items/0/size must be a non-negative integer"),
    ({"path": "/srv/x", "state": "file", "sha256": "0" * 64, "size": "12"}, "items/0/size must be a non-negative integer"),
    ({"path": "/srv/x", "state": "file", "sha256": "0" * 64, "size": True}, "items/0/size must be a non-negative integer"),
])
def test_digits_that_are_not_ascii_and_bad_sizes_are_refused_in_one_sentence(item, message):
    with pytest.raises(apply.ApplyError) as err:
        apply.check_plan([item])
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_file_of_another_size_is_not_hashed(tmp_path, monkeypatch):
    """The plan's size is kept, so a same-path file of another size differs without a read,
    and a no-change run hashes each file once."""
    (tmp_path / "a").write_bytes(b"short")
    data = b"a longer content\n"
    items = apply.check_plan([{"path": str(tmp_path / "a"), "state": "file", "sha256": sha(data), "size": len(data)}])
    hashed = []
    real = apply.sha256_of
    monkeypatch.setattr(apply, "sha256_of", lambda p: hashed.append(p) or real(p))
    assert apply.converge(items, check=True)["changes"][0]["what"] == ["content"] and hashed == []
    apply.converge(items, content_tar(tmp_path / "c.tar", [data]))
    hashed.clear()
    assert apply.converge(items, check=True)["changed"] is False and hashed == [str(tmp_path / "a")]


# --------------------------------------------------------------------------- the action plugin's checks

@pytest.mark.parametrize("result, key", [
    ({}, "changed"),
    ({"changed": "yes", "changes": [], "need": []}, "changed"),
    ({"changed": True, "changes": [{"path": "/x", "state": "file"}], "need": []}, "changes"),
    ({"changed": True, "changes": [{"path": "/x", "state": "file", "what": []}], "need": []}, "changes"),
    ({"changed": True, "changes": ["x"], "need": []}, "changes"),
    ({"changed": True, "changes": [], "need": [1]}, "need"),
    ({"changed": True, "changes": [], "need": [], "before": []}, "before"),
])
def test_a_hostile_module_result_is_one_sentence_not_a_traceback(result, key):
    from ansible.errors import AnsibleActionFail
    with pytest.raises(AnsibleActionFail) as err:
        engine.check_result(result, "web1")
    assert str(err.value.message) == (f"web1 returned a bundle_apply result whose {key} is not what the module "
                                      "returns; nothing was shipped.")
    good = {"changed": True, "changes": [{"path": "/x", "state": "file", "what": ["content"]}], "need": ["0" * 64]}
    assert engine.check_result(good, "web1") is good


def test_a_source_that_does_not_match_its_sha256_is_refused_before_anything_is_shipped(tmp_path, monkeypatch):
    """A generated role's files/ edited after it was written: the controller hashes each source
    while it builds the tar, so the host is never half converged by a mismatch found mid-run."""
    import tempfile
    from ansible.errors import AnsibleActionFail

    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_bytes(b"good\n")
    bad.write_bytes(b"edited\n")
    need = [sha(b"good\n"), sha(b"original\n")]
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    with pytest.raises(AnsibleActionFail, match=r"^The source .*/bad does not match its sha256 [0-9a-f]{64}; "
                                                r"nothing was shipped or changed\.$"):
        engine.content_tar(need, {need[0]: str(good), need[1]: str(bad)}, 10 ** 9)
    assert os.listdir(tmp_path / "tmp") == []  # no half-written tar left behind
    local = engine.content_tar(need[:1], {need[0]: str(good)}, 10 ** 9)
    try:
        with tarfile.open(local) as tar:
            assert [(m.name, tar.extractfile(m).read()) for m in tar] == [(need[0], b"good\n")]
    finally:
        os.unlink(local)
    with pytest.raises(AnsibleActionFail, match=r"^The content to ship exceeds max_content_bytes \(4\)\.$"):
        engine.content_tar(need[:1], {need[0]: str(good)}, 4)


# --------------------------------------------------------------------------- conffile patches

DEFAULT_CONF = "".join(f"# setting {i}\nkey{i}=default\n" for i in range(1, 30))


def conffile_bundle(tmp_path, host, captured):
    """A capture that changed one line of a package's conffile, with the diff confdiff records."""
    import difflib
    path = str(host) + "/etc/app.conf"
    data = captured.encode()
    diff = "".join(difflib.unified_diff(DEFAULT_CONF.splitlines(True), captured.splitlines(True),
                                        f"{path} (packaged)", f"{path} (host)"))
    ops = {"files_modified": [fentry(path, data, conffile=True, conffile_changed=True, package="app")]}
    doc = tpl.build({"argv": ["vi", path], "timestamp": "2026-01-01T00:00:00", "name": "conf", "host": "h1",
                     "status": "succeeded"}, ops, {"conffile_diffs": [{"path": path, "package": "app",
                                                                        "version": "1.0", "diff": diff}]})
    root = tmp_path / "bundle"
    (root / "files" / path.lstrip("/")).parent.mkdir(parents=True)
    (root / "files" / path.lstrip("/")).write_bytes(data)
    (root / "template.json").write_text(tpl.dump(doc))
    return root, path


def test_a_changed_conffile_is_patched_and_the_hosts_own_difference_stays(tmp_path, host):
    """The capture changed key20; the target's packaged file differs elsewhere (key3, and a line
    fewer at the end): the patch keeps both, ships nothing, and a second run changes nothing."""
    captured = DEFAULT_CONF.replace("key20=default", "key20=captured")
    root, path = conffile_bundle(tmp_path, host, captured)
    plan = plan_of(root, host)
    (item,) = [i for i in plan["items"] if i["path"] == path]
    assert item["patch"].startswith(f"--- {path} (packaged)")
    (host / "etc").mkdir()
    theirs = DEFAULT_CONF.replace("key3=default", "key3=this host's").replace("# setting 29\nkey29=default\n", "")
    (host / "etc" / "app.conf").write_text(theirs)
    items = apply.check_plan(plan["items"])
    probe = apply.converge(items, check=True, diff=True)
    change = [c for c in probe["changes"] if c["path"] == path]
    assert change == [{"path": path, "state": "file", "what": ["content (patch)"]}]
    assert sha(captured.encode()) not in probe["need"]  # the host computes the patched text: nothing shipped
    assert probe["after"][path] == theirs.replace("key20=default", "key20=captured")
    run(plan, tmp_path)
    text = (host / "etc" / "app.conf").read_text()
    assert "key20=captured" in text and "key3=this host's" in text and "key29" not in text
    again = apply.converge(items, check=True)
    assert [c for c in again["changes"] if c["path"] == path] == []


def test_where_the_patch_does_not_apply_the_whole_file_is_replaced_and_it_says_so(tmp_path, host):
    captured = DEFAULT_CONF.replace("key20=default", "key20=captured")
    root, path = conffile_bundle(tmp_path, host, captured)
    plan = plan_of(root, host)
    (host / "etc").mkdir()
    (host / "etc" / "app.conf").write_text(DEFAULT_CONF.replace("key20=default", "key20=someone else's"))
    items = apply.check_plan(plan["items"])
    probe = apply.converge(items, check=True)
    assert [c["what"] for c in probe["changes"] if c["path"] == path] == [[apply.WHOLE]]
    assert sha(captured.encode()) in probe["need"]
    run(plan, tmp_path)
    assert (host / "etc" / "app.conf").read_text() == captured
    # conffile_patch false: replaced whole, as ansible.builtin.copy would
    (host / "etc" / "app.conf").write_text(DEFAULT_CONF)
    assert [c["what"] for c in apply.converge(items, check=True, patch=False)["changes"]
            if c["path"] == path] == [["content"]]


@pytest.mark.parametrize("patch, words", [
    ("--- a\n+++ b\n@@ -1 +1 @@\n-x\n+\x1b[2J\n", "without control characters"),
    ("--- a\n+++ b\n@@ -1,3 +1,1 @@\n-x\n+y\n", "is not a unified diff: The diff's last hunk is shorter"),
    ("rm -rf /\n", "is not a unified diff: Line 1 of the diff is neither a file header nor a hunk."),
    (7, "without control characters"),
])
def test_a_hostile_patch_is_refused_in_one_sentence(patch, words):
    with pytest.raises(apply.ApplyError) as err:
        apply.check_plan([{"path": "/etc/x.conf", "state": "file", "sha256": "0" * 64, "patch": patch}])
    assert str(err.value).startswith("items/0/patch ") and words in str(err.value) and "\n" not in str(err.value)


def test_textpatch_applies_at_an_offset_and_knows_when_it_is_applied():
    from ansible_collections.mo.fleet.plugins.module_utils._render import textpatch
    import difflib
    new = DEFAULT_CONF.replace("key5=default", "key5=x") + "added=1\n"
    diff = "".join(difflib.unified_diff(DEFAULT_CONF.splitlines(True), new.splitlines(True), "a", "b"))
    shifted = "# a local header\n# of three\n# lines\n" + DEFAULT_CONF
    out, done = textpatch.converge(shifted, diff)
    assert not done and out == "# a local header\n# of three\n# lines\n" + new
    assert textpatch.converge(out, diff) == (out, True)
    assert textpatch.converge(DEFAULT_CONF.replace("key5=default", "key5=y"), diff) == (None, False)


# --------------------------------------------------------------------------- the manifest, one task

def test_the_manifest_is_rows_the_plugin_and_the_engine_agree_on(tmp_path, host):
    """The action plugin (which a generated role carries without module_utils) and the engine
    write the same rows, and the engine reads back the plan it was given."""
    root, _files = tree_bundle(tmp_path, host)
    items = apply.check_plan(plan_of(root, host)["items"])
    packed = apply.pack(items)
    assert engine.FIELDS == apply.FIELDS and engine.pack(items) == packed
    assert set(len(row) for row in packed["rows"]) == {len(apply.FIELDS)}
    assert apply.unpack(packed) == items
    assert apply.unpack(json.dumps(packed, separators=(",", ":"))) == items  # the text the plugin sends


@pytest.mark.parametrize("manifest, message", [
    ([], "manifest must be a mapping whose fields are path, state"),
    ({"fields": ["path", "state"], "rows": []}, "manifest must be a mapping whose fields are path, state"),
    ({"fields": list(apply.FIELDS), "rows": {}}, "manifest/rows must be a list of rows."),
    ({"fields": list(apply.FIELDS), "rows": [["/srv/x", "directory"]]}, "manifest/rows/0 must be a list of 9 values."),
    ({"fields": list(apply.FIELDS), "rows": [["/srv/../etc", "directory"] + [None] * 7]}, "items/0/path"),
    ({"fields": list(apply.FIELDS), "rows": [["/srv/x", "file"] + [None] * 7]}, "items/0/sha256 must be 64"),
    ('{"fields": ["path"', "manifest is not JSON"),
    ('["/srv/x"]', "manifest must be a mapping whose fields are path, state"),
])
def test_a_hostile_manifest_is_refused_in_one_sentence(manifest, message):
    with pytest.raises(apply.ApplyError) as err:
        apply.unpack(manifest)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_only_a_bundle_of_paths_is_one_task(tmp_path, host, bundle):  # noqa: F811 (bundle: a fixture)
    """A capture of paths only (directories, files, links, modes, removals) is converged by the
    module task alone, for apply and for rollback; one with packages, accounts or a unit to
    restart (test_render's bundle) needs its rendered tasks."""
    (tmp_path / "paths").mkdir()
    root, _files = tree_bundle(tmp_path / "paths", host)
    prep = render.prepare(str(root), {"allowed_roots": [str(host)]})
    assert apply_plan.only_paths(prep) and apply_plan.only_paths(prep, rollback=True)
    assert apply_plan.plan_of(prep) == plan_of(root, host)
    prep = render.prepare(str(bundle))
    assert not apply_plan.only_paths(prep) and not apply_plan.only_paths(prep, rollback=True)
