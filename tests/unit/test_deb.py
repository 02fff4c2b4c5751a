"""deb.py: parse real .debs built by dpkg-deb; clear one-sentence errors for bad input."""

import hashlib
import os
import subprocess

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.mo.fleet.plugins.module_utils._repo import deb as debmod
from ansible_collections.mo.fleet.plugins.module_utils._repo.deb import DebCache, DebError, parse_deb, parse_deb_bytes

from debtools import build_deb


def one_sentence(msg):
    return msg.endswith(".") and "\n" not in msg and "Traceback" not in msg


@pytest.mark.parametrize("compress", ["xz", "gzip", "none"])
def test_parse_real_deb_fields_conffiles_md5sums_hashes(tmp_path, compress):
    path = build_deb(tmp_path, "hello-mo", version="2:1.4-3", arch="all", compress=compress,
                     files={"etc/hello.conf": "x=1\n", "usr/bin/hello-mo": "#!/bin/sh\necho hi\n"},
                     conffiles=["/etc/hello.conf"], extra_fields={"Depends": "libc6 (>= 2.36)", "Section": "misc"})
    rec = parse_deb(path)
    data = path.read_bytes()
    assert (rec["name"], rec["version"], rec["architecture"]) == ("hello-mo", "2:1.4-3", "all")
    assert rec["fields"]["Depends"] == "libc6 (>= 2.36)"
    assert rec["fields"]["Description"].startswith("test package hello-mo\n long description line\n .\n")
    assert list(rec["fields"])[:3] == ["Package", "Version", "Architecture"]
    assert rec["conffiles"] == ["/etc/hello.conf"]
    assert rec["md5sums"] == {
        "etc/hello.conf": hashlib.md5(b"x=1\n").hexdigest(),
        "usr/bin/hello-mo": hashlib.md5(b"#!/bin/sh\necho hi\n").hexdigest(),
    }
    assert rec["size"] == len(data)
    assert rec["sha256"] == hashlib.sha256(data).hexdigest()
    assert rec["md5"] == hashlib.md5(data).hexdigest()
    # agrees with dpkg-deb itself
    for field in ("Package", "Version", "Architecture", "Depends"):
        assert subprocess.run(["dpkg-deb", "-f", str(path), field], capture_output=True, text=True).stdout.strip() == rec["fields"][field]


def test_canonical_filename_encodes_epoch():
    assert debmod.canonical_filename("a", "1:2.0", "amd64") == "a_1%3a2.0_amd64.deb"


def test_not_a_deb(tmp_path):
    bad = tmp_path / "notes.deb"
    bad.write_text("hello, I am text\n")
    with pytest.raises(DebError) as err:
        parse_deb(bad)
    assert "notes.deb is not a .deb" in str(err.value) and one_sentence(str(err.value))


def test_ar_archive_without_debian_binary(tmp_path):
    (tmp_path / "x").write_text("x")
    subprocess.run(["ar", "rc", str(tmp_path / "x.deb"), str(tmp_path / "x")], check=True)
    with pytest.raises(DebError, match="not a .deb"):
        parse_deb(tmp_path / "x.deb")


@pytest.mark.parametrize("cut", [7, 70, 200, -100, -1])
def test_truncated_deb(tmp_path, cut):
    path = build_deb(tmp_path, "trunc-me")
    data = path.read_bytes()
    short = tmp_path / "short.deb"
    short.write_bytes(data[:cut])
    with pytest.raises(DebError) as err:
        parse_deb(short)
    msg = str(err.value)
    assert one_sentence(msg)
    assert "truncated" in msg or "not a .deb" in msg or "corrupt" in msg


def test_bad_package_name_with_path_separator(tmp_path):
    path = build_deb(tmp_path, "good-name")
    # rewrite the control member with a hostile name (dpkg-deb refuses to build one)
    raw = path.read_bytes()
    rec_ok = parse_deb(path)
    assert rec_ok["name"] == "good-name"
    with pytest.raises(DebError) as err:
        debmod.record_from_fields({"Package": "../../etc/evil", "Version": "1", "Architecture": "all"}, "evil.deb")
    assert "path separator" in str(err.value) and one_sentence(str(err.value))
    with pytest.raises(DebError, match="must not contain path separators"):
        debmod.check_safe_name("a/b", "store name")
    with pytest.raises(DebError, match="must not contain '..'"):
        debmod.check_safe_name("..", "store name")
    assert raw  # the good file stayed readable


