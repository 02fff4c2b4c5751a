"""store.py: uploads into stores (migasfree-upload -f / -d), all or nothing."""

import os

import pytest

from ansible_collections.mo.fleet.plugins.module_utils._repo.deb import DebCache, DebError
from ansible_collections.mo.fleet.plugins.module_utils._repo.store import collect_debs, store_packages

from debtools import build_deb


def tree(root):
    return sorted((str(p.relative_to(root)), p.read_bytes() if p.is_file() else b"")
                  for p in root.rglob("*") if "state" not in p.parts)


def test_upload_creates_store_then_same_file_is_ok(tmp_path):
    deb = build_deb(tmp_path / "src", "up-mo")
    root = tmp_path / "repo"
    first = store_packages(str(root), "demo", "main", [str(deb)])
    assert first["changed"] and first["created_store"]
    assert first["packages"][0]["filename"] == "main/up-mo_1.0-1_all.deb"
    assert (root / "demo/stores/main/up-mo_1.0-1_all.deb").read_bytes() == deb.read_bytes()
    oct_mode = os.stat(root / "demo/stores/main/up-mo_1.0-1_all.deb").st_mode & 0o777
    assert oct_mode == 0o644
    again = store_packages(str(root), "demo", "main", [str(deb)])
    assert not again["changed"] and again["packages"][0]["status"] == "unchanged"
    # the upload fed the publish cache: no re-read later
    cache = DebCache(str(root / "demo/state/cache.bin"))
    cache.get(str(root / "demo/stores/main/up-mo_1.0-1_all.deb"))
    assert cache.reads == 0


def test_different_file_same_identity_refused_unless_forced(tmp_path):
    root = tmp_path / "repo"
    a = build_deb(tmp_path / "a", "same-mo")
    b = build_deb(tmp_path / "b", "same-mo", files={"etc/other": "different\n"})
    store_packages(str(root), "demo", "main", [str(a)])
    before = tree(root)
    with pytest.raises(DebError) as err:
        store_packages(str(root), "demo", "main", [str(b)])
    assert "already holds a different file for same-mo 1.0-1 all" in str(err.value)
    assert "force=true" in str(err.value) and str(err.value).endswith(".")
    assert tree(root) == before
    forced = store_packages(str(root), "demo", "main", [str(b)], force=True)
    assert forced["packages"][0]["status"] == "replaced"
    assert (root / "demo/stores/main/same-mo_1.0-1_all.deb").read_bytes() == b.read_bytes()


def test_package_set_is_all_or_nothing(tmp_path):
    src = tmp_path / "base-set"
    build_deb(src, "set-a")
    build_deb(src, "set-b", arch="amd64")
    (src / "broken.deb").write_bytes(b"!<arch>\ndebian-binary   ")
    root = tmp_path / "repo"
    with pytest.raises(DebError, match="broken.deb is truncated"):
        store_packages(str(root), "demo", "base", collect_debs(str(src)), package_set="base-set")
    assert not (root / "demo" / "stores").exists()
    (src / "broken.deb").unlink()
    res = store_packages(str(root), "demo", "base", collect_debs(str(src)), package_set="base-set")
    assert sorted(p["filename"] for p in res["packages"]) == [
        "base/base-set/set-a_1.0-1_all.deb", "base/base-set/set-b_1.0-1_amd64.deb"]


@pytest.mark.parametrize("store, pset, match", [
    ("../escape", None, "must not contain path separators"),
    ("..", None, "must not contain '..'"),
    ("main", "a/b", "package set name 'a/b' must not contain path separators"),
    ("main", "..x", "must not contain '..'"),
])
def test_bad_store_or_set_names(tmp_path, store, pset, match):
    deb = build_deb(tmp_path / "src", "name-mo")
    with pytest.raises(DebError, match=match):
        store_packages(str(tmp_path / "repo"), "demo", store, [str(deb)], package_set=pset)
    assert not (tmp_path / "repo").exists()


def test_check_mode_writes_nothing(tmp_path):
    deb = build_deb(tmp_path / "src", "check-mo")
    res = store_packages(str(tmp_path / "repo"), "demo", "main", [str(deb)], check_mode=True)
    assert res["changed"] and res["created_store"] and not (tmp_path / "repo").exists()


