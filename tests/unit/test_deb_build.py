"""Unit tests for the .deb a user can ship and for package-owned paths (issue 13):
elfdeps (the dynamic section, library resolution), pkgfiles (what a package ships),
debrender (Depends, relocation, package-owned paths), debbuild (a reproducible package) and
the renderers applying what the capture recorded on package-owned paths."""

import gzip
import hashlib
import io
import os
import pwd
import shutil
import stat
import struct
import subprocess
import tarfile

import pytest

from ansible_collections.mo.fleet.plugins.module_utils._render import debbuild
from ansible_collections.mo.fleet.plugins.module_utils._render import debrender
from ansible_collections.mo.fleet.plugins.module_utils._render import elfdeps
from ansible_collections.mo.fleet.plugins.module_utils._capture import pkgfiles
from ansible_collections.mo.fleet.plugins.module_utils._render import api as render
from ansible_collections.mo.fleet.plugins.module_utils._repo import deb as _deb
from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl


# --------------------------------------------------------------------------- a synthetic ELF

def make_elf(needed=("libfoo.so.1", "libc.so.6"), runpath="$ORIGIN/../lib", soname=None, machine=62):
    """A minimal little-endian ELF64 shared object with a dynamic section."""
    strings = b"\x00"
    offsets = {}
    for name in list(needed) + ([runpath] if runpath else []) + ([soname] if soname else []):
        offsets[name] = len(strings)
        strings += name.encode() + b"\x00"
    strtab_off = 64 + 2 * 56
    dyn_off = strtab_off + len(strings) + (-len(strings)) % 8
    tags = [(1, offsets[n]) for n in needed]
    if runpath:
        tags.append((29, offsets[runpath]))
    if soname:
        tags.append((14, offsets[soname]))
    tags += [(5, strtab_off), (0, 0)]
    dyn = b"".join(struct.pack("<qQ", t, v) for t, v in tags)
    total = dyn_off + len(dyn)
    header = struct.pack("<4sBBBB8xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 3, machine, 1, 0, 64, 0, 0, 64, 56, 2,
                         0, 0, 0)
    phdrs = struct.pack("<IIQQQQQQ", 1, 5, 0, 0, 0, total, total, 0x1000)
    phdrs += struct.pack("<IIQQQQQQ", 2, 6, dyn_off, dyn_off, dyn_off, len(dyn), len(dyn), 8)
    body = header + phdrs + strings
    return body + b"\x00" * (dyn_off - len(body)) + dyn


def test_read_dynamic_reads_needed_runpath_and_soname(tmp_path):
    path = tmp_path / "prog"
    path.write_bytes(make_elf(soname="libprog.so.2"))
    info = elfdeps.read_dynamic(str(path))
    assert info == {"is64": True, "machine": 62, "needed": ["libfoo.so.1", "libc.so.6"], "soname": "libprog.so.2",
                    "runpath": ["$ORIGIN/../lib"]}


@pytest.mark.parametrize("damage", ["truncated", "huge_phnum", "text", "empty", "strtab_outside"])
def test_read_dynamic_refuses_malformed_files_quietly(tmp_path, damage):
    data = make_elf()
    if damage == "truncated":
        data = data[:100]
    elif damage == "huge_phnum":
        data = data[:56] + struct.pack("<H", 60000) + data[58:]
    elif damage == "text":
        data = b"#!/bin/sh\necho hi\n"
    elif damage == "empty":
        data = b""
    elif damage == "strtab_outside":
        data = data[:-32] + struct.pack("<qQ", 5, 1 << 40) + struct.pack("<qQ", 0, 0)
    path = tmp_path / "bad"
    path.write_bytes(data)
    assert elfdeps.read_dynamic(str(path)) is None


def test_read_dynamic_agrees_with_readelf_on_a_real_program():
    if not shutil.which("readelf") or not os.path.exists("/usr/bin/ls"):
        pytest.skip("needs binutils' readelf and /usr/bin/ls")
    out = subprocess.run(["readelf", "-d", "/usr/bin/ls"], capture_output=True, text=True, check=True).stdout
    expected = [line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]
    assert elfdeps.read_dynamic("/usr/bin/ls")["needed"] == expected


