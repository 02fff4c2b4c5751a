# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The apply engine: converge a bundle's paths on the host it runs on, in one run.

Standard library only: this file runs on targets (and is copied into the ``module_utils/``
of the roles ``playbooks/template_to_role.yml`` writes, hence the fallback imports).

A *plan* is the ordered list of path items the controller renders from a template
(``render.path_plan``): dicts with ``path`` and ``state`` (``directory``, ``file``,
``link``, ``attrs``: only mode and owner, ``absent``: removed with what is inside), and
``mode``, ``owner``, ``group``, ``sha256`` and ``size`` (files) and ``target`` (links).
A file may carry ``patch``: the unified diff the capture recorded from the packaged default
to the conffile (``confdiff``); with ``patch=True`` a host file that differs is edited by it
where it applies (``textpatch``: what the host's file has of its own elsewhere stays), left
alone when it is applied already, and replaced whole, saying so, when it applies neither way.
Every plan is hostile:
``check_plan`` refuses a bad item with one sentence naming it.

``converge(items, content=None, check=False, diff=False) -> dict``
    Compares every item with the host and, unless CHECK, changes what differs.  A file whose
    content differs needs CONTENT (a ``ContentArchive``); without it the run is a probe:
    it changes nothing and lists the sha256 values it needs.  Returns ``changed``,
    ``changes`` (path, state and what differs, in plan order), ``need`` (sha256 values of
    the content to ship) and, with DIFF, ``before``
    (path -> the host's text of a file whose content differs, or a summary of a binary one)
    and ``after`` (path -> the text a patch makes of it).
``pack(items) -> dict`` / ``unpack(manifest) -> list``
    The plan as rows of ``FIELDS``, and back, checked; the action plugin sends it as one JSON
    text (a string parameter costs the module nothing to copy, validate and log, where a
    mapping of thousands of rows was copied, logged and echoed back whole).
``ContentArchive(path, max_bytes)``
    A tar of file contents named by their sha256 (what the action plugin ships): only
    regular members named by 64 hex digits count, their total size is capped, and every
    byte written is checked against the sha256 before the file is renamed into place.
"""

from __future__ import annotations

import grp
import hashlib
import io
import json
import os
import pwd
import re
import shutil
import stat
import tarfile
import tempfile

try:
    from ansible_collections.mo.fleet.plugins.module_utils._render import textpatch
    from ansible_collections.mo.fleet.plugins.module_utils._common import names
    from ansible_collections.mo.fleet.plugins.module_utils._common import paths as _paths
except ImportError:  # inside a generated role: copies in the role's module_utils/
    from ansible.module_utils import mo_fleet_names as names  # type: ignore[no-redef]
    from ansible.module_utils import mo_fleet_paths as _paths  # type: ignore[no-redef]
    from ansible.module_utils import mo_fleet_textpatch as textpatch  # type: ignore[no-redef]

STATES = ("directory", "file", "link", "attrs", "absent")
MAX_ITEMS = 1000000
MAX_CONTENT_BYTES = 16 * 1024 ** 3   # what one content archive may unpack, in all
MAX_DIFF_BYTES = 256 * 1024          # a file larger than this shows a summary, not a diff
MAX_PATCH_BYTES = 1024 * 1024        # a host file larger than this is replaced whole, not patched
PATCH_RE = re.compile("[^\\x00-\\x08\\x0b-\\x1f\\x7f\\x85\\u2028\\u2029]*")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
MODE_RE = re.compile(r"[0-7]{3,4}")
NUMBER_RE = re.compile(r"[0-9]{1,10}")  # ASCII digits only: "²".isdigit() is True
BLOCK = 1 << 20


class ApplyError(ValueError):
    """A plan item, the content or the host refuses the apply; the message is one sentence."""


# --------------------------------------------------------------------------- the plan

def _field(index, key):
    return "items/%d/%s" % (index, key)


def _check_owner(value, field):
    if value is None:
        return None
    if not isinstance(value, str) or not (NUMBER_RE.fullmatch(value) or names.is_valid("account", value)):
        raise ApplyError("%s must be a user or group name or a number, not %r." % (field, str(value)[:80]))
    return value


def check_plan(items: list) -> list:
    """ITEMS checked (types, paths through the one path guard, modes, names, sha256): a
    list of clean dicts, or ApplyError naming the first bad field."""
    if not isinstance(items, list):
        raise ApplyError("items must be a list of path items, not %s." % type(items).__name__)
    if len(items) > MAX_ITEMS:
        raise ApplyError("items holds %d entries, more than the %d one run converges." % (len(items), MAX_ITEMS))
    out, links = [], []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ApplyError("%s must be a mapping, not %s." % ("items/%d" % index, type(item).__name__))
        try:
            path = _paths.check_roots(item.get("path"), [], _field(index, "path"), below=True)
        except _paths.PathError as exc:
            raise ApplyError(str(exc))
        if path != item["path"]:
            raise ApplyError("%s %r is not normalised (expected %s)." % (_field(index, "path"), item["path"], path))
        state = item.get("state")
        if state not in STATES:
            raise ApplyError("%s must be one of %s, not %r." % (_field(index, "state"), ", ".join(STATES), state))
        clean = {"path": path, "state": state}
        mode = item.get("mode")
        if mode is not None:
            if not isinstance(mode, str) or not MODE_RE.fullmatch(mode):
                raise ApplyError("%s must be an octal mode of 3 or 4 digits, not %r." % (_field(index, "mode"), mode))
            clean["mode"] = mode
        for key in ("owner", "group"):
            clean[key] = _check_owner(item.get(key), _field(index, key))
        if state == "file":
            digest = item.get("sha256")
            if not isinstance(digest, str) or not SHA256_RE.fullmatch(digest):
                raise ApplyError("%s must be 64 lower-case hex digits, not %r." % (_field(index, "sha256"), digest))
            clean["sha256"] = digest
            text = item.get("patch")
            if text is not None:
                if not isinstance(text, str) or len(text) > MAX_DIFF_BYTES or not PATCH_RE.fullmatch(text):
                    raise ApplyError("%s must be a unified diff of at most %d characters without control "
                                     "characters other than line breaks and tabs." % (_field(index, "patch"),
                                                                                      MAX_DIFF_BYTES))
                try:
                    textpatch.parse(text)
                except textpatch.PatchError as exc:
                    raise ApplyError("%s is not a unified diff: %s" % (_field(index, "patch"), exc))
                clean["patch"] = text
            size = item.get("size")
            if size is not None:
                if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                    raise ApplyError("%s must be a non-negative integer, not %r." % (_field(index, "size"), size))
                clean["size"] = size
        if state == "link":
            target = item.get("target")
            if not isinstance(target, str) or not target or not names.is_valid("line", target) or len(target) > 4096:
                raise ApplyError("%s must be one line of text of at most 4096 characters." % _field(index, "target"))
            clean["target"] = target
            links.append(path)
        out.append(clean)
    try:
        _paths.symlink_ancestors(("items/%d/path" % i, c["path"], "link" if c["state"] == "link" else "path")
                                 for i, c in enumerate(out))
    except _paths.PathError as exc:
        raise ApplyError(str(exc))
    return out


# The plan as the action plugin sends it: one row of FIELDS per item (None where an item has
# no such field), not a mapping per item.
FIELDS = ("path", "state", "mode", "owner", "group", "sha256", "size", "target", "patch")


def pack(items: list) -> dict:
    """The compact manifest of ITEMS (a checked plan): {"fields": FIELDS, "rows": [...]}."""
    return {"fields": list(FIELDS), "rows": [[item.get(key) for key in FIELDS] for item in items]}


def unpack(manifest) -> list:
    """The checked plan a MANIFEST (``pack``, or its JSON text; hostile) holds, or ApplyError
    in one sentence."""
    if isinstance(manifest, str):
        try:
            manifest = json.loads(manifest)
        except ValueError as exc:
            raise ApplyError(f"manifest is not JSON: {str(exc)[:200]}.")
    if not isinstance(manifest, dict) or manifest.get("fields") != list(FIELDS):
        raise ApplyError("manifest must be a mapping whose fields are %s." % ", ".join(FIELDS))
    rows = manifest.get("rows")
    if not isinstance(rows, list):
        raise ApplyError("manifest/rows must be a list of rows.")
    items = []
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(FIELDS):
            raise ApplyError("manifest/rows/%d must be a list of %d values." % (index, len(FIELDS)))
        items.append(dict((key, value) for key, value in zip(FIELDS, row) if value is not None))
    return check_plan(items)


# --------------------------------------------------------------------------- content

class ContentArchive(object):
    """Members of a tar of contents named by sha256, with a cap on what it may unpack."""

    def __init__(self, path: str, max_bytes: int = MAX_CONTENT_BYTES):
        try:
            self._tar = tarfile.open(path, mode="r:")
        except (OSError, tarfile.TarError) as exc:
            raise ApplyError("The content archive %s cannot be read: %s." % (path, exc))
        self._members = {}
        total = 0
        try:
            for member in self._tar:
                if not member.isreg() or not SHA256_RE.fullmatch(member.name):
                    raise ApplyError("The content archive holds %r, which is not a file named by its sha256."
                                     % member.name[:80])
                total += member.size
                if total > max_bytes:
                    raise ApplyError("The content archive holds more than %d bytes, the most one apply unpacks."
                                     % max_bytes)
                self._members[member.name] = member
        except tarfile.TarError as exc:
            raise ApplyError("The content archive %s is not a valid tar: %s." % (path, exc))

    def __contains__(self, digest):
        return digest in self._members

    def open(self, digest):
        member = self._members.get(digest)
        if member is None:
            raise ApplyError("The content archive lacks the content of sha256 %s." % digest)
        return self._tar.extractfile(member)

    def close(self):
        self._tar.close()


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- host state

MISSING = -2  # check mode: a user or group the tasks before this run would create


class _Ids(object):
    """Owner and group names -> numbers (cached; a number stays a number).  In check mode an
    account this host lacks yet (the user and group tasks run for real only) is MISSING."""

    def __init__(self, check=False):
        self.users, self.groups = {}, {}
        self.check = check

    def uid(self, name, path):
        return self._lookup(name, self.users, pwd.getpwnam, "user", path)

    def gid(self, name, path):
        return self._lookup(name, self.groups, grp.getgrnam, "group", path)

    def _lookup(self, name, cache, func, kind, path):
        if name is None:
            return -1
        if name not in cache:
            if NUMBER_RE.fullmatch(name):
                cache[name] = int(name)
            else:
                try:
                    cache[name] = func(name)[2]
                except KeyError:
                    cache[name] = None
        if cache[name] is None:
            if self.check:
                return MISSING
            raise ApplyError("The %s %s of %s does not exist on this host." % (kind, name, path))
        return cache[name]


def _lstat(path):
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None


def _attr_changes(item, st, ids):
    """What differs in mode, owner and group between ITEM and the lstat ST."""
    out = []
    mode = item.get("mode")
    if mode is not None and not stat.S_ISLNK(st.st_mode) and stat.S_IMODE(st.st_mode) != int(mode, 8):
        out.append("mode %04o -> %04o" % (stat.S_IMODE(st.st_mode), int(mode, 8)))
    uid, gid = ids.uid(item["owner"], item["path"]), ids.gid(item["group"], item["path"])
    for kind, old, new in (("owner", st.st_uid, uid), ("group", st.st_gid, gid)):
        if new == MISSING:
            out.append("%s %d -> %s (not on this host yet)" % (kind, old, item[kind]))
        elif new != -1 and old != new:
            out.append("%s %d -> %d" % (kind, old, new))
    return out


def _set_attrs(item, path, ids, is_link=False):
    """Owner, group and mode of PATH as ITEM says, never through a symlink: a link gets
    lchown only; anything else is opened without following a link (and without blocking on
    a FIFO swapped in) and changed through its descriptor."""
    if is_link:
        uid, gid = ids.uid(item["owner"], item["path"]), ids.gid(item["group"], item["path"])
        if uid != -1 or gid != -1:
            os.lchown(path, uid, gid)
        return
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        _set_fd_attrs(item, fd, ids)
    finally:
        os.close(fd)


def _set_fd_attrs(item, fd, ids):
    uid, gid = ids.uid(item["owner"], item["path"]), ids.gid(item["group"], item["path"])
    if uid != -1 or gid != -1:
        os.fchown(fd, uid, gid)
    if item.get("mode") is not None:
        os.fchmod(fd, int(item["mode"], 8))


class _Ancestors:
    """Refuses a path below a host symlink that root does not own.

    A plan's directories may belong to ordinary users (an application's own tree); such a
    user could swap a directory below theirs for a symlink and have this run, as root, write,
    chown or remove through it.  Root's own links (merged /usr: /lib -> usr/lib) are
    followed, as the kernel's protected_symlinks rule trusts a link whose owner is root."""

    def __init__(self):
        self.checked = set()

    def check(self, path: str) -> None:
        parent = os.path.dirname(path)
        todo = []
        while parent not in self.checked and parent != "/":
            todo.append(parent)
            parent = os.path.dirname(parent)
        for directory in reversed(todo):
            st = _lstat(directory)
            if st is not None and stat.S_ISLNK(st.st_mode) and st.st_uid != 0:
                raise ApplyError(f"{path} lies below {directory}, a symlink on this host owned by uid "
                                 f"{st.st_uid}, not root; the apply does not follow it.")
            self.checked.add(directory)


def _text_or_summary(path, st):
    """The host's text of PATH for a diff, or a one-line summary of a binary or large file."""
    if st.st_size > MAX_DIFF_BYTES:
        return "(a file of %d bytes, sha256 %s, too large to show)\n" % (st.st_size, sha256_of(path))
    with open(path, "rb") as handle:
        data = handle.read(MAX_DIFF_BYTES + 1)
    if b"\x00" not in data:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return "(binary file of %d bytes, sha256 %s)\n" % (len(data), hashlib.sha256(data).hexdigest())


def _ensure_parent(path, check):
    parent = os.path.dirname(path)
    if os.path.isdir(parent) or check:
        return
    os.makedirs(parent, mode=0o755, exist_ok=True)


# --------------------------------------------------------------------------- one item each

def _write_file(item, source, attrs, ids):
    """The content of ITEM from SOURCE into a temp file beside it, checked and given ATTRS'
    mode and owner through its own descriptor (no second open), to be renamed in."""
    path = item["path"]
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".mo-fleet-", dir=directory)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as handle:
            for block in iter(lambda: source.read(BLOCK), b""):
                digest.update(block)
                handle.write(block)
            if digest.hexdigest() != item["sha256"]:
                raise ApplyError("The content shipped for %s does not match its sha256." % path)
            handle.flush()
            _set_fd_attrs(attrs, handle.fileno(), ids)
        return tmp
    except BaseException:
        os.unlink(tmp)
        raise


