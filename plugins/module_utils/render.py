# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Renderers over the capture template model: tasks, rollback tasks, Dockerfile, role, .deb.

One template model (``template.py``), many renderers.  Every function here is pure (it only
reads the bundle when asked to verify it) and uses the standard library only.

``prepare(source, options=None) -> Prepared``
    Load (dict / JSON text / template file / bundle directory), migrate, validate and check
    the template for rendering: absolute clean paths inside the allowed roots, names that
    are safe in shell and YAML, nothing below a symlink the template itself creates or
    changes, and (when a bundle directory is known) every bundled file present with its
    recorded sha256 and nothing else in the bundle.  Raises RenderError with one
    sentence naming the item; nothing is rendered from a template that fails.
``to_tasks(source, options=None) -> list[dict]``
    Ordered Ansible task dicts that reproduce the capture with idempotent FQCN modules.
    The renderer's own Jinja (conditions, ``{{ item.path }}`` references, registered names)
    is marked ``Expr``; every other string is data.  Write tasks to a file only with
    ``_common/inert_yaml.dump`` (the filter ``mo.fleet.to_task_yaml``): it emits every
    non-Expr string ``!unsafe``, so Ansible never evaluates a template value.  Jinja in a
    value is therefore not refused.  Shell and Dockerfile lines quote every value with
    ``_q`` (which refuses line breaks) and show header fields with ``_one_line``.
``to_handlers(source, options=None) -> list[dict]``
    Handlers (restart a unit) for ``to_tasks(..., handlers="notify")``.
``to_rollback_tasks(source, options=None) -> list[dict]``
    Ordered task dicts that undo the capture on the host it was taken on.
``to_dockerfile(source, options=None) -> dict``
    ``{"Dockerfile": text, "setup.sh": text, "files": [(context path, bundle path)]}``:
    a build context (Dockerfile + files).
``to_deb(source, options=None) -> dict``
    Control data, conffiles, maintainer scripts and the file list of a binary package.
``to_role(source, options=None) -> dict``
    ``{"files": {relpath: data}, "copies": [(role relpath, bundle path)]}`` of a standalone role.
``archive_members(source, options=None) -> list[dict]``
    The directories and files ``to_tasks`` ships as one tar when ``files_archive`` is set
    (empty when fewer than ``archive_min_files``).
``write_files_archive(source, options=None) -> int``
    Write that tar to ``files_archive`` on the controller (atomically); the one function
    here that writes.
``files_archive_differs(source, options=None) -> bool``
    Whether that write would change ``files_archive`` (check mode, and ``changed``).

Options (every renderer accepts the same dict; unknown keys are refused):
    include, exclude        lists of paths or shell globs; a path also matches everything below
    pin_versions            apt ``name=version`` (default true)
    install_auto            also install packages apt marked automatic (default false: apt pulls them)
    skip_services           true, or a list of unit names, to leave units alone
    handlers                ``inline`` (register + conditional restart, default), ``notify`` or ``none``
    allowed_roots           paths renderers may touch (default DEFAULT_ALLOWED_ROOTS)
    account_ids             keep captured uid/gid numbers for users and groups (default false)
    bundle                  bundle directory on the controller (set by prepare from a path source)
    src_base                what copy ``src`` is relative to (default <bundle>/files)
    before_base             what rollback copy ``src`` is relative to (default <bundle>/before)
    verify_bundle           check bundled files' sha256 (default true when a bundle is known)
    var_prefix              prefix of registered variable names (default ``mo_fleet_``)
    base_image              Dockerfile FROM (default DEFAULT_BASE_IMAGE)
    files_archive           controller path of a tar (see write_files_archive): to_tasks then
                            unpacks the created directories and the copied files (those
                            without a service to restart) with one ansible.builtin.unarchive
                            instead of one file/copy item each; leave it unset for --check
                            (unarchive skips tar archives in check mode) and --diff (the
                            archive shows no per-file diff), as the apply_template role does
    archive_min_files       use the archive only from this many directories + files (default
                            100; 0 never)
    apply_module            one mo.fleet.bundle_apply task converges the paths (directories,
                            files, links, modes, owners, removals: check and diff native)
                            instead of the per-item loops and the archive (default false);
                            the configuration of a unit to restart keeps its copy task
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import posixpath
import re
import shlex
import tarfile
from datetime import datetime, timezone

from ansible_collections.mo.fleet.plugins.module_utils import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._common import names
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import atomic_write
from ansible_collections.mo.fleet.plugins.module_utils._common import paths as _paths
from ansible_collections.mo.fleet.plugins.module_utils._common.inert_yaml import Expr

DEFAULT_BASE_IMAGE = "localhost/mo-fleet-base:bookworm"
DEFAULT_ALLOWED_ROOTS = (
    "/etc", "/usr", "/opt", "/srv", "/var", "/home", "/root", "/bin", "/sbin",
    "/lib", "/lib32", "/lib64", "/libx32", "/boot",
)
CONFIG_ROOTS = ("/etc",)
# Files that tools generate from other state: accounts are rendered as user/group tasks and
# ldconfig rebuilds its cache, so copying these from another host would do harm.
ACCOUNT_DATABASES = ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow", "/etc/subuid", "/etc/subgid")
GENERATED_PATHS = ACCOUNT_DATABASES + tuple(p + "-" for p in ACCOUNT_DATABASES) + ("/etc/ld.so.cache",)
UNIT_DIRS = ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system",
             "/usr/local/lib/systemd/system", "/run/systemd/system")

OPTION_DEFAULTS = {
    "include": None,
    "exclude": None,
    "pin_versions": True,
    "install_auto": False,
    "skip_services": False,
    "handlers": "inline",
    "allowed_roots": None,
    "account_ids": False,
    "bundle": None,
    "src_base": None,
    "before_base": None,
    "verify_bundle": None,
    "var_prefix": "mo_fleet_",
    "base_image": DEFAULT_BASE_IMAGE,
    "name": None,
    "maintainer": None,
    "version": None,
    "architecture": None,
    "skip_generated": True,
    "files_archive": None,
    "archive_min_files": 100,
    "relocate": None,
    "apply_module": False,
}
HANDLER_MODES = ("inline", "notify", "none")

VAR_RE = re.compile(r"[a-z_][a-z0-9_]*")


class RenderError(ValueError):
    """The template, the bundle or an option cannot be rendered; the message is one sentence."""


# --------------------------------------------------------------------------- options

def normalize_options(options=None):
    """OPTIONS merged over the defaults and type-checked; RenderError names a bad option."""
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise RenderError("The renderer options must be a mapping, not %s." % type(options).__name__)
    unknown = sorted(set(options) - set(OPTION_DEFAULTS))
    if unknown:
        raise RenderError("Unknown renderer option %r; known options are %s."
                          % (unknown[0], ", ".join(sorted(OPTION_DEFAULTS))))
    out = dict(OPTION_DEFAULTS)
    out.update(dict((k, v) for k, v in options.items() if v is not None))
    for key in ("include", "exclude", "allowed_roots"):
        value = out[key]
        if value is None:
            continue
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
            raise RenderError("The option %s must be a list of absolute paths or globs." % key)
        for item in value:
            if not item.startswith("/"):
                raise RenderError("The option %s holds %r, which is not an absolute path or glob." % (key, item))
        out[key] = list(value)
    if out["allowed_roots"] is None:
        out["allowed_roots"] = list(DEFAULT_ALLOWED_ROOTS)
    else:
        try:
            out["allowed_roots"] = [tpl.normalize_path(r) for r in out["allowed_roots"]]
        except tpl.TemplateError as exc:
            raise RenderError("The option allowed_roots is invalid: %s" % exc)
    for key in ("pin_versions", "install_auto", "account_ids", "skip_generated", "apply_module"):
        if not isinstance(out[key], bool):
            raise RenderError("The option %s must be true or false, not %r." % (key, out[key]))
    if out["verify_bundle"] is not None and not isinstance(out["verify_bundle"], bool):
        raise RenderError("The option verify_bundle must be true or false, not %r." % (out["verify_bundle"],))
    skip = out["skip_services"]
    if isinstance(skip, str):
        skip = [skip]
    if not isinstance(skip, (bool, list, tuple)) or (
            isinstance(skip, (list, tuple)) and not all(isinstance(u, str) for u in skip)):
        raise RenderError("The option skip_services must be true, false or a list of unit names.")
    out["skip_services"] = list(skip) if isinstance(skip, (list, tuple)) else skip
    if out["handlers"] not in HANDLER_MODES:
        raise RenderError("The option handlers must be one of %s, not %r." % (", ".join(HANDLER_MODES), out["handlers"]))
    if not isinstance(out["var_prefix"], str) or not VAR_RE.fullmatch(out["var_prefix"]):
        raise RenderError("The option var_prefix must be a lower-case variable name prefix, not %r." % (out["var_prefix"],))
    if isinstance(out["archive_min_files"], bool) or not isinstance(out["archive_min_files"], int) \
            or out["archive_min_files"] < 0:
        raise RenderError("The option archive_min_files must be a whole number of 0 or more, not %r."
                          % (out["archive_min_files"],))
    if out["files_archive"] is not None and (not isinstance(out["files_archive"], str)
                                             or not out["files_archive"].startswith("/")):
        raise RenderError("The option files_archive must be an absolute path on the controller, not %r."
                          % (out["files_archive"],))
    for key in ("bundle", "src_base", "before_base", "base_image", "name", "maintainer", "version", "relocate"):
        if out[key] is not None and not isinstance(out[key], str):
            raise RenderError("The option %s must be a string, not %s." % (key, type(out[key]).__name__))
    if not out["base_image"] or not out["base_image"].isprintable() or any(c.isspace() for c in out["base_image"]):
        raise RenderError("The option base_image %r is not an image reference." % out["base_image"])
    return out


