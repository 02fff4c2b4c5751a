"""publish.py: signed, atomic, incremental APT repositories from a catalog (real gpg, real files)."""

import gzip
import hashlib
import json
import lzma
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.mo.fleet.plugins.module_utils._repo import publish as P
from ansible_collections.mo.fleet.plugins.module_utils._repo import repo_index as RI
from ansible_collections.mo.fleet.plugins.module_utils._repo.deb import DebCache

from debtools import build_deb, export_keyring, kill_agent, make_gpg_home

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gpg(tmp_path_factory):
    home, fpr = make_gpg_home(tmp_path_factory.mktemp("gnupg") / "home")
    keyring = export_keyring(home, home.parent / "archive.gpg")
    yield home, fpr, keyring
    kill_agent(home)


@pytest.fixture
def repo(tmp_path, gpg):
    home, fpr, keyring = gpg
    root = tmp_path / "repo"
    stores = root / "demo" / "stores"
    build_deb(stores / "main", "hello-mo")
    build_deb(stores / "main", "tool-mo", arch="amd64")
    build_deb(stores / "main", "tool-mo", arch="arm64")
    build_deb(stores / "base" / "base-set", "base-a")
    build_deb(stores / "base" / "base-set", "base-b", arch="amd64")
    catalog = {
        "project": {"name": "demo", "architectures": ["amd64", "arm64"]},
        "stores": [{"name": "main"}, {"name": "base"}],
        "package_sets": [{"name": "base-set", "store": "base"}],
        "schedules": [{"name": "slow", "delays": [{"delay": 0, "attributes": ["canary"]}]}],
        "deployments": [
            {"name": "hello", "enabled": True, "schedule": "slow", "start_date": "2026-11-23",
             "packages": ["hello-mo_1.0-1_all.deb", "main/tool-mo_1.0-1_amd64.deb", "main/tool-mo_1.0-1_arm64.deb"]},
            {"name": "base", "enabled": True, "start_date": "2026-11-23", "package_sets": ["base-set"]},
        ],
    }

    class Repo:
        pass
    r = Repo()
    r.root, r.stores, r.catalog, r.home, r.fpr, r.keyring, r.tmp = root, stores, catalog, home, fpr, keyring, tmp_path
    r.publish = lambda catalog=None, **kw: P.publish(catalog or r.catalog, root=str(root), gnupg_home=str(home), **kw)
    r.dep = lambda name: root / "demo" / "repos" / name
    return r


def read_release(suite_dir):
    return (suite_dir / "Release").read_text()


def test_full_publish_release_hashes_signatures_and_pool(repo):
    report = repo.publish()
    assert report["changed"] and set(report["deployments"]) == {"hello", "base"}
    suite = repo.dep("hello") / "dists" / "hello"
    release = read_release(suite)
    for field in ("Origin: demo", "Suite: hello", "Codename: hello", "Architectures: amd64 arm64",
                  "Components: main", "Acquire-By-Hash: yes", "MD5Sum:", "SHA256:"):
        assert field in release
    assert "\nDate: " in release
    sha = P.parse_release_sha256(release)
    assert set(sha) == {f"main/binary-{a}/{f}" for a in ("amd64", "arm64") for f in RI.INDEX_FILES}
    for rel, digest in sha.items():
        blob = (suite / rel).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == digest
        assert (suite / os.path.dirname(rel) / "by-hash" / "SHA256" / digest).read_bytes() == blob
        line = next(l for l in release.splitlines() if l.endswith(" " + rel) and len(l.split()[0]) == 32)
        assert line.split()[0] == hashlib.md5(blob).hexdigest() and int(line.split()[1]) == len(blob)
    amd64 = (suite / "main/binary-amd64/Packages").read_text()
    assert gzip.decompress((suite / "main/binary-amd64/Packages.gz").read_bytes()).decode() == amd64
    assert lzma.decompress((suite / "main/binary-amd64/Packages.xz").read_bytes()).decode() == amd64
    assert "Package: hello-mo" in amd64 and "Architecture: amd64" in amd64 and "Architecture: arm64" not in amd64
    # Filename: resolves through the pool symlink into the stores (no copies)
    for line in amd64.splitlines():
        if line.startswith("Filename: "):
            target = repo.dep("hello") / line.split(" ", 1)[1]
            assert target.is_file() and os.path.realpath(target).startswith(str(repo.stores))
    assert not list((repo.root / "demo" / "repos").rglob("*.deb")) or all(
        os.path.realpath(p).startswith(str(repo.stores)) for p in (repo.root / "demo" / "repos").rglob("*.deb"))
    # signatures verify with gpgv against the public key only
    gpgv = ["gpgv", "--keyring", str(repo.keyring)]
    assert subprocess.run(gpgv + [str(suite / "InRelease")], capture_output=True).returncode == 0
    assert subprocess.run(gpgv + [str(suite / "Release.gpg"), str(suite / "Release")], capture_output=True).returncode == 0
    # tampering is detected
    tampered = repo.tmp / "Release.tampered"
    tampered.write_text(release.replace("Suite: hello", "Suite: evil"))
    assert subprocess.run(gpgv + [str(suite / "Release.gpg"), str(tampered)], capture_output=True).returncode != 0
    base = (repo.dep("base") / "dists" / "base" / "main/binary-arm64/Packages").read_text()
    assert "Filename: pool/base/base-set/base-a_1.0-1_all.deb" in base and "base-b" not in base