WHOLE = "content (whole file, the recorded patch does not apply here)"


def _patched(item, path):
    """(new text, already applied) of the host's PATH with ITEM's recorded conffile patch, or
    (None, False) when the file is not UTF-8 text of at most MAX_PATCH_BYTES or the patch
    applies neither way (textpatch.converge)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None, False
        data = handle.read(MAX_PATCH_BYTES + 1)
    try:
        if len(data) > MAX_PATCH_BYTES:
            return None, False
        return textpatch.converge(data.decode("utf-8"), item["patch"])
    except (UnicodeDecodeError, textpatch.PatchError):
        return None, False


def _file(item, st, content, check, ids, out, patch=True):
    path = item["path"]
    what = []
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise ApplyError("%s is a directory on this host, where the plan puts a file." % path)
    regular = st is not None and stat.S_ISREG(st.st_mode)
    same = regular and st.st_size == item.get("size", st.st_size) and sha256_of(path) == item["sha256"]
    patched = None
    if not same and regular and patch and item.get("patch"):
        patched, same = _patched(item, path)
        if same:
            patched = None
        elif patched is None:
            what.append(WHOLE)
    if not same:
        if not what:
            what.append("created" if st is None else ("content (patch)" if patched is not None else "content"))
        out.update(differs=regular, patched=patched, needs=patched is None)
    elif st is not None:
        what += _attr_changes(item, st, ids)
    if not what or check:
        return what
    if same:
        _set_attrs(item, path, ids)
        return what
    _ensure_parent(path, check)
    attrs = _kept_attrs(item, st if regular else None)
    if patched is not None:
        tmp = _write_file(dict(item, sha256=hashlib.sha256(patched.encode("utf-8")).hexdigest()),
                          io.BytesIO(patched.encode("utf-8")), attrs, ids)
    elif content is None:
        raise ApplyError("No content was shipped for %s." % path)
    else:
        tmp = _write_file(item, content.open(item["sha256"]), attrs, ids)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return what


def _kept_attrs(item, st):
    """ITEM with what it leaves out taken from the file it replaces (ST: its lstat, or None
    for a new file): a plan without a mode or an owner keeps the existing file's, as
    ansible.builtin.copy does, so a 0600 secret never becomes 0644 by a content change."""
    if st is None:
        return dict(item, mode=item.get("mode") or "0644")
    return dict(item, mode=item.get("mode") or "%04o" % stat.S_IMODE(st.st_mode),
                owner=item.get("owner") or str(st.st_uid), group=item.get("group") or str(st.st_gid))


def _directory(item, st, check, ids):
    path = item["path"]
    if st is None:
        if not check:
            _ensure_parent(path, check)
            os.mkdir(path, 0o700)
            _set_attrs(dict(item, mode=item.get("mode") or "0755"), path, ids)
        return ["created"]
    if stat.S_ISLNK(st.st_mode) and os.path.isdir(path):
        return []  # a host symlink to a directory (merged /usr): kept, as tar keeps it
    if not stat.S_ISDIR(st.st_mode):
        raise ApplyError("%s exists on this host and is not a directory." % path)
    what = _attr_changes(item, st, ids)
    if what and not check:
        _set_attrs(item, path, ids)
    return what


def _link(item, st, check, ids):
    path = item["path"]
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise ApplyError("%s is a directory on this host, where the plan puts a symlink." % path)
    if st is not None and stat.S_ISLNK(st.st_mode) and os.readlink(path) == item["target"]:
        what = _attr_changes(item, st, ids)
        if what and not check:
            _set_attrs(item, path, ids, is_link=True)
        return what
    if not check:
        _ensure_parent(path, check)
        tmp = os.path.join(os.path.dirname(path), ".mo-fleet-link-%d" % os.getpid())
        if _lstat(tmp) is not None:
            os.unlink(tmp)
        os.symlink(item["target"], tmp)
        _set_attrs(item, tmp, ids, is_link=True)
        os.rename(tmp, path)
    return ["created" if st is None else "target"]


def _attrs(item, st, check, ids):
    if st is None:
        if check:
            return ["mode and owner (the path does not exist yet)"]
        raise ApplyError("%s does not exist on this host, so its mode and owner cannot be set." % item["path"])
    what = _attr_changes(item, st, ids)
    if what and not check:
        _set_attrs(item, item["path"], ids, is_link=stat.S_ISLNK(st.st_mode))
    return what


def _absent(item, st, check):
    if st is None:
        return []
    if not check:
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(item["path"])
        else:
            os.unlink(item["path"])
    return ["removed"]


# --------------------------------------------------------------------------- the run

def _one(item, content, check, diff, ids, result, patch=True):
    st = _lstat(item["path"])
    state = item["state"]
    if state == "file":
        info = {}
        what = _file(item, st, None if check else content, check, ids, info, patch)
        if diff and info.get("differs"):
            result["before"][item["path"]] = _text_or_summary(item["path"], st)
            if info.get("patched") is not None:
                result["after"][item["path"]] = info["patched"]
        if info.get("needs") and (check or content is None):
            result["need"].append(item["sha256"])
        return what
    if state == "directory":
        return _directory(item, st, check, ids)
    if state == "link":
        return _link(item, st, check, ids)
    if state == "attrs":
        return _attrs(item, st, check, ids)
    return _absent(item, st, check)


def converge(items: list, content: ContentArchive | None = None, check: bool = False,
             diff: bool = False, patch: bool = True) -> dict:
    """Converge ITEMS (a checked plan) on this host; see the module docstring.  PATCH: a file
    item with a recorded conffile ``patch`` is edited by it where it applies."""
    ids = _Ids(check)
    for item in items:  # every owner and group first: a missing one fails before any write
        ids.uid(item["owner"], item["path"])
        ids.gid(item["group"], item["path"])
    result = {"changed": False, "changes": [], "need": [], "before": {}, "after": {}}
    ancestors = _Ancestors()
    for item in items:
        try:
            ancestors.check(item["path"])
            what = _one(item, content, check, diff, ids, result, patch)
        except OSError as exc:
            raise ApplyError("Cannot converge %s: %s." % (item["path"], exc.strerror or exc))
        if what:
            result["changes"].append({"path": item["path"], "state": item["state"], "what": what})
    result["changed"] = bool(result["changes"])
    result["need"] = sorted(set(result["need"]))
    if result["changed"] and not check:
        os.sync()
    return result