def test_hostile_name_inside_a_real_archive(tmp_path):
    """A .deb whose control file says Package: a/b (built by hand, since dpkg-deb refuses)."""
    import io
    import tarfile
    control = b"Package: a/b\nVersion: 1\nArchitecture: all\nDescription: x\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("./control")
        info.size = len(control)
        tar.addfile(info, io.BytesIO(control))
    members = [("debian-binary", b"2.0\n"), ("control.tar.gz", buf.getvalue()), ("data.tar.gz", b"")]
    out = b"!<arch>\n"
    for name, blob in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(blob):<10}`\n".encode() + blob + (b"\n" if len(blob) % 2 else b"")
    with pytest.raises(DebError, match="path separator"):
        parse_deb_bytes(out, "evil.deb")


def test_zstd_control_is_parsed_or_one_clear_sentence(tmp_path, monkeypatch):
    # zstd packages are accepted now (the stdlib on 3.14+, else the zstd command); with
    # neither available the refusal is still one sentence naming what to install
    path = build_deb(tmp_path, "zst-pkg", compress="zstd")
    assert parse_deb(path)["name"] == "zst-pkg"
    monkeypatch.setattr(debmod, "_zstd", None)
    monkeypatch.setattr(debmod, "zstd_command", lambda: None)
    with pytest.raises(DebError) as err:
        parse_deb(path)
    assert "zstd" in str(err.value) and one_sentence(str(err.value))


def test_cache_reads_each_deb_once_and_survives_reload(tmp_path):
    a = build_deb(tmp_path, "cache-a")
    b = build_deb(tmp_path, "cache-b")
    cache = DebCache(str(tmp_path / "cache.json"))
    assert cache.get(str(a))["name"] == "cache-a"
    cache.get(str(b))
    cache.get(str(a))
    assert cache.reads == 2
    cache.save()
    again = DebCache(str(tmp_path / "cache.json"))
    assert again.get(str(a))["name"] == "cache-a" and again.reads == 0
    # a changed file (new content, new mtime) is read again
    build_deb(tmp_path, "cache-a", version="2.0-1", out=a)
    os.utime(a, ns=(1, 1))
    assert again.get(str(a))["version"] == "2.0-1" and again.reads == 1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_never_raises_anything_but_deberror(blob):
    try:
        parse_deb_bytes(b"!<arch>\n" + blob, "fuzz.deb")
    except DebError as exc:
        assert one_sentence(str(exc))


def test_cache_journal_appends_then_compacts(tmp_path):
    debs = [build_deb(tmp_path, f"journal-{i}") for i in range(6)]
    path = str(tmp_path / "cache.json")
    cache = DebCache(path)
    for deb in debs[:4]:
        cache.get(str(deb))
    cache.save()
    base = (tmp_path / "cache.json").read_bytes()
    added = DebCache(path)
    added.get(str(debs[4]))
    added.save()
    assert (tmp_path / "cache.json").read_bytes() == base          # one new package: appended only
    assert (tmp_path / "cache.json.log").exists()
    # a torn journal line (killed writer) is ignored and compacted away on the next save
    with open(tmp_path / "cache.json.log", "a") as fh:
        fh.write('{"o": {"broken"')
    reloaded = DebCache(path)
    assert reloaded.get(str(debs[4]))["name"] == "journal-4" and reloaded.reads == 0
    reloaded.prune([str(d) for d in debs[1:5]])
    reloaded.save()
    assert not (tmp_path / "cache.json.log").exists()
    final = DebCache(path)
    assert sorted(r["name"] for r in final.objects.values()) == [f"journal-{i}" for i in range(1, 5)]
    assert debmod.record_fields(final.get(str(debs[2])))["Package"] == "journal-2"
