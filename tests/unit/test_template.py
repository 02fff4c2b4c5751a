"""template.py: the capture template model, its schema, v2.1 import, paths, bundles."""

import copy
import json
import os
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl

ROOT = Path(__file__).resolve().parents[2]
SEED_EXAMPLE = Path(__file__).parent / "data" / "mo_capture_v2_1.json"


def entry(path, **extra):
    base = {"path": path, "type": "file", "size": 3, "permissions": "0644", "owner": "root", "group": "root",
            "uid": 0, "gid": 0, "hash": "a" * 64, "modified": 1700000000}
    base.update(extra)
    return base


def sample():
    return tpl.build(
        {"argv": ["apt-get", "install", "-y", "hello"], "timestamp": "2026-01-01T00:00:00+00:00",
         "system": "debian 12 (x86_64)", "status": "succeeded", "rc": 0, "name": "hello"},
        {"files_created": [entry("/usr/bin/hello", package="hello", bundled=False, package_default=True),
                           entry("/etc/hello.conf", bundled=True)],
         "directories_created": [entry("/usr/share/hello", type="directory", size=None, hash=None)],
         "packages_installed": [{"name": "hello", "version": "2.10-3", "architecture": "amd64", "manual": True}],
         "users_created": [{"name": "hello", "uid": 120, "gid": 130, "system": True}]},
        {"analysis_method": "snapshot"})


def test_schema_file_is_generated_from_the_model():
    on_disk = (ROOT / "schemas" / "template.schema.json").read_text()
    assert on_disk == tpl.schema_json(), "regenerate schemas/template.schema.json from template.SCHEMA"
    jsonschema.Draft202012Validator.check_schema(json.loads(on_disk))
    assert json.loads(on_disk)["properties"].keys() == {"MO_template", "operations", "summary", "metadata"}


def test_build_sorts_dedups_and_summarises():
    doc = sample()
    assert doc["MO_template"]["version"] == tpl.TEMPLATE_VERSION == doc["metadata"]["template_version"]
    assert doc["MO_template"]["command"] == "apt-get"
    assert doc["MO_template"]["arguments"] == "install -y hello"
    assert [e["path"] for e in doc["operations"]["files_created"]] == ["/etc/hello.conf", "/usr/bin/hello"]
    assert doc["summary"]["total_files_created"] == 2
    assert doc["summary"]["total_packages_installed"] == 1
    assert set(doc["operations"]) == set(tpl.OPERATIONS)
    assert tpl.validate(doc, use_jsonschema=True) == [] and tpl.validate(doc, use_jsonschema=False) == []


def test_seed_v2_1_example_loads_validates_and_converts():
    raw = json.loads(SEED_EXAMPLE.read_text())
    doc = tpl.load(str(SEED_EXAMPLE))
    assert tpl.detect_version(raw) == "2.1"
    assert doc["MO_template"]["version"] == tpl.TEMPLATE_VERSION
    assert doc["metadata"]["migrated_from"] == "2.1"
    assert doc["MO_template"]["snapshots"] == raw["MO_template"]["snapshots"]
    assert (doc["MO_template"]["command"], doc["MO_template"]["arguments"]) == ("apt-get", "install -y nginx")
    nginx = doc["operations"]["files_created"][0]
    assert nginx["path"] == "/usr/sbin/nginx" and nginx["permissions"] == "0755"
    assert (nginx["uid"], nginx["gid"], nginx["size"], nginx["modified"]) == (0, 0, 1024000, 1731877981)
    assert nginx["hash"] is None and nginx["legacy_hash"] == "abc123def456..."  # not a sha256: kept aside
    assert [d["path"] for d in doc["operations"]["directories_created"]] == ["/etc/nginx", "/var/log/nginx"]
    assert doc["operations"]["permissions_changed"] == [{"path": "/usr/sbin/nginx", "before": None, "after": None}]
    # the seed's summary disagrees with its own lists; the original is kept, the new one is exact
    assert doc["metadata"]["legacy_summary"]["total_files_created"] == 15
    assert doc["summary"]["total_files_created"] == 1
    assert tpl.validate(doc, use_jsonschema=True) == []
    assert tpl.validate(doc, use_jsonschema=False) == []
    assert raw == json.loads(SEED_EXAMPLE.read_text()), "migrate must not change its input"


def test_dump_load_roundtrip_and_atomic_file(tmp_path):
    doc = sample()
    text = tpl.dump(doc)
    assert tpl.loads(text) == doc and tpl.load(text) == doc and tpl.load(doc) == doc
    path = tmp_path / "t.json"
    tpl.dump_file(doc, str(path))
    assert tpl.load_file(str(path)) == doc and tpl.load(tmp_path / "t.json") == doc
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]
    broken = copy.deepcopy(doc)
    broken["summary"]["total_files_created"] = 7
    with pytest.raises(tpl.TemplateError, match="summary/total_files_created"):
        tpl.dump_file(broken, str(tmp_path / "bad.json"))
    assert not (tmp_path / "bad.json").exists()


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d.pop("operations"), "operations"),
    (lambda d: d["MO_template"].update(version="9.9"), "version"),
    (lambda d: d["operations"]["files_created"][0].update(path="etc/x"), "path"),
    (lambda d: d["operations"]["files_created"][0].update(permissions="rwx"), "permissions"),
    (lambda d: d["operations"]["files_created"][0].update(hash="abc"), "hash"),
    (lambda d: d["operations"]["files_created"][0].update(colour="red"), "colour"),
    (lambda d: d["operations"]["packages_installed"][0].pop("version"), "version"),
    (lambda d: d["MO_template"].update(status="maybe"), "status"),
])
def test_both_validators_reject_broken_templates(mutate, words):
    doc = sample()
    mutate(doc)
    for use in (True, False):
        errors = tpl.validate(doc, use_jsonschema=use)
        assert errors and any(words in e for e in errors), (use, errors)