def test_second_publish_changes_nothing_and_reads_no_deb(repo):
    repo.publish()
    gen = os.readlink(repo.dep("hello") / "dists")
    before = (repo.dep("hello") / "dists" / "hello" / "InRelease").read_bytes()
    report = repo.publish()
    assert not report["changed"]
    assert all(d["action"] == "unchanged" for d in report["deployments"].values())
    assert os.readlink(repo.dep("hello") / "dists") == gen
    assert (repo.dep("hello") / "dists" / "hello" / "InRelease").read_bytes() == before
    cache = DebCache(str(repo.root / "demo" / "state" / "cache.bin"))
    P.plan(repo.catalog, str(repo.root), cache)
    assert cache.reads == 0


def test_incremental_only_changed_deployment_rebuilt_with_added_removed(repo):
    repo.publish()
    base_gen = os.readlink(repo.dep("base") / "dists")
    build_deb(repo.stores / "main", "hello-mo", version="1.1-1")
    repo.catalog["deployments"][0]["packages"][0] = "hello-mo_1.1-1_all.deb"
    check = repo.publish(check_mode=True)
    assert check["deployments"]["hello"]["changed"] and not check["deployments"]["base"]["changed"]
    assert os.readlink(repo.dep("hello") / "dists") == ".gen/1"  # check mode wrote nothing
    report = repo.publish()
    hello = report["deployments"]["hello"]
    assert hello["changed"] and hello["generation"] == 2
    assert hello["added"] == ["main/hello-mo_1.1-1_all.deb (hello-mo 1.1-1 all)"]
    assert hello["removed"] == ["main/hello-mo_1.0-1_all.deb (hello-mo 1.0-1 all)"]
    assert check["deployments"]["hello"]["added"] == hello["added"]
    assert not report["deployments"]["base"]["changed"]
    assert os.readlink(repo.dep("base") / "dists") == base_gen


def test_by_hash_keeps_previous_generations_then_prunes(repo):
    hashes = []
    for i in range(5):
        build_deb(repo.stores / "main", "gen-mo", version=f"{i}.0-1")
        repo.catalog["deployments"][1]["packages"] = [f"main/gen-mo_{i}.0-1_all.deb"]
        repo.publish(options={"keep_generations": 3})
        suite = repo.dep("base") / "dists" / "base"
        hashes.append(P.parse_release_sha256(read_release(suite))["main/binary-amd64/Packages.xz"])
    byhash = repo.dep("base") / "dists" / "base" / "main/binary-amd64/by-hash/SHA256"
    present = set(os.listdir(byhash))
    assert set(hashes[-3:]) <= present        # this and the two previous generations
    assert not set(hashes[:2]) & present      # older ones pruned
    assert sorted(os.listdir(repo.dep("base") / ".gen")) == ["3", "4", "5"]


