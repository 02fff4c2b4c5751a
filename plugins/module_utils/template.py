# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mo.fleet capture template model: one document, many renderers.

A *template* is a JSON document recording everything a command changed on a host.  It keeps
the top-level shape of the seed's MO-capture v2.1 (``MO_template``, ``operations``,
``summary``, ``metadata``) and its field names, and extends them (see ``SCHEMA`` and
``schemas/template.schema.json``, generated from it).  Standard library only: this file runs
on targets (Python 3.9+) as well as on the controller.

Document shape (version ``TEMPLATE_VERSION``)::

    MO_template: version, system, timestamp, command, arguments, snapshots{pre,post},
                 generator, name, argv, chdir, host, status, rc, duration
    operations:  files_created, files_modified, files_deleted,          -> file entries
                 directories_created, directories_deleted,              -> file entries
                 symlinks_created, symlinks_modified, symlinks_deleted, -> file entries (+target)
                 permissions_changed                                    -> {path,type,before,after}
                 packages_installed, packages_removed, packages_upgraded
                 units_added, units_removed, units_enabled, units_disabled,
                 units_started, units_stopped
                 users_created, users_changed, users_deleted,
                 groups_created, groups_changed, groups_deleted
                 excluded, redacted                                     -> {path, reason}
    summary:     total_<operation> for every list above (always consistent)
    metadata:    analysis_method, template_version, trace, roots, exclude, bundle, ...

