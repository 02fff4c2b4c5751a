"""Issue 11: every template and bundle is hostile.

A valid template holding every kind of entry is mutated at EVERY field path with hostile
values (wrong types, huge and negative numbers, 1e30, NaN, Jinja, line breaks of every kind,
NUL, '..', case-twisted field names).  template.load, render.prepare and verify either refuse
with exactly one sentence naming that field (TemplateError / RenderError, never another
exception) or accept.
"""

import copy
import math
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.mo.fleet.plugins.module_utils._render import api as render
from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._capture import verify
from ansible_collections.mo.fleet.plugins.module_utils._common import paths

SHA = "a" * 64
STATE = {"type": "file", "size": 3, "permissions": "0644", "owner": "root", "group": "root", "uid": 0,
         "gid": 0, "hash": SHA, "modified": 1700000000, "target": None}


def full_template():
    """One valid template with every document kind and every field filled."""
    file_entry = dict(STATE, path="/opt/app/app.conf", package="app-data", conffile=True,
                      conffile_changed=True, package_default=False, bundled=True, processes=["app"],
                      before=dict(STATE), before_bundled=True, legacy_hash="md5:1")
    link = {"path": "/opt/app/current", "type": "symlink", "target": "releases/1", "permissions": "0777",
            "owner": "root", "group": "root", "uid": 0, "gid": 0, "modified": 1.5}
    ops = {
        "files_modified": [file_entry],
        "files_deleted": [dict(STATE, path="/opt/old/x.txt")],
        "directories_created": [{"path": "/opt/app", "type": "directory", "permissions": "0755",
                                 "owner": "app", "group": "app", "uid": 990, "gid": 990}],
        "symlinks_created": [link],
        "permissions_changed": [{"path": "/opt/app/bin", "type": "directory", "package": None,
                                 "before": dict(STATE, type="directory", size=None, hash=None),
                                 "after": dict(STATE, type="directory", size=None, hash=None, permissions="0750")}],
        "excluded": [{"path": "/var/cache/app", "reason": "cache", "type": "directory", "change": "excluded"}],
        "redacted": [{"path": "/etc/app/secret.key", "reason": "private key", "type": "file",
                      "change": "created", "package": None}],
        "packages_installed": [{"name": "app-data", "version": "1:2.0-1", "architecture": "all",
                                "manual": True, "status": "installed"}],
        "packages_upgraded": [{"name": "libfoo1", "version": "2.0-1", "version_before": "1.0-1",
                               "architecture": "amd64", "manual": False}],
        "units_added": [{"unit": "app.service", "path": "/etc/systemd/system/app.service", "state": "enabled",
                         "active": "active"}],
        "units_enabled": [{"unit": "app.service", "before": "disabled", "after": "enabled"}],
        "users_created": [{"name": "app", "uid": 990, "gid": 990, "gecos": "App user", "home": "/opt/app",
                           "shell": "/usr/sbin/nologin", "system": True}],
        "users_changed": [{"name": "www-data", "before": {"name": "www-data", "uid": 33, "gid": 33, "gecos": "www",
                                                          "home": "/var/www", "shell": "/usr/sbin/nologin"},
                           "after": {"name": "www-data", "uid": 33, "gid": 33, "gecos": "www",
                                     "home": "/srv/www", "shell": "/usr/sbin/nologin"}}],
        "groups_created": [{"name": "app", "gid": 990, "members": ["www-data"], "system": True}],
        "groups_changed": [{"name": "adm", "before": {"name": "adm", "gid": 4, "members": []},
                            "after": {"name": "adm", "gid": 4, "members": ["app"]}}],
    }
    meta = {"argv": ["make", "install"], "timestamp": "2026-01-01T00:00:00", "name": "app", "host": "web1",
            "chdir": "/root", "shell": False, "status": "succeeded", "rc": 0, "duration": 1.25,
            "system": "Debian 12", "os": {"id": "debian"}, "snapshots": {"pre": "a", "post": "b"}}
    metadata = {"roots": ["/opt"], "exclude": ["/var/cache"], "config_roots": ["/etc"], "strace_log": None,
                "trace": {"method": "none"}, "bundle": {"files": "files"}, "stats": {"hashed": 1}}
    return tpl.build(meta, ops, metadata)