def test_disabled_deployment_stops_being_served_history_kept_and_reenabled(repo):
    repo.publish()
    repo.catalog["deployments"][1]["enabled"] = False
    report = repo.publish()
    assert report["deployments"]["base"]["action"] == "unpublished"
    assert not repo.dep("base").exists()
    assert (repo.root / "demo" / "disabled" / "base" / ".gen" / "1").is_dir()
    state = json.loads((repo.root / "demo" / "state" / "publish.json").read_text())
    assert state["deployments"]["base"]["enabled"] is False and len(state["deployments"]["base"]["history"]) == 2
    assert not repo.publish()["changed"]
    repo.catalog["deployments"][1]["enabled"] = True
    report = repo.publish()
    assert report["deployments"]["base"]["changed"] and (repo.dep("base") / "dists" / "base" / "InRelease").is_file()


def test_external_deployments_are_not_published(repo):
    repo.catalog["deployments"].append({"name": "debian", "source": "external", "base_url": "http://mirror.invalid/debian",
                                        "start_date": "2026-11-23",
                                        "suite": "bookworm", "components": ["main"], "frozen": True})
    report = repo.publish()
    assert report["deployments"]["debian"]["action"] == "external" and not repo.dep("debian").exists()


@pytest.mark.parametrize("mutate, words", [
    (lambda c: c["deployments"][0]["packages"].append("missing_1.0_all.deb"), ["'hello'", "packages", "missing_1.0_all.deb"]),
    (lambda c: c["deployments"].append(dict(c["deployments"][0])), ["'hello'", "duplicate"]),
    (lambda c: c["deployments"][0].update(schedule="nope"), ["'hello'", "schedule", "nope"]),
    (lambda c: c["deployments"][0]["packages"].append("../etc/passwd"), ["'hello'", "packages"]),
    (lambda c: c["deployments"][0].update(name="a/b"), ["'a/b'", "name"]),
    (lambda c: c["deployments"][1].update(package_sets=["nope-set"]), ["'base'", "package_sets", "nope-set"]),
    (lambda c: c["project"].update(architectures=[]), ["architectures"]),
])
def test_bad_catalog_one_sentence_and_nothing_changes(repo, mutate, words):
    repo.publish()
    snapshot = sorted(str(p) + str(p.stat().st_mtime_ns) for p in repo.root.rglob("*") if "state" not in p.parts)
    mutate(repo.catalog)
    with pytest.raises(P.PublishError) as err:
        repo.publish()
    msg = str(err.value)
    assert all(w in msg for w in words), msg
    assert msg.endswith(".") and "\n" not in msg
    assert sorted(str(p) + str(p.stat().st_mtime_ns) for p in repo.root.rglob("*") if "state" not in p.parts) == snapshot


def test_package_of_foreign_architecture_is_refused(repo):
    build_deb(repo.stores / "main", "odd-mo", arch="riscv64")
    repo.catalog["deployments"][0]["packages"].append("odd-mo_1.0-1_riscv64.deb")
    with pytest.raises(P.PublishError, match="riscv64, which is not in mo_fleet_catalog.project.architectures"):
        repo.publish()


SLOW_PUBLISH = r"""
import json, sys, time
sys.path.insert(0, {collections!r})
from ansible_collections.mo.fleet.plugins.module_utils._repo import publish as P
catalog = json.loads({catalog!r})
def hook(name, tmp):
    open({marker!r}, "w").write(tmp)
    time.sleep({sleep})
P.publish(catalog, root={root!r}, gnupg_home={home!r}, _after_build=hook)
open({marker!r} + ".done", "w").write(str(time.time()))
"""


def _slow(repo, marker, sleep):
    code = SLOW_PUBLISH.format(collections=str(ROOT / ".collections"), catalog=json.dumps(repo.catalog),
                               marker=str(marker), sleep=sleep, root=str(repo.root), home=str(repo.home))
    return subprocess.Popen([sys.executable, "-c", code])


