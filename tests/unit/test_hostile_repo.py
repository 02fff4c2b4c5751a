"""Issue 11 (hostile input) for the repository server and the release documents.

Every control file, Packages index, Release file, name, state file and sync record is
hostile.  The attacks here: text that str.splitlines and apt split differently (U+2028,
U+0085, ``\\x1c``, ``\\r``), field names in twisted case and given twice, names with a
trailing newline, bombs and huge numbers, wrong types.  Either mo.fleet refuses with one
sentence, or APT'S OWN PARSER (python3-apt's ``apt_pkg.TagFile``, real apt code, run in the
system Python) reads exactly what mo.fleet reports.
"""

import io
import json
import subprocess
import tarfile
import time
import zlib

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from ansible_collections.mo.fleet.plugins.module_utils._repo import deb as debmod
from ansible_collections.mo.fleet.plugins.module_utils._repo import publish as P
from ansible_collections.mo.fleet.plugins.module_utils._repo import repo_index as RI
from ansible_collections.mo.fleet.plugins.module_utils._common import deb822, names
from ansible_collections.mo.fleet.plugins.module_utils._repo.catalog import CatalogError, load_catalog
from ansible_collections.mo.fleet.plugins.module_utils._repo.deb import DebError, parse_deb_bytes
from ansible_collections.mo.fleet.plugins.module_utils._release.release_client import ClientError, check_entry, sources_text
from ansible_collections.mo.fleet.plugins.module_utils._release.rollout import (
    RolloutError, halt_decisions, read_state, write_sync_record,
)
from ansible_collections.mo.fleet.plugins.module_utils._repo.store import store_packages

from debtools import build_deb, gzip_bytes, tar_bytes

HOSTILE = ["\u2028", "\u2029", "\x85", "\x1c", "\x1d", "\x1e", "\r", "\x00", "\x0b", "\x0c", "\x7f"]
JINJA = "{{ lookup('pipe','id') }}"


def one_sentence(msg):
    return isinstance(msg, str) and msg.endswith(".") and "\n" not in msg and "Traceback" not in msg


# ------------------------------------------------------------------ apt's own parser

APT_SERVER = r"""
import json, sys, tempfile
import apt_pkg
apt_pkg.init()
scratch = tempfile.NamedTemporaryFile(prefix="mo-fleet-apt-", delete=False)
scratch.close()
for line in sys.stdin:
    text = json.loads(line)
    try:
        with open(scratch.name, "wb") as fh:
            fh.write(text.encode("utf-8"))
        out = []
        with open(scratch.name, "rb") as fh:
            for section in apt_pkg.TagFile(fh):
                out.append([[k, section[k]] for k in section.keys()])
        reply = {"ok": out}
    except Exception as exc:
        reply = {"error": str(exc)}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
"""