A *file entry* carries ``path, type, size, permissions ("0755"), owner, group, uid, gid,
hash (sha256 hex), modified (mtime)`` plus, where known, ``target`` (symlinks),
``package`` (owning dpkg package), ``conffile`` / ``conffile_changed`` (a dpkg conffile and
whether it differs from the packaged default), ``package_default`` (content equals the
package's md5sums), ``bundled`` (content is in the bundle at ``files/<path>``), ``before``
(the state before, for modified entries) and ``before_bundled`` (old content kept in the
bundle at ``before/<path>`` so a rollback can restore it), ``package_differs`` (a package's
path whose mode, owner or group differs from what the package ships: the package's values)
and ``elf_needed`` (the sonames an ELF file needs; ``metadata.shared_libraries`` says how
the capture host resolved each and which package owns it).

A *bundle* is a directory ``template.json`` + ``files/<absolute path>`` +
``before/<absolute path>``.

API (every function is pure unless it says it touches files):

``build(meta, operations, metadata=None) -> dict``
    Assemble a current-version template: fills defaults, sorts every list by its key,
    computes ``summary``.  ``meta`` holds the ``MO_template`` fields (``command`` and
    ``arguments`` are derived from ``argv`` when missing).  Raises TemplateError when the
    result is invalid.
``summarize(operations) -> dict``
    The ``summary`` block for an operations block.
``validate(doc, use_jsonschema=None, limit=50) -> list[str]``
    Every problem as one sentence each naming its field (empty list = valid): the one
    stdlib checker (``_common/validate``) of ``SCHEMA``, the same on controller and targets
    (``use_jsonschema`` is accepted and ignored), then semantic checks (summary totals,
    version agreement, normalised paths listed once).
``check(doc) -> dict``
    ``validate`` that raises TemplateError with the first problem (one sentence, with the
    count of the others); returns ``doc``.
``migrate(doc) -> dict``
    Convert any known version (MO-capture ``2.x``) to ``TEMPLATE_VERSION``; a current
    document is returned as a deep copy.  Raises TemplateError for unknown versions.
``detect_version(doc) -> str``
``load(source) -> dict``
    ``source`` is a dict, JSON text/bytes, or a path to a template file or bundle directory;
    parses, migrates, validates and returns the current-version document.
``loads(text) -> dict`` / ``load_file(path) -> dict``
    A template file larger than MAX_TEMPLATE_BYTES (1 GiB) is refused before it is read.
``dump(doc) -> str``
    Canonical JSON text (sorted keys, 2-space indent, trailing newline).
``dump_file(doc, path)``
    Validate then write atomically (temp file in the same directory + fsync + rename).
``iter_entries(doc, kinds=None) -> iterator of (operation, entry)``
    Walk the operation lists (all, or the names in ``kinds``).
``bundled_files(doc) -> list[(path, relpath, sha256)]``
    Content the bundle must hold: after-content ``files/...`` and before-content
    ``before/...`` with the sha256 each must have.
``verify_bundle(directory) -> dict``
    Load and validate DIRECTORY/template.json, check that every bundled file exists with the
    sha256 the template records and that the bundle holds nothing unlisted; returns the
    document or raises TemplateError (touches files: reads the bundle).
``describe(doc) -> dict``
    A short human summary (header fields, non-zero counts, packages, units, users).
``normalize_path(path) -> str``, ``check_path(path, roots=None) -> str``,
``is_within(path, root) -> bool``, ``bundle_relpath(path, area="files") -> str``,
``safe_join(base, path, area="files") -> str``
    Path validation for renderers: absolute, no ``..``/``.`` components, no NUL, inside the
    allowed roots; ``safe_join`` maps an absolute target path into a bundle directory and
    refuses anything that would escape it.
"""

from __future__ import annotations

import copy
import json
import os
import math
import posixpath
import re

from ansible_collections.mo.fleet.plugins.module_utils._common import names
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import atomic_write
from ansible_collections.mo.fleet.plugins.module_utils._common import paths as _paths
from ansible_collections.mo.fleet.plugins.module_utils._common import validate as _validate

TEMPLATE_VERSION = "3.0"
GENERATOR = "mo.fleet.capture"
LEGACY_VERSIONS = ("2.0", "2.1")
BUNDLE_TEMPLATE = "template.json"
BUNDLE_FILES = "files"
BUNDLE_BEFORE = "before"

FILE_OPERATIONS = (
    "files_created", "files_modified", "files_deleted",
    "directories_created", "directories_deleted",
    "symlinks_created", "symlinks_modified", "symlinks_deleted",
)
PATH_OPERATIONS = FILE_OPERATIONS + ("permissions_changed", "excluded", "redacted")
PACKAGE_OPERATIONS = ("packages_installed", "packages_removed", "packages_upgraded")
UNIT_OPERATIONS = ("units_added", "units_removed", "units_enabled", "units_disabled",
                   "units_started", "units_stopped")
ACCOUNT_OPERATIONS = ("users_created", "users_changed", "users_deleted",
                      "groups_created", "groups_changed", "groups_deleted")
OPERATIONS = PATH_OPERATIONS + PACKAGE_OPERATIONS + UNIT_OPERATIONS + ACCOUNT_OPERATIONS

# the key each operation list is sorted and de-duplicated by
SORT_KEYS = {op: "path" for op in PATH_OPERATIONS}
SORT_KEYS.update({op: "name" for op in PACKAGE_OPERATIONS + ACCOUNT_OPERATIONS})
SORT_KEYS.update({op: "unit" for op in UNIT_OPERATIONS})

STATUSES = ("succeeded", "failed", "timeout", "unknown")
FILE_TYPES = ("file", "directory", "symlink", "fifo", "socket", "char", "block", "other")


class TemplateError(ValueError):
    """A template or a path in it is invalid; the message is one sentence."""


# --------------------------------------------------------------------------- schema

def _nullable(kind):
    return {"type": [kind, "null"]}


def _named(kind, nullable=False, **extra):
    """A string of one kind of name (``_common/names.PATTERNS``), matched whole."""
    out = {"type": ["string", "null"] if nullable else "string",
           "pattern": "^%s$" % names.PATTERNS[kind], "x-rule": "is not " + names.RULES[kind]}
    out.update(extra)
    return out


def _int(low, high, nullable=True):
    return {"type": ["integer", "null"] if nullable else "integer", "minimum": low, "maximum": high}


# A string that is one line as every consumer splits lines: no control character, no NEL,
# no U+2028/U+2029 (YAML, Python's splitlines and some terminals break there).
_LINE_CHARS = "[^\\x00-\\x1f\\x7f\\x85\\u2028\\u2029]"
MAX_PATH = 4096
MAX_TEXT = 65536
MAX_ID = 4294967295          # uid_t / gid_t
MAX_SIZE = 2 ** 53           # the largest integer every JSON reader keeps exact
MAX_ENTRIES = 1000000        # entries in one operation list
MAX_TEMPLATE_BYTES = 1024 ** 3  # a template file larger than this is refused unread

_LINE = {"type": "string", "maxLength": MAX_TEXT, "pattern": "^%s*$" % _LINE_CHARS,
         "x-rule": "is not one line of printable text"}
_LINE_OR_NULL = dict(_LINE, type=["string", "null"])
_TEXT = {"type": "string", "maxLength": MAX_TEXT, "pattern": "^[^\\x00]*$", "x-rule": "contains a NUL character"}
_ABS_PATH = {"type": "string", "minLength": 1, "maxLength": MAX_PATH, "pattern": "^/%s*$" % _LINE_CHARS,
             "x-rule": "is not an absolute path on one line"}
_ABS_PATH_OR_EMPTY = {"type": ["string", "null"], "maxLength": MAX_PATH,
                      "pattern": "^(?:/[^\\x00-\\x1f\\x7f\\x85\\u2028\\u2029:]*)?$",
                      "x-rule": "is not an absolute path without a colon or control character"}
_TARGET = {"type": ["string", "null"], "minLength": 1, "maxLength": MAX_PATH, "pattern": "^%s+$" % _LINE_CHARS,
           "x-rule": "is not a symlink target on one line"}
_SHA256 = {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$", "x-rule": "is not a sha256 hex digest"}
# what chmod means by an octal mode: three or four octal digits
_MODE = {"type": ["string", "null"], "pattern": "^[0-7]{3,4}$", "x-rule": "is not an octal mode of 3 or 4 digits"}
_GECOS = {"type": ["string", "null"], "maxLength": 1024, "pattern": "^[^\\x00-\\x1f\\x7f\\x85\\u2028\\u2029:]*$",
          "x-rule": "contains a colon or a control character"}
_SIZE = _int(0, MAX_SIZE)
_ID = _int(0, MAX_ID)
_TIME = {"type": ["number", "null"], "minimum": -MAX_SIZE, "maximum": MAX_SIZE}
_FREE = {"type": "object", "maxProperties": 10000}


# a unified diff: lines of printable text (tabs kept), nothing a terminal would act on
_DIFF = {"type": ["string", "null"], "maxLength": 256 * 1024,
         "pattern": "^[^\\x00-\\x08\\x0b-\\x1f\\x7f\\x85\\u2028\\u2029]*$",
         "x-rule": "holds a control character other than a line break or a tab"}
_WORD = dict(_LINE_OR_NULL, maxLength=256)
_CMD = dict(_LINE_OR_NULL, maxLength=4096)


def _object(properties, required=()):
    return {"type": "object", "additionalProperties": False, "required": list(required), "properties": properties}


def _list(items, max_items=MAX_ENTRIES):
    return {"type": "array", "maxItems": max_items, "items": items}


def _account_fields():
    return {
        "name": _named("account"),
        "uid": _ID,
        "gid": _ID,
        "gecos": _GECOS,
        "home": _ABS_PATH_OR_EMPTY,
        "shell": _ABS_PATH_OR_EMPTY,
        "members": _list(_named("account"), 65536),
        "system": {"type": "boolean"},
    }


def _account():
    fields = _account_fields()
    fields["before"] = {"$ref": "#/$defs/account_state"}
    fields["after"] = {"$ref": "#/$defs/account_state"}
    return {"type": "object", "required": ["name"], "additionalProperties": False, "properties": fields}


SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:mo-fleet:schema:template:" + TEMPLATE_VERSION,
    "title": "mo.fleet capture template",
    "description": "Everything one command changed on one host (mo.fleet.capture). "
                   "Top-level shape and field names follow MO-capture v2.1. Patterns match the "
                   "whole string.",
    "type": "object",
    "required": ["MO_template", "operations", "summary", "metadata"],
    "additionalProperties": False,
    "properties": {
        "MO_template": {"$ref": "#/$defs/header"},
        "operations": {"$ref": "#/$defs/operations"},
        "summary": {"$ref": "#/$defs/summary"},
        "metadata": {"$ref": "#/$defs/metadata"},
    },
    "$defs": {
        "header": {
            "type": "object",
            "required": ["version", "system", "timestamp", "command", "arguments",
                         "snapshots", "generator", "status"],
            "additionalProperties": False,
            "properties": {
                "version": {"type": "string", "const": TEMPLATE_VERSION},
                "system": _LINE,
                "timestamp": dict(_LINE, minLength=1, maxLength=64),
                "command": _TEXT,
                "arguments": _TEXT,
                "argv": {"type": ["array", "null"], "maxItems": 65536, "items": _TEXT},
                "shell": {"type": "boolean"},
                "chdir": dict(_ABS_PATH, type=["string", "null"]),
                "name": _named("file_part", nullable=True),
                "host": dict(_LINE_OR_NULL, maxLength=255),
                "snapshots": {
                    "type": "object",
                    "required": ["pre", "post"],
                    "additionalProperties": False,
                    "properties": {"pre": _LINE_OR_NULL, "post": _LINE_OR_NULL},
                },
                "generator": dict(_LINE, maxLength=256),
                "status": {"type": "string", "enum": list(STATUSES)},
                "rc": _int(-2 ** 31, 2 ** 31),
                "duration": {"type": ["number", "null"], "minimum": 0, "maximum": MAX_SIZE},
                "os": {"type": "object", "maxProperties": 256, "additionalProperties": _LINE_OR_NULL},
                "legacy": _FREE,
            },
        },
        "state": {
            "description": "Ownership and mode of a path at one moment.",
            "type": ["object", "null"],
            "additionalProperties": False,
            "properties": {
                "type": {"type": "string", "enum": list(FILE_TYPES)},
                "size": _SIZE,
                "permissions": _MODE,
                "owner": _named("account", nullable=True),
                "group": _named("account", nullable=True),
                "uid": _ID,
                "gid": _ID,
                "hash": _SHA256,
                "modified": _TIME,
                "target": _TARGET,
            },
        },
        "file": {
            "description": "A file, directory or symlink and its state (after, or before for deletions).",
            "type": "object",
            "required": ["path", "type"],
            "additionalProperties": False,
            "properties": {
                "path": _ABS_PATH,
                "type": {"type": "string", "enum": list(FILE_TYPES)},
                "size": _SIZE,
                "permissions": _MODE,
                "owner": _named("account", nullable=True),
                "group": _named("account", nullable=True),
                "uid": _ID,
                "gid": _ID,
                "hash": _SHA256,
                "modified": _TIME,
                "target": _TARGET,
                "package": _named("package", nullable=True),
                "conffile": {"type": "boolean"},
                "conffile_changed": {"type": "boolean"},
                "package_default": _nullable("boolean"),
                "bundled": {"type": "boolean"},
                "before": {"$ref": "#/$defs/state"},
                "before_bundled": {"type": "boolean"},
                "processes": _list(dict(_LINE, maxLength=4096), 4096),
                "legacy_hash": dict(_LINE, maxLength=256),
                "package_differs": {
                    "description": "What the owning package ships where the recorded mode, owner or group differ.",
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"permissions": _MODE, "owner": _named("account"), "group": _named("account")},
                },
                "elf_needed": _list(_named("file_part"), 512),
            },
        },
        "shared_library": {
            "description": "A library an ELF file needs, as the capture host resolved it.",
            "type": "object",
            "required": ["soname"],
            "additionalProperties": False,
            "properties": {
                "soname": _named("file_part"),
                "path": dict(_ABS_PATH, type=["string", "null"]),
                "package": _named("package", nullable=True),
                "version": _named("version", nullable=True),
                "architecture": _named("architecture", nullable=True),
            },
        },
        "permission_change": {
            "type": "object",
            "required": ["path", "before", "after"],
            "additionalProperties": False,
            "properties": {
                "path": _ABS_PATH,
                "type": {"type": "string", "enum": list(FILE_TYPES)},
                "package": _named("package", nullable=True),
                "before": {"$ref": "#/$defs/state"},
                "after": {"$ref": "#/$defs/state"},
            },
        },
        "left_out": {
            "description": "A path left out on purpose (excluded tree or redacted secret).",
            "type": "object",
            "required": ["path", "reason"],
            "additionalProperties": False,
            "properties": {
                "path": _ABS_PATH,
                "reason": dict(_LINE, minLength=1, maxLength=1024),
                "type": {"type": "string", "enum": list(FILE_TYPES)},
                "change": {"type": "string", "enum": ["created", "modified", "deleted", "excluded"]},
                "package": _named("package", nullable=True),
            },
        },
        "package": {
            "type": "object",
            "required": ["name", "version", "architecture"],
            "additionalProperties": False,
            "properties": {
                "name": _named("package"),
                "version": _named("version"),
                "version_before": _named("version"),
                "architecture": _named("architecture"),
                "manual": _nullable("boolean"),
                "status": dict(_LINE, maxLength=256),
            },
        },
        "unit": {
            "type": "object",
            "required": ["unit"],
            "additionalProperties": False,
            "properties": {
                "unit": _named("unit"),
                "path": dict(_ABS_PATH, type=["string", "null"]),
                "state": dict(_LINE_OR_NULL, maxLength=256),
                "active": dict(_LINE_OR_NULL, maxLength=256),
                "before": dict(_LINE_OR_NULL, maxLength=256),
                "after": dict(_LINE_OR_NULL, maxLength=256),
            },
        },
        "account_state": {
            "description": "A user or group as passwd/group held it at one moment.",
            "type": ["object", "null"],
            "additionalProperties": False,
            "properties": _account_fields(),
        },
        "account": _account(),
        "operations": {
            "type": "object",
            "additionalProperties": False,
            "required": list(OPERATIONS),
            "properties": dict(
                [(op, _list({"$ref": "#/$defs/file"})) for op in FILE_OPERATIONS]
                + [("permissions_changed", _list({"$ref": "#/$defs/permission_change"})),
                   ("excluded", _list({"$ref": "#/$defs/left_out"})),
                   ("redacted", _list({"$ref": "#/$defs/left_out"}))]
                + [(op, _list({"$ref": "#/$defs/package"})) for op in PACKAGE_OPERATIONS]
                + [(op, _list({"$ref": "#/$defs/unit"})) for op in UNIT_OPERATIONS]
                + [(op, _list({"$ref": "#/$defs/account"})) for op in ACCOUNT_OPERATIONS]
            ),
        },
        "summary": {
            "type": "object",
            "additionalProperties": False,
            "required": ["total_" + op for op in OPERATIONS],
            "properties": dict(("total_" + op, _int(0, MAX_ENTRIES, nullable=False)) for op in OPERATIONS),
        },
        "metadata": {
            "type": "object",
            "required": ["analysis_method", "template_version"],
            "maxProperties": 256,
            "properties": {
                "analysis_method": dict(_LINE, maxLength=256),
                "template_version": {"type": "string", "const": TEMPLATE_VERSION},
                "trace": _FREE,
                "roots": _list(_ABS_PATH, 4096),
                "exclude": _list(dict(_LINE, maxLength=MAX_PATH), 4096),
                "config_roots": _list(_ABS_PATH, 4096),
                "keep_secrets": _list(_ABS_PATH, 4096),
                "bundle": _FREE,
                "strace_log": _LINE_OR_NULL,
                "processes": _list({"type": "object"}, 65536),
                "shared_libraries": _list({"$ref": "#/$defs/shared_library"}, 65536),
                "stats": _FREE,
                "migrated_from": dict(_LINE, maxLength=64),
                # what the host's CLI, the dpkg hook and drift captures add (hostile once it leaves the host)
                "origin": _named("safe", nullable=True),
                "requested_by": _object({"user": _WORD, "command": _CMD, "parent": _CMD}),
                "baseline": _object({"created": _WORD, "entries": _SIZE}),
                "package_sources": _list(_object({
                    "package": _WORD, "version": _WORD,
                    "change": {"type": "string", "enum": ["installed", "upgraded", "removed"]},
                    "source": {"type": ["string", "null"], "enum": ["dpkg-hook", "apt-history", None]},
                    "command": _CMD, "parent": _CMD, "user": _WORD, "time": _WORD}, ["package", "change"]), 65536),
                "conffile_diffs": _list(_object({
                    "path": _ABS_PATH, "package": _WORD,
                    "version": _WORD, "source": dict(_LINE_OR_NULL, maxLength=MAX_PATH),
                    "diff": _DIFF, "error": dict(_LINE_OR_NULL, maxLength=8192)}, ["path"]), 200),
                "legacy_summary": _FREE,
                "legacy": _FREE,
            },
        },
    },
}


def schema():
    """A deep copy of the current JSON Schema (what schemas/template.schema.json holds)."""
    return copy.deepcopy(SCHEMA)


def schema_json():
    """The schema as the canonical text of schemas/template.schema.json (patterns anchored
    so every JSON Schema tool matches them whole, as the one validator does)."""
    return _validate.export(SCHEMA)


# --------------------------------------------------------------------------- the one validator

def structural_errors(doc, limit=50):
    """Schema problems of DOC, one sentence each (the one checker, ``_common/validate``)."""
    return _validate.errors(doc, SCHEMA, limit=limit)


def _semantic_errors(doc):
    errors = []
    ops = doc["operations"]
    expected = summarize(ops)
    for key, value in expected.items():
        if doc["summary"].get(key) != value:
            errors.append("summary/%s is %r but operations hold %d entries." % (key, doc["summary"].get(key), value))
    if doc["MO_template"]["version"] != doc["metadata"]["template_version"]:
        errors.append("MO_template/version and metadata/template_version disagree.")
    for op in PATH_OPERATIONS:
        seen = set()
        for index, entry in enumerate(ops[op]):
            field = "operations/%s/%d/path" % (op, index)
            path = entry["path"]
            norm = "/" + "/".join(p for p in path.split("/") if p)
            if any(p in ("..", ".") for p in path.split("/")):
                errors.append("%s %r contains a '.' or '..' component." % (field, path))
            elif norm != path and op not in ("excluded", "redacted"):
                errors.append("%s %r is not normalised (expected %s)." % (field, path, norm))
            if path in seen:
                errors.append("%s %s is listed twice in operations/%s." % (field, path, op))
            seen.add(path)
    return errors


def validate(doc, use_jsonschema=None, limit=50):
    """Every problem with DOC as one sentence each (at most LIMIT); an empty list means valid.

    USE_JSONSCHEMA is accepted for compatibility and ignored: controller and targets run the
    same stdlib checker of SCHEMA (``_common/validate``), then the semantic checks."""
    if not isinstance(doc, dict):
        return ["The template must be a JSON object, not %s." % _validate._type_of(doc)]
    errors = structural_errors(doc, limit)
    if not errors:
        errors = _semantic_errors(doc)[:limit]
    return errors


def check(doc, use_jsonschema=None):
    """Return DOC if valid, else raise TemplateError naming the first problems."""
    errors = validate(doc, use_jsonschema)
    if errors:
        first = errors[0]
        if len(errors) > 1:
            first = "%s (and %s more problem%s)." % (first.rstrip("."), len(errors) - 1 if len(errors) < 50
                                                     else "at least 49", "" if len(errors) == 2 else "s")
        raise TemplateError("Invalid template: " + first)
    return doc


# --------------------------------------------------------------------------- build

def summarize(operations):
    """The summary block: total_<op> = number of entries of every operation list."""
    return dict(("total_" + op, len(operations.get(op) or [])) for op in OPERATIONS)


def empty_operations():
    return dict((op, []) for op in OPERATIONS)


def _sorted_unique(entries, key, op="entries"):
    by_key = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get(key), str):
            raise TemplateError("operations/%s/%d must be an object with a string %s." % (op, index, key))
        by_key[entry[key]] = entry
    return [by_key[k] for k in sorted(by_key)]


def build(meta, operations, metadata=None, use_jsonschema=None):
    """Assemble, normalise and validate a current-version template (see module docstring)."""
    meta = dict(meta or {})
    argv = meta.get("argv")
    if argv is not None and ("command" not in meta or "arguments" not in meta):
        meta.setdefault("command", argv[0] if argv else "")
        meta.setdefault("arguments", " ".join(argv[1:]))
    header = {
        "version": TEMPLATE_VERSION,
        "system": meta.pop("system", "") or "",
        "timestamp": meta.pop("timestamp", None) or "",
        "command": meta.pop("command", "") or "",
        "arguments": meta.pop("arguments", "") or "",
        "snapshots": meta.pop("snapshots", None) or {"pre": None, "post": None},
        "generator": meta.pop("generator", GENERATOR),
        "status": meta.pop("status", "unknown"),
    }
    meta.pop("version", None)
    header.update(meta)
    ops = empty_operations()
    for op, entries in (operations or {}).items():
        if op not in ops:
            raise TemplateError("operations has an unknown list %r." % op)
        if not isinstance(entries, (list, tuple, type(None))):
            raise TemplateError("operations/%s must be a list, not %s." % (op, _validate._type_of(entries)))
        ops[op] = _sorted_unique(list(entries or []), SORT_KEYS[op], op)
    md = {"analysis_method": "snapshot"}
    md.update(metadata or {})
    md["template_version"] = TEMPLATE_VERSION
    doc = {"MO_template": header, "operations": ops, "summary": summarize(ops), "metadata": md}
    return check(doc, use_jsonschema)


# --------------------------------------------------------------------------- versions

def detect_version(doc):
    """The template version DOC claims ("2.1", "3.0", ...)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("MO_template"), dict):
        raise TemplateError("The document has no MO_template object, so it is not a capture template.")
    metadata = doc.get("metadata")
    version = doc["MO_template"].get("version") or (
        metadata.get("template_version") if isinstance(metadata, dict) else None)
    if not version:
        raise TemplateError("MO_template/version is missing, so the template version is unknown.")
    if not isinstance(version, (str, int, float)) or isinstance(version, bool) or len(str(version)) > 16:
        raise TemplateError("MO_template/version must be a version string, not %s." % _validate._short(version))
    return str(version)


def _legacy(cond, field, problem):
    if not cond:
        raise TemplateError("The v2.1 %s %s." % (field, problem))


def _legacy_type(value, types, field, words):
    _legacy(value is None or (isinstance(value, types) and not isinstance(value, bool)),
            field, "must be %s, not %s" % (words, _validate._type_of(value)))
    return value


def _mode(value, field):
    """A v2.1 mode (an int, or a string of octal digits) as chmod reads it: "0755"."""
    if value in (None, ""):
        return None
    _legacy_type(value, (int, str), field, "an octal mode")
    if isinstance(value, int):
        number = value
    else:
        _legacy(re.fullmatch(r"[0-7]{1,5}", value) is not None, field,
                "%r is not an octal mode" % _validate._short(value))
        number = int(value, 8)
    _legacy(0 <= number <= 0o7777, field, "%s is not a mode chmod accepts (0000 to 7777)" % _validate._short(value))
    return "%04o" % number


def _legacy_owner(value, field):
    """MO-capture's "uid:gid" (or "name:group") owner field -> (owner, group, uid, gid)."""
    if value is None:
        return None, None, None, None
    _legacy_type(value, str, field, "a string uid:gid")
    _legacy(len(value) <= 256, field, "is longer than 256 characters")
    parts = value.split(":", 1) + [""]
    user, group = parts[0], parts[1]
    uid = int(user) if user.isascii() and user.isdigit() else None
    gid = int(group) if group.isascii() and group.isdigit() else None
    for number in (uid, gid):
        _legacy(number is None or number <= MAX_ID, field, "holds an id above %d" % MAX_ID)
    return (None if uid is not None else user or None, None if gid is not None else group or None, uid, gid)


def _legacy_file(item, kind, field):
    if isinstance(item, str):
        item = {"path": item}
    _legacy(isinstance(item, dict) and isinstance(item.get("path"), str), field, "has no path")
    owner, group, uid, gid = _legacy_owner(item.get("owner"), field + "/owner")
    size = _legacy_type(item.get("size"), int, field + "/size", "a whole number of bytes")
    _legacy(size is None or 0 <= size <= MAX_SIZE, field + "/size", "%s is not a size from 0 to 2**53" % size)
    modified = _legacy_type(item.get("modified"), (int, float), field + "/modified", "a time in seconds")
    _legacy(modified is None or ((isinstance(modified, int) or math.isfinite(modified))
                                 and -MAX_SIZE <= modified <= MAX_SIZE),
            field + "/modified", "%s is not a time within 2**53 seconds of 1970" % modified)
    entry = {
        "path": normalize_path(item["path"]),
        "type": "directory" if kind == "directory" else "file",
        "size": size,
        "permissions": _mode(item.get("permissions"), field + "/permissions"),
        "owner": owner, "group": group, "uid": uid, "gid": gid,
        "hash": None,
        "modified": modified,
    }
    digest = _legacy_type(item.get("hash"), str, field + "/hash", "a string")
    if digest and re.fullmatch(r"[0-9a-f]{64}", digest):
        entry["hash"] = digest
    elif digest:
        entry["legacy_hash"] = digest
    return entry


def _legacy_list(ops, op):
    items = ops.get(op)
    _legacy(items is None or isinstance(items, list), "operations/" + op,
            "must be a list, not %s" % _validate._type_of(items))
    _legacy(items is None or len(items) <= MAX_ENTRIES, "operations/" + op,
            "holds more than %d entries" % MAX_ENTRIES)
    return items or []


def _migrate_2(doc):
    old_header = doc.get("MO_template") or {}
    old_ops = doc.get("operations") or {}
    for field, value in (("operations", old_ops), ("summary", doc.get("summary") or {}),
                         ("metadata", doc.get("metadata") or {}),
                         ("MO_template/snapshots", old_header.get("snapshots") or {})):
        _legacy(isinstance(value, dict), field, "must be an object, not %s" % _validate._type_of(value))
    ops = empty_operations()
    for op, kind in (("files_created", "file"), ("directories_created", "directory")):
        ops[op] = [_legacy_file(item, kind, "operations/%s/%d" % (op, index))
                   for index, item in enumerate(_legacy_list(old_ops, op))]
    for index, item in enumerate(_legacy_list(old_ops, "permissions_changed")):
        path = item if isinstance(item, str) else item.get("path") if isinstance(item, dict) else None
        _legacy(isinstance(path, str), "operations/permissions_changed/%d" % index, "has no path")
        ops["permissions_changed"].append({"path": normalize_path(path), "before": None, "after": None})
    snaps = old_header.get("snapshots") or {}
    for key in ("pre", "post"):
        _legacy_type(snaps.get(key), str, "MO_template/snapshots/" + key, "a string")
    for key in ("system", "timestamp", "command", "generator"):
        _legacy_type(old_header.get(key), (str, int, float), "MO_template/" + key, "a string")
    argv = None
    command = str(old_header.get("command") or "")
    arguments = old_header.get("arguments") or ""
    if isinstance(arguments, list):
        _legacy(all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in arguments),
                "MO_template/arguments", "must list strings")
        argv = [command] + [str(a) for a in arguments]
        arguments = " ".join(argv[1:])
    else:
        _legacy_type(arguments, str, "MO_template/arguments", "a string or a list of strings")
    legacy = dict((k, v) for k, v in old_header.items()
                  if k not in ("version", "system", "timestamp", "command", "arguments", "snapshots", "generator"))
    legacy["version"] = str(old_header.get("version"))
    meta = {
        "system": str(old_header.get("system") or ""),
        "timestamp": str(old_header.get("timestamp") or "unknown"),
        "command": command,
        "arguments": str(arguments),
        "argv": argv,
        "snapshots": {"pre": snaps.get("pre"), "post": snaps.get("post")},
        "generator": str(old_header.get("generator") or "MO-capture"),
        "status": "unknown",
        "legacy": legacy,
    }
    old_md = dict(doc.get("metadata") or {})
    strace_log = _legacy_type(old_md.pop("strace_log", None), str, "metadata/strace_log", "a string")
    method = _legacy_type(old_md.pop("analysis_method", "unknown"), str, "metadata/analysis_method", "a string")
    metadata = {
        "analysis_method": method or "unknown",
        "strace_log": strace_log,
        "migrated_from": legacy["version"],
        "legacy_summary": dict(doc.get("summary") or {}),
    }
    old_md.pop("template_version", None)
    if old_md:
        metadata["legacy"] = old_md
    return build(meta, ops, metadata)