def test_record_libraries_resolves_owns_and_versions(tmp_path):
    libdir, bindir, ownlib = tmp_path / "lib", tmp_path / "app" / "bin", tmp_path / "app" / "lib"
    for d in (libdir, bindir, ownlib):
        d.mkdir(parents=True)
    (libdir / "libfoo.so.1").write_bytes(make_elf(needed=(), runpath=None, soname="libfoo.so.1"))
    (libdir / "libc.so.6").write_bytes(make_elf(needed=(), runpath=None))
    (ownlib / "libown.so.0").write_bytes(make_elf(needed=(), runpath=None))
    (libdir / "libarm.so.1").write_bytes(make_elf(needed=(), runpath=None, machine=183))
    prog = bindir / "prog"
    prog.write_bytes(make_elf(needed=("libfoo.so.1", "libc.so.6", "libown.so.0", "libarm.so.1", "bad\nname")))
    conf = tmp_path / "ld.so.conf"
    conf.write_text(f"include {tmp_path}/ld.so.conf.d/*.conf\n")
    (tmp_path / "ld.so.conf.d").mkdir()
    (tmp_path / "ld.so.conf.d" / "x.conf").write_text(f"# a comment\n{libdir}\n")
    ops = {"files_created": [{"path": str(prog), "type": "file", "bundled": True},
                             {"path": str(ownlib / "libown.so.0"), "type": "file", "bundled": True}]}
    packages = {("libfoo1", "amd64"): {"version": "1.2-3"}, ("libc6", "amd64"): {"version": "2.36-9"}}
    owned = {str(libdir / "libfoo.so.1"): "libfoo1", str(libdir / "libc.so.6"): "libc6"}
    libs = elfdeps.record_libraries(ops, packages, lambda paths: {p: owned[p] for p in paths if p in owned},
                                    conf=str(conf))
    assert ops["files_created"][0]["elf_needed"] == ["libarm.so.1", "libc.so.6", "libfoo.so.1", "libown.so.0"]
    by_name = {lib["soname"]: lib for lib in libs}
    assert by_name["libfoo.so.1"] == {"soname": "libfoo.so.1", "path": str(libdir / "libfoo.so.1"),
                                      "package": "libfoo1", "version": "1.2-3", "architecture": "amd64"}
    assert by_name["libown.so.0"]["path"] == str(ownlib / "libown.so.0") and by_name["libown.so.0"]["package"] is None
    assert by_name["libarm.so.1"]["path"] is None  # another machine's library is no match


# --------------------------------------------------------------------------- what a package ships

def compressed(data, kind):
    if kind == "bz2":
        import bz2
        return bz2.compress(data)
    if kind == "zst":
        return subprocess.run(["zstd", "-q", "-c"], input=data, stdout=subprocess.PIPE, check=True).stdout
    if kind == "xz":
        import lzma
        return lzma.compress(data, format=lzma.FORMAT_XZ)
    return gzip.compress(data)


def write_deb(path, members, control="Package: demo\nVersion: 1.0-1\nArchitecture: all\n", data_kind="xz", fill=b""):
    """A .deb (ar) whose data.tar holds MEMBERS: (name, type, mode, uname, gname); each file holds FILL."""
    def tar_bytes(entries, compress):
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            for name, kind, mode, uname, gname in entries:
                info = tarfile.TarInfo(name)
                info.type, info.mode, info.uname, info.gname = kind, mode, uname, gname
                body = fill if kind == tarfile.REGTYPE else b""
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body) if kind == tarfile.REGTYPE else None)
        data = raw.getvalue()
        if compress in ("bz2", "zst"):
            return compressed(data, compress)
        if compress == "xz":
            import lzma
            return lzma.compress(data, format=lzma.FORMAT_XZ)
        if compress == "gz":
            return gzip.compress(data)
        return data
    control_tar = io.BytesIO()
    with tarfile.open(fileobj=control_tar, mode="w:gz") as tar:
        info = tarfile.TarInfo("./control")
        info.size = len(control)
        tar.addfile(info, io.BytesIO(control.encode()))
    parts = [("debian-binary", b"2.0\n"), ("control.tar.gz", control_tar.getvalue()),
             ("data.tar" + ("." + data_kind if data_kind else ""), tar_bytes(members, data_kind))]
    with open(path, "wb") as fh:
        fh.write(b"!<arch>\n")
        for name, blob in parts:
            fh.write(debbuild._ar_header(name, len(blob), 0) + blob + (b"\n" if len(blob) % 2 else b""))