def test_not_a_deb_and_empty_dir(tmp_path):
    (tmp_path / "x.deb").write_text("nope")
    with pytest.raises(DebError, match="x.deb is not a .deb"):
        store_packages(str(tmp_path / "repo"), "demo", "main", [str(tmp_path / "x.deb")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DebError, match="holds no .deb files"):
        collect_debs(str(tmp_path / "empty"))


# ------------------------------------------------------------------ module glue

class _Failed(Exception):
    pass


class _Module:
    """Records fail_json like AnsibleModule, which exits there."""

    def fail_json(self, **kwargs):
        raise _Failed(kwargs)


def test_repo_argument_spec_shares_root_and_copies_options():
    from ansible_collections.mo.fleet.plugins.module_utils._repo.store import (
        LOCK_TIMEOUT_OPTION, UPLOAD_ARGUMENT_SPEC, repo_argument_spec,
    )
    spec = repo_argument_spec(lock_timeout=LOCK_TIMEOUT_OPTION)
    assert spec == {"lock_timeout": {"type": "float", "default": 600},
                    "root": {"type": "path", "default": "/var/lib/mo-fleet/repo"}}
    spec["lock_timeout"]["default"] = 1
    assert LOCK_TIMEOUT_OPTION["default"] == 600
    assert set(UPLOAD_ARGUMENT_SPEC) == {"src", "store", "set", "project", "root", "force", "remote_src", "lock_timeout"}


def test_package_set_defaults_to_the_directory_name(tmp_path):
    from ansible_collections.mo.fleet.plugins.module_utils._repo.store import package_set_of
    (tmp_path / "base-2026").mkdir()
    (tmp_path / "one.deb").write_bytes(b"")
    assert package_set_of(str(tmp_path / "base-2026") + "/") == "base-2026"
    assert package_set_of(str(tmp_path / "base-2026"), "") == "base-2026"
    assert package_set_of(str(tmp_path / "base-2026"), "frozen") == "frozen"
    assert package_set_of(str(tmp_path / "one.deb")) is None


def test_run_engine_turns_engine_errors_into_one_sentence(tmp_path):
    from ansible_collections.mo.fleet.plugins.module_utils._repo.publish import PublishError
    from ansible_collections.mo.fleet.plugins.module_utils._repo.store import run_engine
    assert run_engine(_Module(), "upload", lambda a, b=0: a + b, 1, b=2) == 3
    for exc, msg in [(PublishError("the catalog is bad."), "the catalog is bad."),
                     (DebError("x.deb is not a .deb."), "x.deb is not a .deb."),
                     (PermissionError(13, "Permission denied", "/srv/x"), "upload failed on /srv/x: Permission denied.")]:
        def boom(exc=exc):
            raise exc
        with pytest.raises(_Failed) as info:
            run_engine(_Module(), "upload", boom)
        assert info.value.args[0] == {"msg": msg}
    with pytest.raises(ValueError):  # anything else is a bug, not an engine error
        run_engine(_Module(), "upload", int, "x")


def test_uploads_stream_through_the_shared_atomic_write(tmp_path):
    import io
    from ansible_collections.mo.fleet.plugins.module_utils._common.fs import atomic_write
    data = os.urandom(3 * (1 << 20) + 5)  # several blocks and a short tail
    target = tmp_path / "big.deb"
    atomic_write(str(target), io.BytesIO(data), mode=0o644)
    assert target.read_bytes() == data and os.stat(target).st_mode & 0o777 == 0o644
    assert os.listdir(tmp_path) == ["big.deb"]

    class Broken(io.BytesIO):
        def read(self, size=-1):
            raise OSError(5, "Input/output error")
    with pytest.raises(OSError):
        atomic_write(str(target), Broken(b"x"))
    assert target.read_bytes() == data and os.listdir(tmp_path) == ["big.deb"]  # old file kept, no temp left


# ------------------------------------------------------------------ epochs (issue 15)

def _epoch_upload(tmp_path):
    """libfoo 1:2.0-1 as dpkg-deb names it (no epoch in the file name), uploaded to main."""
    from debtools import build_deb as build
    src = build(tmp_path / "build", "libfoo", version="1:2.0-1", arch="amd64", compress="zstd",
                out=tmp_path / "out" / "libfoo_2.0-1_amd64.deb")
    root = tmp_path / "repo"
    result = store_packages(str(root), "demo", "main", [str(src)])
    return root, result


def test_an_epoch_package_is_stored_under_the_pool_name(tmp_path):
    root, result = _epoch_upload(tmp_path)
    [pkg] = result["packages"]
    assert (pkg["source"], pkg["filename"], pkg["version"]) == (
        "libfoo_2.0-1_amd64.deb", "main/libfoo_1%3a2.0-1_amd64.deb", "1:2.0-1")
    assert [rel for rel, _ in tree(root / "demo" / "stores") if rel.endswith(".deb")] == ["main/libfoo_1%3a2.0-1_amd64.deb"]


@pytest.mark.parametrize("entry", [
    "libfoo_2.0-1_amd64.deb",           # the name dpkg-deb gave it, as uploaded
    "libfoo_1%3a2.0-1_amd64.deb",       # the pool's name
    "libfoo_1%3A2.0-1_amd64.deb",
    "libfoo_1:2.0-1_amd64.deb",         # the epoch spelled as apt shows it
    "main/libfoo_2.0-1_amd64.deb",
    "main/libfoo_1%3a2.0-1_amd64.deb",
    "libfoo=1:2.0-1",                   # apt's name=version
    "libfoo=2.0-1",
    "libfoo:amd64=1:2.0-1",
    "main/libfoo=2.0-1",
])
def test_a_catalog_names_the_package_by_any_of_its_names(tmp_path, entry):
    from ansible_collections.mo.fleet.plugins.module_utils._repo.publish import resolve_packages
    root, _ = _epoch_upload(tmp_path)
    dep = {"name": "foo", "packages": [entry]}
    assert resolve_packages({}, dep, str(root / "demo" / "stores")) == ["main/libfoo_1%3a2.0-1_amd64.deb"]


@pytest.mark.parametrize("entry", ["libfoo_2.0-2_amd64.deb", "libfoo_2%3a2.0-1_amd64.deb", "libfoo_2.0-1_arm64.deb",
                                   "libfoo=3.0", "libfoo:arm64=2.0-1", "libfoo_2.0-1_amd64.deb\n",
                                   "libfoo=2.0-1\nX: y", "libfoo=2.0-1\u2028"])
def test_other_versions_and_hostile_names_are_in_no_store(tmp_path, entry):
    from ansible_collections.mo.fleet.plugins.module_utils._repo.publish import PublishError, resolve_packages
    root, _ = _epoch_upload(tmp_path)
    with pytest.raises(PublishError) as err:
        resolve_packages({}, {"name": "foo", "packages": [entry]}, str(root / "demo" / "stores"))
    msg = str(err.value)
    assert msg.endswith(".") and "\n" not in msg and ("no store" in msg or "not in the stores" in msg
                                                      or "is not a package set" in msg or "has not been uploaded" in msg)


def test_an_epochless_name_matching_two_epochs_is_refused_with_the_way_out(tmp_path):
    from debtools import build_deb as build
    from ansible_collections.mo.fleet.plugins.module_utils._repo.publish import PublishError, resolve_packages
    root, _ = _epoch_upload(tmp_path)
    other = build(tmp_path / "b2", "libfoo", version="2:2.0-1", arch="amd64", out=tmp_path / "o2" / "libfoo_2.0-1_amd64.deb")
    store_packages(str(root), "demo", "main", [str(other)])
    stores = str(root / "demo" / "stores")
    with pytest.raises(PublishError, match=r"names several versions .*name one with its epoch"):
        resolve_packages({}, {"name": "foo", "packages": ["libfoo_2.0-1_amd64.deb"]}, stores)
    assert resolve_packages({}, {"name": "foo", "packages": ["libfoo=2:2.0-1"]}, stores) == ["main/libfoo_2%3a2.0-1_amd64.deb"]


def test_a_package_set_lists_its_packages_by_the_uploaded_names(tmp_path):
    from debtools import build_deb as build
    from ansible_collections.mo.fleet.plugins.module_utils._repo.publish import resolve_packages
    src = tmp_path / "base-set"
    build(tmp_path / "b", "liba", version="3:1.0-1", arch="amd64", out=src / "liba_1.0-1_amd64.deb")
    build(tmp_path / "b", "libb", version="1.0-1", arch="amd64", out=src / "libb_1.0-1_amd64.deb")
    root = tmp_path / "repo"
    store_packages(str(root), "demo", "base", collect_debs(str(src)), package_set="base-set")
    catalog = {"package_sets": [{"name": "base-set", "store": "base", "packages": ["liba_1.0-1_amd64.deb"]}]}
    got = resolve_packages(catalog, {"name": "b", "package_sets": ["base-set"]}, str(root / "demo" / "stores"))
    assert got == ["base/base-set/liba_3%3a1.0-1_amd64.deb"]