def _wait_for(path, timeout=60):
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_killed_publish_leaves_old_tree_served_and_no_stale_lock(repo):
    repo.publish()
    suite = repo.dep("hello") / "dists" / "hello"
    inrelease = (suite / "InRelease").read_bytes()
    build_deb(repo.stores / "main", "late-mo")
    repo.catalog["deployments"][0]["packages"].append("late-mo_1.0-1_all.deb")
    marker = repo.tmp / "building"
    proc = _slow(repo, marker, sleep=60)
    _wait_for(marker)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the new generation was fully built aside but never switched in
    assert Path(marker.read_text()).is_dir()
    assert os.readlink(repo.dep("hello") / "dists") == ".gen/1"
    assert (suite / "InRelease").read_bytes() == inrelease
    sha = P.parse_release_sha256((suite / "Release").read_text())
    for rel, digest in sha.items():
        assert hashlib.sha256((suite / rel).read_bytes()).hexdigest() == digest
    # no stale lock: the next publish gets it at once, cleans up and switches
    report = repo.publish(lock_timeout=2)
    assert report["deployments"]["hello"]["changed"]
    assert not [n for n in os.listdir(repo.dep("hello") / ".gen") if n.startswith(".tmp-")]
    assert "late-mo" in (repo.dep("hello") / "dists" / "hello" / "main/binary-amd64/Packages").read_text()


def test_concurrent_publishes_serialize(repo):
    repo.publish()
    build_deb(repo.stores / "main", "conc-mo")
    repo.catalog["deployments"][0]["packages"].append("conc-mo_1.0-1_all.deb")
    marker = repo.tmp / "holding"
    first = _slow(repo, marker, sleep=1.5)
    _wait_for(marker)
    # a publish that cannot wait says so in one sentence
    with pytest.raises(P.PublishError, match="another publish or upload held"):
        repo.publish(lock_timeout=0.2)
    # one that can wait runs after the first one finished, and sees its result
    report = repo.publish(lock_timeout=60)
    finished = time.time()
    assert first.wait(30) == 0
    assert float(Path(str(marker) + ".done").read_text()) <= finished
    assert not report["changed"]  # the first publish had already done the work
    assert os.readlink(repo.dep("hello") / "dists") == ".gen/2"


def test_valid_until_and_refresh(repo):
    from datetime import datetime, timedelta, timezone
    now = datetime(2026, 11, 23, 8, 0, 0, tzinfo=timezone.utc)
    repo.publish(options={"valid_for_days": 2}, now=now)
    release = read_release(repo.dep("hello") / "dists" / "hello")
    assert "Date: Mon, 23 Nov 2026 08:00:00 UTC" in release
    assert "Valid-Until: Wed, 25 Nov 2026 08:00:00 UTC" in release
    assert not repo.publish(options={"valid_for_days": 2}, now=now + timedelta(hours=12))["changed"]
    later = repo.publish(options={"valid_for_days": 2}, now=now + timedelta(days=1, hours=1))
    assert "Valid-Until refresh due" in later["deployments"]["hello"]["reason"]


def test_repo_report_orphans_and_holders(repo):
    build_deb(repo.stores / "main", "orphan-mo")
    report = P.repo_report(repo.catalog, str(repo.root))
    by_path = {p["path"]: p for p in report["packages"]}
    assert report["orphans"] == ["main/orphan-mo_1.0-1_all.deb"]
    assert by_path["main/hello-mo_1.0-1_all.deb"]["deployments"] == ["hello"]
    assert by_path["base/base-set/base-a_1.0-1_all.deb"]["deployments"] == ["base"]
    assert by_path["main/hello-mo_1.0-1_all.deb"]["fields"]["Maintainer"].startswith("mo.fleet tests")