# --------------------------------------------------------------------------- validation

def _check_text(value, what):
    # No Jinja check: every renderer emits data inert (see _common/inert_yaml.py, _q, _one_line).
    if value is None:
        return
    if not isinstance(value, str):
        raise RenderError("%s must be a string, not %s." % (what, type(value).__name__))
    if "\x00" in value or "\n" in value or "\r" in value:
        raise RenderError("%s %r contains a NUL or line break." % (what, value))


class Prepared(object):
    """A loaded, validated template plus the options it is rendered with."""

    def __init__(self, doc, options):
        self.doc = doc
        self.options = options
        self.ops = doc["operations"]
        self.bundle = options.get("bundle")
        captured = {}
        for op in ("packages_installed", "packages_upgraded"):
            for pkg in self.ops[op]:
                captured[pkg["name"]] = pkg
        self.captured_packages = captured
        config_roots = doc["metadata"].get("config_roots") or list(CONFIG_ROOTS)
        self.config_roots = [r for r in config_roots if isinstance(r, str) and r.startswith("/")]

    # ---- selection
    def selected(self, path):
        opts = self.options
        if opts["include"] and not any(_matches(path, p) for p in opts["include"]):
            return False
        if opts["exclude"] and any(_matches(path, p) for p in opts["exclude"]):
            return False
        return True

    def entries(self, op):
        return [e for e in self.ops[op] if self.selected(e["path"])]

    def generated(self, path, rollback=False):
        """True for files tools derive from other state (accounts, ld.so.cache): never copied.

        A rollback on the capture host still restores them, except the live account
        databases, which the user and group tasks put back."""
        if not self.options["skip_generated"]:
            return False
        if rollback:
            return path in ACCOUNT_DATABASES
        return path in GENERATED_PATHS

    def service_skipped(self, unit):
        skip = self.options["skip_services"]
        if skip is True:
            return True
        return bool(skip) and unit in skip

    def package_made(self, entry):
        """True when a package the capture installed or upgraded makes ENTRY by itself (not
        when the capture recorded a mode or owner the package does not ship)."""
        return bool(entry.get("package")) and entry["package"] in self.captured_packages \
            and not entry.get("package_differs")

    def src(self, path, area=tpl.BUNDLE_FILES):
        rel = tpl.normalize_path(path).lstrip("/")
        base = self.options["src_base"] if area == tpl.BUNDLE_FILES else self.options["before_base"]
        if base is None:
            if self.bundle:
                return posixpath.join(self.bundle, area, rel)
            return posixpath.join(area, rel)
        return posixpath.join(base, rel) if base else rel


def _matches(path, pattern):
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern.rstrip("/") + "/*")
    root = "/" + "/".join(p for p in pattern.split("/") if p)
    return tpl.is_within(path, root)


def fast_errors(doc):
    """The first problem of DOC (the one validator, ``template.validate``), as a list."""
    return tpl.validate(doc, limit=1)


def _load(source):
    """(doc, bundle dir or None) from a dict, JSON text, a template file or a bundle directory."""
    bundle = None
    if isinstance(source, Prepared):
        return source.doc, source.bundle
    if isinstance(source, (str, os.PathLike)) and not (isinstance(source, str) and source.lstrip().startswith("{")):
        path = os.fspath(source)
        if not path:
            raise RenderError("The template source is an empty path.")
        if os.path.isdir(path):
            bundle = os.path.abspath(path)
            path = os.path.join(path, tpl.BUNDLE_TEMPLATE)
        elif os.path.isfile(path):
            if os.path.basename(path) == tpl.BUNDLE_TEMPLATE:
                bundle = os.path.dirname(os.path.abspath(path))
        else:
            raise RenderError("The template path %s does not exist." % path)
        source = tpl.read_capped(path, RenderError)
    elif not isinstance(source, (dict, str, bytes)):
        raise RenderError("A template must be a mapping, JSON text or a bundle path, not %s." % type(source).__name__)
    try:
        if isinstance(source, (str, bytes)):
            try:
                source = json.loads(source.decode("utf-8") if isinstance(source, bytes) else source)
            except UnicodeDecodeError as exc:
                raise RenderError("The template is not UTF-8 text (byte %d)." % exc.start)
            except RecursionError:
                raise RenderError("The template nests its values too deeply to be read.")
            except ValueError as exc:
                raise RenderError("The template is not valid JSON: %s." % str(exc).replace("\n", " "))
        if not isinstance(source, dict):
            raise RenderError("The template must be a JSON object, not %s." % type(source).__name__)
        if tpl.detect_version(source) == tpl.TEMPLATE_VERSION:
            doc = source
        else:
            doc = tpl.migrate(source)
    except tpl.TemplateError as exc:
        raise RenderError(_one_sentence(str(exc)))
    except RecursionError:
        raise RenderError("The template nests its values too deeply to be read.")
    except (TypeError, KeyError, AttributeError, ValueError) as exc:
        if isinstance(exc, RenderError):
            raise
        raise RenderError("The template cannot be read: %s." % (
            str(exc).replace("\n", " ").rstrip(".")[:200] or type(exc).__name__))
    try:
        errors = fast_errors(doc)
    except RecursionError:
        raise RenderError("The template nests its values too deeply to be read.")
    if errors:
        raise RenderError("Invalid template: %s" % errors[0])
    return doc, bundle


def _one_sentence(text):
    if text.startswith("Invalid template: "):
        body = text[len("Invalid template: "):]
        first = re.split(r"(?<=\.) (?=[A-Za-z_/(])", body, maxsplit=1)[0]
        return "Invalid template: " + first
    return text


def prepare(source, options=None):
    """Load, validate and check SOURCE for rendering; returns a Prepared (see module docstring)."""
    opts = normalize_options(options)
    doc, bundle = _load(source)
    if opts["bundle"] is None and bundle is not None:
        opts["bundle"] = bundle
    if opts["bundle"] is not None:
        opts["bundle"] = opts["bundle"].rstrip("/") or "/"
    _check_doc(doc, opts)
    prep = Prepared(doc, opts)
    verify = opts["verify_bundle"]
    if verify is None:
        verify = opts["bundle"] is not None
    if verify:
        if not opts["bundle"]:
            raise RenderError("verify_bundle is true but no bundle directory is known; pass the bundle path or the bundle option.")
        _verify_content(doc, opts["bundle"])
    return prep


_LINK_OPS = ("files_created", "files_modified", "symlinks_created", "symlinks_modified")


def _check_doc(doc, opts):
    """What the schema cannot say: clean paths inside the allowed roots, nothing below a
    symlink the template makes (the one path guard), no Jinja2 in the text rendered, a
    target for every symlink, a sha256 for every bundled file."""
    ops = doc["operations"]
    roots = opts["allowed_roots"]
    head = doc["MO_template"]
    _check_text(head.get("name"), "MO_template/name")
    guarded = []
    for op in tpl.PATH_OPERATIONS:
        for index, entry in enumerate(ops[op]):
            field = "operations/%s/%d/path" % (op, index)
            path = entry["path"]
            _check_text(path, field)
            if op in ("excluded", "redacted"):
                continue
            try:
                norm = _paths.check_roots(path, roots, field, below=op != "permissions_changed")
            except _paths.PathError as exc:
                raise RenderError(str(exc))
            if norm != path:
                raise RenderError("%s %r is not normalised (expected %s)." % (field, path, norm))
            kind = "path"
            if op in _LINK_OPS and (entry.get("type") == "symlink" or entry.get("target")):
                kind = "link"
            elif op == "permissions_changed" and (entry.get("after") or {}).get("type") == "symlink":
                kind = "link"
            guarded.append((field, path, kind))
            if op == "permissions_changed":
                continue
            _check_text(entry.get("target"), "operations/%s/%d/target" % (op, index))
            if entry.get("type") == "symlink" and op != "symlinks_deleted" and not entry.get("target"):
                if not (entry.get("package") and op == "symlinks_created"):
                    raise RenderError("operations/%s/%d/target is missing, and the symlink %s needs one."
                                      % (op, index, norm))
            _check_text((entry.get("before") or {}).get("target"), "operations/%s/%d/before/target" % (op, index))
            if entry.get("bundled") and not entry.get("hash"):
                raise RenderError("operations/%s/%d/hash is missing, and the file %s is marked bundled."
                                  % (op, index, norm))
    try:
        _paths.symlink_ancestors(guarded)
    except _paths.PathError as exc:
        raise RenderError(str(exc))
    for op in tpl.ACCOUNT_OPERATIONS:
        for index, acct in enumerate(ops[op]):
            for side, state in (("", acct), ("before/", acct.get("before")), ("after/", acct.get("after"))):
                for key in ("gecos", "home", "shell"):
                    if state:
                        _check_text(state.get(key), "operations/%s/%d/%s%s" % (op, index, side, key))