def field_paths(value, prefix=()):
    """Every key path of VALUE (dict keys and list indexes), the containers' too."""
    out = []
    if isinstance(value, dict):
        for key, item in value.items():
            out.append(prefix + (key,))
            out.extend(field_paths(item, prefix + (key,)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.append(prefix + (index,))
            out.extend(field_paths(item, prefix + (index,)))
    return out


BASE = full_template()
PATHS = sorted(field_paths(BASE), key=lambda p: tuple(map(str, p)))

HOSTILE = [
    None, True, False, 0, -1, 2 ** 64, -(2 ** 63), 10 ** 30, 1e30, -1e30, math.nan, math.inf, 0.5,
    [], [1], ["a"], {}, {"x": 1}, "", "..", "/..", "/opt/../etc/shadow", "/opt/app/./x", "opt/app",
    "{{ lookup('pipe','id') }}", "{% raw %}", "a\nb", "a\rb", "a\u2028b", "a\x85b", "a\x1cb", "a\x00b",
    "/opt/app/x\nDepends: evil", "9999", "0755\n", "root\n", "x" * 70000, "ok",
]


def mutate(doc, path, value):
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def twist(doc, path):
    """Rename the last key of PATH to a case-twisted spelling (what a field-name-case-blind
    reader would take for the same field)."""
    target = doc
    for key in path[:-1]:
        target = target[key]
    key = path[-1]
    twisted = key.swapcase() if key.swapcase() != key else key + "_"
    target[twisted] = target.pop(key)
    return twisted


def one_sentence(message):
    body = message.strip()
    assert body and "\n" not in body, message
    assert "Traceback" not in body, message
    # a sentence ends once; inner periods are inside values or paths, never '. ' + capital
    # outside a quoted value
    assert body.endswith("."), message


def names_field(message, path):
    where = "/".join(str(p) for p in path)
    parent = "/".join(str(p) for p in path[:-1])
    return where in message or (parent and parent in message)


def attempt(doc):
    """(load error, prepare error): each None or the message of the one allowed exception."""
    results = []
    try:
        loaded = tpl.load(copy.deepcopy(doc))
    except tpl.TemplateError as exc:
        results.append(str(exc))
    else:
        results.append(None)
        verify.expectations(loaded)
    try:
        render.prepare(copy.deepcopy(doc), {"verify_bundle": False})
    except render.RenderError as exc:
        results.append(str(exc))
    else:
        results.append(None)
    return results


def test_the_full_template_is_valid():
    assert tpl.validate(BASE) == []
    render.prepare(copy.deepcopy(BASE), {"verify_bundle": False})
    assert len(PATHS) > 150


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), st.sampled_from(HOSTILE))
def test_hostile_value_at_every_field_is_refused_in_one_sentence_or_accepted(path, value):
    doc = copy.deepcopy(BASE)
    mutate(doc, path, value)
    for message in attempt(doc):
        if message is not None:
            one_sentence(message)
            assert names_field(message, path) or path[0] == "summary" or path[-1] in (
                "version", "template_version", "operations"), (path, value, message)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([p for p in PATHS if isinstance(p[-1], str)]))
def test_case_twisted_field_names_are_refused_by_name(path):
    doc = copy.deepcopy(BASE)
    twisted = twist(doc, path)
    for message in attempt(doc):
        if message is not None:
            one_sentence(message)
            assert twisted in message or path[-1] in message or names_field(message, path), (path, message)
    # a twisted name is never taken for the real one: free-form objects may keep it, nothing else
    free = ("os", "legacy", "trace", "bundle", "stats", "legacy_summary")
    if not any(p in free for p in path[:-1]) and path[-1] not in (
            "metadata",) and not (len(path) == 2 and path[0] == "metadata" and path[1] not in (
                "analysis_method", "template_version")):
        assert attempt(doc)[0] is not None, path


