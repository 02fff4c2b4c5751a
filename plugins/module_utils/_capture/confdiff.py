# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Configuration analysis: a changed conffile against its packaged default (MO-analyze-config).

``analyze(operations, state_after) -> {"conffile_diffs": [...]}``
    For every file a template records as created or modified that is a conffile whose
    content differs from the package's (``conffile_changed``), the unified diff from the
    packaged default of the exact installed version to the file as it is now.  The default
    is read from the package's .deb: the one in apt's cache
    (``/var/cache/apt/archives/<name>_<version>_<arch>.deb``), else one fetched with
    ``apt-get download <name>:<arch>=<version>`` into a temporary directory.  Each item is
    ``{path, package, version, source, diff}`` or, when no diff can be made, ``{path,
    package, version, error}`` with one sentence.  Used as the capture engine's ``analyze``
    option (the diffs go into the template's ``metadata.conffile_diffs``).

    The packaged default is never trusted for what its file name says: when dpkg recorded the
    conffile's md5 at install (``state_after["conffiles"]``), the content read from the .deb
    must have that md5, else the item gets an error instead of a diff against some other file
    (a stale or replaced .deb in the cache, another build of the same version).

Caps: a conffile or packaged default of more than MAX_CONFFILE bytes, or a diff of more than
MAX_DIFF characters, is not diffed (said in ``error``); non-UTF-8 content is not diffed.
Standard library only (runs on targets).
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time

from ansible_collections.mo.fleet.plugins.module_utils._common import names
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import TooLarge, read_capped

APT_ARCHIVES = "/var/cache/apt/archives"
MAX_CONFFILE = 1024 * 1024
MAX_DIFF = 256 * 1024
MAX_DIFFS = 200
DOWNLOAD_TIMEOUT = 120
DEADLINE = 90          # seconds for every download of one analysis together (it runs in root's shell)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]")


class ConfDiffError(Exception):
    """Why one conffile has no diff (one sentence)."""


def deb_file_name(name: str, version: str, arch: str) -> str:
    """apt's cache name of a package: the epoch's ':' is written %3a."""
    return "%s_%s_%s.deb" % (name, version.replace(":", "%3a"), arch)


def find_deb(name: str, version: str, arch: str, archives: str = None, workdir: str = None,
             timeout: float = DOWNLOAD_TIMEOUT):
    """(path, source) of the .deb of NAME VERSION ARCH: apt's cache, else apt-get download
    (at most TIMEOUT seconds)."""
    try:
        for kind, value in (("package", name), ("version", version), ("architecture", arch)):
            names.check(kind, value, "The package's " + kind)
    except names.NameError_ as exc:
        raise ConfDiffError(str(exc))
    cached = os.path.join(archives or APT_ARCHIVES, deb_file_name(name, version, arch))
    if os.path.isfile(cached):
        return cached, "apt-cache"
    if workdir is None or shutil.which("apt-get") is None:
        raise ConfDiffError("%s %s is not in apt's cache and cannot be downloaded here." % (name, version))
    try:
        proc = subprocess.run(["apt-get", "download", "-q", "%s:%s=%s" % (name, arch, version)], cwd=workdir,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        raise ConfDiffError("apt-get download of %s %s did not finish." % (name, version))
    path = os.path.join(workdir, deb_file_name(name, version, arch))
    if proc.returncode != 0 or not os.path.isfile(path):
        last = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or [""])[-1][:200]
        raise ConfDiffError("apt-get download of %s %s failed: %s" % (name, version, last or "no file"))
    return path, "download"


def packaged_content(deb: str, path: str) -> bytes:
    """The content of PATH in the data archive of DEB (read with dpkg-deb --fsys-tarfile)."""
    wanted = {"." + path, path.lstrip("/")}
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                if member.name not in wanted:
                    continue
                if not member.isfile():
                    raise ConfDiffError("%s is not a regular file in %s." % (path, os.path.basename(deb)))
                if member.size > MAX_CONFFILE:
                    raise ConfDiffError("The packaged %s is larger than %d bytes." % (path, MAX_CONFFILE))
                return tar.extractfile(member).read()
    except tarfile.TarError as exc:
        raise ConfDiffError("%s cannot be read: %s." % (os.path.basename(deb), exc))
    finally:
        proc.stdout.close()
        proc.kill()
        proc.wait()
    raise ConfDiffError("%s does not ship %s." % (os.path.basename(deb), path))


def unified(path: str, default: bytes, current: bytes) -> str:
    try:
        old, new = default.decode("utf-8"), current.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfDiffError("%s is not UTF-8 text." % path)
    text = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                        "%s (packaged)" % path, "%s (host)" % path))
    if len(text) > MAX_DIFF:
        raise ConfDiffError("The diff of %s is longer than %d characters." % (path, MAX_DIFF))
    if _CONTROL.search(text):  # it is shown on root's terminal: no escape sequence gets there
        raise ConfDiffError("%s holds control characters other than line breaks and tabs; it is not diffed." % path)
    return text


