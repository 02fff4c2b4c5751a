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
bundle at ``before/<path>`` so a rollback can restore it).

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
``validate(doc, use_jsonschema=None) -> list[str]``
    Every problem as one sentence each (empty list = valid).  Uses the ``jsonschema``
    library when importable (controller) unless ``use_jsonschema=False``, else the built-in
    stdlib checker of the same schema (target); then semantic checks (summary totals,
    version agreement, absolute normalised paths).
``check(doc) -> dict``
    ``validate`` that raises TemplateError with the first problems; returns ``doc``.
``migrate(doc) -> dict``
    Convert any known version (MO-capture ``2.x``) to ``TEMPLATE_VERSION``; a current
    document is returned as a deep copy.  Raises TemplateError for unknown versions.
``detect_version(doc) -> str``
``load(source) -> dict``
    ``source`` is a dict, JSON text/bytes, or a path to a template file or bundle directory;
    parses, migrates, validates and returns the current-version document.
``loads(text) -> dict`` / ``load_file(path) -> dict``
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
import posixpath
import re
import tempfile

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


_ABS_PATH = {"type": "string", "pattern": "^/", "minLength": 1}
_SHA256 = {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$"}
_MODE = {"type": ["string", "null"], "pattern": "^[0-7]{3,5}$"}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:mo-fleet:schema:template:" + TEMPLATE_VERSION,
    "title": "mo.fleet capture template",
    "description": "Everything one command changed on one host (mo.fleet.capture). "
                   "Top-level shape and field names follow MO-capture v2.1.",
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
                "system": {"type": "string"},
                "timestamp": {"type": "string", "minLength": 1},
                "command": {"type": "string"},
                "arguments": {"type": "string"},
                "argv": {"type": ["array", "null"], "items": {"type": "string"}},
                "shell": {"type": "boolean"},
                "chdir": {"type": ["string", "null"]},
                "name": {"type": ["string", "null"]},
                "host": {"type": ["string", "null"]},
                "snapshots": {
                    "type": "object",
                    "required": ["pre", "post"],
                    "additionalProperties": False,
                    "properties": {"pre": _nullable("string"), "post": _nullable("string")},
                },
                "generator": {"type": "string"},
                "status": {"type": "string", "enum": list(STATUSES)},
                "rc": _nullable("integer"),
                "duration": _nullable("number"),
                "os": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
                "legacy": {"type": "object"},
            },
        },
        "state": {
            "description": "Ownership and mode of a path at one moment.",
            "type": ["object", "null"],
            "additionalProperties": False,
            "properties": {
                "type": {"type": "string", "enum": list(FILE_TYPES)},
                "size": _nullable("integer"),
                "permissions": _MODE,
                "owner": _nullable("string"),
                "group": _nullable("string"),
                "uid": _nullable("integer"),
                "gid": _nullable("integer"),
                "hash": _SHA256,
                "modified": _nullable("number"),
                "target": _nullable("string"),
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
                "size": _nullable("integer"),
                "permissions": _MODE,
                "owner": _nullable("string"),
                "group": _nullable("string"),
                "uid": _nullable("integer"),
                "gid": _nullable("integer"),
                "hash": _SHA256,
                "modified": _nullable("number"),
                "target": _nullable("string"),
                "package": _nullable("string"),
                "conffile": {"type": "boolean"},
                "conffile_changed": {"type": "boolean"},
                "package_default": _nullable("boolean"),
                "bundled": {"type": "boolean"},
                "before": {"$ref": "#/$defs/state"},
                "before_bundled": {"type": "boolean"},
                "processes": {"type": "array", "items": {"type": "string"}},
                "legacy_hash": {"type": "string"},
            },
        },
        "permission_change": {
            "type": "object",
            "required": ["path", "before", "after"],
            "additionalProperties": False,
            "properties": {
                "path": _ABS_PATH,
                "type": {"type": "string", "enum": list(FILE_TYPES)},
                "package": _nullable("string"),
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
                "reason": {"type": "string", "minLength": 1},
                "type": {"type": "string", "enum": list(FILE_TYPES)},
                "change": {"type": "string", "enum": ["created", "modified", "deleted", "excluded"]},
                "package": _nullable("string"),
            },
        },
        "package": {
            "type": "object",
            "required": ["name", "version", "architecture"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "version": {"type": "string"},
                "version_before": {"type": "string"},
                "architecture": {"type": "string"},
                "manual": _nullable("boolean"),
                "status": {"type": "string"},
            },
        },
        "unit": {
            "type": "object",
            "required": ["unit"],
            "additionalProperties": False,
            "properties": {
                "unit": {"type": "string", "minLength": 1},
                "path": _nullable("string"),
                "state": _nullable("string"),
                "active": _nullable("string"),
                "before": _nullable("string"),
                "after": _nullable("string"),
            },
        },
        "account": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "uid": _nullable("integer"),
                "gid": _nullable("integer"),
                "gecos": _nullable("string"),
                "home": _nullable("string"),
                "shell": _nullable("string"),
                "members": {"type": "array", "items": {"type": "string"}},
                "system": {"type": "boolean"},
                "before": {"type": ["object", "null"]},
                "after": {"type": ["object", "null"]},
            },
        },
        "operations": {
            "type": "object",
            "additionalProperties": False,
            "required": list(OPERATIONS),
            "properties": dict(
                [(op, {"type": "array", "items": {"$ref": "#/$defs/file"}}) for op in FILE_OPERATIONS]
                + [("permissions_changed", {"type": "array", "items": {"$ref": "#/$defs/permission_change"}}),
                   ("excluded", {"type": "array", "items": {"$ref": "#/$defs/left_out"}}),
                   ("redacted", {"type": "array", "items": {"$ref": "#/$defs/left_out"}})]
                + [(op, {"type": "array", "items": {"$ref": "#/$defs/package"}}) for op in PACKAGE_OPERATIONS]
                + [(op, {"type": "array", "items": {"$ref": "#/$defs/unit"}}) for op in UNIT_OPERATIONS]
                + [(op, {"type": "array", "items": {"$ref": "#/$defs/account"}}) for op in ACCOUNT_OPERATIONS]
            ),
        },
        "summary": {
            "type": "object",
            "additionalProperties": False,
            "required": ["total_" + op for op in OPERATIONS],
            "properties": dict(("total_" + op, {"type": "integer", "minimum": 0}) for op in OPERATIONS),
        },
        "metadata": {
            "type": "object",
            "required": ["analysis_method", "template_version"],
            "properties": {
                "analysis_method": {"type": "string"},
                "template_version": {"type": "string", "const": TEMPLATE_VERSION},
                "trace": {"type": "object"},
                "roots": {"type": "array", "items": {"type": "string"}},
                "exclude": {"type": "array", "items": {"type": "string"}},
                "config_roots": {"type": "array", "items": {"type": "string"}},
                "bundle": {"type": "object"},
                "strace_log": _nullable("string"),
                "processes": {"type": "array", "items": {"type": "object"}},
                "stats": {"type": "object"},
                "migrated_from": {"type": "string"},
                "legacy_summary": {"type": "object"},
            },
        },
    },
}