@pytest.mark.parametrize("field, value", [
    (("operations", "users_created", 0, "uid"), 1e30),
    (("operations", "groups_created", 0, "gid"), [990]),
    (("operations", "users_created", 0, "uid"), 2 ** 32),
    (("operations", "files_modified", 0, "size"), -1),
    (("operations", "files_modified", 0, "size"), 2 ** 60),
    (("operations", "files_modified", 0, "modified"), math.nan),
    (("operations", "files_modified", 0, "permissions"), "9999"),
    (("operations", "files_modified", 0, "permissions"), "07777"),
    (("operations", "files_modified", 0, "owner"), "root\n"),
    (("operations", "users_changed", 0, "after", "shell"), "/bin/sh\nroot::0:0::/:/bin/sh"),
    (("operations", "users_changed", 0, "after", "uid"), "0"),
    (("operations", "users_changed", 0, "after", "evil"), "x"),
    (("operations", "packages_installed", 0, "name"), "app\u2028x"),
    (("operations", "packages_installed", 0, "version"), "1.0\x85"),
    (("operations", "units_added", 0, "unit"), "app.service\x00"),
    (("operations", "symlinks_created", 0, "target"), "x\ny"),
    (("MO_template", "name"), "../x"),
    (("MO_template", "host"), "web1\rx"),
])
def test_named_attacks_are_refused_naming_the_field(field, value):
    doc = copy.deepcopy(BASE)
    mutate(doc, field, value)
    where = "/".join(str(p) for p in field)
    parent = "/".join(str(p) for p in field[:-1])

    def named(message):
        return where in message or (parent in message and repr(field[-1]) in message)

    with pytest.raises(tpl.TemplateError) as caught:
        tpl.load(doc)
    assert named(str(caught.value)), caught.value
    one_sentence(str(caught.value))
    with pytest.raises(render.RenderError) as caught:
        render.prepare(doc, {"verify_bundle": False})
    assert named(str(caught.value)), caught.value


# ---------------------------------------------------------------- escaping the place

def _with(doc, op, entry):
    doc = copy.deepcopy(doc)
    doc["operations"][op].append(entry)
    doc["operations"][op].sort(key=lambda e: e["path"])
    doc["summary"] = tpl.summarize(doc["operations"])
    return doc


@pytest.mark.parametrize("op, entry", [
    ("permissions_changed", {"path": "/opt/app/current/passwd", "before": None,
                             "after": dict(STATE, permissions="0666")}),
    ("files_deleted", dict(STATE, path="/opt/app/current/shadow")),
    ("directories_deleted", {"path": "/opt/app/current/ssh", "type": "directory"}),
    ("files_created", dict(STATE, path="/opt/app/current/cron.d/x", bundled=False)),
])
def test_nothing_below_a_symlink_the_template_makes(op, entry):
    evil = copy.deepcopy(BASE)
    evil["operations"]["symlinks_created"][0]["target"] = "/etc"
    evil = _with(evil, op, entry)
    with pytest.raises(render.RenderError, match="below the symlink /opt/app/current"):
        render.prepare(evil, {"verify_bundle": False})


def test_a_symlink_modified_into_a_path_counts_too():
    doc = _with(BASE, "symlinks_modified", {"path": "/opt/data", "type": "symlink", "target": "/etc"})
    doc = _with(doc, "files_deleted", dict(STATE, path="/opt/data/passwd"))
    with pytest.raises(render.RenderError, match="operations/files_deleted/.*below the symlink /opt/data"):
        render.prepare(doc, {"verify_bundle": False})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4), st.lists(
    st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4))
def test_guard_refuses_exactly_the_paths_below_a_link(link_parts, path_parts):
    link = "/" + "/".join(link_parts)
    path = "/" + "/".join(path_parts)
    below = path.startswith(link + "/")
    entries = [("link", link, "link"), ("p", path, "path")]
    if below:
        with pytest.raises(paths.PathError, match="below the symlink"):
            paths.symlink_ancestors(entries)
    else:
        paths.symlink_ancestors(entries)