def test_chunked_indexes_are_valid_gzip_and_xz_and_reused(tmp_path):
    """Packages.gz is multi-member gzip, Packages.xz one multi-block xz stream: both must be
    what gzip/xz (and apt, which reads one xz stream) decode to the exact Packages text."""
    from ansible_collections.mo.fleet.plugins.module_utils._repo.deb import parse_deb
    template = parse_deb(build_deb(tmp_path, "chunk-mo"))
    entries = []
    for i in range(700):
        rec = dict(template, name=f"chunk-{i:04d}", fields=dict(template["fields"], Package=f"chunk-{i:04d}"),
                   sha256=hashlib.sha256(b"chunk-%d" % i).hexdigest())
        entries.append((f"main/chunk-{i:04d}_1.0-1_all.deb", rec))
    chunks = P.build_packages_chunks(entries)
    assert 3 < len(chunks) < 60
    store = P.ChunkStore(str(tmp_path / "chunks.bin"), 6)
    blobs = P.compress_indexes(chunks, store, ["gz", "xz"])
    raw = blobs["Packages"]
    assert raw == RI.build_packages_text(entries).encode()
    assert raw.count(b"\nPackage: ") + raw.startswith(b"Package: ") == 700
    assert gzip.decompress(blobs["Packages.gz"]) == raw
    assert lzma.decompress(blobs["Packages.xz"]) == raw
    for name, tool in (("Packages.gz", "gzip"), ("Packages.xz", "xz")):
        (tmp_path / name).write_bytes(blobs[name])
        assert subprocess.run([tool, "-t", str(tmp_path / name)], capture_output=True).returncode == 0
        out = subprocess.run([tool, "-dc", str(tmp_path / name)], capture_output=True).stdout
        assert out == raw
    # exactly one stream in the xz file (apt stops after the first stream)
    import lzma as _l
    dec = _l.LZMADecompressor(format=_l.FORMAT_XZ)
    assert dec.decompress(blobs["Packages.xz"]) == raw and dec.eof and dec.unused_data == b""
    assert store.compressed == len(chunks)
    store.save()
    # one more package: only the chunk(s) around it are compressed again
    extra = dict(template, name="chunk-0350a", fields=dict(template["fields"], Package="chunk-0350a"),
                 sha256=hashlib.sha256(b"chunk-extra").hexdigest())
    again = P.ChunkStore(str(tmp_path / "chunks.bin"), 6)
    blobs2 = P.compress_indexes(P.build_packages_chunks(entries + [("main/chunk-0350a_1.0-1_all.deb", extra)]), again, ["gz", "xz"])
    assert again.compressed <= 2
    assert lzma.decompress(blobs2["Packages.xz"]) == gzip.decompress(blobs2["Packages.gz"]) == blobs2["Packages"]
    assert b"Package: chunk-0350a\n" in blobs2["Packages"]


def test_empty_deployment_indexes_decode(tmp_path):
    blobs = P.compress_indexes([], P.ChunkStore(None, 6), ["gz", "xz"])
    assert blobs["Packages"] == b"" and gzip.decompress(blobs["Packages.gz"]) == b"" and lzma.decompress(blobs["Packages.xz"]) == b""


def test_check_mode_before_any_key_or_layout_exists(tmp_path):
    stores = tmp_path / "repo" / "demo" / "stores" / "main"
    build_deb(stores, "early-mo")
    catalog = {"project": {"name": "demo", "architectures": ["amd64"]},
               "deployments": [{"name": "early", "start_date": "2026-11-23", "packages": ["early-mo_1.0-1_all.deb"]}]}
    report = P.publish(catalog, root=str(tmp_path / "repo"), gnupg_home=str(tmp_path / "nokey"), check_mode=True)
    assert report["deployments"]["early"]["changed"] and report["deployments"]["early"]["reason"] == "first publish"
    assert not (tmp_path / "repo" / "demo" / "repos").exists() and not (tmp_path / "nokey").exists()
    with pytest.raises(P.PublishError, match="signing keyring .* does not exist"):
        P.publish(catalog, root=str(tmp_path / "repo"), gnupg_home=str(tmp_path / "nokey"))


# ------------------------------------------------------------------ epochs (issue 15)

def test_a_catalog_naming_the_uploaded_file_publishes_the_epoch_package(repo):
    from ansible_collections.mo.fleet.plugins.module_utils._repo.store import store_packages
    src = build_deb(repo.tmp / "build", "libfoo", version="1:2.0-1", arch="amd64", compress="zstd",
                    out=repo.tmp / "out" / "libfoo_2.0-1_amd64.deb")
    store_packages(str(repo.root), "demo", "main", [str(src)])
    repo.catalog["deployments"][0]["packages"].append("libfoo_2.0-1_amd64.deb")
    repo.catalog["deployments"][1]["packages"] = ["libfoo=1:2.0-1"]
    repo.publish()
    for dep in ("hello", "base"):
        amd64 = (repo.dep(dep) / "dists" / dep / "main/binary-amd64/Packages").read_text()
        assert "Filename: pool/main/libfoo_1%3a2.0-1_amd64.deb\n" in amd64 and "Version: 1:2.0-1\n" in amd64
        assert (repo.dep(dep) / "pool/main/libfoo_1%3a2.0-1_amd64.deb").is_file()