def _verify_content(doc, bundle):
    """The one bundle check (template.check_bundle_content): every file the template says the
    bundle holds is there with its sha256, and nothing else (an unlisted file is never used)."""
    try:
        tpl.check_bundle_content(doc, bundle)
    except tpl.TemplateError as exc:
        raise RenderError(str(exc))


# --------------------------------------------------------------------------- helpers

def _id_number(value, what):
    """VALUE when it is a uid/gid Linux can give (0 .. MAX_ID), else RenderError."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise RenderError("%s must be a whole number from 0 to %d, not %s." % (what, MAX_ID, _shown(value)))
    return value


def _shown(value, limit=80):
    """VALUE's repr for a message, cut to LIMIT characters (untrusted values can be huge)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _owner_value(entry, key):
    name = entry.get(key)
    if name:
        return name
    field = "uid" if key == "owner" else "gid"
    num = entry.get(field)
    return str(_id_number(num, "The %s of %s" % (field, _shown(entry.get("path"))))) if num is not None else None


def _attrs(entry, mode=True):
    out = {}
    if mode and entry.get("permissions"):
        out["mode"] = entry["permissions"]
    owner = _owner_value(entry, "owner")
    group = _owner_value(entry, "group")
    if owner is not None:
        out["owner"] = owner
    if group is not None:
        out["group"] = group
    return out


def _depth(path):
    return path.count("/")


def _unit_stem(unit):
    return unit.rsplit(".", 1)[0].split("@", 1)[0]


def _is_unit_file(path):
    return any(tpl.is_within(path, d) for d in UNIT_DIRS) and names.is_valid("unit", posixpath.basename(path))


def _pkg_spec(pkg, pin, key="version"):
    return "%s=%s" % (pkg["name"], pkg[key]) if pin else pkg["name"]


def _ordered(task):
    """NAME, the module, then the other keys alphabetically (ansible-lint's key-order)."""
    module = [k for k in task if k.startswith(("ansible.builtin.", "mo.fleet."))]
    keys = ["name"] + module + sorted(k for k in task if k != "name" and k not in module)
    return dict((k, task[k]) for k in keys if k in task)


def _ref(key, omit=True):
    """The renderer's own reference to a loop item's field (an Expr: template text)."""
    return Expr("{{ item.%s | default(omit) }}" % key) if omit else Expr("{{ item.%s }}" % key)


def _loop_task(name, module, args, items, label="path", extra=None):
    task = {"name": name, module: args, "loop": items,
            "loop_control": {"label": _ref(label, omit=False)}}
    if extra:
        task.update(extra)
    return task


def _file_args(state, with_src=False, link=False, mode=True):
    args = {"path": _ref("path", omit=False), "state": state}
    if link:
        args["src"] = _ref("src", omit=False)
        args["force"] = True
        args["follow"] = False
    if mode:
        args["mode"] = _ref("mode")
    args["owner"] = _ref("owner")
    args["group"] = _ref("group")
    return args


def _copy_args():
    return {"src": _ref("src", omit=False), "dest": _ref("path", omit=False), "mode": _ref("mode"),
            "owner": _ref("owner"), "group": _ref("group")}


class _Units(object):
    """Which units to enable/start/stop, and which unit a config path belongs to."""

    def __init__(self, prep):
        self.prep = prep
        ops = prep.ops
        skip = prep.service_skipped
        self.enable = sorted(set(u["unit"] for u in ops["units_enabled"]
                                 if "@." not in u["unit"] and not skip(u["unit"])) |
                             set(u["unit"] for u in ops["units_added"]
                                 if u.get("state") in ("enabled",) and "@." not in u["unit"] and not skip(u["unit"])))
        self.start = sorted(u["unit"] for u in ops["units_started"]
                            if "@." not in u["unit"] and not skip(u["unit"]))
        self.disable = sorted(u["unit"] for u in ops["units_disabled"] if not skip(u["unit"]) and "@." not in u["unit"])
        self.stop = sorted(u["unit"] for u in ops["units_stopped"] if not skip(u["unit"]) and "@." not in u["unit"])
        services = set(u for u in self.enable + self.start if u.endswith(".service"))
        self.services = sorted(services)
        by_path = {}
        for op in tpl.FILE_OPERATIONS:
            for entry in ops[op]:
                by_path[entry["path"]] = entry
        self.unit_package = {}
        for unit in self.services:
            pkg = None
            for u in ops["units_added"]:
                if u["unit"] == unit and u.get("path"):
                    entry = by_path.get(u["path"]) or by_path.get(_usr_alias(u["path"]))
                    if entry:
                        pkg = entry.get("package")
            if pkg is None:
                for d in UNIT_DIRS:
                    entry = by_path.get(d + "/" + unit)
                    if entry and entry.get("package"):
                        pkg = entry["package"]
            self.unit_package[unit] = pkg

    def for_path(self, entry):
        """The services to restart when ENTRY (a copied config or unit file) changes."""
        if not self.services:
            return []
        path = entry["path"]
        if _is_unit_file(path):
            name = posixpath.basename(path)
            return [name] if name in self.services else []
        if not any(tpl.is_within(path, r) for r in self.prep.config_roots):
            return []
        pkg = entry.get("package")
        if pkg:
            hits = [u for u, p in sorted(self.unit_package.items()) if p == pkg]
            if hits:
                return hits
        parts = set(path.split("/"))
        base = posixpath.basename(path)
        hits = []
        for unit in self.services:
            stem = _unit_stem(unit)
            if stem in parts or base.split(".")[0] == stem or (pkg and (pkg == stem or pkg.startswith(stem + "-"))):
                hits.append(unit)
        return hits


def _usr_alias(path):
    if path.startswith("/usr/lib/"):
        return path[4:]
    if path.startswith("/lib/"):
        return "/usr" + path
    return path


def _handler_name(unit):
    return "Restart %s" % unit


def _reg(prep, index):
    return Expr("%sconfig_%d" % (prep.options["var_prefix"], index))


# --------------------------------------------------------------------------- to_tasks

def _package_tasks(prep):
    ops, pin = prep.ops, prep.options["pin_versions"]
    tasks = []
    removed = [p["name"] for p in ops["packages_removed"]]
    if removed:
        tasks.append({"name": "Remove the packages the capture removed",
                      "ansible.builtin.apt": {"name": removed, "state": "absent"}})
    wanted = [p for p in ops["packages_installed"]
              if prep.options["install_auto"] or p.get("manual") is not False]
    if wanted:
        args = {"name": [_pkg_spec(p, pin) for p in wanted], "state": "present"}
        tasks.append({"name": "Install the packages the capture installed",
                      "ansible.builtin.apt": args})
    upgraded = ops["packages_upgraded"]
    if upgraded:
        if pin:
            args = {"name": [_pkg_spec(p, True) for p in upgraded], "state": "present"}
        else:
            args = {"name": [p["name"] for p in upgraded], "state": "latest", "only_upgrade": True}
        tasks.append({"name": "Upgrade the packages the capture upgraded", "ansible.builtin.apt": args})
    return tasks


def _account_items(prep, accounts, kind):
    ids = prep.options["account_ids"]
    gid_name = {}
    for op in ("groups_created", "groups_changed"):
        for g in prep.ops[op]:
            data = g.get("after") if op == "groups_changed" else g
            if isinstance(data, dict):
                _check_account_data(dict(data, name=g["name"]))
            if isinstance(data, dict) and data.get("gid") is not None:
                gid_name[data["gid"]] = g["name"]
    group_names = set(g["name"] for op in ("groups_created", "groups_changed") for g in prep.ops[op])
    items = []
    for acct in accounts:
        data = dict(acct)
        if isinstance(acct.get("after"), dict):
            data.update(acct["after"])
            data["name"] = acct["name"]
        _check_account_data(data)
        item = {"name": acct["name"]}
        if kind == "group":
            if data.get("system") is not None:
                item["system"] = bool(data["system"])
            if ids and data.get("gid") is not None:
                item["gid"] = data["gid"]
        else:
            if data.get("system") is not None:
                item["system"] = bool(data["system"])
            if ids and data.get("uid") is not None:
                item["uid"] = data["uid"]
            if data.get("gid") is not None:
                item["group"] = gid_name.get(data["gid"], str(data["gid"]))
            elif acct["name"] in group_names:
                item["group"] = acct["name"]
            for key, target in (("home", "home"), ("shell", "shell"), ("gecos", "comment")):
                if data.get(key) is not None:
                    item[target] = data[key]
        items.append(item)
    return items