@pytest.mark.parametrize("part", ["..", ".", "", "a/b", "../sibling", "x\ny", "x\x00", "/abs", "a..b"])
def test_join_refuses_parts_that_are_not_a_plain_name(tmp_path, part):
    with pytest.raises(paths.PathError, match="inventory_hostname"):
        paths.join(str(tmp_path), [part, "capture"], "inventory_hostname")


def test_join_refuses_a_symlink_out_of_the_base(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "outside").mkdir()
    os.symlink(str(tmp_path / "outside"), str(tmp_path / "base" / "web1"))
    with pytest.raises(paths.PathError, match="outside"):
        paths.join(str(tmp_path / "base"), ["web1", "nginx"], "inventory_hostname")
    assert paths.join(str(tmp_path / "base"), ["web2", "nginx"], "x") == str(tmp_path / "base" / "web2" / "nginx")


def test_the_cached_guard_answers_as_realpath_does_for_every_kind_of_path(tmp_path):
    """paths.Inside (each parent resolved once) against the uncached rule, over a tree with a
    link out of the base, a link inside it, a link in the last component, dangling links,
    '..' and '.' parts and absent paths, asked twice each (the second answer from the cache)."""
    base = tmp_path / "base"
    (base / "d" / "e").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (base / "d" / "f").write_text("x")
    os.symlink(str(tmp_path / "outside"), str(base / "out"))
    os.symlink("e", str(base / "d" / "in"))
    os.symlink(str(tmp_path / "outside" / "gone"), str(base / "d" / "e" / "dangling"))
    os.symlink("../../..", str(base / "d" / "e" / "up"))
    names = ["d", "d/f", "d/e", "d/in", "d/in/x", "out", "out/x", "d/e/dangling", "d/e/up", "d/e/up/x", "d/..",
             "d/../..", "d/./f", "absent/x", "d/e/up/base/d", "out/../base/d", ""]
    inside = paths.Inside(str(base))

    def by_realpath(candidate):
        real, root = os.path.realpath(candidate), os.path.realpath(str(base))
        return real == root or real.startswith(root + "/")

    answers = []
    for _round in range(2):
        for name in names:
            candidate = os.path.join(str(base), name)
            assert inside(candidate) == by_realpath(candidate) == paths.stays_inside(str(base), candidate), name
            answers.append(inside(candidate))
    assert True in answers and False in answers


# ---------------------------------------------------------------- bundles

def _bundle(tmp_path, doc):
    import json

    bundle = tmp_path / "bundle"
    for path, rel, _digest in tpl.bundled_files(doc):
        dest = bundle / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(b"abc")
    (bundle / "template.json").write_text(json.dumps(doc))
    return bundle


def _bundled_doc():
    import hashlib

    doc = copy.deepcopy(BASE)
    digest = hashlib.sha256(b"abc").hexdigest()
    entry = doc["operations"]["files_modified"][0]
    entry["hash"] = digest
    entry["before"]["hash"] = digest
    return doc


def test_bundle_with_an_unlisted_file_is_refused_by_render_and_verify(tmp_path):
    bundle = _bundle(tmp_path, _bundled_doc())
    render.prepare(str(bundle))
    tpl.verify_bundle(str(bundle))
    extra = bundle / "files" / "etc" / "cron.d" / "evil"
    extra.parent.mkdir(parents=True)
    extra.write_text("* * * * * root id\n")
    with pytest.raises(render.RenderError, match="files/etc/cron.d/evil, which the template does not list"):
        render.prepare(str(bundle))
    with pytest.raises(tpl.TemplateError, match="does not list"):
        tpl.verify_bundle(str(bundle))


