# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release catalog (``mo_fleet_catalog``): load, validate, normalize.

The catalog is inventory data shared by the repository server (publish) and the release engine
(plan, rollout, client role).  Its JSON Schema is ``SCHEMA`` below, the single source of truth
(``schemas/catalog.schema.json`` is generated from it, a unit test keeps them equal), and it is
checked by the one validator (``_common/validate``, standard library only, the same on the
controller and on targets).  This module adds what a schema cannot say: dates that are real
calendar dates, references to schedules, package sets and stores that must exist, and names
that must be unique.

Every problem is one sentence naming the object (by its name, quoted and escaped) and the
field, for example::

    deployment 'firefox-12': field 'start_date': '2026-13-01' is not a valid YYYY-MM-DD date
    schedule 'slow': field 'delays[1].duration': must be at least 1, not 0.

Untrusted sizes are capped: a list holds at most 10000 items and a free text (comment,
description) at most 1024 characters; a larger catalog is refused in one sentence.

API::

    load_catalog(data) -> dict          # normalized copy; raises CatalogError
    validate_catalog(data) -> [str]     # every problem found, [] when valid
    parse_date(value) -> datetime.date  # 'YYYY-MM-DD' or a date; raises ValueError
    schema() / schema_json()            # the schema (a copy) / the text of the schema file
    CatalogError(errors)                # str(e) is the first sentence, e.errors all of them

The normalized catalog has plain Python types only, ISO date strings, ``project`` None when not
given, and every optional field filled in (``enabled: true``, ``schedule: None``, empty lists, ``source: internal``, ``duration: 1``,
per-deployment ``halt_after_failures`` inherited from the catalog, default 0).
"""

from __future__ import annotations

import copy
import datetime
import os
from collections.abc import Mapping

from ansible_collections.mo.fleet.plugins.module_utils._common import names
from ansible_collections.mo.fleet.plugins.module_utils._common import validate as _validate
from ansible_collections.mo.fleet.plugins.module_utils._common.fields import APT_FIELDS

__all__ = ["CatalogError", "load_catalog", "validate_catalog", "parse_date", "SCHEMA", "SCHEMA_PATH",
           "schema", "schema_json"]

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "schemas",
                           "catalog.schema.json")

MAX_DELAY = 10000     # working days (about 38 years); keeps every date computable
MAX_DURATION = 1000
MAX_ITEMS = 10000     # items of any list
MAX_TEXT = 1024       # characters of a comment or description
MAX_ENTRY = 512       # characters of an attribute or a package entry

LIST_FIELDS = ("packages", "package_sets", "included_attributes", "excluded_attributes")
EXTERNAL_FIELDS = ("base_url", "suite", "components", "frozen")


class CatalogError(ValueError):
    """A catalog problem; ``str(error)`` is one sentence, ``error.errors`` lists them all."""

    def __init__(self, errors):
        if isinstance(errors, str):
            errors = [errors]
        self.errors = list(errors) or ["The catalog is invalid."]
        super().__init__(self.errors[0])


# --------------------------------------------------------------------------- the schema

_NO_DOTDOT = {"pattern": "^[\\s\\S]*\\.\\.[\\s\\S]*$"}


def _kind(kind, rule=None, max_length=None):
    """A string of KIND (``_common/names``), matched whole; refused with RULE's words."""
    node = {"type": "string", "pattern": f"^{names.PATTERNS[kind]}$",
            "x-rule": rule or f"is not {names.RULES[kind]}"}
    if kind in ("safe", "suite"):
        node["not"] = _NO_DOTDOT
    if max_length is not None:
        node["maxLength"] = max_length
    return node


def _list(item, **extra):
    return dict({"type": "array", "maxItems": MAX_ITEMS, "items": item}, **extra)


_SAFE = {"$ref": "#/$defs/safe_name"}
_TEXT = {"$ref": "#/$defs/text"}
_ONLY_EXTERNAL = "is only valid with 'source: external'"

