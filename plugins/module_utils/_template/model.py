# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The template model: its version, operation lists, bundle layout and limits, the JSON Schema
(``SCHEMA``), the one validator (``validate``, ``check``) and ``build`` of a current document.

Standard library only (runs on targets, Python 3.9+).
"""

from __future__ import annotations

import copy

from ansible_collections.mo.fleet.plugins.module_utils._common import names
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


# what a path's state holds: the "state" definition, and a "file" entry besides its own fields
_STATE_FIELDS = {
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
}

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
            "properties": dict(_STATE_FIELDS),
        },
        "file": {
            "description": "A file, directory or symlink and its state (after, or before for deletions).",
            "type": "object",
            "required": ["path", "type"],
            "additionalProperties": False,
            "properties": {
                "path": _ABS_PATH,
                **_STATE_FIELDS,
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


def normalize_path(path):
    """PATH as a normalised absolute path; TemplateError if relative, with '..' or '.', or NUL
    (the one path guard, ``_common/paths``)."""
    try:
        return _paths.normalize(path, "The path")
    except _paths.PathError as exc:
        raise TemplateError(str(exc))