@pytest.mark.parametrize("kind", ["xz", "gz", "bz2", "zst", ""])
def test_shipped_reads_modes_and_owners_of_the_data_archive(tmp_path, kind):
    deb = tmp_path / "demo_1.0-1_all.deb"
    write_deb(deb, [("./", tarfile.DIRTYPE, 0o755, "root", "root"),
                    ("./var/log/demo/", tarfile.DIRTYPE, 0o2750, "root", "adm"),
                    ("./usr/bin/demo", tarfile.REGTYPE, 0o755, "root", "root"),
                    ("./usr/bin/demo2", tarfile.SYMTYPE, 0o777, "root", "root")], data_kind=kind)
    assert pkgfiles.shipped(str(deb)) == {"/var/log/demo": ("directory", "2750", "root", "adm"),
                                          "/usr/bin/demo": ("file", "0755", "root", "root"),
                                          "/usr/bin/demo2": ("symlink", "0777", "root", "root")}


def test_shipped_refuses_a_corrupt_or_oversized_archive(tmp_path, monkeypatch):
    deb = tmp_path / "demo_1.0-1_all.deb"
    write_deb(deb, [("./d%d/" % i, tarfile.DIRTYPE, 0o755, "root", "root") for i in range(20)])
    monkeypatch.setattr(pkgfiles, "MAX_DATA_MEMBERS", 5)
    with pytest.raises(_deb.DebError, match="more than 5 entries"):
        pkgfiles.shipped(str(deb))
    deb.write_bytes(deb.read_bytes()[:-40])
    with pytest.raises(_deb.DebError, match="demo_1.0-1_all.deb"):
        pkgfiles.shipped(str(deb))


@pytest.mark.parametrize("kind", ["gz", "xz", "bz2"])
def test_a_compression_bomb_never_sits_in_memory_whole(kind):
    """64 MiB of zeros compress to a few KiB, one read's chunk: each decompress call is capped,
    so what is held stays about one read, and every byte still comes out."""
    blob = compressed(bytes(64 << 20), kind)
    assert len(blob) < 1 << 18
    inflated = pkgfiles._Inflated(io.BytesIO(blob), kind)
    assert inflated.read(10240) == bytes(10240)
    assert len(inflated.buf) < 1 << 17
    total = 10240
    while True:
        chunk = inflated.read(1 << 20)
        assert len(inflated.buf) <= (1 << 20) + (1 << 16)
        if not chunk:
            break
        total += len(chunk)
    assert total == 64 << 20


@pytest.mark.parametrize("kind", ["gz", "xz", "bz2", "zst"])
def test_a_bomb_is_refused_at_the_cap_and_the_zstd_process_is_reaped(tmp_path, monkeypatch, kind):
    deb = tmp_path / "demo_1.0-1_all.deb"
    write_deb(deb, [("./big", tarfile.REGTYPE, 0o644, "root", "root")], data_kind=kind, fill=bytes(32 << 20))
    monkeypatch.setattr(pkgfiles, "MAX_DATA_BYTES", 1 << 20)
    started = []
    real = pkgfiles.subprocess.Popen
    monkeypatch.setattr(pkgfiles.subprocess, "Popen", lambda *a, **k: started.append(real(*a, **k)) or started[-1])
    with pytest.raises(_deb.DebError, match=r"^demo_1.0-1_all.deb has a data archive larger than 1 MiB\.$"):
        pkgfiles.shipped(str(deb))
    assert [p.returncode is not None for p in started] == ([True] if kind == "zst" else [])