_DESCRIPTION = ("Stores, package sets, schedules (calendars of delays in working days) and deployments "
                "(migasfree repositories). Generated from plugins/module_utils/_repo/catalog.py SCHEMA, which "
                "also checks what a schema cannot say: real calendar dates, references between objects "
                "(a deployment naming a schedule, a package set or a store) and duplicate names. Every "
                "list holds at most %d items, every comment or description at most %d characters."
                % (MAX_ITEMS, MAX_TEXT))
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:mo.fleet:schema:catalog:1",
    "title": "mo.fleet release catalog (mo_fleet_catalog)",
    "description": _DESCRIPTION,
    "type": "object",
    "additionalProperties": False,
    "required": ["deployments"],
    "properties": {
        "project": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": _SAFE,
                "architectures": _list(_kind("architecture"), minItems=1, uniqueItems=True),
            },
        },
        "holidays": dict(_list({"$ref": "#/$defs/date"}),
                         description="Non-working days (YYYY-MM-DD) besides Saturdays and Sundays."),
        "halt_after_failures": {"$ref": "#/$defs/percent"},
        "stores": _list({
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {"name": _SAFE, "comment": _TEXT},
        }),
        "package_sets": _list({
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {"name": _SAFE, "store": _SAFE, "comment": _TEXT,
                           "packages": {"$ref": "#/$defs/entries"}},
        }),
        "schedules": _list({
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "delays"],
            "properties": {
                "name": _SAFE,
                "description": _TEXT,
                "delays": _list({
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["delay", "attributes"],
                    "properties": {
                        "delay": {"type": "integer", "minimum": 0, "maximum": MAX_DELAY},
                        "attributes": {"$ref": "#/$defs/entries"},
                        "duration": {"type": "integer", "minimum": 1, "maximum": MAX_DURATION, "default": 1},
                    },
                }),
            },
        }),
        "deployments": _list({"$ref": "#/$defs/deployment"}),
    },
    "$defs": {
        "date": dict(_kind("date"), format="date"),
        "percent": {"type": "number", "minimum": 0, "maximum": 100},
        "safe_name": _kind("safe", f"is not a safe name ({names.RULES['safe']})"),
        "text": _kind("line", max_length=MAX_TEXT),
        "entries": _list(dict(_kind("line", max_length=MAX_ENTRY), minLength=1)),
        "apt_packages": _list(_kind("apt_package")),
        "suite": _kind("suite", max_length=255),
        "deployment": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "start_date"],
            "properties": dict(
                {
                    "name": _SAFE,
                    "enabled": {"type": "boolean", "default": True},
                    "comment": _TEXT,
                    "start_date": {"$ref": "#/$defs/date"},
                    "schedule": dict(_kind("safe", f"is not a safe name ({names.RULES['safe']})"),
                                     type=["string", "null"]),
                    "packages": {"$ref": "#/$defs/entries"},
                    "package_sets": {"$ref": "#/$defs/entries"},
                    "included_attributes": {"$ref": "#/$defs/entries"},
                    "excluded_attributes": {"$ref": "#/$defs/entries"},
                    "source": {"enum": ["internal", "external"], "default": "internal"},
                    "base_url": _kind("http_url", max_length=2048),
                    "suite": {"$ref": "#/$defs/suite"},
                    "components": _list({"$ref": "#/$defs/suite"}),
                    "frozen": {"type": "boolean", "default": False},
                    "store": _SAFE,
                    "halt_after_failures": {"$ref": "#/$defs/percent"},
                },
                **dict((field, {"$ref": "#/$defs/apt_packages"}) for field in APT_FIELDS)),
            "if": {"properties": {"source": {"const": "external"}}, "required": ["source"]},
            "then": {"required": ["base_url", "suite"], "properties": {"components": {"minItems": 1}}},
            "else": {  # empty values are accepted so that a normalized catalog validates again
                "properties": {
                    "base_url": {"not": {}, "x-rule": _ONLY_EXTERNAL},
                    "suite": {"not": {}, "x-rule": _ONLY_EXTERNAL},
                    "components": {"not": {"minItems": 1}, "x-rule": _ONLY_EXTERNAL},
                    "frozen": {"not": {"const": True}, "x-rule": _ONLY_EXTERNAL},
                },
            },
        },
    },
}