POOL = ["libfoo_1%3a2.0-1_amd64.deb", "libfoo_2.0-1_arm64.deb", "hello-mo_1.0-1_all.deb"]
HOSTILE_PARTS = st.sampled_from(["{{ lookup('pipe','id') }}", "\n", "\r", "\u2028", "\u0085", "\x1c", "\x00", "..",
                                 "1e30", "-1", "99999999999999999999", "%3a", "%3A", ":", "_", "=", "libfoo",
                                 "2.0-1", "amd64", ".deb", "LIBFOO", "Libfoo"])


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(HOSTILE_PARTS, min_size=1, max_size=6))
def test_hostile_package_entries_match_only_by_identity_or_say_one_sentence(parts):
    entry = "".join(parts)
    try:
        got = P.pool_matches(POOL, entry)
    except P.PublishError as exc:
        assert str(exc).endswith(".") and "\n" not in str(exc)
        return
    assert set(got) <= set(POOL)
    for filename in got:
        name, version, arch = P.split_pool_name(filename)
        assert entry == filename or name in entry and arch in entry or entry.startswith(name + "=")
    if any(c in entry for c in "\n\r\u2028\u0085\x1c\x00{}'"):
        assert got == []


# ------------------------------------------------------------------ pending deployments (issue 15)

def _served(repo, dep):
    """(generation, Packages text of amd64) of DEP as served, or None."""
    if not (repo.dep(dep) / "dists").is_symlink():
        return None
    gen = int(os.readlink(repo.dep(dep) / "dists").rstrip("/").rsplit("/", 1)[-1])
    return gen, (repo.dep(dep) / "dists" / dep / "main/binary-amd64/Packages").read_text()


def _tree(root):
    return sorted(str(p) + str(p.stat().st_mtime_ns) for p in root.rglob("*") if not p.is_symlink() or p.exists())


def test_pending_deployments_wait_for_their_packages_and_the_rest_is_published(repo):
    repo.publish()
    hello_before = _served(repo, "hello")
    repo.catalog["package_sets"].append({"name": "late-set", "store": "main"})
    repo.catalog["deployments"].append({"name": "later", "start_date": "2026-11-23",
                                        "packages": ["late-mo_1.0-1_all.deb", "late-b=2.0-1"],
                                        "package_sets": ["late-set"]})
    repo.catalog["deployments"][0]["packages"].append("main/new-mo_3.0-1_all.deb")  # hello: served, now waits
    snapshot = _tree(repo.root)

    # strict: one sentence naming the deployment and everything it misses; nothing written
    with pytest.raises(P.PackagesMissing) as err:
        repo.publish()
    assert str(err.value) == "deployment 'hello' field packages names 'main/new-mo_3.0-1_all.deb', which is not in the stores."
    assert _tree(repo.root) == snapshot

    # check mode reports what would be pending and writes nothing
    dry = repo.publish(check_mode=True, missing="skip")
    assert not dry["changed"] and [p["deployment"] for p in dry["pending"]] == ["hello", "later"]
    assert _tree(repo.root) == snapshot

    report = repo.publish(missing="skip")
    assert not report["changed"] and report["deployments"]["base"]["action"] == "unchanged"
    hello, later = report["pending"]
    assert hello == {"deployment": "hello", "missing": ["main/new-mo_3.0-1_all.deb"], "generation": hello_before[0],
                     "reason": "deployment 'hello' field packages names 'main/new-mo_3.0-1_all.deb', which is not in the stores."}
    assert later["missing"] == ["late-set", "late-mo_1.0-1_all.deb", "late-b=2.0-1"] and later["generation"] is None
    assert later["reason"] == ("deployment 'later' names 3 packages or package sets that are not in the stores yet: "
                               "'late-set', 'late-mo_1.0-1_all.deb', 'late-b=2.0-1'.")
    assert report["deployments"]["later"]["action"] == "pending" and not report["deployments"]["later"]["changed"]
    assert report["deployments"]["hello"]["generation"] == hello_before[0]
    # a pending deployment is not served half-made: the new one does not exist, the served
    # one keeps its last complete generation
    assert not repo.dep("later").exists() and _served(repo, "hello") == hello_before
    state = json.loads((repo.root / "demo/state/publish.json").read_text())
    assert "later" not in state["deployments"]
    assert not repo.publish(missing="skip")["changed"]

    # upload (part of) what it waits for: still pending, naming only what is still missing
    build_deb(repo.stores / "main", "late-mo")
    partial = repo.publish(missing="skip")
    assert [p["missing"] for p in partial["pending"]] == [["main/new-mo_3.0-1_all.deb"], ["late-set", "late-b=2.0-1"]]
    assert not partial["changed"] and not repo.dep("later").exists()

    # upload the rest; publish completes both
    build_deb(repo.stores / "main", "new-mo", version="3.0-1")
    build_deb(repo.stores / "main", "late-b", version="2.0-1", arch="amd64")
    build_deb(repo.stores / "main" / "late-set", "late-set-a")
    done = repo.publish(missing="skip")
    assert done["pending"] == [] and done["changed"]
    assert sorted(n for n, d in done["deployments"].items() if d["changed"]) == ["hello", "later"]
    assert done["deployments"]["later"]["reason"] == "first publish" and done["deployments"]["later"]["packages"] == 3
    gen, text = _served(repo, "hello")
    assert gen == hello_before[0] + 1 and "Package: new-mo\n" in text
    later_text = _served(repo, "later")[1]
    assert all(f"Package: {p}\n" in later_text for p in ("late-mo", "late-b", "late-set-a"))
    assert not repo.publish(missing="skip")["changed"] and not repo.publish()["changed"]