def test_differs_names_what_the_package_ships(tmp_path):
    archives = tmp_path / "archives"
    archives.mkdir()
    write_deb(archives / "demo_1.0-1_amd64.deb", [("./usr/share/demo/", tarfile.DIRTYPE, 0o755, "root", "root"),
                                                 ("./usr/bin/demo", tarfile.REGTYPE, 0o755, "root", "root")])
    override = tmp_path / "statoverride"
    override.write_text("demo adm 0750 /var/lib/demo\n")
    shipped = pkgfiles.Shipped({("demo", "amd64"): {"version": "1.0-1"}, ("other", "amd64"): {"version": "2"}},
                               archives=str(archives), download=False, statoverride=str(override))
    entry = {"path": "/usr/share/demo", "type": "directory", "permissions": "0750", "owner": "root", "group": "root"}
    assert shipped.differs(entry, "demo") == {"permissions": "0755"}
    same = {"path": "/usr/bin/demo", "type": "file", "permissions": "0755", "owner": "root", "group": "root"}
    assert shipped.differs(same, "demo") == {}
    chowned = dict(same, permissions="0700", owner="nobody", group="staff")
    assert shipped.differs(chowned, "demo") == {"permissions": "0755", "owner": "root", "group": "root"}
    # dpkg-statoverride is what dpkg itself applies: no difference
    assert shipped.differs({"path": "/var/lib/demo", "type": "directory", "permissions": "0750", "owner": "demo",
                            "group": "adm"}, "demo") == {}
    # no archive and no download: Debian policy for directories, files' modes not compared
    assert shipped.differs(dict(entry, path="/srv/x"), "other") == {"permissions": "0755"}
    assert shipped.differs(dict(chowned, path="/srv/y"), "other") == {"owner": "root", "group": "root"}
    assert shipped.sources == {"demo": "cache", "other": "policy"}
    # only the packages named may be downloaded again; the others fall back to policy at once
    named = pkgfiles.Shipped({("other", "amd64"): {"version": "2"}}, archives=str(archives), download={"fresh"},
                             statoverride=str(override))
    assert named.differs(dict(entry, path="/srv/x"), "other") == {"permissions": "0755"}
    assert named.sources == {"other": "policy"} and named._tmp is None


# --------------------------------------------------------------------------- renderers

def sha(data):
    return hashlib.sha256(data).hexdigest()


def package_owned_template():
    ops = {"packages_installed": [{"name": "demo", "version": "1.0-1", "architecture": "amd64", "manual": True}],
           "directories_created": [
               {"path": "/usr/share/demo", "type": "directory", "permissions": "0750", "owner": "root",
                "group": "root", "package": "demo", "package_differs": {"permissions": "0755"}},
               {"path": "/usr/share/demo/plain", "type": "directory", "permissions": "0755", "owner": "root",
                "group": "root", "package": "demo"}],
           "files_created": [
               {"path": "/usr/bin/demo", "type": "file", "size": 3, "permissions": "0700", "owner": "nobody",
                "group": "staff", "hash": sha(b"abc"), "package": "demo", "package_default": True, "bundled": True,
                "package_differs": {"permissions": "0755", "owner": "root", "group": "root"}},
               {"path": "/usr/bin/demo-other", "type": "file", "size": 3, "permissions": "0755", "owner": "root",
                "group": "root", "hash": sha(b"abc"), "package": "demo", "package_default": True,
                "bundled": False}]}
    return tpl.build({"argv": ["apt-get", "install", "demo"], "timestamp": "2026-12-01T10:00:00+00:00",
                      "name": "demo", "system": "debian 12 (x86_64)"}, ops)


def test_tasks_apply_what_the_capture_recorded_on_package_paths():
    tasks = render.to_tasks(package_owned_template(), {"verify_bundle": False})
    items = {}
    for task in tasks:
        for module in ("ansible.builtin.file", "ansible.builtin.copy"):
            if module in task:
                for item in task.get("loop") or []:
                    items[item["path"]] = (module, item)
    assert items["/usr/share/demo"][1]["mode"] == "0750"
    assert items["/usr/bin/demo"][0] == "ansible.builtin.copy"
    assert (items["/usr/bin/demo"][1]["mode"], items["/usr/bin/demo"][1]["owner"]) == ("0700", "nobody")
    assert "/usr/share/demo/plain" not in items and "/usr/bin/demo-other" not in items  # the package makes these


