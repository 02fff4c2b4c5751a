# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read Debian binary packages (.deb) with the standard library only.

A .deb is an ``ar`` archive holding ``debian-binary``, ``control.tar[.gz|.xz|.zst]`` and
``data.tar.*``.  :func:`parse_deb` returns the control fields (in file order), the raw
control text, conffiles, md5sums and the file's size, SHA256 and MD5.  :class:`DebCache`
keeps that record content-addressed (by SHA256) plus a stat index (path, size, mtime,
inode -> SHA256) so each .deb is read once however often it is published.

Members compressed with gzip, xz, zstd or nothing are read (dpkg-deb -Z{gzip,xz,zstd,none};
zstd is Ubuntu's default).  zstd is read by the standard library on Python 3.14+, else by
the system's ``zstd`` command (Debian package zstd); either way the output is streamed and
capped at MAX_CONTROL_TAR, so a bomb in any compression is refused the same way.

Every problem raises :class:`DebError` with one sentence naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import io
import json
import marshal
import os
import posixpath
import re
import shutil
import subprocess
import tarfile
import tempfile
import zlib

from ansible_collections.mo.fleet.plugins.module_utils._common import deb822, names
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import atomic_write

try:  # Python 3.14+ ships zstd in the standard library
    from compression import zstd as _zstd  # type: ignore
except ImportError:  # pragma: no cover - depends on the Python version
    _zstd = None

AR_MAGIC = b"!<arch>\n"
AR_HEADER = 60
CACHE_VERSION = 2  # 2: records read with the deb822 reader (apt's view of the control file)

# Limits on what an uploaded .deb may make mo.fleet do (docs/repo_server.md, "Limits").
MAX_AR_MEMBERS = 16                  # debian-binary, control.tar, data.tar and a few signatures
MAX_CONTROL_TAR = 16 << 20           # the control archive, decompressed
MAX_CONTROL_MEMBERS = 1000           # entries in the control archive
MAX_CONTROL_FILE = 1 << 20           # the control file itself
MAX_INSTALLED_SIZE = 1 << 40         # KiB (1 PiB): Installed-Size beyond this is refused
ZSTD_MEMORY = "128MB"                # the zstd command's window limit (its own default, said aloud)
ZSTD_TIMEOUT = 60                    # seconds the zstd command may take for one control archive


class DebError(ValueError):
    """A .deb could not be used; the message is one sentence."""


def check_safe_name(value, what, kind="safe"):
    """Raise DebError unless VALUE is a plain name of KIND (``_common/names``; no path
    separators, no '..', no line break anywhere)."""
    if not isinstance(value, str) or not value:
        raise DebError(f"{what} must be a non-empty string.")
    if "/" in value or "\\" in value or "\x00" in value:
        raise DebError(f"{what} {value!r} must not contain path separators.")
    if ".." in value:
        raise DebError(f"{what} {value!r} must not contain '..'.")
    try:
        names.check(kind, value, what)
    except names.NameError_ as exc:
        raise DebError(str(exc)) from None
    return value


def canonical_filename(name, version, arch):
    """The Debian pool file name for a package: name_version_arch.deb (epoch ':' as '%3a')."""
    return f"{name}_{version.replace(':', '%3a')}_{arch}.deb"


def split_pool_name(filename):
    """(name, version, architecture) of a file named as dpkg-deb or the pool names a package
    (``name_version_arch.deb``, the epoch as ``%3a``, ``:`` or left out), or None."""
    if not isinstance(filename, str) or not filename.endswith(".deb"):
        return None
    parts = filename[:-4].split("_")
    if len(parts) != 3:
        return None
    name, version, arch = parts
    version = version.replace("%3a", ":").replace("%3A", ":")
    if not (names.is_valid("package", name) and names.is_valid("version", version)
            and names.is_valid("architecture", arch)):
        return None
    return name, version, arch


def version_matches(wanted, version):
    """Whether WANTED names VERSION: the same version, or the same without its epoch (dpkg-deb
    leaves the epoch out of the file name it writes)."""
    return wanted == version or (":" not in wanted and version.partition(":")[2] == wanted)


# ------------------------------------------------------------------ ar archive

def _ar_members(fh, size, label):
    """Yield (name, offset, length) for the members of the ar archive in FH."""
    fh.seek(0)
    if fh.read(len(AR_MAGIC)) != AR_MAGIC:
        raise DebError(f"{label} is not a .deb (no ar archive signature).")
    pos = len(AR_MAGIC)
    count = 0
    while pos < size:
        fh.seek(pos)
        header = fh.read(AR_HEADER)
        if len(header) == 0:
            return
        if len(header) < AR_HEADER or header[58:60] != b"`\n":
            raise DebError(f"{label} is truncated or corrupt (bad ar member header at byte {pos}).")
        name = header[0:16].decode("ascii", "replace").strip()
        if name.endswith("/"):
            name = name[:-1]
        try:
            length = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DebError(f"{label} is corrupt (bad ar member size at byte {pos}).") from None
        start = pos + AR_HEADER
        if start + length > size:
            raise DebError(f"{label} is truncated (member {name} needs {start + length} bytes, the file has {size}).")
        count += 1
        if count > MAX_AR_MEMBERS:
            raise DebError(f"{label} has more than {MAX_AR_MEMBERS} ar members, which no .deb needs.")
        yield name, start, length
        pos = start + length + (length & 1)


def _bounded(decompressor, blob, label, kind):
    """Stream-decompress BLOB with DECOMPRESSOR, never holding more than MAX_CONTROL_TAR."""
    out = decompressor.decompress(blob, MAX_CONTROL_TAR + 1)
    if len(out) > MAX_CONTROL_TAR:
        raise DebError(f"{label} has a control archive larger than {MAX_CONTROL_TAR >> 20} MiB once decompressed, "
                       "which mo.fleet refuses to read.")
    if not getattr(decompressor, "eof", True):
        raise DebError(f"{label} has a truncated control{'.tar' + kind}.")
    if getattr(decompressor, "unused_data", b""):
        # dpkg reads on into a second gzip member or xz stream; mo.fleet would stop at the first
        raise DebError(f"{label} has data after the end of its control{'.tar' + kind}, which dpkg would read too.")
    return out


def _decompress(kind, blob, label):
    if kind == "":
        if len(blob) > MAX_CONTROL_TAR:
            raise DebError(f"{label} has a control archive larger than {MAX_CONTROL_TAR >> 20} MiB, which mo.fleet refuses to read.")
        return blob
    try:
        if kind == ".gz":
            return _bounded(zlib.decompressobj(16 + zlib.MAX_WBITS), blob, label, kind)
        if kind == ".xz":
            import lzma
            # the .xz format only, as dpkg's liblzma stream decoder (not the legacy .lzma one)
            return _bounded(lzma.LZMADecompressor(format=lzma.FORMAT_XZ), blob, label, kind)
        if kind == ".zst":
            # zstd frames only, as dpkg's libzstd (the zstd command would also inflate gzip or xz)
            skippable = blob[1:4] == b"\x2a\x4d\x18" and b"\x50" <= blob[:1] <= b"\x5f"
            if not (blob[:4] == b"\x28\xb5\x2f\xfd" or skippable):
                raise DebError(f"{label} has a control.tar.zst that is not zstd data.")
            if _zstd is not None:
                return _bounded(_zstd.ZstdDecompressor(), blob, label, kind)
            return _zstd_command(blob, label)
    except DebError:
        raise
    except Exception as exc:  # zlib.error, lzma.LZMAError, EOFError
        raise DebError(f"{label} has a corrupt control{'.tar' + kind} ({exc}).") from None
    raise DebError(f"{label} has an unsupported control archive compression {kind!r}.")


def zstd_command():
    """The path of the system's zstd command, or None (Ansible runs modules with a short PATH)."""
    return shutil.which("zstd") or shutil.which("zstd", path="/usr/bin:/bin")


def _zstd_command(blob, label):
    """Decompress the zstd BLOB with the system's ``zstd`` command (Debian package zstd).

    The command reads the blob from a temporary file and its output is read in chunks: at
    most MAX_CONTROL_TAR + 1 bytes are ever held, then the command is stopped, so a zstd
    bomb is refused like a gzip one.
    """
    exe = zstd_command()
    if exe is None:
        raise DebError(f"{label} has a zstd-compressed control archive and this host has no zstd command "
                       "to read it (install the Debian package zstd).")
    with tempfile.TemporaryFile() as src, tempfile.TemporaryFile() as err:
        src.write(blob)
        src.seek(0)
        proc = subprocess.Popen([exe, "-d", "-c", "-q", f"--memory={ZSTD_MEMORY}"], stdin=src,
                                stdout=subprocess.PIPE, stderr=err, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})
        chunks, total = [], 0
        try:
            while total <= MAX_CONTROL_TAR:
                chunk = proc.stdout.read(min(1 << 20, MAX_CONTROL_TAR + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        finally:
            if total > MAX_CONTROL_TAR:
                proc.kill()
            proc.stdout.close()
            try:
                code = proc.wait(ZSTD_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                code = None
        if total > MAX_CONTROL_TAR:
            raise DebError(f"{label} has a control archive larger than {MAX_CONTROL_TAR >> 20} MiB once decompressed, "
                           "which mo.fleet refuses to read.")
        if code is None:
            raise DebError(f"{label} has a control.tar.zst that zstd did not finish reading in {ZSTD_TIMEOUT} seconds.")
        if code != 0:
            err.seek(0)
            why = " ".join(err.read(400).decode("utf-8", "replace").split()) or f"zstd exit status {code}"
            raise DebError(f"{label} has a corrupt control.tar.zst ({why}).")
    return b"".join(chunks)


def parse_control(text, label="control"):
    """Parse one deb822 stanza as apt and dpkg do (``_common/deb822``): ordered dict field -> value."""
    try:
        return deb822.parse_stanza(text, label)
    except deb822.Deb822Error as exc:
        raise DebError(str(exc)) from None


def _read_control_tar(raw, label):
    try:
        tar = tarfile.open(fileobj=io.BytesIO(raw), mode="r:")
    except tarfile.TarError as exc:
        raise DebError(f"{label} has a corrupt control archive ({exc}).") from None
    files = {}
    seen = set()
    try:
        for count, member in enumerate(tar, 1):
            if count > MAX_CONTROL_MEMBERS:
                raise DebError(f"{label} has more than {MAX_CONTROL_MEMBERS} entries in its control archive.")
            name = posixpath.normpath(member.name).lstrip("/")  # where tar puts it: ./x, .//x, a/../x are x
            if name in ("control", "conffiles", "md5sums"):
                if name in seen:
                    raise DebError(f"{label} has two {name} files in its control archive.")
                seen.add(name)
                if not member.isfile():
                    raise DebError(f"{label} has a {name} in its control archive that is not a plain file.")
                if name == "control" and member.size > MAX_CONTROL_FILE:
                    raise DebError(f"{label} has a control file larger than {MAX_CONTROL_FILE >> 10} KiB.")
                blob = tar.extractfile(member).read()
                try:
                    files[name] = blob.decode("utf-8")
                except UnicodeDecodeError:
                    if name == "control":
                        raise DebError(f"{label} has a control file that is not UTF-8 text.") from None
                    files[name] = blob.decode("utf-8", "replace")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DebError(f"{label} has a corrupt control archive ({exc}).") from None
    return files


def hash_file(path):
    """Return (size, sha256 hex, md5 hex) of PATH, reading it once."""
    sha = hashlib.sha256()
    md5 = hashlib.md5()
    size = 0
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(1 << 20)
            if not chunk:
                break
            size += len(chunk)
            sha.update(chunk)
            md5.update(chunk)
    return size, sha.hexdigest(), md5.hexdigest()


def parse_deb(path, label=None):
    """Parse the .deb at PATH; return its record (dict, JSON-serialisable).

    Keys: name, version, architecture, fields (ordered control fields), control (raw
    control stanza), conffiles (list), md5sums (dict path -> md5), size, sha256, md5.
    Only the ar headers and the control member are read into memory; the digests are
    computed by streaming the file.
    """
    label = label or os.path.basename(str(path))
    try:
        with open(path, "rb") as fh:
            record = _parse(fh, os.fstat(fh.fileno()).st_size, label)
        size, sha256, md5 = hash_file(path)
    except OSError as exc:
        raise DebError(f"{label} cannot be read ({exc.strerror}).") from None
    record.update(size=size, sha256=sha256, md5=md5)
    return record


def parse_deb_bytes(data, label="package"):
    """Parse a .deb given as bytes (see :func:`parse_deb`)."""
    record = _parse(io.BytesIO(data), len(data), label)
    record.update(size=len(data), sha256=hashlib.sha256(data).hexdigest(), md5=hashlib.md5(data).hexdigest())
    return record


def _members_in_dpkg_order(members, label):
    """debian-binary, control.tar*, data.tar*, with only '_' members between, as dpkg-deb requires."""
    names = [m[0] for m in members]
    if not names or names[0] != "debian-binary":
        raise DebError(f"{label} is not a .deb (first ar member is {names[0] if names else 'missing'}, not debian-binary).")
    rest = [m for m in members[1:] if not m[0].startswith("_")]
    if not rest or not rest[0][0].startswith("control.tar"):
        raise DebError(f"{label} is not a .deb (its second member is not control.tar).")
    if len(rest) < 2 or not rest[1][0].startswith("data.tar"):
        raise DebError(f"{label} is truncated or incomplete (no data.tar member after control.tar).")
    if len(rest) > 2:
        raise DebError(f"{label} has the member {rest[2][0]} after data.tar, which dpkg does not read.")
    return members[0], rest[0]


def _parse(fh, size, label):
    binary, control = _members_in_dpkg_order(list(_ar_members(fh, size, label)), label)
    fh.seek(binary[1])
    version = fh.read(min(binary[2], 64))
    if binary[2] > 64 or not re.fullmatch(rb"2\.[0-9]+\n", version):
        raise DebError(f"{label} has an unsupported package format version {version.strip()[:20]!r}.")
    cname, cstart, clen = control
    if clen > MAX_CONTROL_TAR:
        raise DebError(f"{label} has a control archive larger than {MAX_CONTROL_TAR >> 20} MiB, which mo.fleet refuses to read.")
    fh.seek(cstart)
    raw = _decompress(cname[len("control.tar"):], fh.read(clen), label)
    files = _read_control_tar(raw, label)
    if "control" not in files:
        raise DebError(f"{label} has no control file in its control archive.")
    fields = parse_control(files["control"], f"{label} control file")
    record = record_from_fields(fields, label)
    stanza_parts(fields, f"{label} control file")  # what cannot be served unchanged is refused here
    record["control"] = files["control"].strip("\n")
    record["conffiles"] = [ln.strip() for ln in files.get("conffiles", "").split("\n") if ln.strip()]
    md5sums = {}
    for line in files.get("md5sums", "").split("\n"):
        parts = line.split(None, 1)
        if len(parts) == 2:
            md5sums[parts[1].strip()] = parts[0]
    record["md5sums"] = md5sums
    return record


def record_from_fields(fields, label):
    """Validate the identity fields of a control stanza (any case, as apt); return the base record."""
    ident = {}
    for key in ("Package", "Version", "Architecture"):
        value = deb822.get(fields, key)
        if not value:
            raise DebError(f"{label} control file has no {key} field.")
        ident[key] = value
    name, version, arch = ident["Package"], ident["Version"], ident["Architecture"]
    if "/" in name or "\\" in name or ".." in name:
        raise DebError(f"{label} has package name {name!r}, which contains a path separator or '..'.")
    if not names.is_valid("package", name):
        raise DebError(f"{label} has invalid package name {name!r} (Debian names use a-z, 0-9, + - . and at least two characters).")
    if "/" in version or not names.is_valid("version", version):
        raise DebError(f"{label} has invalid version {version!r}.")
    if not names.is_valid("architecture", arch):
        raise DebError(f"{label} has invalid architecture {arch!r}.")
    size = deb822.get(fields, "Installed-Size")
    if size is not None and (not size.isascii() or not size.isdigit() or int(size) > MAX_INSTALLED_SIZE):
        raise DebError(f"{label} has Installed-Size {size[:40]!r}, which is not a number of KiB between 0 and {MAX_INSTALLED_SIZE}.")
    return {"name": name, "version": version, "architecture": arch, "fields": dict(fields)}


# ------------------------------------------------------------------ cache

CACHED_KEYS = ("name", "version", "architecture", "conffiles", "size", "sha256", "md5", "head", "tail")
INDEX_FIELDS = ("Filename", "Size", "MD5sum", "SHA1", "SHA256")
TAIL_FIELDS = ("Description",)


_INDEX_LOWER = tuple(k.lower() for k in INDEX_FIELDS)
_TAIL_LOWER = tuple(k.lower() for k in TAIL_FIELDS)


def stanza_parts(fields, label="control file"):
    """Split control FIELDS into the Packages stanza text before and after the file fields.

    Written by the deb822 writer: a field that would not read back through apt exactly is a
    DebError (one sentence), so a .deb whose control file apt reads but mo.fleet could not
    serve unchanged is refused when it is read, not when a repository is published.  The file
    fields (``Filename``, ``Size``, hashes) are the server's own, in any case a control file
    spells them.
    """
    head, tail = [], []
    try:
        for key, value in fields.items():
            low = key.lower()
            if low not in _TAIL_LOWER and low not in _INDEX_LOWER:
                head.append(deb822.format_field(key, value, label))
        for want in TAIL_FIELDS:
            for key, value in fields.items():
                if key.lower() == want.lower():
                    tail.append(deb822.format_field(key, value, label))
    except deb822.Deb822Error as exc:
        raise DebError(str(exc)) from None
    return "".join(head), "".join(tail)


def slim(record):
    """What the cache keeps of a record: identity, conffiles, hashes and the stanza text
    (control fields pre-rendered; no md5sums)."""
    out = {k: record[k] for k in CACHED_KEYS if k in record}
    if "head" not in out:
        out["head"], out["tail"] = stanza_parts(record["fields"])
    return out


def record_fields(record):
    """The control fields of a full or cached record, in file order."""
    if "fields" in record:
        return record["fields"]
    paragraphs = deb822.parse_paragraphs(record["head"] + record["tail"], record.get("name", "control"))
    return paragraphs[0] if paragraphs else {}


def _cached_ok(record):
    """A cached record has the shape slim() gives it (else the file is read again)."""
    return (isinstance(record, dict) and names.is_valid("package", record.get("name"))
            and names.is_valid("version", record.get("version"))
            and names.is_valid("architecture", record.get("architecture"))
            and isinstance(record.get("head"), str) and isinstance(record.get("tail"), str)
            and isinstance(record.get("size"), int) and isinstance(record.get("sha256"), str)
            and isinstance(record.get("md5"), str) and isinstance(record.get("conffiles"), list))


class DebCache:
    """Content-addressed cache of .deb records with a stat index.

    ``objects`` maps sha256 -> record (the control data never changes for a given content);
    ``paths`` maps a path -> [size, mtime_ns, inode, sha256], so an unchanged file is not
    even hashed again.  The base file is written with :mod:`marshal` (it lives in the
    repository's private state directory; loading 10,000 records takes milliseconds).  :meth:`save` appends what is new to a journal (``<path>.log``) and
    rewrites the base file (atomic replace) only when entries were dropped or the journal
    grew large, so adding one package costs one small append.  Callers hold the repository
    lock when two runs could write the same cache.
    """

    def __init__(self, path=None):
        self.path = path
        self.objects = {}
        self.paths = {}
        self.dirty = False
        self.rewrite = False
        self.new_objects = {}
        self.new_paths = {}
        self.reads = 0  # how many .deb files were actually read (for tests/benchmarks)
        if path and os.path.exists(path):
            try:
                with open(path, "rb") as fh:
                    data = marshal.loads(fh.read())
                if isinstance(data, dict) and data.get("version") == CACHE_VERSION:
                    self.objects = data.get("objects", {})
                    self.paths = data.get("paths", {})
                if not isinstance(self.objects, dict) or not isinstance(self.paths, dict):
                    self.objects, self.paths = {}, {}
                    self.rewrite = True
            except (OSError, ValueError, EOFError, TypeError, AttributeError):
                self.objects, self.paths = {}, {}
                self.rewrite = True
        if path and os.path.exists(path + ".log"):
            try:
                with open(path + ".log", "rb") as fh:
                    for line in fh.read().decode("utf-8").split("\n"):
                        if not line.strip():
                            continue
                        try:
                            entry = json.loads(line)
                            self.objects.update(entry.get("o", {}))
                            self.paths.update(entry.get("p", {}))
                        except (ValueError, TypeError, AttributeError):
                            self.rewrite = True  # a torn last line from a killed run
                            continue
            except OSError:
                self.rewrite = True
        # state written by this server; whatever does not have its shape is dropped (read again)
        good = {k: v for k, v in self.paths.items()
                if isinstance(k, str) and isinstance(v, (list, tuple)) and len(v) == 4 and isinstance(v[3], str)}
        if len(good) != len(self.paths):
            self.paths, self.rewrite = good, True

    def _remember(self, key, st, record):
        sha = record["sha256"]
        if not _cached_ok(self.objects.get(sha)):
            self.objects[sha] = record
            self.new_objects[sha] = record
        entry = [st.st_size, st.st_mtime_ns, st.st_ino, sha]
        self.paths[key] = entry
        self.new_paths[key] = entry
        self.dirty = True

    def get(self, path, label=None):
        """Return the record of the .deb at PATH, reading it only if it is new or changed."""
        key = path if path.startswith("/") else os.path.abspath(path)
        try:
            st = os.stat(key)
        except OSError as exc:
            raise DebError(f"{label or os.path.basename(path)} cannot be read ({exc.strerror}).") from None
        known = self.paths.get(key)
        if (isinstance(known, (list, tuple)) and len(known) == 4 and known[0] == st.st_size
                and known[1] == st.st_mtime_ns and known[2] == st.st_ino):
            record = self.objects.get(known[3])
            if _cached_ok(record):
                return record
        record = slim(parse_deb(key, label))
        self.reads += 1
        self._remember(key, st, record)
        return self.objects[record["sha256"]]

    def add(self, path, record):
        """Remember RECORD (already parsed) for the file at PATH."""
        key = os.path.abspath(path)
        self._remember(key, os.stat(key), slim(record))

    def prune(self, keep_paths):
        """Forget paths not in KEEP_PATHS and objects no remaining path refers to."""
        keep = {p if p.startswith("/") else os.path.abspath(p) for p in keep_paths}
        for key in list(self.paths):
            if key not in keep:
                del self.paths[key]
                self.dirty = self.rewrite = True
        used = {v[3] for v in self.paths.values()}
        for sha in list(self.objects):
            if sha not in used:
                del self.objects[sha]
                self.dirty = self.rewrite = True

    def save(self):
        if not self.path or not (self.dirty or self.rewrite):
            return False
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        log = self.path + ".log"
        try:
            base_size = os.path.getsize(self.path)
            log_size = os.path.getsize(log) if os.path.exists(log) else 0
        except OSError:
            base_size, log_size = 0, 0
        if not self.rewrite and base_size and log_size < base_size // 4:
            line = json.dumps({"o": self.new_objects, "p": self.new_paths}, separators=(",", ":")) + "\n"
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
        else:
            blob = marshal.dumps({"version": CACHE_VERSION, "objects": self.objects, "paths": self.paths})
            atomic_write(self.path, blob, mode=0o600)
            if os.path.exists(log):
                os.unlink(log)
        self.dirty = self.rewrite = False
        self.new_objects, self.new_paths = {}, {}
        return True