def _read_current(path: str) -> bytes:
    try:
        return read_capped(path, MAX_CONFFILE)
    except TooLarge:
        raise ConfDiffError(f"{path} is larger than {MAX_CONFFILE} bytes.") from None


def changed_conffiles(operations: dict) -> list:
    return [e for op in ("files_modified", "files_created") for e in operations.get(op) or []
            if e.get("conffile") and e.get("conffile_changed")][:MAX_DIFFS]


class _Debs:
    """The .deb of each (package, version) found once per analysis (a failure too), with one
    deadline for every download together."""

    def __init__(self, deadline: float = DEADLINE, clock=time.monotonic):
        self.found, self.workdir, self.clock = {}, None, clock
        self.until = clock() + deadline

    def get(self, package: dict):
        key = (package["name"], package["version"], package["architecture"])
        if key not in self.found:
            try:
                left = self.until - self.clock()
                cached = os.path.join(APT_ARCHIVES, deb_file_name(*key))
                if left <= 0 and not os.path.isfile(cached):
                    raise ConfDiffError(f"{key[0]} {key[1]} was not downloaded: the analysis's {DEADLINE} s for "
                                        "downloads ran out.")
                if self.workdir is None:
                    self.workdir = tempfile.mkdtemp(prefix="mo-fleet-confdiff-")
                self.found[key] = find_deb(*key, workdir=self.workdir, timeout=max(1.0, min(DOWNLOAD_TIMEOUT, left)))
            except ConfDiffError as exc:
                self.found[key] = exc
        if isinstance(self.found[key], ConfDiffError):
            raise self.found[key]
        return self.found[key]

    def close(self):
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


_MD5 = re.compile("[0-9a-f]{32}")


def authentic(path: str, default: bytes, recorded) -> bytes:
    """DEFAULT, when it is the content dpkg installed for PATH (its RECORDED md5), or when dpkg
    recorded none to compare with (``newconffile``, no entry)."""
    if isinstance(recorded, str) and _MD5.fullmatch(recorded) and hashlib.md5(default).hexdigest() != recorded:
        raise ConfDiffError("The packaged %s in that .deb is not the one dpkg installed (its md5 differs); "
                            "it is not diffed." % path)
    return default


def analyze(operations: dict, state_after: dict, debs: _Debs | None = None) -> dict:
    """Diffs of the changed conffiles of OPERATIONS (see module docstring)."""
    recorded = {path: row[1] for path, row in (state_after.get("conffiles") or {}).items()
                if isinstance(row, (list, tuple)) and len(row) > 1}
    installed = {}
    for pkg in state_after["packages"].values():
        installed.setdefault(pkg["name"], pkg)
    out = []
    debs = debs or _Debs()
    try:
        for entry in changed_conffiles(operations):
            package = installed.get(entry.get("package"))
            item = {"path": entry["path"], "package": entry.get("package"),
                    "version": package["version"] if package else None}
            try:
                if package is None:
                    raise ConfDiffError("The package %s is not installed." % entry.get("package"))
                deb, item["source"] = debs.get(package)
                default = authentic(entry["path"], packaged_content(deb, entry["path"]), recorded.get(entry["path"]))
                item["diff"] = unified(entry["path"], default, _read_current(entry["path"]))
            except (ConfDiffError, OSError) as exc:
                item.pop("source", None)
                item["error"] = str(exc) if isinstance(exc, ConfDiffError) else \
                    "%s cannot be read: %s." % (entry["path"], exc.strerror)
            out.append(item)
    finally:
        debs.close()
    return {"conffile_diffs": out}
