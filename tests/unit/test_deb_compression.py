"""deb.py reads packages as they come: control and data members compressed with zstd, xz,
gzip or not at all, as dpkg-deb builds them, and refuses a decompression bomb in any of
them with one sentence (the size cap holds whatever the compression)."""

import gzip
import io
import lzma
import subprocess
import tarfile

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.mo.fleet.plugins.module_utils._repo import deb as debmod
from ansible_collections.mo.fleet.plugins.module_utils._repo.deb import MAX_CONTROL_TAR, DebError, parse_deb, parse_deb_bytes

from debtools import ar_archive, build_deb, deb_members

COMPRESSIONS = ["zstd", "xz", "gzip", "none"]
SUFFIX = {"zstd": ".zst", "xz": ".xz", "gzip": ".gz", "none": ""}


def one_sentence(msg):
    return msg.endswith(".") and "\n" not in msg and "Traceback" not in msg


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c", "-19"], input=data, capture_output=True, check=True).stdout


def compress(kind, data):
    return {"zstd": zstd, "xz": lzma.compress, "gzip": lambda d: gzip.compress(d, mtime=0),
            "none": lambda d: d}[kind](data)


def control_tar(control, extra=b""):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("./control")
        info.size = len(control)
        tar.addfile(info, io.BytesIO(control))
        if extra:
            info = tarfile.TarInfo("./padding")
            info.size = len(extra)
            tar.addfile(info, io.BytesIO(extra))
    return buf.getvalue()


def test_dpkg_deb_builds_every_compression_here(tmp_path):
    # the premise of the tests below: this dpkg-deb writes each member compression
    for kind in COMPRESSIONS:
        names = [n for n, _ in deb_members(build_deb(tmp_path, "probe", compress=kind))]
        assert names == ["debian-binary", f"control.tar{SUFFIX[kind]}", f"data.tar{SUFFIX[kind]}"]


def test_every_compression_parses_to_the_same_control_data(tmp_path):
    records = {}
    for kind in COMPRESSIONS:
        path = build_deb(tmp_path / kind, "libfoo", version="1:2.0-1", arch="amd64", compress=kind,
                         files={"etc/foo.conf": "a=1\n", "usr/bin/foo": "#!/bin/sh\n"},
                         conffiles=["/etc/foo.conf"], extra_fields={"Depends": "libc6", "Section": "libs"})
        rec = parse_deb(path)
        shown = subprocess.run(["dpkg-deb", "-f", str(path), "Package", "Version", "Depends"],
                               capture_output=True, text=True, check=True).stdout
        assert f"Version: {rec['version']}" in shown and f"Depends: {rec['fields']['Depends']}" in shown
        records[kind] = {k: rec[k] for k in ("name", "version", "architecture", "fields", "control",
                                             "conffiles", "md5sums")}
    assert records["zstd"]["version"] == "1:2.0-1"
    for kind in COMPRESSIONS[1:]:
        assert records[kind] == records["zstd"], kind


def test_zstd_is_read_by_the_command_when_the_stdlib_has_none(tmp_path, monkeypatch):
    monkeypatch.setattr(debmod, "_zstd", None)
    path = build_deb(tmp_path, "zst-only", compress="zstd")
    assert parse_deb(path)["name"] == "zst-only"


@pytest.mark.parametrize("kind", COMPRESSIONS)
def test_a_bomb_is_refused_in_every_compression(kind):
    # a valid control file followed by MAX_CONTROL_TAR of zeros: a few KiB compressed
    raw = control_tar(b"Package: bomb\nVersion: 1\nArchitecture: all\n", extra=b"\0" * (MAX_CONTROL_TAR + 4096))
    blob = compress(kind, raw)
    assert kind == "none" or len(blob) < MAX_CONTROL_TAR // 100
    data = ar_archive([("debian-binary", b"2.0\n"), (f"control.tar{SUFFIX[kind]}", blob), ("data.tar", b"")])
    with pytest.raises(DebError) as err:
        parse_deb_bytes(data, "bomb.deb")
    msg = str(err.value)
    assert one_sentence(msg) and "bomb.deb" in msg and "larger than 16 MiB" in msg