def schema():
    """A deep copy of the catalog schema (what schemas/catalog.schema.json holds)."""
    return copy.deepcopy(SCHEMA)


def schema_json():
    """The schema as the canonical text of schemas/catalog.schema.json (patterns anchored
    so every JSON Schema tool matches them whole, as the one validator does)."""
    return _validate.export(SCHEMA)


# --------------------------------------------------------------------------- values

def parse_date(value):
    """Return a ``datetime.date`` for a date or a strict ``YYYY-MM-DD`` string; ValueError if not."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return datetime.date(value.year, value.month, value.day)
    if names.is_valid("date", value):
        try:
            return datetime.date(int(value[0:4]), int(value[5:7]), int(value[8:10]))
        except ValueError:
            pass
    raise ValueError(f"{_show(value)} is not a valid YYYY-MM-DD date")


def _show(value):
    """A short, quoted rendering of a value for an error sentence."""
    if isinstance(value, (datetime.date, datetime.datetime)):
        text = repr(value.isoformat())
    elif isinstance(value, str):
        text = repr(str(value))
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, dict):
        text = "a mapping"
    elif isinstance(value, (list, tuple)):
        text = "a list"
    else:
        text = f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def _json_ready(value):
    """Plain JSON-like copy: dates -> ISO strings, None-valued mapping keys dropped."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return (value.date() if isinstance(value, datetime.datetime) else value).isoformat()
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


# --------------------------------------------------------------------------- sentences

_KINDS = {"deployments": "deployment", "schedules": "schedule", "stores": "store",
          "package_sets": "package set"}


def _owner(kind, item, index):
    name = item.get("name") if isinstance(item, dict) else None
    if isinstance(name, str) and name:
        return f"{kind} {_show(name)}"
    return f"{kind} #{index + 1} (no name)"


def _field(parts):
    field = ""
    for part in parts:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    return field


def _sentence(raw, path, words, users):
    """One sentence for the validator's (PATH, WORDS): the object by its name, then the field."""
    owner, rest = "catalog", list(path)
    item = raw[path[0]][path[1]] if len(path) >= 2 and path[0] in _KINDS and isinstance(path[1], int) else None
    if isinstance(item, dict):
        owner = _owner(_KINDS[path[0]], item, path[1])
        if path[0] == "schedules" and isinstance(item.get("name"), str) and item["name"] in users:
            owner += f" (used by deployment {_show(users[item['name']])})"
        rest = list(path[2:])
    elif path and path[0] == "project" and isinstance(raw, dict) and isinstance(raw.get("project"), dict):
        owner, rest = "project", list(path[1:])
    field = _field(rest)
    return f"{owner}: field '{field}': {words}" if field else f"{owner}: {words}"


def _users(raw):
    """Schedule name -> the first deployment naming it (for the schedule's sentences)."""
    users = {}
    deps = raw.get("deployments") if isinstance(raw, dict) else None
    for dep in deps if isinstance(deps, list) else ():
        if isinstance(dep, dict) and isinstance(dep.get("schedule"), str) and isinstance(dep.get("name"), str):
            users.setdefault(dep["schedule"], dep["name"])
    return users


# --------------------------------------------------------------------------- semantics