def migrate(doc):
    """DOC converted to TEMPLATE_VERSION (a deep copy; the input is never changed)."""
    version = detect_version(doc)
    if version == TEMPLATE_VERSION:
        return copy.deepcopy(doc)
    if version.split(".", maxsplit=1)[0] == "2":
        return _migrate_2(copy.deepcopy(doc))
    raise TemplateError("Template version %s is unknown; this collection reads 2.x and %s."
                        % (version if re.fullmatch(r"[0-9][0-9.]{0,15}", version) else _validate._short(version),
                           TEMPLATE_VERSION))


# --------------------------------------------------------------------------- load / dump

def loads(text):
    """Parse JSON text or bytes, migrate and validate; return the current document."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        doc = json.loads(text)
    except UnicodeDecodeError as exc:
        raise TemplateError("The template is not UTF-8 text (byte %d)." % exc.start)
    except RecursionError:
        raise TemplateError("The template nests its values too deeply to be read.")
    except ValueError as exc:
        raise TemplateError("The template is not valid JSON: %s." % str(exc).replace("\n", " "))
    return check(migrate(doc))


def load_file(path):
    """Load a template file, or the template.json of a bundle directory."""
    if os.path.isdir(path):
        path = os.path.join(path, BUNDLE_TEMPLATE)
    return loads(read_capped(path, TemplateError))


def read_capped(path, error=None):
    """The bytes of the template file PATH; ERROR (TemplateError) when it cannot be read or is
    larger than MAX_TEMPLATE_BYTES (refused before it is read)."""
    error = error or TemplateError
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_TEMPLATE_BYTES:
                raise error("The template %s is %d bytes, more than the %d a template may be."
                            % (path, size, MAX_TEMPLATE_BYTES))
            data = handle.read(MAX_TEMPLATE_BYTES + 1)
    except OSError as exc:
        raise error("Cannot read template %s: %s." % (path, exc.strerror))
    if len(data) > MAX_TEMPLATE_BYTES:
        raise error("The template %s is more than the %d bytes a template may be." % (path, MAX_TEMPLATE_BYTES))
    return data


def load(source):
    """A dict, JSON text/bytes or a path (file or bundle dir) -> validated current document."""
    if isinstance(source, dict):
        try:
            return check(migrate(source))
        except RecursionError:
            raise TemplateError("The template nests its values too deeply to be read.")
    if isinstance(source, bytes) or (isinstance(source, str) and source.lstrip().startswith("{")):
        return loads(source)
    if isinstance(source, (str, os.PathLike)):
        return load_file(os.fspath(source))
    raise TemplateError("A template source must be a dict, JSON text or a path, not %s." % type(source).__name__)


def dump(doc):
    """Canonical JSON text of DOC."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def dump_file(doc, path):
    """Validate DOC and write it atomically to PATH."""
    check(doc)
    atomic_write(path, dump(doc))