def test_a_zstd_bomb_stops_the_command_early(monkeypatch):
    # a 256 MiB zstd bomb: the command is stopped once the cap is passed, never run to the end
    raw = b"\0" * (256 << 20)
    bomb = subprocess.run(["zstd", "-q", "-c", "-19"], input=raw, capture_output=True, check=True).stdout
    del raw
    assert len(bomb) < 1 << 20
    monkeypatch.setattr(debmod, "_zstd", None)
    data = ar_archive([("debian-binary", b"2.0\n"), ("control.tar.zst", bomb), ("data.tar.zst", b"")])
    with pytest.raises(DebError, match="larger than 16 MiB once decompressed"):
        parse_deb_bytes(data, "gigabomb.deb")


def test_truncated_zstd_is_one_sentence():
    blob = zstd(control_tar(b"Package: cut\nVersion: 1\nArchitecture: all\n"))
    data = ar_archive([("debian-binary", b"2.0\n"), ("control.tar.zst", blob[: len(blob) // 2]), ("data.tar", b"")])
    with pytest.raises(DebError) as err:
        parse_deb_bytes(data, "cut.deb")
    assert one_sentence(str(err.value)) and "cut.deb" in str(err.value)


HOSTILE = st.one_of(
    st.binary(max_size=512),
    st.sampled_from([b"(\xb5/\xfd", b"(\xb5/\xfd\x00\x00", b"{{ lookup('pipe','id') }}", b"\n\r\x1c\x00",
                     "\u2028\u0085".encode()]),
).map(lambda b: b"(\xb5/\xfd" + b if not b.startswith(b"(\xb5/\xfd") else b)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blob=HOSTILE)
def test_hostile_zstd_members_are_one_sentence_never_a_traceback(blob):
    data = ar_archive([("debian-binary", b"2.0\n"), ("control.tar.zst", blob), ("data.tar.zst", b"")])
    try:
        parse_deb_bytes(data, "hostile.deb")
    except DebError as exc:
        assert one_sentence(str(exc)) and "hostile.deb" in str(exc)


@settings(max_examples=25, deadline=None)
@given(field=st.sampled_from(["Package", "package", "PACKAGE", "pAcKaGe"]),
       value=st.sampled_from(["zst-ok", "{{ lookup('pipe','id') }}", "a\nVersion: 9", "a\rb", "a\u2028b", "..",
                              "x\x1cy", "a\x00b"]))
def test_case_twisted_and_hostile_fields_read_the_same_through_zstd(field, value):
    control = f"{field}: {value}\nVersion: 1.0\nArchitecture: all\n".encode()
    outcomes = []
    for kind in ("zstd", "gzip"):
        data = ar_archive([("debian-binary", b"2.0\n"), (f"control.tar{SUFFIX[kind]}", compress(kind, control_tar(control))),
                           ("data.tar", b"")])
        try:
            outcomes.append(("ok", parse_deb_bytes(data, "x.deb")["name"]))
        except DebError as exc:
            assert one_sentence(str(exc))
            outcomes.append(("refused", str(exc)))
    assert outcomes[0] == outcomes[1]
    if value == "zst-ok":
        assert outcomes[0] == ("ok", "zst-ok")


@pytest.mark.parametrize("member,blob", [
    ("control.tar.zst", gzip.compress(control_tar(b"Package: gz-in-zst\nVersion: 1\nArchitecture: all\n"))),
    ("control.tar.zst", lzma.compress(control_tar(b"Package: xz-in-zst\nVersion: 1\nArchitecture: all\n"))),
    ("control.tar.xz", lzma.compress(control_tar(b"Package: lzma-in-xz\nVersion: 1\nArchitecture: all\n"),
                                     format=lzma.FORMAT_ALONE)),
])
def test_a_member_in_another_format_than_its_name_is_refused_as_dpkg_does(member, blob):
    # the zstd command would inflate gzip and xz too, and lzma's auto mode reads legacy .lzma;
    # dpkg reads a member by its name's compression only, so mo.fleet does the same
    data = ar_archive([("debian-binary", b"2.0\n"), (member, blob), ("data.tar", b"")])
    with pytest.raises(DebError) as err:
        parse_deb_bytes(data, "mislabelled.deb")
    assert one_sentence(str(err.value)) and "mislabelled.deb" in str(err.value)


def test_zstd_skippable_frame_first_is_still_zstd(monkeypatch):
    monkeypatch.setattr(debmod, "_zstd", None)
    skippable = b"\x50\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"skip"
    blob = skippable + zstd(control_tar(b"Package: skip-ok\nVersion: 1\nArchitecture: all\n"))
    data = ar_archive([("debian-binary", b"2.0\n"), ("control.tar.zst", blob), ("data.tar", b"")])
    assert parse_deb_bytes(data, "skip.deb")["name"] == "skip-ok"
