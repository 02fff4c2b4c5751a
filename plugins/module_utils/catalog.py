# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release catalog (``mo_fleet_catalog``): load, validate, normalize.

The catalog is inventory data shared by the repository server (publish) and the release engine
(plan, rollout, client role).  Its JSON Schema lives in ``schemas/catalog.schema.json``; this
module repeats every check of that schema in pure Python (so validation is complete on a target
without ``jsonschema``) and adds what a schema cannot say: references to schedules, package sets
and stores that must exist, and names that must be unique.  When ``jsonschema`` is importable and
the schema file is beside the collection, the schema is checked as well, as a second opinion.

Every problem is one sentence naming the object and the field, for example::

    deployment 'firefox-12': field 'start_date': '2026-13-01' is not a valid YYYY-MM-DD date

API::

    load_catalog(data) -> dict          # normalized copy; raises CatalogError
    validate_catalog(data) -> [str]     # every problem found, [] when valid
    parse_date(value) -> datetime.date  # 'YYYY-MM-DD' or a date; raises ValueError
    CatalogError(errors)                # str(e) is the first sentence, e.errors all of them

The normalized catalog has plain Python types only, ISO date strings, ``project`` None when not
given, and every optional field filled in (``enabled: true``, ``schedule: None``, empty lists, ``source: internal``, ``duration: 1``,
per-deployment ``halt_after_failures`` inherited from the catalog, default 0).
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping

from ansible_collections.mo.fleet.plugins.module_utils._common import names
from ansible_collections.mo.fleet.plugins.module_utils._common.fields import APT_FIELDS

try:  # controller side only; the pure-Python checks below are complete without it
    import jsonschema
    HAS_JSONSCHEMA = True
except ImportError:  # pragma: no cover - exercised on targets
    jsonschema = None
    HAS_JSONSCHEMA = False

__all__ = ["CatalogError", "load_catalog", "validate_catalog", "parse_date", "SCHEMA_PATH"]

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "schemas",
                           "catalog.schema.json")

# one pattern per kind of name, matched whole (``_common/names``); the names below are kinds
SAFE_NAME, DATE_RE, APT_PACKAGE, ARCH, URL, SUITE = "safe", "date", "apt_package", "architecture", "http_url", "suite"

MAX_DELAY = 10000     # working days (about 38 years); keeps every date computable
MAX_DURATION = 1000

TOP_FIELDS = ("project", "holidays", "halt_after_failures", "stores", "package_sets", "schedules",
              "deployments")
LIST_FIELDS = ("packages", "package_sets", "included_attributes", "excluded_attributes")
EXTERNAL_FIELDS = ("base_url", "suite", "components", "frozen")
DEPLOYMENT_FIELDS = ("name", "enabled", "comment", "start_date", "schedule") + LIST_FIELDS \
    + APT_FIELDS + ("source",) + EXTERNAL_FIELDS + ("store", "halt_after_failures")


class CatalogError(ValueError):
    """A catalog problem; ``str(error)`` is one sentence, ``error.errors`` lists them all."""

    def __init__(self, errors):
        if isinstance(errors, str):
            errors = [errors]
        self.errors = list(errors) or ["catalog: invalid"]
        super().__init__(self.errors[0])


def parse_date(value):
    """Return a ``datetime.date`` for a date or a strict ``YYYY-MM-DD`` string; ValueError if not."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return datetime.date(value.year, value.month, value.day)
    if names.is_valid(DATE_RE, value):
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


def _kind(value):
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def _plain(value):
    """Plain JSON-like copy: dates -> ISO strings, None-valued mapping keys dropped."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
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


