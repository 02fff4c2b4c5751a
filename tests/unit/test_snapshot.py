"""snapshot.py: walk, diff, rescan, redaction, dpkg/apt/systemd/passwd readers, operations."""

import os
import stat

import pytest

from ansible_collections.mo.fleet.plugins.module_utils._capture import snapshot as snap
from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl

KEY = b"-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----\n"


def make_tree(root):
    (root / "etc/app").mkdir(parents=True)
    (root / "opt/old/deep").mkdir(parents=True)
    (root / "etc/app/app.conf").write_text("a=1\n")
    (root / "etc/app/drop.conf").write_text("drop\n")
    (root / "opt/old/deep/f").write_text("old\n")
    (root / "opt/mode").write_text("m\n")
    (root / "opt/link").symlink_to("mode")
    (root / "skip").mkdir()
    (root / "skip/ignored").write_text("x")
    (root / "opt/cache.tmp").write_text("x")
    return root


def empty_state():
    return {"packages": {}, "conffiles": {}, "auto": set(),
            "units": {"available": False, "files": {}, "active": {}},
            "accounts": {"users": {}, "groups": {}}}


def test_walk_records_types_targets_and_honours_excludes(tmp_path):
    root = make_tree(tmp_path / "r")
    s = snap.walk([str(root)], [str(root / "skip"), str(root) + "/opt/*.tmp"])
    assert s.entries[str(root / "opt/link")].type == "symlink"
    assert s.entries[str(root / "opt/link")].target == "mode"
    assert s.entries[str(root / "etc/app")].type == "directory"
    assert s.entries[str(root / "etc/app/app.conf")].size == 4
    assert str(root / "skip") not in s.entries and str(root / "skip/ignored") not in s.entries
    assert str(root / "opt/cache.tmp") not in s.entries
    assert len(s) == len([p for p in root.rglob("*")]) + 1 - 3  # + root itself, - skip, ignored, cache.tmp
    # a root inside an excluded tree is not walked at all
    assert len(snap.walk([str(root / "skip")], [str(root / "skip")])) == 0


def test_walk_has_no_cap_on_files(tmp_path):
    many = tmp_path / "many"
    many.mkdir()
    for i in range(3000):
        (many / ("f%d" % i)).write_bytes(b"")
    assert len(snap.walk([str(many)], [])) == 3001