def schema():
    """A deep copy of the current JSON Schema (what schemas/template.schema.json holds)."""
    return copy.deepcopy(SCHEMA)


def schema_json():
    """The schema as the canonical text of schemas/template.schema.json."""
    return json.dumps(SCHEMA, indent=2, sort_keys=True) + "\n"


# --------------------------------------------------------------------------- stdlib validator

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _where(path):
    return "/".join(str(p) for p in path) or "(document)"


def _check(value, sch, root, path, errors, limit=50):
    """The subset of JSON Schema SCHEMA uses, in plain Python (for targets)."""
    if len(errors) >= limit:
        return
    if "$ref" in sch:
        name = sch["$ref"].rsplit("/", 1)[-1]
        sch = root["$defs"][name]
    kinds = sch.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_TYPES[k](value) for k in kinds):
            errors.append("%s must be of type %s, not %s." % (_where(path), " or ".join(kinds), type(value).__name__))
            return
    if "const" in sch and value != sch["const"]:
        errors.append("%s must be %r, not %r." % (_where(path), sch["const"], value))
    if "enum" in sch and value not in sch["enum"]:
        errors.append("%s must be one of %s, not %r." % (_where(path), ", ".join(map(str, sch["enum"])), value))
    if isinstance(value, str):
        if len(value) < sch.get("minLength", 0):
            errors.append("%s must not be empty." % _where(path))
        if "pattern" in sch and not re.search(sch["pattern"], value):
            errors.append("%s %r does not match %s." % (_where(path), value, sch["pattern"]))
    if _TYPES["number"](value) and "minimum" in sch and value < sch["minimum"]:
        errors.append("%s must be at least %s." % (_where(path), sch["minimum"]))
    if isinstance(value, dict):
        for key in sch.get("required", ()):
            if key not in value:
                errors.append("%s is missing the required field %r." % (_where(path), key))
        props = sch.get("properties", {})
        extra = sch.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                _check(item, props[key], root, path + [key], errors, limit)
            elif extra is False:
                errors.append("%s has an unknown field %r." % (_where(path), key))
            elif isinstance(extra, dict):
                _check(item, extra, root, path + [key], errors, limit)
    if isinstance(value, list) and "items" in sch:
        for index, item in enumerate(value):
            _check(item, sch["items"], root, path + [index], errors, limit)


