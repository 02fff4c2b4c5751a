# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The files of one APT repository generation: Packages indexes, their chunked gzip/xz
compression (``ChunkStore``: a stanza block is compressed once and reused), the Release file
and its GnuPG signatures.  ``publish.py`` decides what to build; this module builds it.

Standard library only (runs on the repository server).
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import marshal
import os
import struct
import subprocess
import zlib

from ansible_collections.mo.fleet.plugins.module_utils._common import deb822, names
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import atomic_write
from ansible_collections.mo.fleet.plugins.module_utils._repo.deb import stanza_parts

COMPONENT = "main"
STATE_VERSION = 1
INDEX_FILES = ("Packages", "Packages.gz", "Packages.xz")
CHUNK_SPREAD = 64  # about 64 stanzas per compressed chunk


class PublishError(Exception):
    """Publishing failed; the message is one sentence."""


# ------------------------------------------------------------------ index files

def packages_stanza(record, filename):
    if "head" in record:
        head, tail = record["head"], record["tail"]
    else:
        head, tail = stanza_parts(record["fields"])
    return (f"{head}Filename: {filename}\nSize: {record['size']}\nMD5sum: {record['md5']}\n"
            f"SHA256: {record['sha256']}\n{tail}")


def build_packages_chunks(entries):
    """ENTRIES: list of (relpath, record); return the Packages text as a list of chunks.

    Stanzas are sorted; a chunk ends after a stanza whose identity hashes to 0 modulo
    ``CHUNK_SPREAD`` (content-defined boundaries), so adding or removing one package changes
    one chunk and the compressed form of every other chunk can be reused.  ``"".join`` of the
    chunks is the Packages file.
    """
    entries = sorted(entries, key=lambda e: (e[1]["name"], e[1]["version"], e[1]["architecture"], e[0]))
    chunks, current = [], []
    for rel, rec in entries:
        current.append(packages_stanza(rec, "pool/" + rel) + "\n")
        if int(rec["sha256"][:8], 16) % CHUNK_SPREAD == 0:
            chunks.append("".join(current))
            current = []
    if current:
        chunks.append("".join(current))
    return chunks


def build_packages_text(entries):
    """ENTRIES: list of (relpath, record); return the Packages file text (sorted)."""
    return "".join(build_packages_chunks(entries))


# ------------------------------------------------------------------ chunked compression

def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(buf, pos):
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


XZ_FLAGS = b"\x00\x04"  # check type CRC64


def xz_block(data, preset):
    """Compress DATA as one xz block; return (block bytes, unpadded size, uncompressed size)."""
    stream = lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=preset)
    backward = struct.unpack("<I", stream[-8:-4])[0]
    index_size = (backward + 1) * 4
    index = stream[-12 - index_size:-12]
    count, pos = _read_varint(index, 1)
    if count != 1:
        raise PublishError("xz produced an unexpected stream layout.")
    unpadded, pos = _read_varint(index, pos)
    usize, pos = _read_varint(index, pos)
    return stream[12:-12 - index_size], unpadded, usize