def test_bundle_with_a_symlink_is_refused(tmp_path):
    bundle = _bundle(tmp_path, _bundled_doc())
    os.symlink("/etc", str(bundle / "files" / "link"))
    with pytest.raises(render.RenderError, match="symlink files/link"):
        render.prepare(str(bundle))
    with pytest.raises(tpl.TemplateError, match="symlink"):
        tpl.verify_bundle(str(bundle))


# ---------------------------------------------------------------- v2.1 import

def _legacy(**entry):
    base = {"path": "/usr/sbin/nginx", "size": 10, "permissions": "755", "owner": "0:0", "modified": 1}
    base.update(entry)
    return {"MO_template": {"version": "2.1", "command": "apt-get", "arguments": "install -y nginx"},
            "operations": {"files_created": [base]}, "summary": {}, "metadata": {}}


@pytest.mark.parametrize("entry, words", [
    ({"permissions": "9999"}, "operations/files_created/0/permissions"),
    ({"permissions": 0o17777}, "operations/files_created/0/permissions"),
    ({"permissions": [7, 5, 5]}, "operations/files_created/0/permissions"),
    ({"size": 10 ** 30}, "operations/files_created/0/size"),
    ({"size": -5}, "operations/files_created/0/size"),
    ({"size": "10"}, "operations/files_created/0/size"),
    ({"modified": 1e300}, "operations/files_created/0/modified"),
    ({"modified": math.nan}, "operations/files_created/0/modified"),
    ({"owner": ["0", "0"]}, "operations/files_created/0/owner"),
    ({"owner": "99999999999999:0"}, "operations/files_created/0/owner"),
    ({"owner": "root\n:0"}, "operations/files_created/0/owner"),
    ({"hash": {"md5": 1}}, "operations/files_created/0/hash"),
    ({"path": "/usr/../etc/shadow"}, "'..'"),
])
def test_v2_1_import_type_checks_every_value(entry, words):
    with pytest.raises(tpl.TemplateError) as caught:
        tpl.load(_legacy(**entry))
    assert words in str(caught.value)
    one_sentence(str(caught.value))
    with pytest.raises(render.RenderError):
        render.prepare(_legacy(**entry), {"verify_bundle": False})


def test_v2_1_modes_mean_what_chmod_means():
    assert tpl.load(_legacy(permissions="755"))["operations"]["files_created"][0]["permissions"] == "0755"
    assert tpl.load(_legacy(permissions="4755"))["operations"]["files_created"][0]["permissions"] == "4755"
    assert tpl.load(_legacy(permissions=0o644))["operations"]["files_created"][0]["permissions"] == "0644"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["MO_template", "operations", "summary", "metadata"]),
       st.sampled_from([None, 1, "x", [], [1], {"a": 1}, 1e30, True]),
       st.sampled_from(["files_created", "directories_created", "permissions_changed", "snapshots",
                        "arguments", "command", "strace_log", "analysis_method"]))
def test_v2_1_import_never_raises_anything_but_a_template_error(section, value, key):
    doc = _legacy()
    if section == "MO_template":
        doc[section][key] = value
    elif isinstance(doc.get(section), dict) and value is not None and key in ("files_created", "strace_log"):
        doc[section][key] = value
    else:
        doc[section] = value
    try:
        tpl.load(doc)
    except tpl.TemplateError as exc:
        one_sentence(str(exc))


# ---------------------------------------------------------------- redaction as promised

from ansible_collections.mo.fleet.plugins.module_utils._capture import snapshot as snap  # noqa: E402