def structural_errors(doc, limit=50):
    """Schema problems found by the stdlib checker (no jsonschema needed)."""
    errors = []
    _check(doc, SCHEMA, SCHEMA, [], errors, limit)
    return errors


def _jsonschema_errors(doc, limit=50):
    import jsonschema  # controller only; callers fall back when it is missing

    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        errors.append("%s: %s." % (_where(list(err.absolute_path)), err.message))
        if len(errors) >= limit:
            break
    return errors


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
        for entry in ops[op]:
            try:
                normalize_path(entry["path"])
            except TemplateError as exc:
                errors.append("operations/%s: %s" % (op, exc))
            if entry["path"] in seen:
                errors.append("operations/%s lists %s twice." % (op, entry["path"]))
            seen.add(entry["path"])
    return errors


def validate(doc, use_jsonschema=None):
    """Every problem with DOC as one sentence each; an empty list means valid."""
    if not isinstance(doc, dict):
        return ["The template must be a JSON object, not %s." % type(doc).__name__]
    errors = None
    if use_jsonschema is not False:
        try:
            errors = _jsonschema_errors(doc)
        except ImportError:
            if use_jsonschema:
                raise
    if errors is None:
        errors = structural_errors(doc)
    if not errors:
        errors = _semantic_errors(doc)
    return errors


def check(doc, use_jsonschema=None):
    """Return DOC if valid, else raise TemplateError naming the first problems."""
    errors = validate(doc, use_jsonschema)
    if errors:
        more = " (and %d more problems)" % (len(errors) - 3) if len(errors) > 3 else ""
        raise TemplateError("Invalid template: " + " ".join(errors[:3]) + more)
    return doc


# --------------------------------------------------------------------------- build

def summarize(operations):
    """The summary block: total_<op> = number of entries of every operation list."""
    return dict(("total_" + op, len(operations.get(op) or [])) for op in OPERATIONS)


def empty_operations():
    return dict((op, []) for op in OPERATIONS)


def _sorted_unique(entries, key):
    by_key = {}
    for entry in entries:
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
        ops[op] = _sorted_unique(list(entries or []), SORT_KEYS[op])
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
    version = doc["MO_template"].get("version") or (doc.get("metadata") or {}).get("template_version")
    if not version:
        raise TemplateError("MO_template/version is missing, so the template version is unknown.")
    return str(version)


def _mode(value):
    if value in (None, ""):
        return None
    text = str(value)
    if isinstance(value, int):
        text = "%o" % value
    if not re.match(r"^[0-7]{1,5}$", text):
        return None
    return text.zfill(4)


def _legacy_owner(value):
    """MO-capture's "uid:gid" (or "name:group") owner field -> (owner, group, uid, gid)."""
    if value is None:
        return None, None, None, None
    parts = str(value).split(":", 1) + [""]
    user, group = parts[0], parts[1]
    uid = int(user) if user.isdigit() else None
    gid = int(group) if group.isdigit() else None
    return (None if uid is not None else user or None, None if gid is not None else group or None, uid, gid)


def _legacy_file(item, kind):
    if isinstance(item, str):
        item = {"path": item}
    if not isinstance(item, dict) or not isinstance(item.get("path"), str):
        raise TemplateError("A v2.1 %s entry has no path." % kind)
    owner, group, uid, gid = _legacy_owner(item.get("owner"))
    entry = {
        "path": normalize_path(item["path"]),
        "type": "directory" if kind == "directory" else "file",
        "size": item.get("size") if isinstance(item.get("size"), int) else None,
        "permissions": _mode(item.get("permissions")),
        "owner": owner, "group": group, "uid": uid, "gid": gid,
        "hash": None,
        "modified": item.get("modified") if isinstance(item.get("modified"), (int, float)) else None,
    }
    digest = item.get("hash")
    if isinstance(digest, str) and re.match(r"^[0-9a-f]{64}$", digest):
        entry["hash"] = digest
    elif digest:
        entry["legacy_hash"] = str(digest)
    return entry