_ACCOUNT_TEXT = ("gecos", "home", "shell")


def _check_account_data(data):
    """The fields of an account (its own, or merged from its free-form ``after``/``before``)
    a renderer uses, checked for their type and range: one sentence names the bad one."""
    name = _shown(data.get("name"))
    for key in ("uid", "gid"):
        if data.get(key) is not None:
            _id_number(data[key], "The %s of the account %s" % (key, name))
    if data.get("system") is not None and not isinstance(data["system"], bool):
        raise RenderError("The system flag of the account %s must be true or false, not %s."
                          % (name, _shown(data["system"])))
    for key in _ACCOUNT_TEXT:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise RenderError("The %s of the account %s must be a string, not %s." % (key, name, type(value).__name__))
        if len(value) > 4096 or ":" in value or any(ch in LINE_BREAKS or ord(ch) < 0x20 for ch in value):
            raise RenderError("The %s of the account %s holds a colon, a control character or more than 4096 "
                              "characters, which an account database line cannot carry." % (key, name))
        if key != "gecos" and value and not value.startswith("/"):
            raise RenderError("The %s of the account %s is not an absolute path." % (key, name))


def _account_tasks(prep):
    ops = prep.ops
    tasks = []
    groups = _account_items(prep, ops["groups_created"] + ops["groups_changed"], "group")
    if groups:
        tasks.append(_loop_task("Create the groups the capture created", "ansible.builtin.group",
                                {"name": _ref("name", omit=False), "state": "present",
                                 "system": _ref("system"),
                                 "gid": _ref("gid")}, groups, label="name"))
    users = _account_items(prep, ops["users_created"] + ops["users_changed"], "user")
    if users:
        tasks.append(_loop_task("Create the users the capture created", "ansible.builtin.user",
                                {"name": _ref("name", omit=False), "state": "present",
                                 "system": _ref("system"),
                                 "uid": _ref("uid"),
                                 "group": _ref("group"),
                                 "home": _ref("home"),
                                 "shell": _ref("shell"),
                                 "comment": _ref("comment"),
                                 "create_home": False}, users, label="name"))
    gone_users = [{"name": u["name"]} for u in ops["users_deleted"]]
    if gone_users:
        tasks.append(_loop_task("Remove the users the capture removed", "ansible.builtin.user",
                                {"name": _ref("name", omit=False), "state": "absent"}, gone_users, label="name"))
    gone_groups = [{"name": g["name"]} for g in ops["groups_deleted"]]
    if gone_groups:
        tasks.append(_loop_task("Remove the groups the capture removed", "ansible.builtin.group",
                                {"name": _ref("name", omit=False), "state": "absent"}, gone_groups, label="name"))
    return tasks


def _item(path, entry, **extra):
    item = {"path": path}
    item.update(_attrs(entry, mode=extra.pop("mode", True)))
    item.update(extra)
    return item


def _handlers_mode(prep):
    return prep.options["handlers"] if prep.options["skip_services"] is not True else "none"


def _file_plan(prep, units):
    """(dirs, plain, by_unit, unit_files): the directory items, the copy items without a
    service to restart, the copy items per tuple of units to restart, the unit files copied."""
    handlers_mode = _handlers_mode(prep)
    dirs = [_item(e["path"], e) for e in prep.entries("directories_created") if not prep.package_made(e)]
    plain, by_unit, unit_files = [], {}, []
    for op in ("files_created", "files_modified"):
        for entry in prep.entries(op):
            if entry.get("type") != "file" or not entry.get("bundled") or prep.generated(entry["path"]):
                continue
            item = _item(entry["path"], entry, src=prep.src(entry["path"]))
            if _is_unit_file(entry["path"]):
                unit_files.append(entry["path"])
            restart = tuple(units.for_path(entry)) if handlers_mode != "none" else ()
            if restart:
                by_unit.setdefault(restart, []).append(item)
            else:
                plain.append(item)
    plain.sort(key=lambda i: i["path"])
    return dirs, plain, by_unit, unit_files


def _use_archive(prep, dirs, plain):
    minimum = prep.options["archive_min_files"]
    return bool(prep.options["files_archive"]) and minimum > 0 and len(dirs) + len(plain) >= minimum


def apply_paths(prep, units=None):
    """The path items to_tasks acts on, in its order: dirs, plain (copies without a unit to
    restart), by_unit (units tuple -> copies), unit_files, links, perms, gone (files and
    links to remove) and gone_dirs (deepest first)."""
    units = units or _Units(prep)
    dirs, plain, by_unit, unit_files = _file_plan(prep, units)
    for items in by_unit.values():
        items.sort(key=lambda i: i["path"])
    links = []
    for op in ("symlinks_created", "symlinks_modified"):
        for entry in prep.entries(op):
            if prep.package_made(entry) or not entry.get("target"):
                continue
            links.append(_item(entry["path"], entry, mode=False, src=entry["target"]))
    links.sort(key=lambda i: i["path"])
    perms = []
    for entry in prep.entries("permissions_changed"):
        item = _item(entry["path"], entry.get("after") or {})
        if len(item) > 1:
            perms.append(item)
    gone = [{"path": e["path"]} for op in ("files_deleted", "symlinks_deleted") for e in prep.entries(op)]
    gone.sort(key=lambda i: i["path"])
    gone_dirs = sorted(({"path": e["path"]} for e in prep.entries("directories_deleted")),
                       key=lambda i: (-_depth(i["path"]), i["path"]))
    return {"dirs": dirs, "plain": plain, "by_unit": by_unit, "unit_files": unit_files, "links": links,
            "perms": perms, "gone": gone, "gone_dirs": gone_dirs}


def _apply_path_tasks(paths):
    tasks = []
    if paths["links"]:
        tasks.append(_loop_task("Create the symlinks the capture created", "ansible.builtin.file",
                                _file_args("link", link=True, mode=False), paths["links"]))
    if paths["perms"]:
        tasks.append(_loop_task("Apply the mode and owner changes the capture made", "ansible.builtin.file",
                                {"path": _ref("path", omit=False), "mode": _ref("mode"),
                                 "owner": _ref("owner"),
                                 "group": _ref("group")}, paths["perms"]))
    if paths["gone"]:
        tasks.append(_loop_task("Remove the files and symlinks the capture deleted", "ansible.builtin.file",
                                {"path": _ref("path", omit=False), "state": "absent"}, paths["gone"]))
    if paths["gone_dirs"]:
        tasks.append(_loop_task("Remove the directories the capture deleted", "ansible.builtin.file",
                                {"path": _ref("path", omit=False), "state": "absent"}, paths["gone_dirs"]))
    return tasks


APPLY_MODULE = "mo.fleet.bundle_apply"
MODULE_OPTIONS = ("include", "exclude", "allowed_roots", "skip_services")


def module_options(prep):
    """The renderer options mo.fleet.bundle_apply needs to render the same path plan."""
    opts = prep.options
    out = dict((key, opts[key]) for key in MODULE_OPTIONS if opts[key] not in (None, False, []))
    if opts["allowed_roots"] == list(DEFAULT_ALLOWED_ROOTS):
        out.pop("allowed_roots", None)
    if not opts["skip_generated"]:
        out["skip_generated"] = False
    return out


def _module_task(prep, rollback=False):
    """One mo.fleet.bundle_apply task converging the paths of the plan (apply_module)."""
    if not prep.bundle:
        raise RenderError("apply_module needs the bundle directory; pass the bundle path or the bundle option.")
    args = {"bundle": prep.bundle, "options": module_options(prep)}
    if rollback:
        args["rollback"] = True
    name = ("Undo the capture's paths: remove what it created, restore what it changed (one run)" if rollback
            else "Converge the directories, files, links, modes and owners of the capture (one run)")
    return {"name": name, APPLY_MODULE: args, "register": Expr(prep.options["var_prefix"] + "paths")}


