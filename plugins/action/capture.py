# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for mo.fleet.capture: run the module, pull the bundle home, verify it.

The bundle lands at DEST/<inventory_hostname>/<name>/ (template.json, files/, before/).
The archive's sha256, the template (JSON Schema) and every bundled file's sha256 are checked
in a staging directory next to the destination; only then does one rename put it in place.
`changed` is true only when the destination was written.

Connection round trips: an archive of at most INLINE_MAX bytes comes back base64-encoded in
the module's result (no fetch); a larger one is written into the task's remote temporary
directory and fetched, and goes with that directory when Ansible removes it after the task.
That directory exists even when the module itself is pipelined: an action plugin that
TRANSFERS_FILES gets it before it runs the module.

Everything the target sends back is hostile.  The host and capture names must be plain file
name parts and the joined destination must stay below DEST (the one path guard,
``_common/paths.join``): a host called ``..`` is refused, never written beside DEST.  The
archive is refused, before more than the limit is written and with the staging directory
removed, when it is larger than MAX_ARCHIVE_BYTES, holds more than MAX_MEMBERS members or
more than MAX_BUNDLE_BYTES of content, or holds anything but plain files and directories
under template.json, files/ and before/ (no links, devices, absolute names or ``..``).
"""

from __future__ import annotations

import base64
import binascii
import filecmp
import os
import shutil
import tarfile
import tempfile

from ansible.module_utils.common.text.converters import to_text
from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._common import paths

ALLOWED_TOP = (tpl.BUNDLE_TEMPLATE, tpl.BUNDLE_FILES, tpl.BUNDLE_BEFORE)
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


class ActionModule(ActionBase):

    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        dest = to_text(args.get("dest") or "captures")
        fetch = args.get("fetch", True)
        if isinstance(fetch, str):
            fetch = fetch.lower() in ("1", "true", "yes", "on")
        host = task_vars.get("inventory_hostname", "localhost")
        if fetch:
            # refused before the command runs on the target, so nothing is left half-done
            try:
                paths.join(os.path.abspath(os.path.expanduser(dest)), [host], "inventory_hostname")
                if args.get("name") is not None:
                    paths.join(os.path.abspath(os.path.expanduser(dest)), [host, args["name"]], "name")
            except paths.PathError as exc:
                result.update(failed=True, changed=False, msg="The capture did not run: %s" % exc)
                return result
        if fetch and not self._task.check_mode:
            # the module takes the archive away now: inline when small, else into the task's
            # remote tmp directory, which Ansible removes after the task
            args["inline_max"] = args.get("inline_max") or INLINE_MAX
            if self._connection._shell.tmpdir is None:
                self._make_tmp_path()
            args["archive_dir"] = self._connection._shell.tmpdir
        module_result = self._execute_module(module_name="mo.fleet.capture", module_args=args,
                                             task_vars=task_vars)
        result.update(module_result)
        bundle = module_result.get("bundle")
        content = None
        if isinstance(bundle, dict):
            bundle = dict(bundle)
            content = bundle.pop("content", None)  # never shown to the user
            result["bundle"] = bundle
        if self._task.check_mode or not bundle or not fetch:
            return result

        name = module_result.get("name") or "capture"
        dest = os.path.expanduser(dest)
        dest = os.path.abspath(dest)  # relative to the controller's current directory
        try:
            host_dir = paths.join(dest, [host], "inventory_hostname")
            final = paths.join(host_dir, [name], "The capture name")
        except paths.PathError as exc:
            result.update(failed=True, changed=False, msg="The bundle was not kept: %s" % exc)
            return result
        if not isinstance(bundle.get("sha256"), str):
            result.update(failed=True, changed=False, msg="The bundle from %s was not kept: the module reported "
                          "no sha256 for it." % host)
            return result
        try:
            wrote = receive_bundle(self._connection, host, host_dir, final, name, bundle, content)
        except BundleError as exc:
            result.update(failed=True, changed=False, msg=str(exc))
            return result
        result["dest"] = final
        result["bundle_written"] = wrote
        result["changed"] = wrote
        return result