def _migrate_2(doc):
    old_header = doc.get("MO_template") or {}
    old_ops = doc.get("operations") or {}
    ops = empty_operations()
    ops["files_created"] = [_legacy_file(i, "file") for i in old_ops.get("files_created") or []]
    ops["directories_created"] = [_legacy_file(i, "directory") for i in old_ops.get("directories_created") or []]
    for item in old_ops.get("permissions_changed") or []:
        path = item if isinstance(item, str) else (item or {}).get("path")
        if not isinstance(path, str):
            raise TemplateError("A v2.1 permissions_changed entry has no path.")
        ops["permissions_changed"].append({"path": normalize_path(path), "before": None, "after": None})
    snaps = old_header.get("snapshots") or {}
    argv = None
    command = str(old_header.get("command") or "")
    arguments = old_header.get("arguments") or ""
    if isinstance(arguments, list):
        argv = [command] + [str(a) for a in arguments]
        arguments = " ".join(argv[1:])
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
    metadata = {
        "analysis_method": str(old_md.pop("analysis_method", "unknown")),
        "strace_log": old_md.pop("strace_log", None),
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
    raise TemplateError("Template version %s is unknown; this collection reads 2.x and %s." % (version, TEMPLATE_VERSION))


# --------------------------------------------------------------------------- load / dump

def loads(text):
    """Parse JSON text or bytes, migrate and validate; return the current document."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise TemplateError("The template is not valid JSON: %s." % exc)
    return check(migrate(doc))


def load_file(path):
    """Load a template file, or the template.json of a bundle directory."""
    if os.path.isdir(path):
        path = os.path.join(path, BUNDLE_TEMPLATE)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise TemplateError("Cannot read template %s: %s." % (path, exc.strerror))
    return loads(data)


def load(source):
    """A dict, JSON text/bytes or a path (file or bundle dir) -> validated current document."""
    if isinstance(source, dict):
        return check(migrate(source))
    if isinstance(source, bytes) or (isinstance(source, str) and source.lstrip().startswith("{")):
        return loads(source)
    if isinstance(source, (str, os.PathLike)):
        return load_file(os.fspath(source))
    raise TemplateError("A template source must be a dict, JSON text or a path, not %s." % type(source).__name__)


def dump(doc):
    """Canonical JSON text of DOC."""
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def atomic_write(path, data, mode=0o644):
    """Write DATA to PATH via a temp file in the same directory + fsync + chmod MODE + rename.

    DATA is bytes, text (written as UTF-8), a binary file object, whose rest is copied in
    blocks (a large file never sits in memory whole), or a function that writes to the open
    binary handle it is given.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            if hasattr(data, "read"):
                for block in iter(lambda: data.read(1 << 20), b""):
                    handle.write(block)
            elif callable(data):
                data(handle)
            else:
                handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


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
    """PATH as a normalised absolute path; TemplateError if relative, with '..' or '.', or NUL."""
    if not isinstance(path, str) or not path:
        raise TemplateError("A path must be a non-empty string, not %r." % (path,))
    if "\x00" in path:
        raise TemplateError("The path %r contains a NUL byte." % path)
    if not path.startswith("/"):
        raise TemplateError("The path %r is not absolute." % path)
    parts = [p for p in path.split("/") if p]
    if any(p in ("..", ".") for p in parts):
        raise TemplateError("The path %r contains a '.' or '..' component." % path)
    return "/" + "/".join(parts)


def is_within(path, root):
    """True when normalised PATH equals ROOT or lies below it."""
    root = "/" + "/".join(p for p in root.split("/") if p)
    return root == "/" or path == root or path.startswith(root + "/")


def check_path(path, roots=None):
    """Normalised PATH, or TemplateError when it is not absolute/clean or outside ROOTS."""
    norm = normalize_path(path)
    if roots and not any(is_within(norm, normalize_path(r)) for r in roots):
        raise TemplateError("The path %s is outside the allowed roots %s." % (norm, ", ".join(roots)))
    return norm


def bundle_relpath(path, area=BUNDLE_FILES):
    """Where PATH's content lives inside a bundle: 'files/usr/bin/x'."""
    return posixpath.join(area, normalize_path(path).lstrip("/"))


def safe_join(base, path, area=BUNDLE_FILES):
    """BASE/AREA/PATH on the local disk, refusing anything that escapes BASE via symlinks."""
    candidate = os.path.join(base, bundle_relpath(path, area))
    real_base = os.path.realpath(base)
    real = os.path.realpath(candidate)
    if real != real_base and not real.startswith(real_base.rstrip("/") + "/"):
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
    expected = set()
    for path, rel, digest in bundled_files(doc):
        local = safe_join(directory, path, rel.split("/", 1)[0])
        expected.add(os.path.normpath(local))
        if not os.path.isfile(local):
            raise TemplateError("The bundle lacks %s, which the template says it holds." % rel)
        if digest and sha256_file(local) != digest:
            raise TemplateError("The bundled copy %s does not match its sha256 in the template." % rel)
    for area in (BUNDLE_FILES, BUNDLE_BEFORE):
        for base, _dirs, files in os.walk(os.path.join(directory, area)):
            for name in files:
                if os.path.normpath(os.path.join(base, name)) not in expected:
                    raise TemplateError("The bundle holds %s, which the template does not list."
                                        % os.path.relpath(os.path.join(base, name), directory))
    return doc


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
