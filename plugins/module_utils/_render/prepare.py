# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The renderers' input: options (``normalize_options``), the template read by the one
reader (``template.read_source``), validated and checked for rendering (``prepare`` ->
``Prepared``); ``RenderError`` is the one error of every renderer.

Standard library only.
"""

from __future__ import annotations

import os
import posixpath
import re

from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._common import names
from ansible_collections.mo.fleet.plugins.module_utils._common import paths as _paths


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


class RenderError(ValueError):
    """The template, the bundle or an option cannot be rendered; the message is one sentence."""


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
    if not isinstance(out["var_prefix"], str) or not names.is_valid("var_prefix", out["var_prefix"]):
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
        """The one include/exclude rule of render and verify (``_common/paths.selected``)."""
        return _paths.selected(path, self.options["include"], self.options["exclude"])

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


def fast_errors(doc):
    """The first problem of DOC (the one validator, ``template.validate``), as a list."""
    return tpl.validate(doc, limit=1)


def _load(source):
    """(doc, bundle dir or None) from a dict, JSON text, a template file or a bundle directory,
    read by the one reader (``template.read_source``), then migrated and validated."""
    if isinstance(source, Prepared):
        return source.doc, source.bundle
    if isinstance(source, (str, os.PathLike)) and not (isinstance(source, str) and source.lstrip().startswith("{")):
        path = os.fspath(source)
        if not path:
            raise RenderError("The template source is an empty path.")
        if not os.path.exists(path):
            raise RenderError("The template path %s does not exist." % path)
    elif not isinstance(source, (dict, str, bytes)):
        raise RenderError("A template must be a mapping, JSON text or a bundle path, not %s." % type(source).__name__)
    try:
        source, bundle = tpl.read_source(source)
        if not isinstance(source, dict):
            raise RenderError("The template must be a JSON object, not %s." % type(source).__name__)
        doc = source if tpl.detect_version(source) == tpl.TEMPLATE_VERSION else tpl.migrate(source)
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


def _id_number(value, what):
    """VALUE when it is a uid/gid Linux can give (0 .. MAX_ID), else RenderError."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise RenderError("%s must be a whole number from 0 to %d, not %s." % (what, MAX_ID, _shown(value)))
    return value


def _shown(value, limit=80):
    """VALUE's repr for a message, cut to LIMIT characters (untrusted values can be huge)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# What a line-based reader (sh, Python's splitlines, an editor, dpkg) may take for the end of
# a line, and NUL, which no shell word can hold.
LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x00")


MAX_ID = 4294967294  # the largest uid/gid Linux gives an account (2**32 - 2)
