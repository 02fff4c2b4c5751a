# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading older templates: ``detect_version`` and ``migrate`` of MO-capture 2.x documents to
the current version (a deep copy; the input is never changed).

Standard library only (runs on targets, Python 3.9+).
"""

from __future__ import annotations

import copy
import math
import re

from ansible_collections.mo.fleet.plugins.module_utils._common import validate as _validate
from ansible_collections.mo.fleet.plugins.module_utils._template.model import (
    build, empty_operations, MAX_ENTRIES, MAX_ID, MAX_SIZE, normalize_path, TEMPLATE_VERSION, TemplateError)


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