def xz_stream(blocks):
    """One valid single-stream .xz file from BLOCKS [(block, unpadded, usize)] (multi-block,
    as ``xz -T`` writes; every xz reader, apt included, decodes it)."""
    header = b"\xfd7zXZ\x00" + XZ_FLAGS + struct.pack("<I", zlib.crc32(XZ_FLAGS))
    index = bytearray(b"\x00") + _varint(len(blocks))
    for _block, unpadded, usize in blocks:
        index += _varint(unpadded) + _varint(usize)
    while len(index) % 4:
        index.append(0)
    index += struct.pack("<I", zlib.crc32(bytes(index)))
    body = struct.pack("<I", len(index) // 4 - 1) + XZ_FLAGS
    footer = struct.pack("<I", zlib.crc32(body)) + body + b"YZ"
    return header + b"".join(block[0] for block in blocks) + bytes(index) + footer


class ChunkStore:
    """Compressed chunks (gzip member, xz block) cached by content hash in one file.

    ``path`` (``state/chunks.bin``, marshal: {key: (gz, xz block, unpadded, usize)}) is
    loaded on first use and rewritten atomically by :meth:`save` when chunks were added or
    pruned.  ``path=None`` keeps nothing.
    """

    def __init__(self, path, xz_preset):
        self.path = path
        self.xz_preset = xz_preset
        self.items = None
        self.dirty = False
        self.used = set()
        self.by_owner = {}
        self.owner = None
        self.compressed = 0  # chunks compressed in this run (tests/benchmarks)

    def used_by(self, owner):
        return self.by_owner.get(owner, set())

    def _load(self):
        if self.items is not None:
            return
        self.items = {}
        if self.path and os.path.exists(self.path):
            try:
                with open(self.path, "rb") as fh:
                    data = marshal.loads(fh.read())
                if isinstance(data, dict) and data.get("version") == STATE_VERSION:
                    self.items = data["items"]
            except (OSError, ValueError, EOFError, TypeError, KeyError):
                self.items = {}

    def get(self, text):
        self._load()
        data = text.encode("utf-8")
        key = hashlib.sha256(data + b"xz%d" % self.xz_preset).hexdigest()
        self.used.add(key)
        self.by_owner.setdefault(self.owner, set()).add(key)
        item = self.items.get(key)
        if item is None:
            block = xz_block(data, self.xz_preset)
            item = (gzip.compress(data, compresslevel=6, mtime=0), block[0], block[1], block[2])
            self.items[key] = item
            self.dirty = True
            self.compressed += 1
        return data, item[0], (item[1], item[2], item[3])

    def prune(self, keep):
        self._load()
        for key in [k for k in self.items if k not in keep]:
            del self.items[key]
            self.dirty = True

    def save(self):
        if self.path and self.dirty:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            atomic_write(self.path, marshal.dumps({"version": STATE_VERSION, "items": self.items}), mode=0o600)
            self.dirty = False


def compress_indexes(chunks, store, compressions):
    """Return {"Packages": raw, "Packages.gz": ..., "Packages.xz": ...} from text CHUNKS."""
    parts = [store.get(c) for c in chunks]
    out = {"Packages": b"".join(p[0] for p in parts)}
    if "gz" in compressions:
        out["Packages.gz"] = b"".join(p[1] for p in parts) if parts else gzip.compress(b"", mtime=0)
    if "xz" in compressions:
        out["Packages.xz"] = xz_stream([p[2] for p in parts]) if parts else lzma.compress(b"", check=lzma.CHECK_CRC64)
    return out


def rfc2822(dt):
    return dt.strftime("%a, %d %b %Y %H:%M:%S UTC")


def build_release(meta, index_files, date, valid_until=None):
    """META: Origin/Label/Suite/...; INDEX_FILES: {relpath: (size, md5, sha256)}.

    Written by the deb822 writer: an origin, label, suite or description that would not
    read back through apt as one line is refused (PublishError naming the field).
    """
    names_ = sorted(index_files)
    for rel in names_:
        if not names.is_valid("line", rel) or " " in rel:
            raise PublishError(f"index file name {rel!r} cannot be listed in a Release file.")
    fields = [
        ("Origin", meta["origin"]),
        ("Label", meta["label"]),
        ("Suite", meta["suite"]),
        ("Codename", meta["suite"]),
        ("Date", rfc2822(date)),
    ]
    if valid_until is not None:
        fields.append(("Valid-Until", rfc2822(valid_until)))
    fields += [
        ("Architectures", " ".join(meta["architectures"])),
        ("Components", COMPONENT),
        ("Description", meta["description"]),
        ("Acquire-By-Hash", "yes"),
        ("MD5Sum", "".join(f"\n {index_files[n][1]} {index_files[n][0]:>16} {n}" for n in names_)),
        ("SHA256", "".join(f"\n {index_files[n][2]} {index_files[n][0]:>16} {n}" for n in names_)),
    ]
    for key, value in fields[:-2]:
        if "\n" in str(value):
            raise PublishError(f"Release field {key} must be one line of printable text, not {value!r}.")
    try:
        return deb822.format_stanza([(k, v) for k, v in fields if v != ""], "Release file")
    except deb822.Deb822Error as exc:
        raise PublishError(str(exc)) from None


def parse_release_sha256(text):
    """Return {relpath: sha256} from a Release file's SHA256 section (read as apt reads it)."""
    out = {}
    try:
        paragraphs = deb822.parse_paragraphs(text, "Release file")
    except deb822.Deb822Error:
        return out
    value = deb822.get(paragraphs[0], "SHA256", "") if paragraphs else ""
    for line in value.split("\n"):
        parts = line.split()
        # only what this server writes: a hex digest and a relative path without '..'
        if (len(parts) == 3 and len(parts[0]) == 64 and all(c in "0123456789abcdef" for c in parts[0])
                and not parts[2].startswith("/") and ".." not in parts[2].split("/")):
            out[parts[2]] = parts[0]
    return out


# ------------------------------------------------------------------ gpg

def gpg_env(gnupg_home):
    env = dict(os.environ)
    env["GNUPGHOME"] = gnupg_home
    env.pop("GPG_AGENT_INFO", None)
    return env


def secret_key_fingerprints(colons: str) -> list[str]:
    """Fingerprints of the secret (primary) keys in gpg's ``--with-colons`` output (the one parser:
    the repo_server role reads it through the mo.fleet.gpg_fingerprints filter)."""
    fprs = []
    expect_fpr = False
    for line in colons.splitlines():
        cols = line.split(":")
        if cols[0] == "sec":
            expect_fpr = True
        elif cols[0] == "fpr" and expect_fpr and len(cols) > 9:
            fprs.append(cols[9])
            expect_fpr = False
    return fprs


def signing_key_fingerprint(gnupg_home, key=None):
    """The fingerprint of the secret signing key in GNUPG_HOME (KEY selects one)."""
    if not os.path.isdir(gnupg_home):
        raise PublishError(f"the signing keyring {gnupg_home} does not exist (run the mo.fleet.repo_server role first).")
    cmd = ["gpg", "--batch", "--with-colons", "--list-secret-keys"]
    if key:
        cmd.append(key)
    try:
        proc = subprocess.run(cmd, env=gpg_env(gnupg_home), capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        raise PublishError("gpg is not installed on the repository server.") from None
    fprs = secret_key_fingerprints(proc.stdout)
    if not fprs:
        raise PublishError(f"no secret signing key{' ' + repr(key) if key else ''} in {gnupg_home}.")
    if len(fprs) > 1 and not key:
        raise PublishError(f"{gnupg_home} holds {len(fprs)} secret keys; set signing_key to one fingerprint.")
    return fprs[0]


def sign_release(suite_dir, gnupg_home, fingerprint):
    """Write InRelease (clearsigned) and Release.gpg (detached, armored) beside Release."""
    release = os.path.join(suite_dir, "Release")
    env = gpg_env(gnupg_home)
    base = ["gpg", "--batch", "--yes", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", "",
            "--digest-algo", "SHA512", "--local-user", fingerprint]
    procs = []
    for extra, out in ((["--clearsign"], "InRelease"), (["--armor", "--detach-sign"], "Release.gpg")):
        # both signatures at once: the agent serializes the key use, the process start-ups overlap
        procs.append(subprocess.Popen(base + extra + ["--output", os.path.join(suite_dir, out), release], env=env,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    errors = []
    for proc in procs:
        try:
            _out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            _out, err = proc.communicate()
            err = "timed out after 120 seconds"
        if proc.returncode != 0:
            errors.append((err.strip().splitlines() or ["unknown error"])[-1])
    if errors:
        raise PublishError(f"gpg could not sign {release} ({errors[0]}).")