# --------------------------------------------------------------------------- helpers for renderers

def iter_entries(doc, kinds=None):
    """Yield (operation, entry) for every entry of the operation lists named in KINDS (or all)."""
    for op in (kinds or OPERATIONS):
        for entry in doc["operations"].get(op, []):
            yield op, entry


def bundled_files(doc):
    """[(target path, bundle relpath, sha256)] of all content the bundle holds."""
    out = []
    for op, entry in iter_entries(doc, FILE_OPERATIONS):
        if entry.get("bundled"):
            out.append((entry["path"], bundle_relpath(entry["path"], BUNDLE_FILES), entry.get("hash")))
        if entry.get("before_bundled"):
            before = entry.get("before") or {}
            digest = before.get("hash") if op != "files_deleted" else entry.get("hash")
            out.append((entry["path"], bundle_relpath(entry["path"], BUNDLE_BEFORE), digest))
    return out


def normalize_path(path):
    """PATH as a normalised absolute path; TemplateError if relative, with '..' or '.', or NUL
    (the one path guard, ``_common/paths``)."""
    try:
        return _paths.normalize(path, "The path")
    except _paths.PathError as exc:
        raise TemplateError(str(exc))


def is_within(path, root):
    """True when normalised PATH equals ROOT or lies below it."""
    return _paths.within(path, root)