def test_deb_leaves_package_paths_to_the_package_and_sets_them_in_postinst():
    out = render.to_deb(package_owned_template(), {"verify_bundle": False, "name": "demo-extra"})
    assert out["files"] == [] and out["dirs"] == []
    assert "[ -L /usr/share/demo ] || chmod 0750 /usr/share/demo\n" in out["postinst"]
    assert "[ -L /usr/bin/demo ] || chmod 0700 /usr/bin/demo\n" in out["postinst"]
    assert "chown -h nobody:staff /usr/bin/demo\n" in out["postinst"]
    assert not [line for line in out["postinst"].splitlines()
                if line.startswith(("chmod ", "chown ")) and not line.startswith("chown -h ")]
    assert ("/usr/bin/demo", "a file of the package demo (the postinst sets the mode and owner the capture "
                             "recorded)") in out["left_out"]


def elf_bundle(tmp_path, program=None, extra=()):
    """A bundle of a make install: an ELF program needing libfoo.so.1, libc.so.6 and its own libbar."""
    bundle = tmp_path / "bundle"
    data = {"/usr/local/bin/prog": program or make_elf(needed=("libfoo.so.1", "libc.so.6", "libbar.so.0")),
            "/usr/local/lib/libbar.so.0": make_elf(needed=(), runpath=None),
            "/etc/prog/prog.conf": b"x=1\n"}
    data.update(dict(extra))
    files = []
    for path, blob in data.items():
        dest = bundle / "files" / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(blob)
        entry = {"path": path, "type": "file", "size": len(blob), "permissions": "0755" if "bin" in path else "0644",
                 "owner": "root", "group": "root", "hash": sha(blob), "bundled": True}
        if path == "/usr/local/bin/prog":
            entry["elf_needed"] = ["libbar.so.0", "libc.so.6", "libfoo.so.1", "libgone.so.9"]
        files.append(entry)
    libs = [{"soname": "libfoo.so.1", "path": "/usr/lib/x86_64-linux-gnu/libfoo.so.1", "package": "libfoo1",
             "version": "1.2-3", "architecture": "amd64"},
            {"soname": "libc.so.6", "path": "/lib/x86_64-linux-gnu/libc.so.6", "package": "libc6",
             "version": "2.36-9", "architecture": "amd64"},
            {"soname": "libbar.so.0", "path": "/usr/local/lib/libbar.so.0", "package": None, "version": None,
             "architecture": None},
            {"soname": "libgone.so.9", "path": None, "package": None, "version": None, "architecture": None}]
    doc = tpl.build({"argv": ["make", "install"], "timestamp": "2026-12-01T10:00:00+00:00", "name": "prog",
                     "system": "debian 12 (x86_64)"},
                    {"files_created": files,
                     "packages_installed": [{"name": "libfoo1", "version": "1.2-4", "architecture": "amd64",
                                             "manual": False}]},
                    {"analysis_method": "snapshot", "shared_libraries": libs})
    (bundle / "template.json").write_text(tpl.dump(doc))
    return bundle


def test_depends_name_the_library_owners_with_the_installed_versions(tmp_path):
    out = debrender.to_deb(str(elf_bundle(tmp_path)), {"version": "1.0-1"})
    assert out["depends"] == ["libc6 (>= 2.36-9)", "libfoo1 (>= 1.2-3)"]  # libbar ships in the package
    assert out["unresolved_libraries"] == ["libgone.so.9"]
    assert out["architecture"] == "amd64" and out["maintainer"] == debrender.DEFAULT_MAINTAINER
    assert "root@localhost" not in out["control"]


