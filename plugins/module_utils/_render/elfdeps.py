# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared libraries ELF files need, resolved on the host that has them.

``read_dynamic(path)`` reads an ELF file's dynamic section (``DT_NEEDED``, ``DT_SONAME``,
``DT_RUNPATH``/``DT_RPATH``) through its program headers, as the dynamic loader does; a
file that is not ELF, or has no dynamic section, gives None.  Every ELF file is hostile
input: headers, entry counts and string lengths are capped and checked against the file's
size, and a malformed file gives None, never a traceback.

``library_dirs()`` is the loader's search path on this host (``/etc/ld.so.conf`` and its
includes, then the default directories); ``resolve`` finds a needed library there (or in
the file's run path, ``$ORIGIN`` expanded), of the same ELF class and machine.

``record_libraries(operations, packages, owners)`` runs at capture time, on the capture
host: it is the one place that has the package database the libraries came from.  It sets
``elf_needed`` on every bundled ELF file and returns the ``shared_libraries`` list for the
template's metadata: each needed library with the path it resolved to and the package (and
installed version) that owns it, or no package when the capture's own files provide it.

Standard library only (runs on targets).
"""

from __future__ import annotations

import glob
import os
import stat
import struct

from ansible_collections.mo.fleet.plugins.module_utils._common import names

MAX_PHNUM = 256                 # program headers read
MAX_DYN = 4096                  # dynamic entries read
MAX_STRING = 4096               # bytes of one name in the string table
MAX_NEEDED = 512                # libraries one file may name
MAX_CONF_FILES = 256            # ld.so.conf files read (includes)
MAX_FILES = 65536               # ELF files one capture resolves
DT_NEEDED, DT_STRTAB, DT_SONAME, DT_RPATH, DT_RUNPATH = 1, 5, 14, 15, 29
MULTIARCH = {62: "x86_64-linux-gnu", 183: "aarch64-linux-gnu", 3: "i386-linux-gnu",
             40: "arm-linux-gnueabihf", 21: "powerpc64le-linux-gnu", 22: "s390x-linux-gnu",
             243: "riscv64-linux-gnu"}


def _header(data: bytes):
    """(is64, endian, machine, phoff, phentsize, phnum) of an ELF header, or None."""
    if len(data) < 52 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return None
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if is64:
        if len(data) < 64:
            return None
        machine, = struct.unpack_from(end + "H", data, 18)
        phoff, = struct.unpack_from(end + "Q", data, 32)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 54)
    else:
        machine, = struct.unpack_from(end + "H", data, 18)
        phoff, = struct.unpack_from(end + "I", data, 28)
        phentsize, phnum = struct.unpack_from(end + "HH", data, 42)
    return is64, end, machine, phoff, phentsize, phnum


def _phdrs(fh, size, is64, end, phoff, phentsize, phnum):
    want = 56 if is64 else 32
    if phentsize != want or phnum > MAX_PHNUM or phoff + phnum * want > size:
        return None
    fh.seek(phoff)
    raw = fh.read(phnum * want)
    out = []
    for i in range(phnum):
        if is64:
            p_type, _f, off, vaddr, _p, filesz, _m, _a = struct.unpack_from(end + "IIQQQQQQ", raw, i * want)
        else:
            p_type, off, vaddr, _p, filesz, _m, _f, _a = struct.unpack_from(end + "IIIIIIII", raw, i * want)
        out.append((p_type, off, vaddr, filesz))
    return out


def _string(fh, size, offset):
    if offset < 0 or offset >= size:
        return None
    fh.seek(offset)
    raw = fh.read(MAX_STRING)
    end = raw.find(b"\x00")
    if end < 0:
        return None
    try:
        return raw[:end].decode("utf-8")
    except UnicodeDecodeError:
        return None


def read_dynamic(path: str) -> dict | None:
    """{"is64", "machine", "needed", "soname", "runpath"} of the ELF file at PATH, or None."""
    try:
        # never through a link, never blocking on a FIFO swapped in by the path's owner
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            return None
        return _read_open(fh, st.st_size)


def _read_open(fh, size):
    try:
        head = _header(fh.read(64))
        if head is None:
            return None
        is64, end, machine, phoff, phentsize, phnum = head
        phdrs = _phdrs(fh, size, is64, end, phoff, phentsize, phnum)
        if not phdrs:
            return None
        dynamic = [p for p in phdrs if p[0] == 2]
        if not dynamic:
            return None
        _t, off, _v, filesz = dynamic[0]
        entsize = 16 if is64 else 8
        count = min(filesz // entsize, MAX_DYN)
        if off + count * entsize > size:
            return None
        fh.seek(off)
        raw = fh.read(count * entsize)
        tags = []
        for i in range(count):
            tag, val = struct.unpack_from(end + ("qQ" if is64 else "iI"), raw, i * entsize)
            if tag == 0:
                break
            tags.append((tag, val))
        strtab = [v for t, v in tags if t == DT_STRTAB]
        if not strtab:
            return None
        base = None
        for p_type, p_off, vaddr, p_filesz in phdrs:
            if p_type == 1 and vaddr <= strtab[0] < vaddr + p_filesz:
                base = strtab[0] - vaddr + p_off
        if base is None:
            return None

        def text(tag):
            return [s for s in (_string(fh, size, base + v) for t, v in tags if t == tag) if s is not None]
        needed = text(DT_NEEDED)[:MAX_NEEDED]
        soname = text(DT_SONAME)
        runpath = text(DT_RUNPATH) or text(DT_RPATH)
    except (OSError, struct.error):
        return None
    return {"is64": is64, "machine": machine, "needed": needed, "soname": soname[0] if soname else None,
            "runpath": [d for item in runpath for d in item.split(":") if d]}


def _conf_dirs(path, seen, out):
    if path in seen or len(seen) >= MAX_CONF_FILES:
        return
    seen.add(path)
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read(1 << 20).splitlines()
    except OSError:
        return
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line.startswith("include "):
            pattern = line[len("include "):].strip()
            if not pattern.startswith("/"):
                pattern = os.path.join(os.path.dirname(path), pattern)
            for inc in sorted(glob.glob(pattern)):
                _conf_dirs(inc, seen, out)
        elif line.startswith("/") and line not in out:
            out.append(line)


def library_dirs(conf: str = "/etc/ld.so.conf", machine: int | None = None) -> list:
    """The loader's search directories on this host, in its order."""
    out = []
    _conf_dirs(conf, set(), out)
    triplet = MULTIARCH.get(machine) if machine is not None else None
    defaults = ([f"/lib/{triplet}", f"/usr/lib/{triplet}"] if triplet else []) + ["/lib", "/usr/lib", "/lib64", "/usr/lib64"]
    return out + [d for d in defaults if d not in out]