def to_tasks(source, options=None):
    """Ordered task dicts reproducing the capture (see module docstring)."""
    prep = source if isinstance(source, Prepared) and options is None else prepare(source, options)
    ops = prep.ops
    tasks = _package_tasks(prep) + _account_tasks(prep)
    units = _Units(prep)
    handlers_mode = _handlers_mode(prep)
    paths = apply_paths(prep, units)
    dirs, plain, by_unit, unit_files = paths["dirs"], paths["plain"], paths["by_unit"], paths["unit_files"]
    restarts = []
    if prep.options["apply_module"]:
        # one mo.fleet.bundle_apply run converges every path but the configuration of a unit
        # to restart, which keeps its copy task below (registered: the restart follows it)
        tasks.append(_module_task(prep))
        dirs, plain = [], []
        paths = dict(paths, links=[], perms=[], gone=[], gone_dirs=[])
    # Many items: one archive (unarchive compares every member with `tar --diff`: content,
    # mode, owner, mtime) instead of the per-item loops, which cost ansible time even when
    # skipped. Render without files_archive for --check (unarchive skips tar archives in
    # check mode) and --diff (the archive shows no per-file diff); the role does.
    if _use_archive(prep, dirs, plain):
        tasks.append({"name": "Unpack the directories and files the capture created or changed (one archive)",
                      "ansible.builtin.unarchive": {"src": prep.options["files_archive"], "dest": "/"}})
        dirs, plain = [], []
    if dirs:
        tasks.append(_loop_task("Create the directories the capture created", "ansible.builtin.file",
                                _file_args("directory"), dirs))
    if plain:
        tasks.append(_loop_task("Copy the files the capture created or changed", "ansible.builtin.copy",
                                _copy_args(), plain))
    for index, (restart, items) in enumerate(sorted(by_unit.items())):
        task = _loop_task("Copy the configuration of %s" % ", ".join(restart), "ansible.builtin.copy",
                          _copy_args(), items)
        if handlers_mode == "notify":
            task["notify"] = [_handler_name(u) for u in restart]
        else:
            task["register"] = _reg(prep, index)
            restarts.append((restart, task["register"]))
        tasks.append(task)
    tasks += _apply_path_tasks(paths)

    restart_units = sorted(set(u for restart, _reg in restarts for u in restart))
    if prep.options["skip_services"] is not True:
        tasks += _unit_tasks(prep, units, unit_files, restart_units)
    if handlers_mode == "inline":
        present = _present_list(prep)
        unit_var = prep.options["var_prefix"] + "restart_unit"
        for restart, reg in restarts:
            for unit in restart:
                # the unit name is data: it reaches the condition as a variable, never as code
                tasks.append({"name": "Restart %s because its configuration changed" % unit,
                              "ansible.builtin.systemd_service": {"name": unit, "state": "restarted"},
                              "vars": {unit_var: unit},
                              "when": [Expr("%s is changed" % reg),
                                       Expr("not ansible_check_mode or %s in %s" % (unit_var, present))]})
    return [_ordered(t) for t in tasks]


def _archive_mtime(prep):
    """One mtime for every member, the same on every render (unarchive compares mtimes)."""
    stamp = str(prep.doc.get("MO_template", {}).get("timestamp") or "")
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        if when.tzinfo is None:  # the same on every controller, whatever its time zone
            when = when.replace(tzinfo=timezone.utc)
        return int(when.timestamp())
    except ValueError:
        return 946684800  # 2000-01-01, for templates without a parsable timestamp


def archive_members(source, options=None):
    """The directories and files to_tasks unpacks from ``files_archive``: dicts with path,
    type (directory/file), mode, owner, group, uid, gid and, for files, the bundle path."""
    prep = source if isinstance(source, Prepared) and options is None else prepare(source, options)
    dirs, plain, _by_unit, _unit_files = _file_plan(prep, _Units(prep))
    if not _use_archive(prep, dirs, plain):
        return []
    if not prep.bundle:
        raise RenderError("files_archive needs the bundle directory; pass the bundle path or the bundle option.")
    by_path = dict((e["path"], e) for op in ("directories_created", "files_created", "files_modified")
                   for e in prep.ops[op])
    out = []
    for kind, items in (("directory", dirs), ("file", plain)):
        for item in items:
            entry = by_path[item["path"]]
            default_mode = "0755" if kind == "directory" else "0644"
            member = {"path": item["path"], "type": kind, "mode": item.get("mode") or default_mode,
                      "owner": entry.get("owner"), "group": entry.get("group"),
                      "uid": _id_number(entry.get("uid") or 0, "The uid of %s" % _shown(item["path"])),
                      "gid": _id_number(entry.get("gid") or 0, "The gid of %s" % _shown(item["path"]))}
            if kind == "file":
                member["src"] = posixpath.join(prep.bundle, tpl.BUNDLE_FILES, item["path"].lstrip("/"))
                member["hash"] = entry.get("hash")
            out.append(member)
    out.sort(key=lambda m: (m["path"], m["type"]))
    return out