def test_relocation_moves_the_prefix_or_says_which_file_embeds_it(tmp_path):
    out = debrender.to_deb(str(elf_bundle(tmp_path)), {"relocate": "/opt"})
    assert [f[0] for f in out["files"]] == ["/etc/prog/prog.conf", "/opt/prog/bin/prog", "/opt/prog/lib/libbar.so.0"]
    assert ("/opt/prog", "0755") in out["dirs"]
    assert [f[0] for f in debrender.to_deb(str(tmp_path / "bundle"), {"relocate": "/usr"})["files"]][1] == "/usr/bin/prog"
    embedded = make_elf() + b"/usr/local/share/locale\x00"
    shutil.rmtree(tmp_path / "bundle")
    with pytest.raises(render.RenderError, match="'/usr/local/bin/prog' holds the string /usr/local"):
        debrender.to_deb(str(elf_bundle(tmp_path, program=embedded)), {"relocate": "/usr"})
    with pytest.raises(render.RenderError, match="relocate must be"):
        debrender.to_deb(str(tmp_path / "bundle"), {"relocate": "/srv/x"})


def test_the_package_is_reproducible_and_check_mode_writes_nothing(tmp_path):
    bundle = elf_bundle(tmp_path)
    plan = debbuild.plan(str(bundle), {"version": "1.0-1", "maintainer": "Ops Team <ops@example.org>",
                                       "license": "GPL-3+", "changelog": "First build"})
    out = tmp_path / "out"
    dry = debbuild.build(plan, str(out), check_mode=True)
    assert dry["changed"] is True and not out.exists()
    first = debbuild.build(plan, str(out))
    again = debbuild.build(debbuild.plan(str(bundle), {"version": "1.0-1", "maintainer": "Ops Team <ops@example.org>",
                                                       "license": "GPL-3+", "changelog": "First build"}), str(out))
    assert first["changed"] is True and again["changed"] is False and first["sha256"] == again["sha256"] == dry["sha256"]
    assert os.listdir(out) == ["prog_1.0-1_amd64.deb"]
    record = _deb.parse_deb(first["path"])
    assert record["fields"]["Depends"] == "libc6 (>= 2.36-9), libfoo1 (>= 1.2-3)"
    assert record["fields"]["Maintainer"] == "Ops Team <ops@example.org>"
    assert record["conffiles"] == ["/etc/prog/prog.conf"]
    assert set(record["md5sums"]) >= {"usr/local/bin/prog", "usr/share/doc/prog/copyright",
                                      "usr/share/doc/prog/changelog.Debian.gz"}
    if shutil.which("dpkg-deb"):
        listing = subprocess.run(["dpkg-deb", "--contents", first["path"]], capture_output=True, text=True,
                                 check=True).stdout
        assert "-rwxr-xr-x root/root" in listing and "./usr/share/doc/prog/changelog.Debian.gz" in listing
        changelog = subprocess.run(["dpkg-deb", "--fsys-tarfile", first["path"]], capture_output=True,
                                   check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(changelog)) as tar:
            text = gzip.decompress(tar.extractfile("./usr/share/doc/prog/changelog.Debian.gz").read()).decode()
            copyright_text = tar.extractfile("./usr/share/doc/prog/copyright").read().decode()
        assert text.startswith("prog (1.0-1) unstable; urgency=medium\n\n  * First build\n")
        assert " -- Ops Team <ops@example.org>  Tue, 01 Dec 2026 10:00:00 +0000\n" in text
        assert "License: GPL-3+" in copyright_text


def test_doc_options_and_maintainer_defaults(tmp_path):
    bundle = elf_bundle(tmp_path)
    with pytest.raises(render.RenderError, match="copyright must be one line"):
        debbuild.plan(str(bundle), {"copyright": "a\nb"})
    with pytest.raises(render.RenderError, match="distribution must be"):
        debbuild.plan(str(bundle), {"distribution": "bad suite"})
    assert debbuild.default_maintainer({}) == debrender.DEFAULT_MAINTAINER
    assert debbuild.default_maintainer({"DEBFULLNAME": "Ada L", "DEBEMAIL": "ada@example.org"}) == \
        "Ada L <ada@example.org>"
    assert debbuild.default_maintainer({"DEBEMAIL": "Ada L <ada@example.org>"}) == "Ada L <ada@example.org>"
    assert debbuild.default_maintainer({"DEBEMAIL": "x\n@y", "DEBFULLNAME": "z"}) == debrender.DEFAULT_MAINTAINER