def _semantic_errors(raw):
    """What the schema cannot say, for a catalog the schema accepts: one sentence each."""
    errors = []
    for index, day in enumerate(raw.get("holidays", [])):
        if not _is_date(day):
            errors.append(f"catalog: field 'holidays[{index}]': {_show(day)} is not a valid YYYY-MM-DD date")
    stores = _unique(errors, raw, "stores")
    sets = _unique(errors, raw, "package_sets")
    schedules = _unique(errors, raw, "schedules")
    _unique(errors, raw, "deployments")
    for index, pset in enumerate(raw.get("package_sets", [])):
        if "store" in pset and pset["store"] not in stores:
            errors.append(f"{_owner('package set', pset, index)}: field 'store': names the store "
                          f"{_show(pset['store'])}, which is not in 'stores'")
    for index, dep in enumerate(raw["deployments"]):
        owner = _owner("deployment", dep, index)
        if not _is_date(dep["start_date"]):
            errors.append(f"{owner}: field 'start_date': {_show(dep['start_date'])} is not a valid YYYY-MM-DD date")
        if "schedule" in dep and dep["schedule"] not in schedules:
            errors.append(f"{owner}: field 'schedule': names the schedule {_show(dep['schedule'])}, "
                          "which is not in 'schedules'")
        for i, name in enumerate(dep.get("package_sets", [])):
            if name not in sets:
                errors.append(f"{owner}: field 'package_sets[{i}]': names the package set {_show(name)}, "
                              "which is not in 'package_sets'")
        if "store" in dep and dep["store"] not in stores:
            errors.append(f"{owner}: field 'store': names the store {_show(dep['store'])}, which is not in 'stores'")
    return errors


def _is_date(text):
    try:
        parse_date(text)
    except ValueError:
        return False
    return True


def _unique(errors, raw, key):
    """The names of RAW[KEY]'s objects; a name given twice is one sentence in ERRORS."""
    seen = set()
    for index, item in enumerate(raw.get(key, [])):
        if item["name"] in seen:
            owner = _owner(_KINDS[key], item, index)
            errors.append(f"{owner}: field 'name': duplicate {_KINDS[key]} name {_show(item['name'])}")
        seen.add(item["name"])
    return seen


def _check(raw):
    """Every problem of the plain catalog RAW, as sentences: the schema, then the semantics."""
    found = _validate.problems(raw, SCHEMA)
    if found:
        users = _users(raw)
        return [_sentence(raw, path, words, users) for path, words in found]
    return _semantic_errors(raw)


_TOO_DEEP = "catalog: is nested too deeply to be read (a catalog is at most a few levels deep)."


def validate_catalog(data):
    """Every problem of DATA as one-sentence strings; [] when the catalog is valid."""
    try:
        return _check(_json_ready(data))
    except RecursionError:
        return [_TOO_DEEP]


def _normalize(raw):
    default_halt = raw.get("halt_after_failures", 0)
    out = {
        "project": dict(raw["project"]) if "project" in raw else None,
        "holidays": sorted({parse_date(d).isoformat() for d in raw.get("holidays", [])}),
        "halt_after_failures": default_halt,
        "stores": [dict({"comment": ""}, **s) for s in raw.get("stores", [])],
        "package_sets": [dict({"store": None, "comment": "", "packages": []}, **s)
                         for s in raw.get("package_sets", [])],
        "schedules": [],
        "deployments": [],
    }
    for sched in raw.get("schedules", []):
        out["schedules"].append({
            "name": sched["name"],
            "description": sched.get("description", ""),
            "delays": [{"delay": d["delay"], "attributes": list(d["attributes"]),
                        "duration": d.get("duration", 1)} for d in sched["delays"]],
        })
    for dep in raw["deployments"]:
        norm = {
            "name": dep["name"],
            "enabled": dep.get("enabled", True),
            "comment": dep.get("comment", ""),
            "start_date": parse_date(dep["start_date"]).isoformat(),
            "schedule": dep.get("schedule"),
            "source": dep.get("source", "internal"),
            "store": dep.get("store"),
            "halt_after_failures": dep.get("halt_after_failures", default_halt),
        }
        for field in LIST_FIELDS + APT_FIELDS:
            norm[field] = list(dep.get(field, []))
        if norm["source"] == "external":
            norm.update(base_url=dep["base_url"], suite=dep["suite"],
                        components=list(dep.get("components", ["main"])), frozen=dep.get("frozen", False))
        else:
            norm.update(base_url=None, suite=None, components=[], frozen=False)
        out["deployments"].append(norm)
    return out


def load_catalog(data):
    """Validate DATA and return its normalized copy; raise CatalogError (one sentence) if invalid."""
    errors = validate_catalog(data)
    if errors:
        raise CatalogError(errors)
    return _normalize(_json_ready(data))