def _write_tar(handle, prep, members):
    mtime = _archive_mtime(prep)
    with tarfile.open(fileobj=handle, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for m in members:
            info = tarfile.TarInfo(m["path"].lstrip("/"))
            info.mode = int(m["mode"], 8)
            info.mtime = mtime
            info.uid, info.gid = int(m["uid"]), int(m["gid"])
            info.uname = m["owner"] or ""
            info.gname = m["group"] or ""
            if m["type"] == "directory":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
                continue
            with open(m["src"], "rb") as data:
                info.size = os.fstat(data.fileno()).st_size
                tar.addfile(info, data)


class _Digest(object):
    """A write-only file object that keeps only the sha256 of what it is given."""

    def __init__(self):
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def tell(self):
        return self.size


def _archive_prep(source, options):
    prep = source if isinstance(source, Prepared) and options is None else prepare(source, options)
    return prep, archive_members(prep)


def write_files_archive(source, options=None):
    """Write the tar of archive_members() to the option files_archive (temp file + rename);
    return the number of members (0: no archive is used, nothing written)."""
    prep, members = _archive_prep(source, options)
    if not members:
        return 0
    dest = prep.options["files_archive"]
    try:
        atomic_write(dest, lambda handle: _write_tar(handle, prep, members), mode=0o600)
    except OSError as exc:
        raise RenderError("Cannot write the files archive %s: %s." % (dest, exc.strerror or exc))
    return len(members)


def files_archive_differs(source, options=None):
    """True when an archive is used and the file at files_archive is missing or holds other
    bytes than write_files_archive would write (the bytes are stable: one fixed mtime)."""
    prep, members = _archive_prep(source, options)
    if not members:
        return False
    dest = prep.options["files_archive"]
    if not os.path.isfile(dest):
        return True
    digest = _Digest()
    try:
        _write_tar(digest, prep, members)
    except OSError as exc:
        raise RenderError("Cannot read a file for the files archive: %s." % (exc.strerror or exc))
    return tpl.sha256_file(dest) != digest.sha256.hexdigest()


def _probe_task(prep, units):
    return {"name": "Find which of the template's units exist (check mode)",
            "ansible.builtin.command": {"argv": ["systemctl", "list-unit-files", "--no-legend", "--no-pager",
                                                 "--full"] + list(units)},
            "register": Expr(prep.options["var_prefix"] + "units_present"),
            "changed_when": False, "failed_when": False, "check_mode": False,
            "when": Expr("ansible_check_mode")}


def _present_list(prep):
    reg = prep.options["var_prefix"] + "units_present"
    return "(%s.stdout_lines | default([]) | map('split') | map('first') | list)" % reg


def _present_guard(prep):
    return Expr("not ansible_check_mode or item.name in %s" % _present_list(prep))


def _unit_tasks(prep, units, unit_files, restart_units=()):
    tasks = []
    if unit_files:
        tasks.append({"name": "Reload systemd so it sees the copied unit files",
                      "ansible.builtin.systemd_service": {"daemon_reload": True}})
    wanted = {}
    for unit in units.enable:
        wanted.setdefault(unit, {"name": unit})["enabled"] = True
    for unit in units.start:
        wanted.setdefault(unit, {"name": unit})["state"] = "started"
    for unit in units.disable:
        wanted.setdefault(unit, {"name": unit})["enabled"] = False
    for unit in units.stop:
        wanted.setdefault(unit, {"name": unit})["state"] = "stopped"
    if not wanted and not restart_units:
        return tasks
    tasks.append(_probe_task(prep, sorted(set(wanted) | set(restart_units))))
    if not wanted:
        return tasks
    items = [wanted[u] for u in sorted(wanted)]
    tasks.append(_loop_task("Set the units to the state the capture left them in", "ansible.builtin.systemd_service",
                            {"name": _ref("name", omit=False), "enabled": _ref("enabled"),
                             "state": _ref("state")}, items, label="name",
                            extra={"when": _present_guard(prep)}))
    return tasks


def to_handlers(source, options=None):
    """Handlers for the units to_tasks(..., handlers='notify') notifies."""
    prep = source if isinstance(source, Prepared) and options is None else prepare(source, options)
    if prep.options["skip_services"] is True:
        return []
    units = _Units(prep)
    notified = set()
    for task in to_tasks(prep):
        for name in task.get("notify", []):
            notified.add(name)
    return [{"name": _handler_name(u), "ansible.builtin.systemd_service": {"name": u, "state": "restarted"}}
            for u in units.services if _handler_name(u) in notified]


# --------------------------------------------------------------------------- rollback

def _inside(path, directories):
    """True when PATH lies below one of DIRECTORIES (a set of absolute paths)."""
    parent = posixpath.dirname(path)
    while parent not in ("/", ""):
        if parent in directories:
            return True
        parent = posixpath.dirname(parent)
    return False


def _top_most(paths):
    """The paths of PATHS that are not below another of them."""
    paths = set(paths)
    return {path for path in paths if not _inside(path, paths)}


def rollback_paths(prep):
    """The path items a rollback acts on (steps 4 and 6 of to_rollback_tasks): created
    (files and links to remove), top_dirs (created directories to remove with their content),
    back_dirs, restore (files from before/), links and perms to put back, and digests (path ->
    sha256 of the before/ content of each restored file)."""
    purged = set(p["name"] for p in prep.ops["packages_installed"])
    top_dirs = _top_most(e["path"] for e in prep.entries("directories_created") if e.get("package") not in purged)
    created = []
    for op in ("files_created", "symlinks_created"):
        for e in prep.entries(op):
            if e.get("package") in purged and not e.get("conffile") or _inside(e["path"], top_dirs):
                continue
            created.append({"path": e["path"]})
    created.sort(key=lambda i: i["path"])
    back_dirs = sorted((_item(e["path"], e) for e in prep.entries("directories_deleted")),
                       key=lambda i: (_depth(i["path"]), i["path"]))
    restore, digests = [], {}
    for op in ("files_modified", "files_deleted"):
        for e in prep.entries(op):
            if e.get("before_bundled") and not prep.generated(e["path"], rollback=True):
                state = (e.get("before") or e) if op == "files_modified" else e
                restore.append(_item(e["path"], state, src=prep.src(e["path"], tpl.BUNDLE_BEFORE)))
                digests[e["path"]] = state.get("hash") if op == "files_modified" else e.get("hash")
    restore.sort(key=lambda i: i["path"])
    links = []
    for e in prep.entries("symlinks_deleted"):
        if e.get("target"):
            links.append(_item(e["path"], e, mode=False, src=e["target"]))
    for e in prep.entries("symlinks_modified"):
        before = e.get("before") or {}
        if before.get("target"):
            links.append(_item(e["path"], before, mode=False, src=before["target"]))
    links.sort(key=lambda i: i["path"])
    perms = []
    for e in prep.entries("permissions_changed"):
        item = _item(e["path"], e.get("before") or {})
        if len(item) > 1:
            perms.append(item)
    return {"created": created, "top_dirs": [{"path": p} for p in sorted(top_dirs)], "back_dirs": back_dirs,
            "restore": restore, "links": links, "perms": perms, "digests": digests}


def _rollback_restore_tasks(paths):
    tasks = []
    if paths["back_dirs"]:
        tasks.append(_loop_task("Recreate the directories the capture deleted", "ansible.builtin.file",
                                _file_args("directory"), paths["back_dirs"]))
    if paths["restore"]:
        tasks.append(_loop_task("Restore the files the capture changed or deleted", "ansible.builtin.copy",
                                _copy_args(), paths["restore"]))
    if paths["links"]:
        tasks.append(_loop_task("Restore the symlinks the capture removed or changed", "ansible.builtin.file",
                                _file_args("link", link=True, mode=False), paths["links"]))
    if paths["perms"]:
        tasks.append(_loop_task("Revert the mode and owner changes the capture made", "ansible.builtin.file",
                                {"path": _ref("path", omit=False), "mode": _ref("mode"),
                                 "owner": _ref("owner"),
                                 "group": _ref("group")}, paths["perms"]))
    return tasks


def to_rollback_tasks(source, options=None):
    """Ordered task dicts undoing the capture on the host it was taken on."""
    prep = source if isinstance(source, Prepared) and options is None else prepare(source, options)
    ops, opts = prep.ops, prep.options
    pin = opts["pin_versions"]
    tasks = []
    skip_units = opts["skip_services"] is True

    # 1. units back: stop what it started, disable what it enabled (only units that still exist)
    undo = {}
    if not skip_units:
        for u in ops["units_started"]:
            if not prep.service_skipped(u["unit"]) and "@." not in u["unit"]:
                undo.setdefault(u["unit"], {"name": u["unit"]})["state"] = "stopped"
        for u in ops["units_enabled"]:
            if not prep.service_skipped(u["unit"]) and "@." not in u["unit"]:
                undo.setdefault(u["unit"], {"name": u["unit"]})["enabled"] = False
    if undo:
        reg = Expr(opts["var_prefix"] + "rollback_units")
        tasks.append({"name": "Find which of the units the capture started or enabled still exist",
                      "ansible.builtin.command": {"argv": ["systemctl", "list-unit-files", "--no-legend",
                                                           "--no-pager", "--full"] + sorted(undo)},
                      "register": reg, "changed_when": False, "failed_when": False, "check_mode": False})
        tasks.append(_loop_task("Stop and disable the units the capture started or enabled",
                                "ansible.builtin.systemd_service",
                                {"name": _ref("name", omit=False), "enabled": _ref("enabled"),
                                 "state": _ref("state")},
                                [undo[u] for u in sorted(undo)], label="name",
                                extra={"when": Expr("item.name in (%s.stdout_lines | map('split') | map('first') | list)" % reg)}))

    # 2. accounts it deleted come back first (restored files may be owned by them)
    back_groups = _account_items(prep, ops["groups_deleted"], "group")
    if back_groups:
        tasks.append(_loop_task("Recreate the groups the capture removed", "ansible.builtin.group",
                                {"name": _ref("name", omit=False), "state": "present",
                                 "system": _ref("system"), "gid": _ref("gid")},
                                back_groups, label="name"))
    back_users = _account_items(prep, ops["users_deleted"], "user")
    if back_users:
        tasks.append(_loop_task("Recreate the users the capture removed", "ansible.builtin.user",
                                {"name": _ref("name", omit=False), "state": "present",
                                 "system": _ref("system"), "uid": _ref("uid"),
                                 "group": _ref("group"), "home": _ref("home"),
                                 "shell": _ref("shell"),
                                 "comment": _ref("comment"), "create_home": False},
                                back_users, label="name"))

    # 3. packages: purge what it installed, reinstall what it removed, downgrade what it upgraded
    installed = [p["name"] for p in ops["packages_installed"]]
    if installed:
        tasks.append({"name": "Purge the packages the capture installed",
                      "ansible.builtin.apt": {"name": installed, "state": "absent", "purge": True}})
    removed = ops["packages_removed"]
    if removed:
        tasks.append({"name": "Reinstall the packages the capture removed",
                      "ansible.builtin.apt": {"name": [_pkg_spec(p, pin) for p in removed], "state": "present"}})
    downgrade = [p for p in ops["packages_upgraded"] if p.get("version_before")]
    if downgrade:
        tasks.append({"name": "Return the packages the capture upgraded to their former versions",
                      "ansible.builtin.apt": {"name": [_pkg_spec(p, True, "version_before") for p in downgrade],
                                              "state": "present", "allow_downgrade": True}})

    # 4. remove what it created: files and links outside the directories it created, then the
    # top-most of those directories (state absent removes a directory with what is inside it);
    # with apply_module, one mo.fleet.bundle_apply run does 4 and 6 here
    paths = rollback_paths(prep)
    if opts["apply_module"]:
        tasks.append(_module_task(prep, rollback=True))
    if paths["created"] and not opts["apply_module"]:
        tasks.append(_loop_task("Remove the files and symlinks the capture created", "ansible.builtin.file",
                                {"path": _ref("path", omit=False), "state": "absent"}, paths["created"]))
    if paths["top_dirs"] and not opts["apply_module"]:
        tasks.append(_loop_task("Remove the directories the capture created, with what is in them",
                                "ansible.builtin.file", {"path": _ref("path", omit=False), "state": "absent"},
                                paths["top_dirs"]))

    # 5. accounts it created go (after their packages and files)
    new_users = [{"name": u["name"]} for u in ops["users_created"]]
    if new_users:
        tasks.append(_loop_task("Remove the users the capture created", "ansible.builtin.user",
                                {"name": _ref("name", omit=False), "state": "absent"}, new_users, label="name"))
    new_groups = [{"name": g["name"]} for g in ops["groups_created"]]
    if new_groups:
        tasks.append(_loop_task("Remove the groups the capture created", "ansible.builtin.group",
                                {"name": _ref("name", omit=False), "state": "absent"}, new_groups, label="name"))
    changed_users = [dict(_account_items(prep, [{"name": u["name"], "after": u.get("before")}], "user")[0])
                     for u in ops["users_changed"] if isinstance(u.get("before"), dict)]
    if changed_users:
        tasks.append(_loop_task("Return the users the capture changed to their former settings",
                                "ansible.builtin.user",
                                {"name": _ref("name", omit=False), "group": _ref("group"),
                                 "home": _ref("home"), "shell": _ref("shell"),
                                 "comment": _ref("comment")}, changed_users, label="name"))

    # 6. directories it deleted come back (parents first), then files from before/
    if not opts["apply_module"]:
        tasks += _rollback_restore_tasks(paths)

    # 7. units it disabled or stopped come back
    redo = {}
    if not skip_units:
        for u in ops["units_disabled"]:
            if not prep.service_skipped(u["unit"]) and "@." not in u["unit"]:
                redo.setdefault(u["unit"], {"name": u["unit"]})["enabled"] = True
        for u in ops["units_stopped"]:
            if not prep.service_skipped(u["unit"]) and "@." not in u["unit"]:
                redo.setdefault(u["unit"], {"name": u["unit"]})["state"] = "started"
    touched_units = any(_is_unit_file(e["path"]) for op in tpl.FILE_OPERATIONS for e in ops[op])
    if touched_units and not skip_units:
        tasks.append({"name": "Reload systemd after unit files changed",
                      "ansible.builtin.systemd_service": {"daemon_reload": True}})
    if redo:
        tasks.append(_probe_task(prep, sorted(redo)))
        tasks.append(_loop_task("Re-enable and restart the units the capture disabled or stopped",
                                "ansible.builtin.systemd_service",
                                {"name": _ref("name", omit=False), "enabled": _ref("enabled"),
                                 "state": _ref("state")},
                                [redo[u] for u in sorted(redo)], label="name", extra={"when": _present_guard(prep)}))
    return [_ordered(t) for t in tasks]


# --------------------------------------------------------------------------- shell helpers

# What a line-based reader (sh, Python's splitlines, an editor, dpkg) may take for the end of
# a line, and NUL, which no shell word can hold.
LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x00")
MAX_ID = 4294967294  # the largest uid/gid Linux gives an account (2**32 - 2)


def _q(text, what="A value"):
    """TEXT as ONE shell word on the current line: shlex.quote, after refusing every line
    break (and NUL), so a value can never start a new command line."""
    text = str(text)
    if any(ch in LINE_BREAKS for ch in text):
        raise RenderError("%s %s holds a line break or NUL, which a shell line cannot carry." % (what, _shown(text)))
    return shlex.quote(text)


def _one_line(text):
    """TEXT for a comment or a free-text line: every character that is not printable (line
    breaks of any kind, controls) and every backslash is written as a visible escape, so it
    stays one line and never ends in the Dockerfile's line-continuation character."""
    text = str(text)
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(ch if ch.isprintable() and ch != "\\" else
                   ("\\x%02x" % ord(ch) if ord(ch) < 0x100 else "\\u%04x" % ord(ch) if ord(ch) < 0x10000
                    else "\\U%08x" % ord(ch)) for ch in text)


def _owner_spec(entry):
    owner = _owner_value(entry, "owner")
    group = _owner_value(entry, "group")
    if owner and group:
        return "%s:%s" % (owner, group)
    if owner:
        return owner
    if group:
        return ":" + group
    return None


def _account_script(prep, ops_users, ops_groups, ids=False):
    lines = []
    for g in _account_items(prep, ops_groups, "group"):
        args = ["groupadd"]
        if g.get("system"):
            args.append("--system")
        if g.get("gid") is not None:
            args += ["--gid", str(g["gid"])]
        args.append(g["name"])
        lines.append("getent group %s >/dev/null || %s" % (_q(g["name"]), " ".join(_q(a) for a in args)))
    for u in _account_items(prep, ops_users, "user"):
        args = ["useradd", "--no-create-home"]
        if u.get("system"):
            args.append("--system")
        if u.get("uid") is not None:
            args += ["--uid", str(u["uid"])]
        if u.get("group"):
            args += ["--gid", u["group"]]
        elif not u.get("system"):
            args.append("--user-group")
        if u.get("home"):
            args += ["--home-dir", u["home"]]
        if u.get("shell"):
            args += ["--shell", u["shell"]]
        if u.get("comment"):
            args += ["--comment", u["comment"]]
        args.append(u["name"])
        lines.append("getent passwd %s >/dev/null || %s" % (_q(u["name"]), " ".join(_q(a) for a in args)))
    return lines


def _fs_script(prep, files_in_place=True):
    """Shell lines that create dirs, set modes/owners of copied files, links, perms, deletions."""
    lines = []
    for e in sorted(prep.entries("directories_created"), key=lambda e: e["path"]):
        if prep.package_made(e):
            continue
        lines.append("mkdir -p -- %s" % _q(e["path"]))
        if e.get("permissions"):
            lines.append("chmod %s -- %s" % (_q(e["permissions"], "The mode"), _q(e["path"])))
        spec = _owner_spec(e)
        if spec:
            lines.append("chown %s -- %s" % (_q(spec), _q(e["path"])))
    for op in ("files_created", "files_modified"):
        for e in prep.entries(op):
            if e.get("type") != "file" or not e.get("bundled") or prep.generated(e["path"]):
                continue
            if e.get("permissions"):
                lines.append("chmod %s -- %s" % (_q(e["permissions"], "The mode"), _q(e["path"])))
            spec = _owner_spec(e)
            if spec:
                lines.append("chown %s -- %s" % (_q(spec), _q(e["path"])))
    for op in ("symlinks_created", "symlinks_modified"):
        for e in prep.entries(op):
            if prep.package_made(e) or not e.get("target"):
                continue
            lines.append("mkdir -p -- %s && ln -sfn -- %s %s" % (_q(posixpath.dirname(e["path"])), _q(e["target"]), _q(e["path"])))
            spec = _owner_spec(e)
            if spec:
                lines.append("chown -h %s -- %s" % (_q(spec), _q(e["path"])))
    for e in prep.entries("permissions_changed"):
        after = e.get("after") or {}
        if after.get("permissions"):
            lines.append("chmod %s -- %s" % (_q(after["permissions"], "The mode"), _q(e["path"])))
        spec = _owner_spec(after)
        if spec:
            lines.append("chown %s -- %s" % (_q(spec), _q(e["path"])))
    for op in ("files_deleted", "symlinks_deleted"):
        for e in prep.entries(op):
            lines.append("rm -f -- %s" % _q(e["path"]))
    for e in sorted(prep.entries("directories_deleted"), key=lambda e: -_depth(e["path"])):
        lines.append("rm -rf -- %s" % _q(e["path"]))
    return lines


# --------------------------------------------------------------------------- Dockerfile

def to_dockerfile(source, options=None):
    """A build context: {"Dockerfile": text, "setup.sh": text, "files": [(context path, bundle path)]}."""
    prep = source if isinstance(source, Prepared) and options is None else prepare(source, options)
    ops, opts = prep.ops, prep.options
    head = prep.doc["MO_template"]
    base = opts["base_image"]
    if not base or not all(ch.isprintable() and not ch.isspace() for ch in base):
        raise RenderError("The option base_image %r is not an image reference." % (base,))
    # Header fields are data: one comment line each, every line break shown as an escape.
    out = ["# Generated by mo.fleet.to_dockerfile from the capture %s" % _one_line(head.get("name") or head["command"]),
           "# of %s" % _one_line((head["command"] + " " + head["arguments"]).strip()[:200]),
           "# on %s at %s." % (_one_line(head.get("host") or "an unknown host"), _one_line(head["timestamp"])),
           "FROM %s" % base, ""]
    wanted = [p for p in ops["packages_installed"] if opts["install_auto"] or p.get("manual") is not False]
    specs = [_q(_pkg_spec(p, opts["pin_versions"]), "The package") for p in wanted + ops["packages_upgraded"]]
    removed = [_q(p["name"], "The package") for p in ops["packages_removed"]]
    if removed:
        out.append("RUN apt-get remove -y %s" % " ".join(removed))
    if specs:
        out.append("RUN apt-get update \\\n && DEBIAN_FRONTEND=noninteractive apt-get install -y %s \\\n"
                   " && rm -rf /var/lib/apt/lists/*" % " \\\n    ".join(specs))
    copies = []
    for op in ("files_created", "files_modified"):
        for e in prep.entries(op):
            if e.get("type") == "file" and e.get("bundled") and not prep.generated(e["path"]):
                rel = tpl.bundle_relpath(e["path"], tpl.BUNDLE_FILES)
                copies.append((rel, prep.src(e["path"]) if opts["bundle"] or opts["src_base"] is not None else rel))
    copies.sort()
    if copies:
        out.append("COPY files/ /")
    script = ["#!/bin/sh", "# Generated by mo.fleet.to_dockerfile: accounts, directories, modes, owners,",
              "# links and deletions of the capture, run once at build time.", "set -eu"]
    script += _account_script(prep, ops["users_created"] + ops["users_changed"],
                              ops["groups_created"] + ops["groups_changed"])
    for u in ops["users_deleted"]:
        script.append("! getent passwd %s >/dev/null || userdel %s" % (_q(u["name"]), _q(u["name"])))
    for g in ops["groups_deleted"]:
        script.append("! getent group %s >/dev/null || groupdel %s" % (_q(g["name"]), _q(g["name"])))
    script += _fs_script(prep)
    if opts["skip_services"] is not True:
        units = _Units(prep)
        enable = sorted(set(units.enable) | set(u for u in units.start))
        for unit in enable:
            script.append("systemctl enable %s" % _q(unit))
        for unit in units.disable:
            script.append("systemctl disable %s" % _q(unit))
    script.append("")
    out.append("COPY mo-fleet-setup.sh /usr/local/sbin/mo-fleet-setup.sh")
    out.append("RUN sh /usr/local/sbin/mo-fleet-setup.sh && rm -f /usr/local/sbin/mo-fleet-setup.sh")
    out.append('CMD ["/sbin/init"]')
    out.append("")
    return {"Dockerfile": "\n".join(out), "setup.sh": "\n".join(script), "files": copies}


# --------------------------------------------------------------------------- .deb

def to_deb(source, options=None):
    """The .deb renderer (``debrender.to_deb``; imported when used, it builds on this module)."""
    from ansible_collections.mo.fleet.plugins.module_utils import debrender
    return debrender.to_deb(source, options)


def deb_architecture(requested, system, sources):
    """``debrender.deb_architecture``."""
    from ansible_collections.mo.fleet.plugins.module_utils import debrender
    return debrender.deb_architecture(requested, system, sources)


# --------------------------------------------------------------------------- standalone role

def to_role(source, options=None, role_name="captured", origin=None):
    """A standalone role: {"files": {relpath: data}, "copies": [(role relpath, bundle path)],
    "archive": role relpath of the files archive, or None}.

    DATA is a Python object for YAML files (tasks, handlers, defaults, meta) and text for
    README.md.  Copy sources become paths relative to the role's files/ directory.  With the
    option files_archive (where write_files_archive writes the tar: the role's
    files/mo-fleet-files.tar) and at least archive_min_files directories and files, the role
    unpacks that one archive, and keeps the per-item tasks in tasks/files_per_item.yml for
    check and diff mode.
    """
    if not isinstance(role_name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", role_name):
        raise RenderError("The role name %s must be lower-case letters, digits and underscores (at most 64)."
                          % _shown(role_name))
    opts = dict(options or {})
    opts["handlers"] = "notify"
    opts["src_base"] = ""
    opts["var_prefix"] = role_name + "_"
    prep = prepare(source, opts)
    tasks = to_tasks(prep)
    extra_files = {}
    if any("ansible.builtin.unarchive" in t for t in tasks):
        tasks, extra_files["tasks/files_per_item.yml"] = _role_archive_tasks(prep, tasks)
    handlers = to_handlers(prep)
    copies = []
    for op in ("files_created", "files_modified"):
        for e in prep.entries(op):
            if e.get("type") == "file" and e.get("bundled") and not prep.generated(e["path"]):
                rel = e["path"].lstrip("/")
                bundle_src = posixpath.join(prep.bundle, tpl.BUNDLE_FILES, rel) if prep.bundle else None
                copies.append((posixpath.join("files", rel), bundle_src))
    manage = Expr(role_name + "_manage_services")
    packages = Expr(role_name + "_install_packages")
    for task in tasks:
        module = [k for k in task if k.startswith(("ansible.builtin.", "mo.fleet."))][0]
        if module == "ansible.builtin.apt":
            task["when"] = packages
        if module == "ansible.builtin.systemd_service" or (module == "ansible.builtin.command"):
            cond = task.get("when")
            task["when"] = [manage] + (cond if isinstance(cond, list) else [cond] if cond else [])
    tasks = [_ordered(t) for t in tasks]
    # in check mode a unit that does not exist yet (its file not copied) is not restarted: the
    # probe task tells which exist; the unit name reaches the condition as a variable (data)
    unit_var = prep.options["var_prefix"] + "restart_unit"
    handlers = [_ordered(dict(h, vars={unit_var: h["ansible.builtin.systemd_service"]["name"]},
                              when=[manage, Expr("not ansible_check_mode or %s in %s" % (unit_var, _present_list(prep)))]))
                for h in handlers]
    head = prep.doc["MO_template"]
    defaults = {manage: prep.options["skip_services"] is not True, packages: True}
    argspec = {"argument_specs": {"main": {
        "short_description": "Reproduce the capture %s" % (head.get("name") or head["command"]),
        "description": ["Generated by mo.fleet playbooks/template_to_role.yml from a mo.fleet capture template.",
                        "Installs the captured packages, creates accounts, directories, files, symlinks, "
                        "and sets units to their captured state."],
        "options": {
            manage: {"type": "bool", "default": defaults[manage],
                     "description": "Enable, start and restart the captured systemd units."},
            packages: {"type": "bool", "default": True,
                       "description": "Install, upgrade and remove the captured packages."},
        }}}}
    meta = {"galaxy_info": {"role_name": role_name, "author": "mo.fleet template_to_role",
                            "description": "Reproduce the capture %s" % (head.get("name") or head["command"]),
                            "license": "GPL-3.0-or-later", "min_ansible_version": "2.15",
                            "platforms": [{"name": "Debian", "versions": ["bookworm"]}],
                            "galaxy_tags": ["mofleet", "capture"]},
            "dependencies": []}
    command = _one_line((head["command"] + " " + head["arguments"]).strip())
    shown = dict((key, _one_line(head.get(key) or "unknown")) for key in ("host", "timestamp", "status", "system"))
    readme = "\n".join([  # free text: every template value on one line (_one_line)
        "# %s" % role_name, "",
        "Generated by `playbooks/template_to_role.yml` of the mo.fleet collection from the capture",
        "template %s." % ("`%s`" % _one_line(origin).replace("`", "'") if origin
                          else "of %s" % _one_line(head.get("name") or command)), "",
        "- Captured command: `%s`" % command.replace("`", "'"),
        "- Host: %s" % shown["host"],
        "- Captured at: %s (status %s)" % (shown["timestamp"], shown["status"]),
        "- System: %s" % shown["system"],
        "", "The role needs only ansible-core: every task uses an `ansible.builtin` module.",
        "Files come from `files/`, laid out by their absolute path on the target.", "",
        "## Variables", "",
        "- `%s` (default `%s`): enable, start and restart the captured units." % (manage, str(defaults[manage]).lower()),
        "- `%s` (default `true`): install the captured packages." % packages, "",
        "## Summary", ""] + ["- %s: %s" % (k, v) for k, v in sorted(tpl.describe(prep.doc)["counts"].items())] + [""])
    files = {"tasks/main.yml": tasks, "handlers/main.yml": handlers or [],
             "defaults/main.yml": defaults, "meta/main.yml": meta, "meta/argument_specs.yml": argspec,
             "README.md": readme}
    files.update(extra_files)
    archive = posixpath.join("files", ROLE_ARCHIVE) if extra_files else None
    return {"files": files, "copies": sorted(copies), "archive": archive}


ROLE_ARCHIVE = "mo-fleet-files.tar"


def _role_archive_tasks(prep, tasks):
    """The role's tasks with the archive (the role's files/ROLE_ARCHIVE) for normal runs, and
    the per-item directory and copy tasks, included only in check or diff mode (unarchive
    skips tar archives under --check and shows no per-file diff)."""
    archive = prep.options["files_archive"]
    prep.options["files_archive"] = None
    try:
        one_by_one = to_tasks(prep)
    finally:
        prep.options["files_archive"] = archive
    loops = ("Create the directories the capture created", "Copy the files the capture created or changed")
    per_item = [t for t in one_by_one if t["name"] in loops]
    out = []
    for task in tasks:
        if "ansible.builtin.unarchive" not in task:
            out.append(task)
            continue
        task = dict(task, when=[Expr("not ansible_check_mode"), Expr("not ansible_diff_mode")])
        task["ansible.builtin.unarchive"] = dict(task["ansible.builtin.unarchive"], src=ROLE_ARCHIVE)
        out.append(_ordered(task))
        out.append({"name": "Create the directories and copy the files one by one (check and diff mode)",
                    "ansible.builtin.include_tasks": {"file": "files_per_item.yml"},
                    "when": Expr("ansible_check_mode or ansible_diff_mode")})
    return out, per_item