class Apt:
    """apt_pkg.TagFile in the system Python (python3-apt), one long-lived process."""

    def __init__(self):
        self.proc = subprocess.Popen(["/usr/bin/python3", "-c", APT_SERVER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, encoding="utf-8")

    def read(self, text):
        self.proc.stdin.write(json.dumps(text) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if "error" in reply:
            return None
        return [dict((k, v) for k, v in section) for section in reply["ok"]]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def apt():
    probe = subprocess.run(["/usr/bin/python3", "-c", "import apt_pkg"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("python3-apt is not installed (lab/install-host-deps.sh installs it)")
    server = Apt()
    yield server
    server.close()


# ------------------------------------------------------------------ hand-built .debs

def raw_deb(control, extra_members=(), control_name="control.tar.gz", tar_entries=None):
    """A .deb whose control file is CONTROL (bytes), built by hand: dpkg-deb refuses hostile ones."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, blob in (tar_entries or [("./control", control)]):
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    tar_bytes = buf.getvalue()
    if control_name.endswith(".gz"):
        comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        tar_bytes = comp.compress(tar_bytes) + comp.flush()
    members = [("debian-binary", b"2.0\n"), (control_name, tar_bytes), ("data.tar.gz", b"")]
    members += list(extra_members)
    out = b"!<arch>\n"
    for name, blob in members:
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(blob):<10}`\n".encode() + blob + (b"\n" if len(blob) % 2 else b"")
    return out


BASE = "Package: mo-hostile\nVersion: 1.0-1\nArchitecture: all\nMaintainer: t <t@example.invalid>\n"


def refused(text_or_bytes, match=None):
    data = raw_deb(text_or_bytes.encode("utf-8") if isinstance(text_or_bytes, str) else text_or_bytes)
    with pytest.raises(DebError) as err:
        parse_deb_bytes(data, "evil.deb")
    msg = str(err.value)
    assert one_sentence(msg), msg
    if match:
        assert match in msg, msg
    return msg


# ------------------------------------------------------------------ the two parsers agree

@pytest.mark.parametrize("char", HOSTILE)
def test_line_breaks_str_splitlines_knows_and_apt_does_not_are_refused(char):
    # str.splitlines would read a second Package field here; apt reads one odd name
    msg = refused(f"Package: mo-hostile{char}Package: openssh-server\nVersion: 1:99\nArchitecture: all\n",
                  "evil.deb control file line 1")
    assert msg.startswith("evil.deb control file line 1 holds ") and msg.endswith(
        ", which apt and mo.fleet would read differently."), msg
    assert "openssh-server" not in msg  # the smuggled name is never shown as if it were read


@pytest.mark.parametrize("twin", ["package", "PACKAGE", "pAcKaGe"])
def test_a_field_given_twice_in_any_case_is_refused(twin, apt):
    text = f"{BASE}{twin}: openssh-server\n"
    # apt keeps the LAST one: a first-wins reader would show a different package to mo.fleet
    assert apt.read(text)[0]["Package"] == "openssh-server"
    msg = refused(text, "twice")
    assert twin in msg


def test_case_twisted_identity_fields_are_read_as_apt_reads_them(apt):
    text = "PACKAGE: mo-twisted\nversion: 2.0\narchitecture: all\nDescription: x\n"
    rec = parse_deb_bytes(raw_deb(text.encode()), "twisted.deb")
    assert (rec["name"], rec["version"], rec["architecture"]) == ("mo-twisted", "2.0", "all")
    section = apt.read(text)[0]
    assert deb822.get(section, "Package") == rec["name"] and deb822.get(section, "Version") == rec["version"]
    served = apt.read(RI.packages_stanza(debmod.slim(rec), "pool/main/x.deb"))[0]
    assert deb822.get(served, "Package") == "mo-twisted" and deb822.get(served, "Version") == "2.0"


def test_a_control_file_cannot_bring_its_own_filename_or_hashes(apt):
    text = BASE + "filename: pool/../../etc/shadow\nsha256: " + "0" * 64 + "\nSize: 1\nDescription: x\n"
    rec = debmod.slim(parse_deb_bytes(raw_deb(text.encode()), "evil.deb"))
    stanza = RI.packages_stanza(rec, "pool/main/mo-hostile_1.0-1_all.deb")
    section = apt.read(stanza)[0]
    assert section["Filename"] == "pool/main/mo-hostile_1.0-1_all.deb"
    assert section["SHA256"] == rec["sha256"] and section["Size"] == str(rec["size"])


@pytest.mark.parametrize("text, match", [
    (BASE + "\nPackage: openssh-server\nVersion: 1:99\nArchitecture: all\n", "paragraphs"),
    (BASE + " \nDescription: x\n", "only whitespace"),
    (" continued\n" + BASE, "continuation line without a field"),
    (BASE + "#Comment: x\n", "field name"),
    (BASE + "Bad Name: x\n", "field name"),
    (BASE + "NoColon\n", "not a 'Field: value' line"),
    (BASE + "Depends:\n", "empty"),
])
def test_structure_apt_and_mo_fleet_could_read_differently_is_refused(text, match):
    msg = refused(text, match)
    assert msg.startswith("evil.deb control file "), msg  # names the file and where in it


def test_a_control_file_that_is_not_utf8_is_refused():
    msg = refused(BASE.encode() + b"Description: \xff\xfe\n", "not UTF-8")
    assert msg == "evil.deb has a control file that is not UTF-8 text."


FIELD_NAMES = st.sampled_from(["Package", "package", "PACKAGE", "Version", "VERSION", "Architecture",
                               "architecture", "Description", "Depends", "X-Odd", "Filename", "SHA256",
                               "Installed-Size", "-x", "#x", "a b", "Pre:Depends"])
VALUE_CHARS = st.sampled_from(list("ab1:. -+~\t\n") + HOSTILE + ["{", "}", "'", JINJA, " .", "\n ", "\n\t"])
VALUES = st.lists(VALUE_CHARS, max_size=12).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(FIELD_NAMES, VALUES), max_size=6), st.booleans())
# apt reads 'Pre: Depends: \n a' keeping the blank before the continuation; the writer cannot
# serve that unchanged, so the upload must refuse it (it was accepted, then failed the publish)
@example([("Pre:Depends", "\n a")], False)
def test_hostile_control_files_are_refused_or_read_exactly_as_apt_reads_them(apt, extra, identity_first):
    fields = [("Package", "mo-prop"), ("Version", "1.0"), ("Architecture", "all")]
    pairs = fields + extra if identity_first else extra + fields
    text = "".join(f"{k}: {v}\n" for k, v in pairs)
    try:
        rec = parse_deb_bytes(raw_deb(text.encode("utf-8")), "prop.deb")
    except DebError as exc:
        assert one_sentence(str(exc)), str(exc)
        return
    control = apt.read(text)
    assert control is not None and len(control) == 1
    lowered = {k.lower(): v for k, v in control[0].items()}
    assert (lowered["package"], lowered["version"], lowered["architecture"]) == \
        (rec["name"], rec["version"], rec["architecture"])
    # what apt reads from the Packages stanza mo.fleet writes is what mo.fleet reports
    slim = debmod.slim(rec)
    stanza = RI.packages_stanza(slim, "pool/main/x.deb")
    served = apt.read(stanza)
    assert served is not None and len(served) == 1
    reported = debmod.record_fields(slim)
    expect = {k: v for k, v in reported.items() if k.lower() not in ("filename", "size", "md5sum", "sha1", "sha256")}
    got = {k: v for k, v in served[0].items() if k not in ("Filename", "Size", "MD5sum", "SHA256")}
    assert got == expect
    assert deb822.get(served[0], "Package") == rec["name"] and deb822.get(served[0], "Version") == rec["version"]


@pytest.mark.parametrize("text", ["P: : \n P", "P: a \n b \n c", "P: a\t\n b", "P:  a  \n  b", "P: a   ",
                                  "P: a \n", "P: \n P", "Description: x \n .  \n y\t"])
def test_whitespace_before_a_continuation_line_is_kept_and_the_value_end_trimmed_as_apt_does(apt, text):
    """apt's TagFile (and dpkg) drop whitespace at the end of a value only; a line's trailing
    blanks before a continuation stay part of the value (found by the property test below)."""
    assert deb822.parse_paragraphs(text, "case") == apt.read(text)


TEXT_CHARS = st.sampled_from(list("Pk:ab \t\n\n#-") + ["Package", "package", ": "] + HOSTILE)


@settings(max_examples=400, deadline=None)
@given(st.lists(TEXT_CHARS, max_size=30).map("".join))
def test_the_reader_agrees_with_apt_or_refuses(apt, text):
    try:
        ours = deb822.parse_paragraphs(text, "fuzz")
    except deb822.Deb822Error as exc:
        assert one_sentence(str(exc)), str(exc)
        return
    theirs = apt.read(text)
    assert theirs is not None, text
    assert ours == [section for section in theirs if section]  # apt also yields an empty one for blank text


@settings(max_examples=300, deadline=None)
@given(FIELD_NAMES, VALUES)
def test_the_writer_refuses_or_apt_reads_back_exactly(apt, name, value):
    try:
        text = deb822.format_field(name, value, "test")
    except deb822.Deb822Error as exc:
        assert one_sentence(str(exc)) and name in str(exc), str(exc)
        return
    expect = value.lstrip(" \t\n")  # 'Name:\n continued' starts at its continuation, as apt
    assert apt.read(text) == [{name: expect}]
    assert deb822.parse_paragraphs(text) == [{name: expect}]


def test_release_files_refuse_hostile_origin_label_and_suite(apt):
    meta = {"origin": "acme", "label": "acme base", "suite": "base", "architectures": ["amd64"],
            "description": "d"}
    from datetime import datetime, timezone
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    index = {"main/binary-amd64/Packages": (10, "0" * 32, "1" * 64)}
    text = P.build_release(meta, index, now)
    section = apt.read(text)[0]
    assert section["Origin"] == "acme" and section["Label"] == "acme base" and section["Suite"] == "base"
    assert P.parse_release_sha256(text) == {"main/binary-amd64/Packages": "1" * 64}
    for key in ("origin", "label", "suite", "description"):
        for bad in ("x\nSuite: stable", "x\u2028y", "x\r", " x", JINJA + "\n"):
            with pytest.raises(P.PublishError) as err:
                P.build_release(dict(meta, **{key: bad}), index, now)
            assert one_sentence(str(err.value))
    for key in ("origin", "label"):
        for bad in ("acme\n", "a\u2028b", "a\x1cb", " a", 5):
            with pytest.raises(P.PublishError, match=key) as err:
                P._options({key: bad})
            assert one_sentence(str(err.value))


def test_hostile_release_file_names_no_path_outside_the_suite():
    text = "SHA256:\n " + "a" * 64 + " 1 ../../../etc/passwd\n " + "b" * 64 + " 1 /etc/shadow\n zz 1 main/x\n"
    assert P.parse_release_sha256(text) == {}


# ------------------------------------------------------------------ names that are not what they seem

TRAILING = st.sampled_from(["\n", "\r", "\u2028", "\x85", "\x00", "/..", " "])


@settings(max_examples=40, deadline=None)
@given(TRAILING)
def test_names_with_a_trailing_line_break_are_refused_everywhere(tmp_path_factory, tail):
    tmp = tmp_path_factory.mktemp("names")
    deb = build_deb(tmp / "src", "name-ok")
    for kwargs in ({"store": "main" + tail}, {"package_set": "set" + tail}, {"project": "demo" + tail}):
        args = dict(root=str(tmp / "repo"), project="demo", store="main", files=[str(deb)])
        args.update(kwargs)
        with pytest.raises(DebError) as err:
            store_packages(**args)
        assert one_sentence(str(err.value))
        assert not (tmp / "repo").exists()
    catalog = {"project": {"name": "demo", "architectures": ["amd64"]},
               "deployments": [{"name": "base" + tail, "start_date": "2026-12-01"}]}
    with pytest.raises(CatalogError):
        load_catalog(catalog)
    with pytest.raises(P.PublishError) as err:
        P.validate_catalog_for_publish(catalog)
    assert one_sentence(str(err.value))
    with pytest.raises(P.PublishError):
        P.validate_catalog_for_publish({"project": {"name": "demo" + tail, "architectures": ["amd64"]}})
    with pytest.raises(ClientError):
        check_entry({"name": "base" + tail, "uri": "http://repo/x"})
    if tail != "/..":  # a URL path may hold '..'; it cannot hold a line break
        with pytest.raises(ClientError):
            check_entry({"name": "base", "uri": "http://repo/x" + tail})
    with pytest.raises(ClientError):
        check_entry({"name": "base", "uri": "http://repo/x", "suite": "base" + tail})
    assert not names.is_valid("safe", "base" + tail)


def test_sources_files_refuse_a_value_that_would_start_a_field(apt):
    entry = check_entry({"name": "base", "uri": "http://repo/pub/p/repos/base"})
    text = sources_text(entry, "/etc/apt/keyrings/mo-fleet.asc")
    body = text.split("\n", 1)[1]
    assert apt.read(body) == [{"Types": "deb", "URIs": "http://repo/pub/p/repos/base", "Suites": "base",
                               "Components": "main", "Signed-By": "/etc/apt/keyrings/mo-fleet.asc"}]
    for bad in (dict(entry, uri="http://x\nSigned-By: /tmp/evil"), dict(entry, suite="b\u2028c"),
                dict(entry, components=["main\nTrusted: yes"])):
        with pytest.raises(ClientError):
            sources_text(bad, "/k.asc")
    with pytest.raises(ClientError):
        sources_text(entry, "/k.asc\nTrusted: yes")


# ------------------------------------------------------------------ resources and numbers

def test_a_control_archive_bomb_is_refused_without_reading_it_all():
    bomb = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    blob = bomb.compress(b"\0" * (64 << 20)) + bomb.flush()  # 64 MiB of zeros in ~64 KiB
    data = b"!<arch>\n"
    for name, part in (("debian-binary", b"2.0\n"), ("control.tar.gz", blob), ("data.tar.gz", b"")):
        data += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(part):<10}`\n".encode() + part + (b"\n" if len(part) % 2 else b"")
    with pytest.raises(DebError) as err:
        parse_deb_bytes(data, "bomb.deb")
    assert "larger than 16 MiB once decompressed" in str(err.value) and one_sentence(str(err.value))


def test_too_many_members_entries_or_a_huge_control_file_are_refused():
    many = [(f"x{i}", b"") for i in range(40)]
    with pytest.raises(DebError, match="more than 16 ar members"):
        parse_deb_bytes(raw_deb(BASE.encode(), extra_members=many), "many.deb")
    entries = [(f"./f{i}", b"") for i in range(1200)] + [("./control", BASE.encode())]
    with pytest.raises(DebError, match="more than 1000 entries"):
        parse_deb_bytes(raw_deb(b"", tar_entries=entries), "entries.deb")
    huge = (BASE + "Description: x\n" + " y\n" * 600000).encode()
    with pytest.raises(DebError, match="control file larger than 1024 KiB"):
        parse_deb_bytes(raw_deb(huge), "huge.deb")


@pytest.mark.parametrize("size", ["976562500000000000000000001", "-1", "1e30", "12.5", "0x10", "\u0661\u0662",
                                  str(2 ** 40 + 1)])
def test_absurd_installed_sizes_are_refused(size):
    msg = refused(BASE + f"Installed-Size: {size}\n", "Installed-Size")
    assert msg == f"evil.deb has Installed-Size {size!r}, which is not a number of KiB between 0 and {2 ** 40}.", msg


def test_a_sane_installed_size_is_kept():
    rec = parse_deb_bytes(raw_deb((BASE + "Installed-Size: 2048\n").encode()), "ok.deb")
    assert rec["fields"]["Installed-Size"] == "2048"


def test_parsing_is_linear_in_continuation_lines():
    text = BASE + "Description: x\n" + " y\n" * 80000
    start = time.perf_counter()
    fields = deb822.parse_stanza(text, "long")
    took = time.perf_counter() - start
    assert fields["Description"].count("\n") == 80000
    assert took < 2.0, f"80k continuation lines took {took:.2f} s"


# ------------------------------------------------------------------ documents with wrong types

CATALOG = {"project": {"name": "demo"}, "deployments": [{"name": "base", "start_date": "2026-12-01"}]}


@pytest.mark.parametrize("halted", [5, 1e30, True, [5], [["base"]]])
def test_release_filters_refuse_a_halted_that_is_no_list_of_names(halted):
    from ansible.errors import AnsibleFilterError
    from ansible_collections.mo.fleet.plugins.filter.release import release_plan, release_timeline
    from ansible_collections.mo.fleet.plugins.filter.rollout import release_halts, release_waves
    for call in (lambda: release_plan(CATALOG, {"h": ["a"]}, "2026-12-02", halted=halted),
                 lambda: release_timeline(CATALOG, {"h": ["a"]}, "2026-12-02", halted=halted),
                 lambda: release_waves(CATALOG, {"h": ["a"]}, "2026-12-02", halted=halted),
                 lambda: release_halts({}, CATALOG, halted=halted)):
        with pytest.raises(AnsibleFilterError, match="halted") as err:
            call()
        assert "\n" not in str(err.value) and "Traceback" not in str(err.value)


@pytest.mark.parametrize("doc, field", [
    ({"halted": []}, "halted"),
    ({"halted": {"base\n": {}}}, "halted"),
    ({"halted": {"base": []}}, "halted/base"),
    ({"halted": {"base": {"failed": "5"}}}, "halted/base/failed"),
    ({"halted": {"base": {"failed": 1e30}}}, "halted/base/failed"),
    ({"halted": {"base": {"total": -1}}}, "halted/base/total"),
    ({"halted": {"base": {"total": 10 ** 30}}}, "halted/base/total"),
    ({"halted": {"base": {"hosts": "web1"}}}, "halted/base/hosts"),
    ({"halted": {"base": {"hosts": ["../x"]}}}, "halted/base/hosts/0"),
    ({"halted": {"base": {"date": "2026-12-01\n"}}}, "halted/base/date"),
    ({"version": 99, "halted": {}}, "version"),
    ([], "halted"),
])
def test_state_files_with_wrong_types_are_one_sentence(tmp_path, doc, field):
    path = tmp_path / "release-state.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(RolloutError) as err:
        read_state(str(path))
    msg = str(err.value)
    assert f"field '{field}" in msg and "\n" not in msg, msg


@pytest.mark.parametrize("record, field", [
    ({"status": "error", "deployments": 5}, "deployments"),
    ({"status": "error", "failed_deployments": [["base"]]}, "failed_deployments/0"),
    ({"status": "error", "failed_deployments": ["base\n"]}, "failed_deployments/0"),
    ({"status": 5}, "status"),
    ({"status": "ok", "planned": {"base": 1}}, "planned"),
    ({"status": "ok", "message": ["x"]}, "message"),
])
def test_sync_records_with_wrong_types_are_one_sentence(record, field):
    with pytest.raises(RolloutError) as err:
        halt_decisions(CATALOG, {"web1": record})
    msg = str(err.value)
    assert f"field '{field}'" in msg and "host 'web1'" in msg and "\n" not in msg, msg


@pytest.mark.parametrize("field, value", [("host", "web1\n"), ("time", "2026-11-29T09:30:00Z\n"),
                                          ("date", "2026-12-07\n"), ("deployments", [JINJA + "\n"]),
                                          ("time", "../../x"), ("host", "a" * 300)])
def test_sync_records_with_hostile_names_are_not_written(tmp_path, field, value):
    record = {"host": "web1", "time": "2026-11-29T09:30:00Z", "date": "2026-12-07", "status": "ok",
              "deployments": ["base"]}
    record[field] = value
    with pytest.raises(RolloutError, match=f"field '{field}") as err:
        write_sync_record(str(tmp_path), record)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "sync").exists()


@pytest.mark.parametrize("records, halted, field", [
    ({"web1": {"status": "ok", "deployments": 5}}, {}, "deployments"),
    ({"web1": {"status": "ok", "time": ["x"]}}, {}, "time"),
    ({}, {"base": {"failed": "1e30"}}, "halted/base/failed"),
    ({}, {"base": 5}, "halted/base"),
])
def test_the_status_site_refuses_records_and_halts_of_the_wrong_type(records, halted, field):
    from ansible.errors import AnsibleFilterError
    from ansible_collections.mo.fleet.plugins.filter.status import release_status_site
    with pytest.raises(AnsibleFilterError) as err:
        release_status_site(CATALOG, {"web1": ["a"]}, records=records, halted=halted, today="2026-12-02")
    assert f"field '{field}" in str(err.value) and "\n" not in str(err.value)


def test_hostile_publish_state_and_cache_are_one_sentence_or_read_again(tmp_path):
    path = tmp_path / "publish.json"
    for doc in ({"version": 1, "deployments": {"base": 5}}, {"version": 1, "deployments": {"base\n": {}}},
                {"version": 1, "deployments": {"base": {"generation": "7"}}}, {"version": 1, "deployments": []}):
        path.write_text(json.dumps(doc))
        with pytest.raises(P.PublishError) as err:
            P.load_state(str(path))
        assert one_sentence(str(err.value)), str(err.value)
    deb = build_deb(tmp_path / "src", "cache-hostile")
    cache_path = str(tmp_path / "cache.bin")
    cache = debmod.DebCache(cache_path)
    sha = cache.get(str(deb))["sha256"]
    cache.save()
    with open(cache_path + ".log", "a") as fh:  # a journal line giving the record another shape
        fh.write(json.dumps({"o": {sha: {"name": "openssh-server\n", "head": 5}}, "p": {"x": 5}}) + "\n")
        fh.write(json.dumps([1, 2]) + "\n")
    again = debmod.DebCache(cache_path)
    assert again.get(str(deb))["name"] == "cache-hostile" and again.reads == 1


@pytest.mark.parametrize("halt, field", [
    ({"base": {"failed": "5"}}, "halted/base/failed"),
    ({"base\n": {}}, "halted"),
    ({"base": {"threshold": 1e30}}, "halted/base/threshold"),
])
def test_a_halt_that_would_poison_the_state_file_is_not_written(tmp_path, halt, field):
    from ansible_collections.mo.fleet.plugins.module_utils._release.rollout import update_state
    path = tmp_path / "release-state.json"
    with pytest.raises(RolloutError) as err:
        update_state(str(path), halt=halt)
    assert f"field 'halt': '{field}" in str(err.value) and "\n" not in str(err.value)
    assert not path.exists()


@pytest.mark.parametrize("field, value", [("suite", "bookworm\n"), ("suite", "../../x"), ("base_url", "http://m/debian\n"),
                                          ("base_url", "http://m/d ebian"), ("components", ["main\n"]),
                                          ("components", ["main\u2028contrib"]),
                                          # what nginx's proxy_pass would read as a variable or a new directive
                                          ("base_url", "http://$http_x_upstream/"), ("base_url", "http://m/;}server{listen;#"),
                                          ("base_url", 'http://m/"x'),
                                          # apt refuses a whole source list for an absolute suite with components
                                          ("suite", "bookworm/")])
def test_catalog_external_deployments_refuse_values_that_break_a_sources_line(field, value):
    dep = {"name": "debian", "start_date": "2026-12-01", "source": "external", "base_url": "http://m/debian",
           "suite": "bookworm", "components": ["main"]}
    dep[field] = value
    with pytest.raises(CatalogError) as err:
        load_catalog({"project": {"name": "demo"}, "deployments": [dep]})
    assert f"field '{field}" in str(err.value) and "\n" not in str(err.value)


def test_a_large_packages_index_is_read_whole_and_a_field_flood_is_refused():
    from ansible_collections.mo.fleet.plugins.module_utils._release.release_client import parse_packages_index
    index = "".join(f"Package: mo-p{i}\nVersion: 1.{i}\nArchitecture: all\nDescription: d\n\n" for i in range(5000))
    assert len(parse_packages_index(index)) == 5000
    flood = BASE + "".join(f"X-F{i}: v\n" for i in range(1001))
    refused(flood, "more than 1000 fields")


# ------------------------------------------------------------------ the .deb container as dpkg reads it

_tar, _gzip = tar_bytes, gzip_bytes


HELLO = b"Package: hello\nVersion: 1.0\nArchitecture: all\nDescription: d\n"
SUDO = b"Package: sudo\nVersion: 99\nArchitecture: all\nDescription: d\n"


def _deb(control_member, name="control.tar.gz", binary=b"2.0\n", order=None):
    from debtools import ar_archive
    members = order or [("debian-binary", binary), (name, control_member), ("data.tar.gz", _gzip(_tar([])))]
    return ar_archive(members)


@pytest.mark.parametrize("second", [".//control", "./x/../control", "control", "/control"])
def test_a_second_control_under_any_spelling_tar_resolves_is_refused(second):
    data = _deb(_gzip(_tar([("./control", HELLO), (second, SUDO)])))
    with pytest.raises(DebError, match="two control files"):
        parse_deb_bytes(data, "t.deb")


def test_a_second_gzip_member_that_dpkg_would_read_is_refused():
    first = _tar([("./control", HELLO)])[:-1024]  # no end blocks: dpkg reads on into the next member
    data = _deb(_gzip(first) + _gzip(_tar([("./control", SUDO)])))
    with pytest.raises(DebError, match="data after the end"):
        parse_deb_bytes(data, "t.deb")


@pytest.mark.parametrize("binary, order, words", [
    (b"2.0garbage", None, "format version"),
    (b"2.0\njunk", None, "format version"),
    (b"2.0\n", [("debian-binary", b"2.0\n"), ("data.tar.gz", b""), ("control.tar.gz", b"")], "second member"),
    (b"2.0\n", [("debian-binary", b"2.0\n"), ("control.tar.gz", b"")], "no data.tar"),
    (b"2.0\n", "extra", "after data.tar"),
])
def test_containers_dpkg_refuses_are_refused(binary, order, words):
    control = _gzip(_tar([("./control", HELLO)]))
    if order == "extra":
        order = [("debian-binary", b"2.0\n"), ("control.tar.gz", control), ("data.tar.gz", _gzip(_tar([]))),
                 ("control.tar.xz", b"x")]
    elif order is not None:
        order = [(n, control if n.startswith("control") else b) for n, b in order]
    with pytest.raises(DebError, match=words):
        parse_deb_bytes(_deb(control, binary=binary, order=order), "t.deb")
    assert parse_deb_bytes(_deb(control, order=[("debian-binary", b"2.0\n"), ("_sig", b"s"), ("control.tar.gz", control),
                                                 ("data.tar.gz", _gzip(_tar([])))]), "t.deb")["name"] == "hello"


@pytest.mark.parametrize("version, valid", [
    ("1.0-", False), ("1:1.0-", False), ("99999999999999999999:1", False), ("abc", False), ("1.0-1", True),
    ("1:2.0-1", True), ("2.36-9+deb12u1", True), ("1.0-a-b", True), ("1.22.1-9", True), ("0.9~rc1", True),
])
def test_versions_are_what_dpkg_validates(version, valid):
    assert names.is_valid("version", version) is valid
    rc = subprocess.run(["dpkg", "--validate-version", version], capture_output=True).returncode
    assert (rc == 0) is valid


def test_a_large_deb_is_parsed_without_reading_it_whole(tmp_path):
    import tracemalloc
    path = tmp_path / "big.deb"
    control = _gzip(_tar([("./control", HELLO)]))
    path.write_bytes(_deb(control, order=[("debian-binary", b"2.0\n"), ("control.tar.gz", control),
                                          ("data.tar", b"\0" * (64 << 20))]))
    tracemalloc.start()
    try:
        record = debmod.parse_deb(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert record["name"] == "hello" and record["size"] == path.stat().st_size
    assert peak < 8 << 20  # well below the 64 MiB data member: only headers and control are read


def test_a_catalog_without_project_is_planned_and_rendered_without_a_traceback():
    from ansible_collections.mo.fleet.plugins.module_utils._release.rollout import client_entries
    cat = {"deployments": [{"name": "app", "start_date": "2026-11-02", "packages_to_install": ["hello"]}]}
    entries = client_entries(cat, ["app"], "http://repo1")
    assert entries[0]["uri"] == "http://repo1/pub/default/repos/app"
