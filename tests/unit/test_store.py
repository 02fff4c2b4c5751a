"""store.py: uploads into stores (migasfree-upload -f / -d), all or nothing."""

import os

import pytest

from ansible_collections.mo.fleet.plugins.module_utils.deb import DebCache, DebError
from ansible_collections.mo.fleet.plugins.module_utils.store import collect_debs, store_packages

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