@pytest.mark.parametrize("path, reason", [
    ("/root/.ssh/authorized_keys", "SSH authorized keys"),
    ("/home/deploy/.ssh/authorized_keys2", "SSH authorized keys"),
    ("/etc/ssh/authorized_keys/deploy", "SSH authorized keys"),
    ("/etc/sudoers", "sudo rules"),
    ("/etc/sudoers.d/90-deploy", "sudo rules"),
    ("/etc/shadow", "shadow"), ("/etc/gshadow", "shadow"), ("/etc/security/opasswd", "shadow"),
    ("/etc/ssl/private/web.key", "TLS private key"),
    ("/etc/krb5.keytab", "Kerberos keytab"),
    ("/root/.gnupg/private-keys-v1.d/ABC.key", "GnuPG"),
    ("/etc/NetworkManager/system-connections/wifi.nmconnection", "network credentials"),
    ("/root/.docker/config.json", "registry credentials"),
    ("/etc/ssh/ssh_host_rsa_key", "SSH host private key"),
])
def test_secrets_are_redacted_by_default_and_kept_only_when_asked(path, reason):
    assert reason in snap.redaction_reason(path)
    assert snap.redaction_reason(path, keep=[path]) is None
    assert snap.redaction_reason(path, keep=[os.path.dirname(path)]) is None
    assert snap.redaction_reason(path, keep=["/nowhere/*"]) is not None


def test_build_operations_redacts_authorized_keys_unless_kept(tmp_path):
    root = tmp_path / "r"
    (root / "home/u/.ssh").mkdir(parents=True)
    before = snap.walk([str(root)], [])
    keys = root / "home/u/.ssh/authorized_keys"
    keys.write_text("ssh-ed25519 AAAA attacker\n")
    after = snap.walk([str(root)], [])
    state = {"packages": {}, "conffiles": {}, "auto": set(), "units": {"available": False, "files": {}, "paths": {}},
             "accounts": {"users": {}, "groups": {}}}
    ops, content, _stats = snap.build_operations(before, after, state, state)
    assert [(e["path"], e["reason"]) for e in ops["redacted"]] == [(str(keys), "SSH authorized keys")]
    assert not ops["files_created"] and not content
    ops, content, _stats = snap.build_operations(before, after, state, state, keep_secrets=[str(root) + "/home/*/.ssh"])
    assert not ops["redacted"] and [e["path"] for e in ops["files_created"]] == [str(keys)]
    assert [c[0] for c in content] == [str(keys)]


# ---------------------------------------------------------------- bundle archives from a target

import io  # noqa: E402
import tarfile  # noqa: E402


