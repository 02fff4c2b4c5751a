"""Listing reuse between walks and the in-memory config stash (issue 3 speedups)."""

import hashlib
import os

from ansible_collections.mo.fleet.plugins.module_utils._capture import snapshot as snap


def make_tree(root):
    for sub in ("etc/app", "opt/a/b", "opt/c", "usr/share/doc"):
        (root / sub).mkdir(parents=True)
    (root / "etc/app/app.conf").write_text("one\n")
    (root / "etc/app/drop.conf").write_text("drop\n")
    (root / "opt/a/b/file").write_text("x")
    (root / "opt/c/keep").write_text("y")
    (root / "usr/share/doc/readme").write_text("z")
    os.symlink("b/file", root / "opt/a/link")
    return root


def test_after_walk_reusing_listings_equals_a_fresh_walk(tmp_path, monkeypatch):
    r = str(make_tree(tmp_path / "r"))
    # every directory counts as old enough to keep its listing
    monkeypatch.setattr(snap, "LISTING_MARGIN_NS", -10 ** 15)
    before = snap.walk([r], [], keep_listings=True)
    assert r + "/opt/a" in before.listings
    (tmp_path / "r/opt/a/b/new").write_text("new")            # create
    os.unlink(tmp_path / "r/opt/c/keep")                      # delete
    os.rename(tmp_path / "r/etc/app/drop.conf", tmp_path / "r/etc/app/moved.conf")  # rename
    os.utime(tmp_path / "r/opt/a/b", ns=(0, 0))              # mtime set back: ctime still moves
    os.chmod(tmp_path / "r/usr/share/doc/readme", 0o600)      # content dir unchanged, entry changed
    after = snap.walk([r], [], previous=before)
    fresh = snap.walk([r], [])
    assert after.entries == fresh.entries
    assert after.reused_listings >= 2                           # e.g. usr, usr/share/doc
    changes = snap.diff(before, after)
    assert r + "/opt/a/b/new" in changes.created and r + "/etc/app/moved.conf" in changes.created
    assert r + "/opt/c/keep" in changes.deleted and r + "/usr/share/doc/readme" in changes.meta


def test_recently_changed_directories_are_never_reused(tmp_path):
    r = str(make_tree(tmp_path / "r"))
    before = snap.walk([r], [], keep_listings=True)
    # the tree was just made: within the racy margin, so nothing is kept
    assert before.listings == {}
    (tmp_path / "r/opt/c/new").write_text("n")
    after = snap.walk([r], [], previous=before)
    assert after.reused_listings == 0
    assert r + "/opt/c/new" in after.entries


def test_memory_stash_bundles_before_content_and_hashes_lazily(tmp_path):
    root = make_tree(tmp_path / "r")
    r = str(root)
    stash = snap.Stash(str(tmp_path / "stash"), [r + "/etc"], memory=1 << 20)
    before = snap.walk([r], [])
    assert stash.take(before) == 2
    assert not (tmp_path / "stash").exists()                   # nothing written to disk
    assert all(v is None for v in stash.saved.values())        # nothing hashed yet
    (root / "etc/app/app.conf").write_text("changed content\n")
    os.unlink(root / "etc/app/drop.conf")
    after = snap.walk([r], [])
    ops, content, _stats = snap.build_operations(before, after, empty_state(), empty_state(), stash=stash)
    sources = {(p, a): s for p, a, s in content}
    assert sources[(r + "/etc/app/app.conf", "before")] == b"one\n"
    assert sources[(r + "/etc/app/drop.conf", "before")] == b"drop\n"
    modified = {e["path"]: e for e in ops["files_modified"]}[r + "/etc/app/app.conf"]
    assert modified["before"]["hash"] == hashlib.sha256(b"one\n").hexdigest()
    dest = tmp_path / "out" / "x"
    assert snap.write_bytes(b"one\n", str(dest)) == modified["before"]["hash"] and dest.read_bytes() == b"one\n"


def test_stash_budget_spills_to_disk(tmp_path):
    root = make_tree(tmp_path / "r")
    r = str(root)
    stash = snap.Stash(str(tmp_path / "stash"), [r + "/etc"], memory=4)  # room for app.conf only
    stash.take(snap.walk([r], []))
    assert set(stash.data) == {r + "/etc/app/app.conf"}
    assert stash.path_of(r + "/etc/app/drop.conf") == str(tmp_path / "stash") + r + "/etc/app/drop.conf"
    assert stash.source(r + "/etc/app/drop.conf") == stash.path_of(r + "/etc/app/drop.conf")
    assert stash.path_of(r + "/etc/app/app.conf") is None and stash.source(r + "/etc/app/app.conf") == b"one\n"
    stash.cleanup()
    assert not (tmp_path / "stash").exists()


def test_owners_matches_lines_and_usrmerge_aliases(tmp_path):
    info = tmp_path / "info"
    info.mkdir()
    (info / "pkg-a.list").write_text("/.\n/usr\n/usr/bin\n/usr/bin/tool\n/bin/old\n")
    (info / "pkg-b:amd64.list").write_text("/etc\n/etc/b.conf\n")
    found = snap.owners(["/usr/bin/tool", "/usr/bin/old", "/etc/b.conf", "/nowhere"], info_dir=str(info))
    assert found == {"/usr/bin/tool": "pkg-a", "/usr/bin/old": "pkg-a", "/etc/b.conf": "pkg-b"}
    assert snap.owners([], info_dir=str(info)) == {}


def empty_state():
    return {"packages": {}, "conffiles": {}, "auto": set(), "accounts": {"users": {}, "groups": {}},
            "units": {"available": False, "files": {}, "paths": {}, "active": {}}}