class _Checker:
    """Collects one-sentence problems while walking the catalog."""

    def __init__(self):
        self.errors = []

    def add(self, owner, field, problem):
        self.errors.append(f"{owner}: field '{field}': {problem}")

    # -- scalar checks: return True when the value is acceptable -------------------------
    def string(self, owner, field, value, nonempty=False):
        if not isinstance(value, str):
            self.add(owner, field, f"{_show(value)} is not a string")
            return False
        if nonempty and not value:
            self.add(owner, field, "must not be empty")
            return False
        return True

    def name(self, owner, field, value):
        if not self.string(owner, field, value):
            return False
        if not names.is_valid(SAFE_NAME, value):
            self.add(owner, field, f"{_show(value)} is not a valid name (letters, digits, '.', '_', '-', "
                                   "starting with a letter or digit, at most 64 characters, no '..')")
            return False
        return True

    def boolean(self, owner, field, value):
        if not isinstance(value, bool):
            self.add(owner, field, f"{_show(value)} is not a boolean")
            return False
        return True

    def integer(self, owner, field, value, minimum, maximum):
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(owner, field, f"{_show(value)} is not an integer")
            return False
        if value < minimum:
            self.add(owner, field, f"{value} is below the minimum {minimum}")
            return False
        if value > maximum:
            self.add(owner, field, f"{value} is above the maximum {maximum}")
            return False
        return True

    def percent(self, owner, field, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.add(owner, field, f"{_show(value)} is not a number")
            return False
        if not 0 <= value <= 100:
            self.add(owner, field, f"{value} is not a percentage between 0 and 100")
            return False
        return True

    def date(self, owner, field, value):
        try:
            parse_date(value)
        except ValueError:
            self.add(owner, field, f"{_show(value)} is not a valid YYYY-MM-DD date")
            return False
        return True

    def pattern(self, owner, field, value, kind, what):
        """VALUE must be a string of KIND (``_common/names``, matched whole)."""
        if not self.string(owner, field, value):
            return False
        if not names.is_valid(kind, value):
            self.add(owner, field, f"{_show(value)} is not {what}")
            return False
        return True

    # -- containers -------------------------------------------------------------------------
    def mapping(self, owner, field, value):
        if not isinstance(value, dict):
            self.add(owner, field, f"must be a mapping, got {_kind(value)}")
            return False
        return True

    def listof(self, owner, field, value, item_check=None, min_items=0):
        """A list whose items pass ITEM_CHECK(owner, 'field[i]', item); True when all do."""
        if not isinstance(value, (list, tuple)):
            self.add(owner, field, f"must be a list, got {_kind(value)} {_show(value)}"
                     if isinstance(value, (str, int, float)) else f"must be a list, got {_kind(value)}")
            return False
        if len(value) < min_items:
            self.add(owner, field, f"must have at least {min_items} item(s)")
            return False
        ok = True
        if item_check is not None:
            for index, item in enumerate(value):
                ok = item_check(owner, f"{field}[{index}]", item) and ok
        return ok

    def strings(self, owner, field, value):
        return self.listof(owner, field, value, lambda o, f, v: self.string(o, f, v, nonempty=True))

    def unknown(self, owner, mapping, known, field_prefix=""):
        for key in mapping:
            if key not in known:
                self.add(owner, f"{field_prefix}{key}", "unknown field (expected one of: "
                         + ", ".join(known) + ")")

    def required(self, owner, mapping, fields, field_prefix=""):
        ok = True
        for key in fields:
            if key not in mapping:
                self.add(owner, f"{field_prefix}{key}", "missing (required)")
                ok = False
        return ok


def _owner(kind, item, index):
    name = item.get("name") if isinstance(item, dict) else None
    if isinstance(name, str) and name:
        return f"{kind} '{name}'"
    return f"{kind} #{index + 1} (no name)"


def _named_list(chk, raw, key):
    """Check RAW[KEY] is a list of mappings; return [(index, owner, item)] for the mappings."""
    value = raw.get(key, [])
    if not chk.listof("catalog", key, value):
        return []
    out = []
    kind = key.rstrip("s").replace("_", " ")
    for index, item in enumerate(value):
        owner = _owner(kind, item, index)
        if not chk.mapping("catalog", f"{key}[{index}]", item):
            continue
        out.append((index, owner, item))
    return out


def _duplicates(chk, entries, what):
    seen = set()
    for index, owner, item in entries:
        name = item.get("name")
        if isinstance(name, str):
            if name in seen:
                chk.add(owner, "name", f"duplicate {what} name {_show(name)}")
            seen.add(name)
    return seen


def _check(raw):
    """Every problem of the plain catalog RAW, as sentences (pure Python, schema + semantics)."""
    chk = _Checker()
    if not isinstance(raw, dict):
        return [f"catalog: must be a mapping, got {_kind(raw)}"]
    chk.unknown("catalog", raw, TOP_FIELDS)
    chk.required("catalog", raw, ("deployments",))

    if "project" in raw and chk.mapping("catalog", "project", raw["project"]):
        project = raw["project"]
        chk.unknown("project", project, ("name", "architectures"))
        if chk.required("project", project, ("name",)):
            chk.name("project", "name", project["name"])
        if "architectures" in project:
            archs = project["architectures"]
            if chk.listof("project", "architectures", archs,
                          lambda o, f, v: chk.pattern(o, f, v, ARCH, "a Debian architecture name"),
                          min_items=1) and len(set(archs)) != len(archs):
                chk.add("project", "architectures", "lists an architecture twice")
    if "holidays" in raw:
        chk.listof("catalog", "holidays", raw["holidays"], chk.date)
    if "halt_after_failures" in raw:
        chk.percent("catalog", "halt_after_failures", raw["halt_after_failures"])

    stores = _named_list(chk, raw, "stores")
    for _index, owner, store in stores:
        chk.unknown(owner, store, ("name", "comment"))
        if chk.required(owner, store, ("name",)):
            chk.name(owner, "name", store["name"])
        if "comment" in store:
            chk.string(owner, "comment", store["comment"])
    store_names = _duplicates(chk, stores, "store")

    sets = _named_list(chk, raw, "package_sets")
    for _index, owner, pset in sets:
        chk.unknown(owner, pset, ("name", "store", "comment", "packages"))
        if chk.required(owner, pset, ("name",)):
            chk.name(owner, "name", pset["name"])
        if "store" in pset and chk.name(owner, "store", pset["store"]) \
                and pset["store"] not in store_names:
            chk.add(owner, "store", f"names the store {_show(pset['store'])}, which is not in 'stores'")
        if "comment" in pset:
            chk.string(owner, "comment", pset["comment"])
        if "packages" in pset:
            chk.strings(owner, "packages", pset["packages"])
    set_names = _duplicates(chk, sets, "package set")

    deployments = _named_list(chk, raw, "deployments")
    users = {}  # schedule name -> first deployment naming it
    for _index, _owner_, dep in deployments:
        if isinstance(dep.get("schedule"), str) and isinstance(dep.get("name"), str):
            users.setdefault(dep["schedule"], dep["name"])

    schedules = _named_list(chk, raw, "schedules")
    for _index, owner, sched in schedules:
        if isinstance(sched.get("name"), str) and sched["name"] in users:
            owner = f"{owner} (used by deployment '{users[sched['name']]}')"
        chk.unknown(owner, sched, ("name", "description", "delays"))
        if chk.required(owner, sched, ("name", "delays")):
            chk.string(owner, "name", sched["name"], nonempty=True)
        if "description" in sched:
            chk.string(owner, "description", sched["description"])
        delays = sched.get("delays", [])
        if not chk.listof(owner, "delays", delays):
            continue
        for i, delay in enumerate(delays):
            prefix = f"delays[{i}]."
            if not chk.mapping(owner, f"delays[{i}]", delay):
                continue
            chk.unknown(owner, delay, ("delay", "attributes", "duration"), prefix)
            chk.required(owner, delay, ("delay", "attributes"), prefix)
            if "delay" in delay:
                chk.integer(owner, prefix + "delay", delay["delay"], 0, MAX_DELAY)
            if "attributes" in delay:
                chk.strings(owner, prefix + "attributes", delay["attributes"])
            if "duration" in delay:
                chk.integer(owner, prefix + "duration", delay["duration"], 1, MAX_DURATION)
    schedule_names = _duplicates(chk, schedules, "schedule")

    for _index, owner, dep in deployments:
        chk.unknown(owner, dep, DEPLOYMENT_FIELDS)
        chk.required(owner, dep, ("name", "start_date"))
        if "name" in dep:
            chk.name(owner, "name", dep["name"])
        if "enabled" in dep:
            chk.boolean(owner, "enabled", dep["enabled"])
        if "comment" in dep:
            chk.string(owner, "comment", dep["comment"])
        if "start_date" in dep:
            chk.date(owner, "start_date", dep["start_date"])
        if "schedule" in dep and chk.string(owner, "schedule", dep["schedule"]) \
                and dep["schedule"] not in schedule_names:
            chk.add(owner, "schedule", f"names the schedule {_show(dep['schedule'])}, which is not in 'schedules'")
        for field in LIST_FIELDS:
            if field in dep:
                chk.strings(owner, field, dep[field])
        if isinstance(dep.get("package_sets"), list):
            for i, name in enumerate(dep["package_sets"]):
                if isinstance(name, str) and name and name not in set_names:
                    chk.add(owner, f"package_sets[{i}]",
                            f"names the package set {_show(name)}, which is not in 'package_sets'")
        for field in APT_FIELDS:
            if field in dep:
                chk.listof(owner, field, dep[field], lambda o, f, v: chk.pattern(
                    o, f, v, APT_PACKAGE, "a Debian package name (optionally ':arch' and '=version')"))
        source = dep.get("source", "internal")
        if source not in ("internal", "external"):
            chk.add(owner, "source", f"{_show(source)} is not 'internal' or 'external'")
        elif source == "external":
            chk.required(owner, dep, ("base_url", "suite"))
            if "base_url" in dep:
                chk.pattern(owner, "base_url", dep["base_url"], URL, "an http:// or https:// URL")
            if "suite" in dep:
                chk.pattern(owner, "suite", dep["suite"], SUITE, "a suite name")
            if "components" in dep:
                chk.listof(owner, "components", dep["components"],
                           lambda o, f, v: chk.pattern(o, f, v, SUITE, "a component name"), min_items=1)
            if "frozen" in dep:
                chk.boolean(owner, "frozen", dep["frozen"])
        else:  # empty values are accepted so that a normalized catalog validates again
            for field in EXTERNAL_FIELDS:
                if field in dep and dep[field] not in ([], False):
                    chk.add(owner, field, "is only valid with 'source: external'")
        if "store" in dep and chk.name(owner, "store", dep["store"]) and dep["store"] not in store_names:
            chk.add(owner, "store", f"names the store {_show(dep['store'])}, which is not in 'stores'")
        if "halt_after_failures" in dep:
            chk.percent(owner, "halt_after_failures", dep["halt_after_failures"])
    _duplicates(chk, deployments, "deployment")
    return chk.errors


_SCHEMA_CACHE = {}


def load_schema(path=SCHEMA_PATH):
    """The catalog JSON Schema, or None when the file is not beside the collection."""
    path = os.path.normpath(path)
    if path not in _SCHEMA_CACHE:
        try:
            with open(path, encoding="utf-8") as handle:
                _SCHEMA_CACHE[path] = json.load(handle)
        except OSError:
            _SCHEMA_CACHE[path] = None
    return _SCHEMA_CACHE[path]


def _schema_sentence(raw, error):
    """Turn a jsonschema error into the same one-sentence shape as the Python checks."""
    path = list(error.absolute_path)
    owner, fields = "catalog", path
    if len(path) >= 2 and path[0] in ("deployments", "schedules", "stores", "package_sets") \
            and isinstance(path[1], int):
        kind = path[0].rstrip("s").replace("_", " ")
        owner = _owner(kind, raw[path[0]][path[1]], path[1])
        fields = path[2:]
    elif path and path[0] == "project":
        owner, fields = "project", path[1:]
    field = ""
    for part in fields:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    if not field and error.validator == "required":
        field = str(error.message.split("'")[1]) if "'" in error.message else "?"
    return f"{owner}: field '{field or '(whole)'}': {error.message} (schema)"


def schema_errors(raw, schema=None):
    """Problems found by jsonschema (empty when jsonschema or the schema file is unavailable)."""
    schema = schema if schema is not None else load_schema()
    if not HAS_JSONSCHEMA or schema is None:
        return []
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(raw), key=lambda e: list(map(str, e.absolute_path)))
    return [_schema_sentence(raw, e) for e in errors]


def validate_catalog(data, use_schema=True):
    """Every problem of DATA as one-sentence strings; [] when the catalog is valid."""
    raw = _plain(data)
    errors = _check(raw)
    if not errors and use_schema:
        errors = schema_errors(raw)
    return errors


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


def load_catalog(data, use_schema=True):
    """Validate DATA and return its normalized copy; raise CatalogError (one sentence) if invalid."""
    errors = validate_catalog(data, use_schema=use_schema)
    if errors:
        raise CatalogError(errors)
    return _normalize(_plain(data))