def check_path(path, roots=None):
    """Normalised PATH, or TemplateError when it is not absolute/clean or outside ROOTS."""
    try:
        return _paths.check_roots(path, [normalize_path(r) for r in roots or ()], "The path")
    except _paths.PathError as exc:
        raise TemplateError(str(exc))


def bundle_relpath(path, area=BUNDLE_FILES):
    """Where PATH's content lives inside a bundle: 'files/usr/bin/x'."""
    return posixpath.join(area, normalize_path(path).lstrip("/"))


def safe_join(base, path, area=BUNDLE_FILES):
    """BASE/AREA/PATH on the local disk, refusing anything that escapes BASE via symlinks."""
    candidate = os.path.join(base, bundle_relpath(path, area))
    if not _paths.stays_inside(base, candidate):
        raise TemplateError("The bundle path for %s escapes the bundle directory %s." % (path, base))
    return candidate


def sha256_file(path):
    """sha256 hex digest of a file's content, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_bundle(directory):
    """Validate a bundle directory (template + content); return the template or raise TemplateError."""
    doc = load_file(os.path.join(directory, BUNDLE_TEMPLATE))
    check_bundle_content(doc, directory)
    return doc


def check_bundle_content(doc, directory):
    """TemplateError unless DIRECTORY holds every file DOC says the bundle holds, with its
    sha256, and nothing else (the one bundle check: verify_bundle and every renderer)."""
    if not os.path.isdir(directory):
        raise TemplateError("The bundle directory %s does not exist." % directory)
    expected = set()
    for path, rel, digest in bundled_files(doc):
        local = safe_join(directory, path, rel.split("/", 1)[0])
        expected.add(os.path.normpath(local))
        if not os.path.isfile(local) or os.path.islink(local):
            raise TemplateError("The bundle %s lacks %s, which the template says it holds." % (directory, rel))
        if digest and sha256_file(local) != digest:
            raise TemplateError("The bundled file %s does not match its sha256 in the template." % rel)
    unlisted_bundle_file(directory, expected)


def unlisted_bundle_file(directory, expected):
    """TemplateError when DIRECTORY's content areas hold anything but the EXPECTED files
    (normalised local paths): an unlisted file, a symlink or a special file."""
    for area in (BUNDLE_FILES, BUNDLE_BEFORE):
        top = os.path.join(directory, area)
        if os.path.islink(top):
            raise TemplateError("The bundle's %s is a symlink, which a bundle never holds." % area)
        for base, dirs, files in os.walk(top):
            for name in dirs + files:
                local = os.path.join(base, name)
                rel = os.path.relpath(local, directory)
                if os.path.islink(local):
                    raise TemplateError("The bundle holds the symlink %s, which a bundle never holds." % rel)
                if name in files and os.path.normpath(local) not in expected:
                    raise TemplateError("The bundle holds %s, which the template does not list." % rel)


def describe(doc):
    """A short summary of DOC for people (what MO-install --info showed)."""
    head = doc["MO_template"]
    ops = doc["operations"]
    return {
        "name": head.get("name"),
        "host": head.get("host"),
        "system": head["system"],
        "timestamp": head["timestamp"],
        "command": (head["command"] + " " + head["arguments"]).strip(),
        "status": head["status"],
        "rc": head.get("rc"),
        "version": head["version"],
        "migrated_from": doc["metadata"].get("migrated_from"),
        "analysis_method": doc["metadata"]["analysis_method"],
        "counts": dict((k[len("total_"):], v) for k, v in sorted(doc["summary"].items()) if v),
        "packages_installed": ["%s=%s" % (p["name"], p["version"]) for p in ops["packages_installed"]],
        "units_added": [u["unit"] for u in ops["units_added"]],
        "users_created": [u["name"] for u in ops["users_created"]],
        "bundled_files": len(bundled_files(doc)),
        "redacted": ["%s (%s)" % (r["path"], r["reason"]) for r in ops["redacted"]],
    }