def change_tree(root):
    (root / "etc/app/app.conf").write_text("a=2\n")
    (root / "etc/app/drop.conf").unlink()
    os.chmod(root / "opt/mode", 0o600)
    (root / "opt/new/sub").mkdir(parents=True)
    (root / "opt/new/sub/tool").write_text("built\n")
    (root / "opt/link").unlink()
    (root / "opt/link").symlink_to("new/sub/tool")
    for p in sorted((root / "opt/old").rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    (root / "opt/old").rmdir()
    (root / "opt/old").write_text("now a file\n")


def test_diff_classifies_every_change(tmp_path):
    root = make_tree(tmp_path / "r")
    before = snap.walk([str(root)], [])
    change_tree(root)
    after = snap.walk([str(root)], [])
    ch = snap.diff(before, after)
    r = str(root)
    assert set(ch.created) == {r + "/opt/new", r + "/opt/new/sub", r + "/opt/new/sub/tool", r + "/opt/old"}
    assert set(ch.deleted) == {r + "/etc/app/drop.conf", r + "/opt/old", r + "/opt/old/deep", r + "/opt/old/deep/f"}
    assert r + "/etc/app/app.conf" in ch.modified and r + "/opt/link" in ch.modified
    assert ch.meta == [r + "/opt/mode"]


def test_rescan_of_touched_paths_equals_a_full_walk(tmp_path):
    root = make_tree(tmp_path / "r")
    before = snap.walk([str(root)], [])
    change_tree(root)
    r = str(root)
    touched = {
        r + "/etc/app/app.conf": {"modify", "close_write"}, r + "/etc/app/drop.conf": {"delete"},
        r + "/opt/mode": {"attrib"}, r + "/opt/new": {"create"}, r + "/opt/link": {"delete", "create"},
        r + "/opt/old": {"delete", "create"},
    }
    fast = snap.rescan(before, touched)
    full = snap.walk([str(root)], [])
    assert fast.entries == full.entries
    assert snap.diff(before, fast) == snap.diff(before, full)


@pytest.mark.parametrize("path, reason", [
    ("/etc/shadow", "shadow"), ("/etc/gshadow-", "shadow"), ("/etc/ssh/ssh_host_ed25519_key", "SSH host"),
    ("/root/.netrc", "netrc"), ("/srv/app/credentials.json", "credentials"), ("/home/u/.pgpass", "credentials"),
    ("/opt/app/db_password.txt", None), ("/root/.ssh/id_rsa", "credentials"),
])
def test_redaction_by_name(path, reason):
    got = snap.redaction_reason(path)
    if reason is None:
        assert got is None or "credentials" in got
    else:
        assert got and reason in got
    assert snap.redaction_reason("/etc/ssh/ssh_host_ed25519_key.pub") is None
    assert snap.redaction_reason("/root/.ssh/id_rsa.pub") is None
    assert snap.redaction_reason("/etc/passwd") is None


def test_hash_file_finds_private_keys_across_chunks(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 1000 + KEY)
    sha, md5, found = snap.hash_file(str(path), chunk=1010)
    assert found and len(sha) == 64 and len(md5) == 32
    path.write_bytes(b"-----BEGIN CERTIFICATE-----\nabc\n")
    assert snap.hash_file(str(path))[2] is False


def test_build_operations_bundles_content_keeps_before_and_redacts(tmp_path):
    root = make_tree(tmp_path / "r")
    r = str(root)
    stash = snap.Stash(str(tmp_path / "stash"), [r + "/etc"])
    before = snap.walk([r], [])
    assert stash.take(before) == 2
    change_tree(root)
    (root / "opt/deploy_key").write_bytes(KEY)
    (root / "opt/.netrc").write_text("machine x password y\n")
    after = snap.walk([r], [])
    ops, content, stats = snap.build_operations(before, after, empty_state(), empty_state(), stash=stash)
    by = {op: {e["path"]: e for e in ops[op]} for op in ops}
    conf = by["files_modified"][r + "/etc/app/app.conf"]
    assert conf["bundled"] and conf["before_bundled"] and conf["before"]["size"] == 4
    assert conf["before"]["hash"] == snap.hash_file(str(tmp_path / "stash" / (r + "/etc/app/app.conf").lstrip("/")))[0]
    dropped = by["files_deleted"][r + "/etc/app/drop.conf"]
    assert dropped["before_bundled"] and dropped["hash"]
    assert (r + "/etc/app/drop.conf", "before", stash.path_of(r + "/etc/app/drop.conf")) in content
    assert (r + "/opt/new/sub/tool", "files", r + "/opt/new/sub/tool") in content
    assert by["symlinks_modified"][r + "/opt/link"]["target"] == "new/sub/tool"
    assert by["symlinks_modified"][r + "/opt/link"]["before"]["target"] == "mode"
    assert by["permissions_changed"][r + "/opt/mode"]["before"]["permissions"] == "0644"
    assert by["permissions_changed"][r + "/opt/mode"]["after"]["permissions"] == "0600"
    assert set(by["directories_deleted"]) == {r + "/opt/old", r + "/opt/old/deep"}
    assert by["files_created"][r + "/opt/old"]["type"] == "file"
    assert by["redacted"][r + "/opt/deploy_key"]["reason"] == "private key found in the content"
    assert "netrc" in by["redacted"][r + "/opt/.netrc"]["reason"]
    assert not any(p in (r + "/opt/deploy_key", r + "/opt/.netrc") for p, _a, _s in content)
    assert stats["hashed"] >= 3
    # the operations make a valid template
    ops["excluded"] = snap.excluded_entries(list(snap.DEFAULT_EXCLUDE))
    doc = tpl.build({"argv": ["x"], "timestamp": "t", "status": "succeeded"}, ops)
    assert doc["summary"]["total_redacted"] == 2
    assert {e["path"] for e in doc["operations"]["excluded"]} >= {"/proc", "/var/lib/dpkg"}
    stash.cleanup()
    assert not (tmp_path / "stash").exists()


def test_system_state_changes_become_operations(tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    s = snap.walk([str(root)], [])
    b, a = empty_state(), empty_state()
    b["packages"] = {("libold", "amd64"): {"name": "libold", "version": "1", "architecture": "amd64", "status": "installed"},
                     ("tool", "amd64"): {"name": "tool", "version": "1.0", "architecture": "amd64", "status": "installed"}}
    a["packages"] = {("tool", "amd64"): {"name": "tool", "version": "1.1", "architecture": "amd64", "status": "installed"},
                     ("nginx", "amd64"): {"name": "nginx", "version": "1.22", "architecture": "amd64", "status": "installed"},
                     ("libnew", "amd64"): {"name": "libnew", "version": "3", "architecture": "amd64", "status": "installed"}}
    a["auto"] = {("libnew", "amd64")}
    b["units"] = {"available": True, "files": {"cron.service": "enabled", "old.service": "disabled"},
                  "active": {"cron.service": "active"}}
    a["units"] = {"available": True, "files": {"cron.service": "disabled", "nginx.service": "enabled"},
                  "active": {"nginx.service": "active", "cron.service": "inactive"}}
    b["accounts"] = {"users": {"root": {"name": "root", "uid": 0, "gid": 0, "gecos": "", "home": "/root", "shell": "/bin/sh"}},
                     "groups": {"adm": {"name": "adm", "gid": 4, "members": []}}}
    a["accounts"] = {"users": {"root": {"name": "root", "uid": 0, "gid": 0, "gecos": "", "home": "/root", "shell": "/bin/bash"},
                               "www": {"name": "www", "uid": 33, "gid": 33, "gecos": "", "home": "/var/www", "shell": "/usr/sbin/nologin"}},
                     "groups": {"adm": {"name": "adm", "gid": 4, "members": ["www"]}, "www": {"name": "www", "gid": 33, "members": []}}}
    ops, _c, _s = snap.build_operations(s, s, b, a)
    names = lambda op: [e.get("name") or e.get("unit") for e in ops[op]]  # noqa: E731
    assert sorted(names("packages_installed")) == ["libnew", "nginx"]
    manual = {p["name"]: p["manual"] for p in ops["packages_installed"]}
    assert manual == {"nginx": True, "libnew": False}
    assert ops["packages_upgraded"] == [{"name": "tool", "version": "1.1", "version_before": "1.0",
                                         "architecture": "amd64", "manual": True, "status": "installed"}]
    assert names("packages_removed") == ["libold"]
    assert names("units_added") == ["nginx.service"] and names("units_removed") == ["old.service"]
    assert names("units_disabled") == ["cron.service"] and names("units_enabled") == ["nginx.service"]
    assert names("units_started") == ["nginx.service"] and names("units_stopped") == ["cron.service"]
    assert names("users_created") == ["www"] and ops["users_created"][0]["system"] is True
    assert ops["users_changed"][0]["after"]["shell"] == "/bin/bash"
    assert names("groups_created") == ["www"] and names("groups_changed") == ["adm"]


def test_parsers():
    text = ("P\tbase-files\t12.4\tamd64\tinstall ok installed\n /etc/issue 349d61a0e072d678e3e94923f0c3ce0e\n"
            " /etc/old.conf 0123 obsolete\nP\tgone\t1\tall\tdeinstall ok config-files\n /etc/gone.conf abc\n"
            "P\tlib\t2\tamd64\tinstall ok unpacked\n")
    packages, conffiles = snap.parse_dpkg_query(text)
    assert set(packages) == {("base-files", "amd64"), ("lib", "amd64")}
    assert conffiles["/etc/issue"] == ("base-files", "349d61a0e072d678e3e94923f0c3ce0e", False)
    assert conffiles["/etc/old.conf"][2] is True and conffiles["/etc/gone.conf"][0] == "gone"
    auto = snap.parse_extended_states("Package: a\nArchitecture: amd64\nAuto-Installed: 1\n\n"
                                      "Package: b\nArchitecture: amd64\nAuto-Installed: 0\n")
    assert auto == {("a", "amd64")}
    users = snap.parse_passwd("root:x:0:0:root:/root:/bin/bash\nbad line\n")
    assert users["root"]["shell"] == "/bin/bash" and len(users) == 1
    groups = snap.parse_group("sudo:x:27:alice,bob\n")
    assert groups["sudo"]["members"] == ["alice", "bob"]
    assert snap.parse_unit_files("ssh.service enabled enabled\ncron.service disabled -\n") == {
        "ssh.service": "enabled", "cron.service": "disabled"}
    assert snap.parse_units("ssh.service loaded active running OpenSSH\n") == {"ssh.service": "active"}


def test_owners_and_md5sums_from_dpkg_info(tmp_path):
    info = tmp_path / "info"
    info.mkdir()
    (info / "coreutils.list").write_text("/.\n/bin\n/bin/ls\n/usr/share/doc/coreutils\n")
    (info / "libc6:amd64.list").write_text("/lib/x86_64-linux-gnu/libc.so.6\n")
    (info / "coreutils.md5sums").write_text("0123456789abcdef0123456789abcdef  bin/ls\n")
    got = snap.owners(["/usr/bin/ls", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/share/doc/coreutils", "/opt/x"],
                      info_dir=str(info))
    assert got == {"/usr/bin/ls": "coreutils", "/usr/lib/x86_64-linux-gnu/libc.so.6": "libc6",
                   "/usr/share/doc/coreutils": "coreutils"}
    assert snap.read_md5sums("coreutils", info_dir=str(info)) == {"/bin/ls": "0123456789abcdef0123456789abcdef"}


def test_read_state_on_this_machine():
    state = snap.read_state()
    assert ("dpkg", "amd64") in state["packages"] or any(n == "dpkg" for n, _a in state["packages"])
    assert "/etc/debian_version" in state["conffiles"]
    assert "root" in state["accounts"]["users"]
    if state["units"]["available"]:
        assert any(u.endswith(".service") for u in state["units"]["files"])


def test_stat_helpers():
    st = os.lstat("/")
    assert snap.file_type(st.st_mode) == "directory"
    assert snap.make_stat(st).mode == stat.S_IMODE(st.st_mode)


def test_names_that_are_not_utf8_are_excluded_with_a_reason(tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    os.mkdir(os.path.join(os.fsencode(str(root)), b"bad\xff"))
    (root / "good").write_text("")
    s = snap.walk([str(root)], [])
    assert str(root / "good") in s.entries and len(s.unnamed) == 1
    entries = snap.excluded_entries([], unnamed=s.unnamed)
    # issue 11: the reason now also names line breaks and control characters (see below)
    assert entries == [{"path": str(root) + "/bad\\xff", "reason": snap.excluded_entries(
        [], unnamed=["/x\n"])[0]["reason"], "change": "excluded"}]
    assert "not valid UTF-8" in entries[0]["reason"]
    doc = tpl.build({"argv": ["x"], "timestamp": "t"}, {"excluded": entries})
    assert tpl.loads(tpl.dump(doc)) == doc


@pytest.mark.parametrize("name", ["a\nb", "a\rb", "a\u2028b", "a\x85b", "a\x1cb", "a\x7fb", "\tx"])
def test_names_with_line_breaks_are_excluded_never_captured(tmp_path, name):
    root = tmp_path / "r"
    root.mkdir()
    before = snap.walk([str(root)], [])
    (root / name).write_text("x")
    (root / "caf\u00e9 ok").write_text("x")
    after = snap.walk([str(root)], [])
    assert list(after.unnamed) == [str(root / name)]
    assert str(root / "caf\u00e9 ok") in after.entries and str(root / name) not in after.entries
    excluded = snap.excluded_entries([], unnamed=after.unnamed)
    assert "\n" not in excluded[0]["path"] and "line break" in excluded[0]["reason"]
    rescanned = snap.rescan(before, {str(root / name): {"create"}, str(root): {"modify"}}, [str(root)], [])
    assert str(root / name) in rescanned.unnamed
    doc = tpl.build({"argv": ["x"], "timestamp": "t"}, {"excluded": excluded})
    assert tpl.loads(tpl.dump(doc)) == doc


LIST_UNIT_FILES = snap._run(["systemctl", "list-unit-files", "--no-legend", "--no-pager"])


@pytest.mark.skipif(LIST_UNIT_FILES is None, reason="systemctl list-unit-files does not work here")
def test_unit_states_from_the_walk_match_systemctl():
    walked = snap.walk(["/etc/systemd/system", "/usr/lib/systemd/system"], [])
    states, paths = snap.unit_files(walked)
    real = snap.parse_unit_files(LIST_UNIT_FILES)
    for state in ("enabled", "masked", "alias"):
        assert {u for u, v in states.items() if v == state} == {u for u, v in real.items() if v == state}, state
    assert all(p.startswith(snap.UNIT_DIRS) for p in paths.values())
    assert snap.unit_dirs_covered(["/"], list(snap.DEFAULT_EXCLUDE))
    assert not snap.unit_dirs_covered(["/opt"], [])
    assert not snap.unit_dirs_covered(["/"], ["/etc/systemd"])


def test_unit_files_from_a_tree_of_symlinks(tmp_path):
    s = snap.Snapshot(["/"], [])
    S = snap.Stat
    s.entries = {
        "/usr/lib/systemd/system/app.service": S("file", 0o644, 0, 0, 10, 0, 1, None),
        "/usr/lib/systemd/system/getty@.service": S("file", 0o644, 0, 0, 10, 0, 2, None),
        "/usr/lib/systemd/system/old.service": S("file", 0o644, 0, 0, 10, 0, 3, None),
        "/etc/systemd/system/app.service": S("file", 0o644, 0, 0, 10, 0, 4, None),
        "/etc/systemd/system/multi-user.target.wants/app.service": S("symlink", 0o777, 0, 0, 0, 0, 5, "/etc/systemd/system/app.service"),
        "/etc/systemd/system/getty.target.wants/getty@tty1.service": S("symlink", 0o777, 0, 0, 0, 0, 6, "/usr/lib/systemd/system/getty@.service"),
        "/etc/systemd/system/old.service": S("symlink", 0o777, 0, 0, 0, 0, 7, "/dev/null"),
    }
    states, paths = snap.unit_files(s)
    assert states == {"app.service": "enabled", "getty@.service": "enabled", "old.service": "masked"}
    assert paths["app.service"] == "/etc/systemd/system/app.service"


def test_rescan_survives_bogus_events_for_paths_that_did_not_change(tmp_path):
    """fanotify on a shared filesystem reports other roots' names too; rescan must re-read, not trust."""
    root = make_tree(tmp_path / "r")
    r = str(root)
    before = snap.walk([r], [])
    bogus = {r + "/etc": {"delete"}, r + "/opt": {"moved_from"}, r + "/nowhere": {"create"}, r + "/etc/app/app.conf": {"delete"}}
    fast = snap.rescan(before, bogus, [r], [])
    assert fast.entries == snap.walk([r], []).entries
    assert snap.diff(before, fast) == snap.Changes([], [], [], [])