def test_skip_still_fails_on_everything_that_is_not_a_missing_package(repo):
    build_deb(repo.stores / "main", "twice", version="1:1.0-1")
    build_deb(repo.stores / "main", "twice", version="2:1.0-1")
    repo.catalog["deployments"].append({"name": "amb", "start_date": "2026-11-23", "packages": ["twice=1.0-1", "gone.deb"]})
    with pytest.raises(P.PublishError, match="names several versions") as err:
        repo.publish(missing="skip")
    assert not isinstance(err.value, P.PackagesMissing) and not (repo.root / "demo" / "repos" / "hello").exists()
    with pytest.raises(P.PublishError, match=r"^missing must be 'fail' or 'skip', not \['skip'\]\.$"):
        repo.publish(missing=["skip"])


PENDING_PARTS = st.sampled_from(["{{ lookup('pipe','id') }}", "\n", "\r", "\u2028", "\u0085", "\x1c", "\x00", "..",
                                 "/", "=", ":", "1e30", "-1", "99999999999999999999", "gone", "_1.0_all", ".deb",
                                 "GONE", "main/", "set"])


@settings(max_examples=150, deadline=None)
@given(entries=st.lists(st.lists(PENDING_PARTS, min_size=1, max_size=5).map("".join), min_size=1, max_size=4))
def test_hostile_missing_entries_are_one_sentence_or_pending_with_inert_reasons(tmp_path_factory, entries):
    root = tmp_path_factory.mktemp("pending")
    build_deb(root / "demo" / "stores" / "main", "here-mo")
    catalog = {"project": {"name": "demo", "architectures": ["amd64"]},
               "deployments": [{"name": "hostile", "start_date": "2026-11-23", "packages": entries},
                               {"name": "fine", "start_date": "2026-11-23", "packages": ["here-mo_1.0-1_all.deb"]}]}
    try:
        report = P.publish(catalog, root=str(root), gnupg_home=str(root / "nokey"), check_mode=True, missing="skip")
    except P.PublishError as exc:
        msg = str(exc)
        assert msg.endswith(".") and msg.isprintable(), msg
        return
    assert report["deployments"]["fine"]["action"] == "published"
    for item in report["pending"]:
        assert item["deployment"] == "hostile" and set(item["missing"]) <= set(entries)
        # the reason names entries by repr: no line break or control character survives (the
        # result is data: ansible-core never templates a module result)
        assert item["reason"].endswith(".") and item["reason"].isprintable(), item["reason"]
        assert all(e in entries for e in item["missing"])
    assert not (root / "demo" / "repos").exists()
