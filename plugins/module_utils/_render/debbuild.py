# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the .deb of a capture with the standard library (the engine of ``mo.fleet.deb_build``).

``plan(source, options) -> dict``: ``debrender.to_deb`` plus the package's documentation
(``/usr/share/doc/<package>/changelog[.Debian].gz`` and ``copyright``) from the options
``changelog``, ``distribution``, ``copyright``, ``license``, ``license_text``; ``strip``
strips the ELF files as dh_strip does (``strip`` of binutils; the packaged bytes then differ
from the captured ones).
``build(plan, dest_dir, check_mode=False) -> dict``: writes
``<dest>/<package>_<version>_<arch>.deb`` (temp file + rename) unless a file with the same
bytes is there already: the package is reproducible (every timestamp is the capture's, every
owner root, members in sorted order, xz with fixed settings), so the same bundle and options
give the same file and a second run changes nothing.  In check mode the package is built in
a temporary directory and compared, never written.

The package follows dpkg-deb's layout: ``debian-binary``, ``control.tar.xz`` (control,
md5sums, conffiles, maintainer scripts), ``data.tar.xz`` (``./`` members, parents before
children).  ``lintian(path)`` runs lintian when it is installed and returns its findings.
"""

from __future__ import annotations

import datetime
import email.utils
import gzip
import hashlib
import io
import lzma
import os
import posixpath
import re
import shutil
import subprocess
import tarfile
import tempfile

from ansible_collections.mo.fleet.plugins.module_utils._render import debrender
from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._render.prepare import RenderError, _shown

DOC_OPTIONS = {"changelog": None, "distribution": "unstable", "copyright": "the upstream authors",
               "license": "other", "license_text": "The license of the captured software applies.", "strip": False}
# what dh_strip does: drop the symbol table and the .comment/.note sections (shared libraries
# keep the symbols they export: --strip-unneeded)
STRIP_ARGS = ["--remove-section=.comment", "--remove-section=.note"]
STRIP_TIMEOUT = 120
XZ_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 6}]
LINTIAN_TIMEOUT = 600
_LINE = re.compile(r"[^\x00-\x1f\x7f]*")


def default_maintainer(environ=None) -> str:
    """DEBFULLNAME <DEBEMAIL> when the build host sets them (Debian's packaging convention;
    DEBEMAIL may hold ``Name <mail>`` itself), else debrender.DEFAULT_MAINTAINER."""
    env = os.environ if environ is None else environ
    mail, full = (env.get("DEBEMAIL") or "").strip(), (env.get("DEBFULLNAME") or "").strip()
    if mail and "<" in mail and _LINE.fullmatch(mail):
        return mail
    if mail and full and _LINE.fullmatch(mail + full) and "<" not in full and ">" not in mail:
        return f"{full} <{mail}>"
    return debrender.DEFAULT_MAINTAINER


def _one_line(value, what):
    if not isinstance(value, str) or not value.strip() or not _LINE.fullmatch(value):
        raise RenderError(f"The option {what} must be one line of printable text, not {_shown(str(value))}.")
    return value.strip()


def _doc_options(options):
    doc = dict(DOC_OPTIONS)
    for key in DOC_OPTIONS:
        if options.get(key) is not None:
            doc[key] = options[key]
    for key in ("distribution", "copyright", "license"):
        _one_line(doc[key], key)
    if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", doc["distribution"]):
        raise RenderError(f"The option distribution must be a Debian suite name, not {_shown(doc['distribution'])}.")
    if not isinstance(doc["strip"], bool):
        raise RenderError("The option strip must be true or false.")
    for key in ("changelog", "license_text"):
        if doc[key] is not None and (not isinstance(doc[key], str) or "\x00" in doc[key] or "\r" in doc[key]):
            raise RenderError(f"The option {key} must be text without NUL or carriage return characters.")
    return doc


def _timestamp(doc):
    try:
        moment = datetime.datetime.fromisoformat(doc["MO_template"]["timestamp"])
    except (KeyError, TypeError, ValueError):
        moment = datetime.datetime(2000, 1, 1)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment


def _indented(text):
    """TEXT as deb822/changelog continuation lines: each line indented, blank lines as '.'."""
    return [(" " + line.rstrip()) if line.strip() else " ." for line in text.strip("\n").split("\n")]


def changelog_text(deb, doc_opts, head, moment):
    """The Debian changelog (one entry) of the package."""
    command = (head["command"] + " " + head["arguments"]).strip()
    entry = doc_opts["changelog"] or f"Built by mo.fleet from a capture of: {command}"
    lines = []
    for i, line in enumerate(entry.strip("\n").split("\n")):
        line = re.sub(r"[\x00-\x1f\x7f]", "?", line.rstrip())[:900]
        lines.append(("  * " if i == 0 or not line.startswith(" ") else "  ") + line.strip() if line else "")
    return (f"{deb['package']} ({deb['version']}) {doc_opts['distribution']}; urgency=medium\n\n"
            + "\n".join(lines) + "\n\n"
            + f" -- {deb['maintainer']}  {email.utils.format_datetime(moment)}\n")


def copyright_text(deb, doc_opts):
    """A machine-readable copyright file (DEP-5)."""
    body = ["Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/",
            f"Upstream-Name: {deb['package']}",
            "Comment: Files recorded by mo.fleet.capture; packaged by mo.fleet.deb_build.", "",
            "Files: *", f"Copyright: {doc_opts['copyright'].strip()}", f"License: {doc_opts['license'].strip()}"]
    body += _indented(doc_opts["license_text"] or "See the upstream project.")
    return "\n".join(body) + "\n"


def plan(source, options=None) -> dict:
    """``to_deb`` of SOURCE plus the documentation files; RenderError names a bad input."""
    options = dict(options or {})
    doc_opts = _doc_options({k: options.pop(k, None) for k in DOC_OPTIONS})
    prep = debrender.prepare(source, options)
    deb = debrender.to_deb(prep)
    moment = _timestamp(prep.doc)
    docdir = f"/usr/share/doc/{deb['package']}"
    native = "-" not in deb["version"]
    deb["docs"] = [
        (f"{docdir}/changelog{'' if native else '.Debian'}.gz",
         gzip.compress(changelog_text(deb, doc_opts, prep.doc["MO_template"], moment).encode(), 9, mtime=0)),
        (f"{docdir}/copyright", copyright_text(deb, doc_opts).encode()),
    ]
    deb["mtime"] = int(moment.timestamp())
    deb["strip"] = doc_opts["strip"]
    deb["file_name"] = f"{deb['package']}_{deb['version'].split(':')[-1]}_{deb['architecture']}.deb"
    return deb


def _info(name, kind, mode, mtime, size=0, target=""):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.size = kind, mode, mtime, size
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.linkname = target
    return info


def _members(deb):
    """Sorted data members: (path, kind, mode, source bytes-or-path, size, target)."""
    out = {}
    for path, mode in deb["dirs"]:
        out[path] = ("dir", int(mode, 8), None, 0, "")
    for path, src, mode in deb["files"]:
        out[path] = ("file", int(mode, 8), src, os.path.getsize(src), "")
    for path, data in deb["docs"]:
        out[path] = ("file", 0o644, data, len(data), "")
    for path, target in deb["links"]:
        out[path] = ("link", 0o777, None, 0, target)
    for path in list(out):
        parent = posixpath.dirname(path)
        while parent != "/" and parent not in out:
            out[parent] = ("dir", 0o755, None, 0, "")
            parent = posixpath.dirname(parent)
    return sorted(out.items())


def _data_tar(deb, fh):
    """Write the data tar to FH; return (md5sums text, installed size in KiB)."""
    sums, kib = [], 0
    with tarfile.open(fileobj=fh, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(_info("./", tarfile.DIRTYPE, 0o755, deb["mtime"]))
        for path, (kind, mode, src, size, target) in _members(deb):
            name = "." + path + ("/" if kind == "dir" else "")
            if kind == "dir":
                tar.addfile(_info(name, tarfile.DIRTYPE, mode, deb["mtime"]))
                kib += 1
            elif kind == "link":
                tar.addfile(_info(name, tarfile.SYMTYPE, mode, deb["mtime"], target=target))
                kib += 1
            else:
                digest = hashlib.md5()
                stream = io.BytesIO(src) if isinstance(src, bytes) else open(src, "rb")
                with stream:
                    for chunk in iter(lambda: stream.read(1 << 20), b""):
                        digest.update(chunk)
                    stream.seek(0)
                    tar.addfile(_info(name, tarfile.REGTYPE, mode, deb["mtime"], size), stream)
                sums.append(f"{digest.hexdigest()}  {path.lstrip('/')}\n")
                kib += (size + 1023) // 1024
    return "".join(sums), kib


def _control_tar(deb, md5sums, kib):
    control = re.sub(r"(?m)^Installed-Size: [0-9]+$", f"Installed-Size: {kib}", deb["control"])
    files = [("control", control, 0o644), ("md5sums", md5sums, 0o644)]
    if deb["conffiles"]:
        files.append(("conffiles", "".join(debrender.packaged_path(deb, p) + "\n" for p in deb["conffiles"]), 0o644))
    files += [(name, deb[name], 0o755) for name in ("postinst", "prerm", "postrm") if deb.get(name)]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(_info("./", tarfile.DIRTYPE, 0o755, deb["mtime"]))
        for name, text, mode in sorted(files):
            data = text.encode("utf-8")
            tar.addfile(_info("./" + name, tarfile.REGTYPE, mode, deb["mtime"], len(data)), io.BytesIO(data))
    return lzma.compress(raw.getvalue(), format=lzma.FORMAT_XZ, filters=XZ_FILTERS), control


def _ar_header(name, size, mtime):
    return (f"{name:<16}{mtime:<12}{0:<6}{0:<6}{'100644':<8}{size:<10}`\n").encode("ascii")


def _write_deb(deb, path):
    """Write the package to PATH; return its control text."""
    with tempfile.TemporaryFile() as data_tar, tempfile.TemporaryFile() as data_xz:
        md5sums, kib = _data_tar(deb, data_tar)
        data_tar.seek(0)
        comp = lzma.LZMACompressor(format=lzma.FORMAT_XZ, filters=XZ_FILTERS)
        for chunk in iter(lambda: data_tar.read(1 << 20), b""):
            data_xz.write(comp.compress(chunk))
        data_xz.write(comp.flush())
        control_xz, control = _control_tar(deb, md5sums, kib)
        size = data_xz.tell()
        data_xz.seek(0)
        with open(path, "wb") as out:
            out.write(b"!<arch>\n")
            for name, blob in (("debian-binary", b"2.0\n"), ("control.tar.xz", control_xz)):
                out.write(_ar_header(name, len(blob), deb["mtime"]) + blob + (b"\n" if len(blob) % 2 else b""))
            out.write(_ar_header("data.tar.xz", size, deb["mtime"]))
            shutil.copyfileobj(data_xz, out)
            if size % 2:
                out.write(b"\n")
    return control


def _stripped(deb, work):
    """DEB's files with every ELF file replaced by a stripped copy in WORK (``strip`` of binutils)."""
    exe = shutil.which("strip") or shutil.which("strip", path="/usr/bin:/bin")
    if exe is None:
        raise RenderError("The option strip needs the strip command (Debian package binutils) on the build host.")
    out = []
    for number, (path, src, mode) in enumerate(deb["files"]):
        if debrender.is_elf(src):
            copy = os.path.join(work, f"strip-{number}")
            shutil.copyfile(src, copy)
            args = STRIP_ARGS + (["--strip-unneeded"] if re.search(r"\.so(\.[0-9.]+)?$", path) else [])
            try:
                proc = subprocess.run([exe] + args + [copy], capture_output=True, text=True, timeout=STRIP_TIMEOUT,
                                      check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise RenderError(f"strip did not finish on {_shown(path)} ({exc}).") from None
            if proc.returncode != 0:
                raise RenderError(f"strip refused {_shown(path)}: {' '.join(proc.stderr.split())[:200]}.")
            src = copy
        out.append((path, src, mode))
    return dict(deb, files=out)


def build(deb: dict, dest: str, check_mode: bool = False, run_lintian: bool = False) -> dict:
    """Build DEB (a plan) into the directory DEST; {"changed", "path", "sha256", "size", "control",
    "lintian" (findings, or None when not asked or not installed)}."""
    if not os.path.isdir(dest) and not check_mode:
        os.makedirs(dest, mode=0o755, exist_ok=True)
    target = os.path.join(dest, deb["file_name"])
    work = tempfile.mkdtemp(prefix=".deb_build-", dir=dest if os.path.isdir(dest) and not check_mode else None)
    try:
        tmp = os.path.join(work, deb["file_name"])
        control = _write_deb(_stripped(deb, work) if deb.get("strip") else deb, tmp)
        sha = tpl.sha256_file(tmp)
        same = os.path.isfile(target) and not os.path.islink(target) and tpl.sha256_file(target) == sha
        result = {"changed": not same, "path": target, "sha256": sha, "size": os.path.getsize(tmp), "control": control}
        if not (same or check_mode):
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        result["lintian"] = lintian(tmp if check_mode and not same else target) if run_lintian else None
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def lintian(path: str) -> list | None:
    """lintian's findings on the package at PATH (``E: ...`` lines), or None without lintian."""
    exe = shutil.which("lintian") or shutil.which("lintian", path="/usr/bin:/bin")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, "--tag-display-limit", "0", "--allow-root", path], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=LINTIAN_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [f"lintian did not run: {exc}"]
    return [line for line in proc.stdout.splitlines() if line.strip()]