def test_load_errors_are_one_sentence():
    with pytest.raises(tpl.TemplateError, match="not valid JSON"):
        tpl.loads("{nope")
    with pytest.raises(tpl.TemplateError, match="version 7.0 is unknown"):
        tpl.load({"MO_template": {"version": "7.0"}})
    with pytest.raises(tpl.TemplateError, match="no MO_template"):
        tpl.load({"operations": {}})
    with pytest.raises(tpl.TemplateError, match="Cannot read template"):
        tpl.load_file("/nonexistent/template.json")


_values = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=6),
                    st.sampled_from(["/usr/bin/x", "0755", "file", "a" * 64, "symlink"]),
                    st.lists(st.text(max_size=3), max_size=2))
_keys = st.sampled_from(["path", "type", "size", "permissions", "owner", "uid", "hash", "target",
                         "package", "conffile", "bundled", "before", "weird"])


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=6), st.sampled_from(["files_created", "symlinks_deleted"]))
def test_builtin_checker_agrees_with_jsonschema(changes, op):
    # The one checker (_common/validate) against the jsonschema library reading the same
    # schema: what ours accepts, jsonschema accepts; ours may refuse more, because its
    # patterns match the whole string where Python's re.search lets "$" match before a
    # trailing line break.
    doc = sample()
    doc["operations"][op] = [dict(entry("/x/y"), **changes)]
    doc["summary"] = tpl.summarize(doc["operations"])
    ours = tpl.structural_errors(doc)
    theirs = list(jsonschema.Draft202012Validator(tpl.SCHEMA).iter_errors(doc))
    if not ours:
        assert not theirs, theirs[0].message
    if not theirs and ours:
        assert any("\n" in str(v) for v in changes.values()), ours


@pytest.mark.parametrize("bad", ["relative/path", "/etc/../shadow", "/etc/./x", "", "/a\x00b", None])
def test_normalize_path_refuses_unsafe_paths(bad):
    with pytest.raises(tpl.TemplateError):
        tpl.normalize_path(bad)


def test_path_helpers():
    assert tpl.normalize_path("//etc//nginx/") == "/etc/nginx"
    assert tpl.check_path("/opt/app/x", ["/opt", "/etc"]) == "/opt/app/x"
    with pytest.raises(tpl.TemplateError, match="outside the allowed roots"):
        tpl.check_path("/optional/x", ["/opt"])
    assert tpl.is_within("/etc/x", "/etc") and tpl.is_within("/etc", "/etc/") and tpl.is_within("/x", "/")
    assert not tpl.is_within("/etcetera", "/etc")
    assert tpl.bundle_relpath("/etc/nginx/nginx.conf") == "files/etc/nginx/nginx.conf"
    assert tpl.bundle_relpath("/etc/a", tpl.BUNDLE_BEFORE) == "before/etc/a"


def test_safe_join_refuses_symlink_escape(tmp_path):
    bundle = tmp_path / "b"
    (bundle / "files").mkdir(parents=True)
    os.symlink("/", bundle / "files" / "etc")
    assert tpl.safe_join(str(bundle), "/opt/x") == str(bundle / "files/opt/x")
    with pytest.raises(tpl.TemplateError, match="escapes"):
        tpl.safe_join(str(bundle), "/etc/passwd")


def test_verify_bundle_finds_missing_tampered_and_unlisted_files(tmp_path):
    doc = sample()
    bundle = tmp_path / "bundle"
    (bundle / "files/etc").mkdir(parents=True)
    content = b"abc"
    import hashlib
    doc["operations"]["files_created"][0]["hash"] = hashlib.sha256(content).hexdigest()
    (bundle / "template.json").write_text(tpl.dump(doc))
    with pytest.raises(tpl.TemplateError, match="lacks files/etc/hello.conf"):
        tpl.verify_bundle(str(bundle))
    (bundle / "files/etc/hello.conf").write_bytes(b"abd")
    with pytest.raises(tpl.TemplateError, match="does not match its sha256"):
        tpl.verify_bundle(str(bundle))
    (bundle / "files/etc/hello.conf").write_bytes(content)
    assert tpl.verify_bundle(str(bundle)) == doc
    assert [p for _op, p in [(o, e["path"]) for o, e in tpl.iter_entries(doc, ["files_created"])]] == [
        "/etc/hello.conf", "/usr/bin/hello"]
    assert tpl.bundled_files(doc) == [("/etc/hello.conf", "files/etc/hello.conf", doc["operations"]["files_created"][0]["hash"])]
    (bundle / "files/etc/sneaky").write_bytes(b"x")
    with pytest.raises(tpl.TemplateError, match="does not list"):
        tpl.verify_bundle(str(bundle))
    info = tpl.describe(doc)
    assert info["packages_installed"] == ["hello=2.10-3"] and info["users_created"] == ["hello"]
