# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What of a file may enter a bundle: the redaction rules (``redaction_reason``), hashing
(``hash_file``), and the ``Stash`` of config files taken before the command.

Standard library only (runs on targets, Python 3.9+).
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import re
import shutil


from ansible_collections.mo.fleet.plugins.module_utils._capture.snapshot_tree import CONFIG_ROOTS


_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")


_SECRET_NAME = re.compile(
    r"(^|[._-])(credentials?|secrets?|passwords?|passwd\.(?:txt|json|ya?ml|ini)|tokens?|"
    r"\.?pgpass|git-credentials|id_(?:rsa|dsa|ecdsa|ed25519)(?:_sk)?)($|[._-])",
    re.IGNORECASE)


NAMED_LIKE_CREDENTIALS = "file named like credentials"


_NOT_SECRET_SUFFIXES = (".pub", ".crt", ".example", ".sample", ".pm", ".py", ".pyc", ".rb", ".js", ".h",
                        ".c", ".go", ".html", ".so", ".mo", ".gz", ".1", ".5", ".8", ".txt.gz")


_SHADOW = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/security/opasswd")


_SUDOERS = ("/etc/sudoers", "/etc/sudoers-")


# (glob, reason): fnmatch's "*" also matches "/", so "*/.ssh/..." covers every home
_SECRET_GLOBS = (
    ("/etc/sudoers.d/*", "sudo rules"),
    ("*/.ssh/authorized_keys*", "SSH authorized keys"),
    ("/etc/ssh/authorized_keys*", "SSH authorized keys"),
    ("/etc/ssl/private/*", "TLS private key directory"),
    ("*.keytab", "Kerberos keytab"),
    ("*/.gnupg/private-keys-v1.d/*", "GnuPG private key"),
    ("*/.gnupg/secring.gpg", "GnuPG private key"),
    ("/etc/NetworkManager/system-connections/*", "network credentials"),
    ("/etc/wpa_supplicant/*.conf", "network credentials"),
    ("*/.docker/config.json", "registry credentials"),
    ("*/.aws/credentials", "cloud credentials"),
)


def kept(path, keep):
    """True when PATH is one of KEEP (paths or globs), or lies below one."""
    for pattern in keep or ():
        if any(c in pattern for c in "*?["):
            if fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern.rstrip("/") + "/*"):
                return True
        else:
            root = pattern.rstrip("/") or "/"
            if root == "/" or path == root or path.startswith(root + "/"):
                return True
    return False


def redaction_reason(path, private_key=False, keep=()):
    """Why PATH's content must stay out of a bundle, or None (always None for KEEP's paths)."""
    if keep and kept(path, keep):
        return None
    base = os.path.basename(path)
    if path in _SHADOW:
        return "password hashes (shadow file)"
    if path in _SUDOERS:
        return "sudo rules"
    for pattern, reason in _SECRET_GLOBS:
        if fnmatch.fnmatchcase(path, pattern):
            return reason
    if path.startswith("/etc/ssh/") and base.startswith("ssh_host_") and not base.endswith(".pub"):
        return "SSH host private key"
    if base == ".netrc" or base == "_netrc":
        return "netrc credentials"
    if private_key:
        return "private key found in the content"
    if not base.endswith(_NOT_SECRET_SUFFIXES) and _SECRET_NAME.search(base):
        return NAMED_LIKE_CREDENTIALS
    return None


def hash_file(path, chunk=1 << 20):
    """(sha256 hex, md5 hex, contains a PEM/OpenSSH private key) of a regular file."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    found = False
    tail = b""
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk)
            if not block:
                break
            sha.update(block)
            md5.update(block)
            if not found and (b"PRIVATE KEY" in block or b"PRIVATE KEY" in tail + block[:64]):
                found = bool(_PRIVATE_KEY.search(tail + block))
            tail = block[-80:]
    return sha.hexdigest(), md5.hexdigest(), found


def copy_file(src, dst):
    """Copy SRC to DST (parents created) and return the sha256 of what was written."""
    parent = os.path.dirname(dst)
    if not os.path.isdir(parent):
        os.makedirs(parent, mode=0o755)
    sha = hashlib.sha256()
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while True:
            block = fin.read(1 << 20)
            if not block:
                break
            sha.update(block)
            fout.write(block)
    return sha.hexdigest()


class Stash(object):
    """Before-copies of regular files under config roots (for rollback).

    With MEMORY (bytes, 0 = off) the copies are kept in memory up to that many bytes in all
    (config trees are small: no directory creation and no write per file before the command
    can start); files beyond the budget, and every file without it, are copied under
    DIRECTORY.  The sha256 of a copy is only computed when it is asked for (``digest``), that
    is for files the command modified or deleted.
    """

    def __init__(self, directory, roots=CONFIG_ROOTS, memory=0, keep=()):
        self.directory = directory
        self.keep = tuple(keep or ())
        self.roots = tuple(r.rstrip("/") for r in roots)
        self.prefixes = tuple(r + "/" for r in self.roots)
        self.memory = memory
        self.saved = {}        # path -> sha256 of the copy (None until asked for)
        self.data = {}         # path -> bytes, the copies kept in memory
        self.held = 0

    def covers(self, path):
        return path in self.roots or path.startswith(self.prefixes)

    def take(self, snapshot):
        """Copy every regular file of SNAPSHOT under the config roots (never secrets)."""
        prefixes, roots = self.prefixes, self.roots
        for path, st in snapshot.entries.items():
            if st.type != "file" or not (path.startswith(prefixes) or path in roots) \
                    or redaction_reason(path, keep=self.keep):
                continue
            try:
                if self.memory and self.held + st.size <= self.memory:
                    with open(path, "rb") as handle:
                        blob = handle.read()
                    self.data[path] = blob
                    self.held += len(blob)
                    self.saved[path] = None
                else:
                    self.saved[path] = copy_file(path, self.directory + path)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise
                continue
        return len(self.saved)

    def path_of(self, path):
        """The on-disk copy of PATH (None when there is none: not saved, or held in memory)."""
        return self.directory + path if path in self.saved and path not in self.data else None

    def source(self, path):
        """Where the before-content of PATH is: a file path, bytes (held in memory) or None."""
        if path not in self.saved:
            return None
        return self.data[path] if path in self.data else self.directory + path

    def digest(self, path):
        if path in self.saved and self.saved[path] is None and path in self.data:
            self.saved[path] = hashlib.sha256(self.data[path]).hexdigest()
        return self.saved.get(path)

    def cleanup(self):
        self.data.clear()
        shutil.rmtree(self.directory, ignore_errors=True)


def write_bytes(data, dst):
    """Write DATA to DST (parents created) and return its sha256 (see copy_file)."""
    parent = os.path.dirname(dst)
    if not os.path.isdir(parent):
        os.makedirs(parent, mode=0o755)
    with open(dst, "wb") as fout:
        fout.write(data)
    return hashlib.sha256(data).hexdigest()