def _tar(tmp_path, members):
    archive = tmp_path / "b.tar.gz"
    with tarfile.open(str(archive), "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return str(archive)


def _file(name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _special(name, kind, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def _action():
    pytest.importorskip("ansible")
    from ansible_collections.mo.fleet.plugins.action import capture as action
    return action


def _receive():
    """The controller's engine that brings a bundle home (tar checks, the swap)."""
    pytest.importorskip("ansible")
    from ansible_collections.mo.fleet.plugins.plugin_utils import _bundle_receive
    return _bundle_receive


@pytest.mark.parametrize("members, words", [
    ([_special("files/etc", tarfile.SYMTYPE, "/etc")], "not a plain file"),
    ([_file("files/a"), _special("files/b", tarfile.LNKTYPE, "files/a")], "not a plain file"),
    ([_special("files/dev/sda", tarfile.BLKTYPE)], "not a plain file"),
    ([_special("files/null", tarfile.CHRTYPE)], "not a plain file"),
    ([_special("files/fifo", tarfile.FIFOTYPE)], "not a plain file"),
    ([_file("files/../../evil")], "unexpected member"),
    ([_file("/etc/cron.d/evil")], "unexpected member"),
    ([_file("template.json/x")], "unexpected member"),
    ([_file("other/x")], "unexpected member"),
    ([_file("files/a\nb")], "unexpected member"),
    ([_file("files/a"), _file("files/a")], "twice"),
])
def test_bundle_extraction_refuses_links_devices_and_escapes(tmp_path, members, words):
    engine = _receive()
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(engine.BundleError, match=words):
        engine.extract_bundle(_tar(tmp_path, members), str(target))
    assert not (tmp_path / "evil").exists() and not (tmp_path.parent / "evil").exists()


def test_bundle_extraction_caps_members_and_bytes_before_writing_past_them(tmp_path):
    engine = _receive()
    archive = _tar(tmp_path, [_file("files/f%d" % i, b"abcd") for i in range(5)])
    with pytest.raises(engine.BundleError, match="more than 3 members"):
        engine.extract_bundle(archive, str(tmp_path / "a"), max_members=3)
    assert len(os.listdir(str(tmp_path / "a" / "files"))) == 3
    with pytest.raises(engine.BundleError, match="more than 10 bytes"):
        engine.extract_bundle(archive, str(tmp_path / "b"), max_bytes=10)
    assert sum(os.path.getsize(os.path.join(str(tmp_path / "b" / "files"), n))
               for n in os.listdir(str(tmp_path / "b" / "files"))) <= 10
    engine.extract_bundle(archive, str(tmp_path / "c"))
    assert len(os.listdir(str(tmp_path / "c" / "files"))) == 5


@pytest.mark.parametrize("data", [b"\xff\xfe{}", b"[" * 100000 + b"]" * 100000, b'{"MO_template": ' * 50000,
                                  b"{\"a\": NaN}", b"\x00"])
def test_unreadable_template_bytes_are_one_sentence(tmp_path, data):
    path = tmp_path / "template.json"
    path.write_bytes(data)
    with pytest.raises(tpl.TemplateError) as caught:
        tpl.load_file(str(path))
    one_sentence(str(caught.value))
    with pytest.raises(tpl.TemplateError):
        tpl.verify_bundle(str(tmp_path))
    with pytest.raises(render.RenderError) as caught:
        render.prepare(str(path), {"verify_bundle": False})
    one_sentence(str(caught.value))


def test_a_symlink_whose_target_holds_a_line_break_is_redacted_not_captured(tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    before = snap.walk([str(root)], [])
    os.symlink("x\nDepends: evil", str(root / "link"))
    after = snap.walk([str(root)], [])
    state = {"packages": {}, "conffiles": {}, "auto": set(), "units": {"available": False, "files": {}, "paths": {}},
             "accounts": {"users": {}, "groups": {}}}
    ops, _content, _stats = snap.build_operations(before, after, state, state)
    assert not ops["symlinks_created"]
    assert [(e["path"], "line break" in e["reason"]) for e in ops["redacted"]] == [(str(root / "link"), True)]
    tpl.build({"argv": ["x"], "timestamp": "t"}, ops)


def test_a_multi_line_command_never_starts_a_dockerfile_line():
    doc = tpl.build({"argv": ["sh", "-c", "true\nFROM evil\nRUN id"], "timestamp": "t"}, {})
    lines = render.to_dockerfile(doc)["Dockerfile"].split("\n")
    assert not any(line.startswith(("FROM evil", "RUN id")) for line in lines)


def test_a_template_file_over_the_cap_is_refused_unread(tmp_path, monkeypatch):
    path = tmp_path / "template.json"
    path.write_text(tpl.dump(BASE))
    monkeypatch.setattr(tpl, "MAX_TEMPLATE_BYTES", 100)
    with pytest.raises(tpl.TemplateError, match="more than the 100 a template may be"):
        tpl.load_file(str(path))
    with pytest.raises(render.RenderError, match="more than the 100 a template may be"):
        render.prepare(str(path), {"verify_bundle": False})


# ---------------------------------------------------------------- what a target returns to the capture action

def _run_action(tmp_path, module_result, host="web1", args=None):
    from unittest import mock

    action = _action()
    task = mock.MagicMock()
    task.async_val = 0
    task.check_mode = False
    task.args = dict(args or {"cmd": "true"}, dest=str(tmp_path / "dest"))
    conn = mock.MagicMock()
    conn._shell.tmpdir = "/tmp/remote"
    plugin = action.ActionModule(task, conn, mock.MagicMock(), mock.MagicMock(), mock.MagicMock(), mock.MagicMock())
    ran = []
    plugin._execute_module = lambda **kw: ran.append(kw) or module_result
    return plugin.run(task_vars={"inventory_hostname": host}), ran


@pytest.mark.parametrize("module_result, words", [
    ({"name": "a\x00b", "bundle": {"sha256": "x", "content": "eA=="}}, "The capture name must be a plain file"),
    ({"name": "..", "bundle": {"sha256": "x", "content": "eA=="}}, "The capture name must be a plain file"),
    ({"name": ["x"], "bundle": {"sha256": "x", "content": "eA=="}}, "The capture name must be a plain file"),
    ({"name": "ok", "bundle": {"sha256": ["x"], "content": "eA=="}}, "no sha256"),
    ({"name": "ok", "bundle": {"sha256": "x", "content": 5}}, "larger than"),
    ({"name": "ok", "bundle": {"sha256": "x", "content": "not base64!"}}, "not valid base64"),
    ({"name": "ok", "bundle": {"sha256": "x", "archive": "rel\npath"}}, "neither the bundle archive"),
    ({"name": "ok", "bundle": {"sha256": "x", "content": "eA=="}}, "does not match the sha256"),
])
def test_hostile_module_results_are_one_sentence_and_write_nothing(tmp_path, module_result, words):
    result, _ran = _run_action(tmp_path, module_result)
    assert result["failed"] is True and words in result["msg"], result
    one_sentence(result["msg"])
    assert not any(p.is_file() for p in (tmp_path / "dest").rglob("*")) if (tmp_path / "dest").exists() else True


@pytest.mark.parametrize("host", ["..", ".", "a/b", "../../etc", "x\ny", ""])
def test_a_hostile_inventory_hostname_is_refused_before_the_module_runs(tmp_path, host):
    (tmp_path / "victim").mkdir()
    result, ran = _run_action(tmp_path, {"name": "victim", "bundle": {"sha256": "x", "content": "eA=="}}, host=host)
    assert result["failed"] is True and result["msg"].startswith("The capture did not run: inventory_hostname")
    assert ran == [] and not (tmp_path / "dest").exists() and (tmp_path / "victim").is_dir()


def test_the_targets_own_os_release_cannot_break_a_template_line(tmp_path, monkeypatch):
    from ansible_collections.mo.fleet.plugins.module_utils._capture import capture as cap

    monkeypatch.setattr(cap, "os_release", lambda: {"ID": "debian\rRUN id", "VERSION_ID": "12\u2028x",
                                                     "PRETTY_NAME": "x" * 1000})
    system = cap._system()
    assert all(v is None or (len(v) <= 256 and "\r" not in v and "\u2028" not in v) for v in system.values())
    tpl.build({"argv": ["x"], "timestamp": "t", "system": "%s %s" % (system["id"], system["version_id"]),
               "os": system}, {})


def test_a_deeply_nested_mapping_is_one_sentence():
    doc = copy.deepcopy(BASE)
    deep = {}
    node = deep
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    doc["metadata"]["trace"] = deep
    doc["MO_template"]["legacy"] = deep
    for name, call, error in (("load", tpl.load, tpl.TemplateError),
                              ("prepare", lambda d: render.prepare(d, {"verify_bundle": False}), render.RenderError)):
        try:
            result = call(doc)
        except error as exc:  # refused: with one sentence
            one_sentence(str(exc))
        except Exception as exc:  # e.g. RecursionError: neither accepted nor one sentence
            pytest.fail(f"{name}: a deeply nested mapping raised {type(exc).__name__}, "
                        "neither accepted nor refused in one sentence")
        else:  # accepted: the document was read
            assert result is not None, name


def test_bundle_extraction_refuses_a_huge_long_name_header_before_reading_it(tmp_path):
    import tarfile
    engine = _receive()
    archive = str(tmp_path / "bomb.tar.gz")
    with tarfile.open(archive, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("files/" + "a" * (8 * 1024 * 1024))
        info.size = 0
        tar.addfile(info)
    with pytest.raises(engine.BundleError) as caught:
        engine.extract_bundle(archive, str(tmp_path / "x"))
    one_sentence(str(caught.value))
    assert "header of 8388615 bytes" in str(caught.value)  # refused from its size, before it is read
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").rglob("*"))
