# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bringing a capture bundle home to the controller: the archive's safety checks and the swap.

Controller side (used by the action plugins mo.fleet.capture and mo.fleet.harvest).

``receive_bundle(connection, host, host_dir, final, name, bundle, content) -> bool``
    The archive (inline base64 CONTENT, or fetched over CONNECTION), its sha256 checked, is
    extracted into a staging directory beside FINAL, the bundle verified (template schema,
    every file's sha256), then one rename puts it in place; True when FINAL changed.
``extract_bundle(archive, target, max_members, max_bytes)``
    Extracts only plain files and directories under template.json, files/ and before/ (no
    links, devices, absolute names or ``..``), refusing before more than MAX_MEMBERS members,
    MAX_BUNDLE_BYTES of content or a header over MAX_HEADER_BYTES is written.
``install_bundle(staging, final) -> bool``
    The directory swap: STAGING replaces FINAL by renames, unless both hold the same tree.
``check_destination(dest, host, name)``, ``bundle_destination(dest, host, name) -> (host_dir, final)``
    DEST/<host>/<name>, both names plain file name parts (``_common/paths.join``).
``destination(value) -> dest``, ``take_away_args(action, inline_max) -> module options``
    The dest option as an absolute path; the options that send the archive back (inline when
    small, else into the task's remote tmp directory).

Every refusal is a ``BundleError`` with one sentence.
"""

from __future__ import annotations

import base64
import binascii
import filecmp
import os
import shutil
import tarfile
import tempfile

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._common import paths

ALLOWED_TOP = (tpl.BUNDLE_TEMPLATE, tpl.BUNDLE_FILES, tpl.BUNDLE_BEFORE)
DEFAULT_DEST = "captures"
# bundle archives up to this size come back inside the module's result
INLINE_MAX = 4 * 1024 * 1024
# what a bundle from a target may be at most (see the module docstring)
MAX_ARCHIVE_BYTES = 16 * 1024 ** 3
MAX_BUNDLE_BYTES = 32 * 1024 ** 3
MAX_MEMBERS = 1000000


class BundleError(Exception):
    pass


# a GNU long name or a pax header is read whole into memory before its member is seen: only
# this much of one (no bundle path needs more; names are capped at 8192 characters below)
MAX_HEADER_BYTES = 64 * 1024
_HEADER_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                 tarfile.SOLARIS_XHDTYPE)


class _BoundedTarInfo(tarfile.TarInfo):
    """Refuses a long-name or pax header larger than MAX_HEADER_BYTES before reading it."""

    def _proc_member(self, tarfile):  # pylint: disable=redefined-outer-name
        if self.type in _HEADER_TYPES and self.size > MAX_HEADER_BYTES:
            raise BundleError("The bundle archive holds a header of %d bytes, more than the %d a bundle may use."
                              % (self.size, MAX_HEADER_BYTES))
        return super()._proc_member(tarfile)


def extract_bundle(archive, target, max_members=None, max_bytes=None):
    """Extract ARCHIVE into TARGET accepting only plain files/dirs under the bundle's areas.

    Refuses (BundleError, one sentence) before writing past MAX_MEMBERS members or
    MAX_BUNDLE_BYTES of content; the caller removes TARGET on any refusal."""
    max_members = MAX_MEMBERS if max_members is None else max_members
    max_bytes = MAX_BUNDLE_BYTES if max_bytes is None else max_bytes
    count = total = 0
    with tarfile.open(archive, "r:*", tarinfo=_BoundedTarInfo) as tar:
        for member in tar:
            count += 1
            if count > max_members:
                raise BundleError("The bundle archive holds more than %d members, the most a bundle may hold."
                                  % max_members)
            name = member.name
            parts = name.split("/")
            if member.isdir() and parts[-1] == "":
                parts = parts[:-1]
            if name.startswith("/") or any(p in ("", ".", "..") for p in parts) or parts[0] not in ALLOWED_TOP \
                    or (parts[0] == tpl.BUNDLE_TEMPLATE and (len(parts) != 1 or not member.isfile())) \
                    or any(c in name for c in "\x00\n\r") or len(name) > 8192:
                raise BundleError("The bundle archive holds an unexpected member %r." % name[:200])
            if not (member.isfile() or member.isdir()):
                raise BundleError("The bundle archive holds %r, which is not a plain file or directory." % name[:200])
            total += member.size
            if total > max_bytes or (parts[0] == tpl.BUNDLE_TEMPLATE and member.size > tpl.MAX_TEMPLATE_BYTES):
                raise BundleError("The bundle archive holds more than %d bytes, the most a bundle may hold."
                                  % (max_bytes if total > max_bytes else tpl.MAX_TEMPLATE_BYTES))
            dest = os.path.join(target, *parts)
            if member.isdir():
                os.makedirs(dest, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if os.path.lexists(dest):
                raise BundleError("The bundle archive holds %r twice." % name[:200])
            source = tar.extractfile(member)
            with open(dest, "xb") as out:
                shutil.copyfileobj(source, out)
            os.chmod(dest, 0o644)


def same_tree(a, b):
    if not os.path.isdir(a) or not os.path.isdir(b):
        return False
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.funny_files:
        return False
    _match, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    if mismatch or errors:
        return False
    return all(same_tree(os.path.join(a, d), os.path.join(b, d)) for d in cmp.common_dirs)


def install_bundle(staging, final):
    """Swap STAGING into FINAL atomically-ish (rename); return True when FINAL changed."""
    if same_tree(staging, final):
        shutil.rmtree(staging)
        return False
    old = None
    if os.path.exists(final):
        old = final + ".old-" + os.path.basename(staging)
        os.rename(final, old)
    os.rename(staging, final)
    if old:
        shutil.rmtree(old, ignore_errors=True)
    return True


def receive_bundle(connection, host, host_dir, final, name, bundle, content=None):
    """Bring one bundle home to FINAL (below HOST_DIR) and verify it; True when FINAL changed.

    BUNDLE is what the module reported ({sha256, archive}); CONTENT its base64 archive when it
    came inline, else ``archive`` is fetched over CONNECTION.  Every problem is a BundleError
    with one sentence; nothing is left half-written (staging directory + one rename).
    Used by this plugin and by mo.fleet.harvest.
    """
    try:
        os.makedirs(host_dir, exist_ok=True)
        staging_root = tempfile.mkdtemp(prefix=".%s.tmp-" % name, dir=host_dir)
    except OSError as exc:
        raise BundleError("dest %s cannot be written: %s." % (os.path.dirname(host_dir), exc.strerror))
    try:
        archive = os.path.join(staging_root, "bundle.tar.gz")
        remote = bundle.get("archive")
        if content is not None:
            if not isinstance(content, str) or len(content) > (INLINE_MAX * 4) // 3 + 8:
                raise BundleError("The bundle archive in the module's result is larger than the %d bytes "
                                  "a result may carry." % INLINE_MAX)
            try:
                data = base64.b64decode(content, validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise BundleError("The bundle archive in the module's result is not valid base64.")
            with open(archive, "wb") as fh:
                fh.write(data)
        elif isinstance(remote, str) and remote.startswith("/") and "\n" not in remote:
            try:
                connection.fetch_file(remote, archive)
            except AnsibleError as exc:
                raise BundleError(f"The bundle archive {remote} could not be fetched: {exc.message}")
            if os.path.getsize(archive) > MAX_ARCHIVE_BYTES:
                raise BundleError("The bundle archive is larger than %d bytes, the most a bundle may be."
                                  % MAX_ARCHIVE_BYTES)
        else:
            raise BundleError("The module reported neither the bundle archive nor its content.")
        if tpl.sha256_file(archive) != bundle["sha256"]:
            raise BundleError("The fetched bundle archive does not match the sha256 the target reported.")
        staging = os.path.join(staging_root, "bundle")
        os.makedirs(staging)
        extract_bundle(archive, staging)
        tpl.verify_bundle(staging)
        wrote = install_bundle(staging, final)
        bundle["archive"] = None  # goes with the task's tmp directory (or never written there)
        return wrote
    except (BundleError, tpl.TemplateError, tarfile.TarError) as exc:
        raise BundleError("The bundle from %s was not kept: %s" % (host, exc))
    except OSError as exc:
        raise BundleError("The bundle could not be written to %s: %s." % (final, exc.strerror or exc))
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)


def destination(value) -> str:
    """The dest option VALUE (unset: DEFAULT_DEST) as an absolute path, relative to the
    controller's current directory."""
    return os.path.abspath(os.path.expanduser(to_text(value or DEFAULT_DEST)))


def take_away_args(action, inline_max=None) -> dict:
    """The module options that take the bundle archive away now: inline up to INLINE_MAX
    (or INLINE_MAX) bytes, else into the task's remote tmp directory of ACTION (an action
    plugin; the directory is made now and Ansible removes it after the task)."""
    shell = action._connection._shell
    if shell.tmpdir is None:
        action._make_tmp_path()
    return {"inline_max": inline_max or INLINE_MAX, "archive_dir": shell.tmpdir}


def check_destination(dest: str, host: str, name: str | None) -> None:
    """paths.PathError unless DEST/HOST (and DEST/HOST/NAME) stays below DEST: checked before
    the command runs on the target, so nothing is left half-done."""
    paths.join(dest, [host], "inventory_hostname")
    if name is not None:
        paths.join(dest, [host, name], "name")


def bundle_destination(dest: str, host: str, name: str) -> tuple:
    """(host_dir, final): DEST/HOST and DEST/HOST/NAME; paths.PathError when HOST or NAME is
    not a plain file name part."""
    host_dir = paths.join(dest, [host], "inventory_hostname")
    return host_dir, paths.join(host_dir, [name], "The capture name")