def test_strip_strips_elf_files_reproducibly(tmp_path):
    if not shutil.which("strip") or not os.path.exists("/usr/bin/ls"):
        pytest.skip("needs binutils' strip and /usr/bin/ls")
    with open("/usr/bin/ls", "rb") as fh:
        program = fh.read()
    sectionless = elf_bundle(tmp_path)
    with pytest.raises(render.RenderError, match="strip refused '/usr/local/bin/prog'"):
        debbuild.build(debbuild.plan(str(sectionless), {"strip": True}), str(tmp_path / "refused"))
    assert not (tmp_path / "refused").exists() or not os.listdir(tmp_path / "refused")
    shutil.rmtree(sectionless)
    bundle = elf_bundle(tmp_path, program=program, extra={"/usr/local/lib/libbar.so.0": program})
    plan = debbuild.plan(str(bundle), {"version": "1.0-1", "strip": True})
    first = debbuild.build(plan, str(tmp_path / "out"))
    again = debbuild.build(debbuild.plan(str(bundle), {"version": "1.0-1", "strip": True}), str(tmp_path / "out"))
    assert first["changed"] is True and again["changed"] is False
    copy = tmp_path / "ls"
    copy.write_bytes(program)
    subprocess.run(["strip", *debbuild.STRIP_ARGS, str(copy)], check=True)
    record = _deb.parse_deb(first["path"])
    assert record["md5sums"]["usr/local/bin/prog"] == hashlib.md5(copy.read_bytes()).hexdigest()
    with pytest.raises(render.RenderError, match="strip must be true or false"):
        debbuild.plan(str(bundle), {"strip": "yes"})


def test_postinst_attribute_lines_never_follow_a_symlink_swapped_in(tmp_path):
    """Between apt's unpack and configure the owner of a directory could replace a packaged
    file with a symlink to /etc/shadow: the postinst's chown and chmod lines leave its target
    alone (they are run here, as root, against such a link)."""
    victim = tmp_path / "shadow"
    victim.write_text("root:*:\n")
    os.chmod(victim, 0o600)
    path = str(tmp_path / "usr-bin-demo")
    os.symlink(str(victim), path)
    ops = {"packages_installed": [{"name": "demo", "version": "1.0-1", "architecture": "amd64", "manual": True}],
           "files_created": [{"path": path, "type": "file", "size": 3, "permissions": "0666", "owner": "nobody",
                              "group": "nogroup", "hash": sha(b"abc"), "package": "demo", "package_default": True,
                              "bundled": True, "package_differs": {"permissions": "0755", "owner": "root",
                                                                   "group": "root"}}]}
    doc = tpl.build({"argv": ["apt-get", "install", "demo"], "timestamp": "2026-12-01T10:00:00+00:00",
                     "name": "demo", "system": "debian 12 (x86_64)"}, ops)
    out = render.to_deb(doc, {"verify_bundle": False, "name": "demo-extra", "allowed_roots": [str(tmp_path)]})
    lines = [line for line in out["postinst"].splitlines() if path in line]
    assert len(lines) == 2
    subprocess.run(["sh", "-e", "-c", "\n".join(lines)], check=True)
    st = os.stat(victim)
    assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o600, 0)
    assert os.lstat(path).st_uid == pwd.getpwnam("nobody").pw_uid  # the link itself, as chown -h does


def test_elf_reading_never_blocks_on_a_fifo_nor_follows_a_link(tmp_path):
    """A capture (root) reads each bundled ELF file's dynamic section; the path's owner could
    put a FIFO or a symlink there: the read gives None at once instead of hanging or reading
    another file."""
    elf = tmp_path / "prog"
    elf.write_bytes(make_elf())
    assert elfdeps.read_dynamic(str(elf))["needed"] == ["libfoo.so.1", "libc.so.6"]
    os.mkfifo(tmp_path / "fifo")
    os.symlink(str(elf), str(tmp_path / "link"))
    assert elfdeps.read_dynamic(str(tmp_path / "fifo")) is None
    assert elfdeps.read_dynamic(str(tmp_path / "link")) is None
    assert elfdeps._read_head(str(tmp_path / "fifo")) == b""