def resolve(soname: str, info: dict, origin: str, dirs: list) -> str | None:
    """The path NEEDED resolves to: run path (``$ORIGIN`` expanded), then DIRS; the same
    ELF class and machine as the file that needs it."""
    if "/" in soname:
        return None
    search = [d.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for d in info.get("runpath", [])] + dirs
    for directory in search:
        candidate = os.path.join(directory, soname)
        header = _header(_read_head(candidate)) if os.path.isfile(candidate) else None
        if header and header[0] == info["is64"] and header[2] == info["machine"]:
            return os.path.normpath(candidate)
    return None


def _read_head(path):
    try:  # a library's links are followed (libfoo.so.1 -> libfoo.so.1.2); a FIFO never blocks
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)), "rb") as fh:
            return fh.read(64) if stat.S_ISREG(os.fstat(fh.fileno()).st_mode) else b""
    except OSError:
        return b""


def record_libraries(operations: dict, packages: dict, owners, conf: str = "/etc/ld.so.conf") -> list:
    """Set ``elf_needed`` on bundled ELF files of OPERATIONS; return the ``shared_libraries``
    list: {"soname", "path", "package", "version", "architecture"} per needed library.

    PACKAGES is dpkg's view ({(name, arch): {"version": ...}}), OWNERS a function
    {path: package} over paths (``snapshot.owners``)."""
    needs, infos = {}, {}
    for op in ("files_created", "files_modified"):
        for entry in operations.get(op, []):
            if entry.get("type") != "file" or not entry.get("bundled") or len(infos) >= MAX_FILES:
                continue
            info = read_dynamic(entry["path"])
            if info is None:
                continue
            good = [n for n in info["needed"] if names.is_valid("file_part", n)]
            entry["elf_needed"] = sorted(set(good))
            infos[entry["path"]] = info
            for soname in good:
                needs.setdefault((soname, info["is64"], info["machine"]), (entry["path"], info))
    dirs_by_machine = {}
    found = {}
    for (soname, _is64, machine), (path, info) in sorted(needs.items()):
        dirs = dirs_by_machine.setdefault(machine, library_dirs(conf, machine))
        found[soname] = resolve(soname, info, os.path.dirname(path), dirs)
    wanted = set(p for p in found.values() if p) | set(os.path.realpath(p) for p in found.values() if p)
    owner_of = owners(wanted) if wanted else {}
    out = []
    for soname, path in sorted(found.items()):
        package = None
        if path:
            package = owner_of.get(path) or owner_of.get(os.path.realpath(path))
        version = arch = None
        for (name, parch), pkg in sorted(packages.items()):
            if name == package:
                version, arch = pkg["version"], parch
                break
        out.append({"soname": soname, "path": path, "package": package if version else None,
                    "version": version, "architecture": arch})
    return out
