# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one validator: every document mo.fleet reads from elsewhere is checked here.

A schema is a JSON Schema (draft 2020-12) dict, the single source of truth that the files in
``schemas/`` are generated from.  This checker implements the subset the collection's
schemas use, in plain Python, so controller and targets run the same rules:

``type`` (with booleans never counting as numbers, and NaN/infinity never numbers at all),
``const``, ``enum``, ``pattern``, ``minLength``, ``maxLength``, ``minimum``, ``maximum``,
``minItems``, ``maxItems``, ``x-rule`` (the words a pattern refusal uses), ``uniqueItems`` (for strings), ``required``, ``properties``,
``additionalProperties`` (false or a schema), ``propertyNames``, ``items`` and ``$ref`` to
``#/$defs/<name>``.

``pattern`` is matched against the WHOLE string: a pattern written ``^...$`` means what it
means in JSON Schema's ECMA-262 dialect, where ``$`` never matches before a trailing line
break (Python's ``re.search`` with ``$`` would accept ``"name\\n"``).

``errors(doc, schema, limit=20) -> list[str]``
    Every problem as one sentence naming the field (``operations/users_created/0/gid``).
``first_error(doc, schema) -> str or None``
"""

from __future__ import annotations

import math
import re

_TYPE_NAMES = {
    "object": "an object", "array": "a list", "string": "a string", "integer": "an integer",
    "number": "a number", "boolean": "true or false", "null": "null",
}


def _is(kind, value):
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if isinstance(value, bool):
        return False
    if kind == "integer":
        return isinstance(value, int)
    if kind == "number":
        return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    raise ValueError("unknown schema type %r" % kind)


def _type_of(value):
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    if isinstance(value, float) and not math.isfinite(value):
        return "a non-finite number"
    return {dict: "an object", list: "a list", str: "a string", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__)


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_PATTERNS = {}


def _whole(pattern):
    """PATTERN compiled to match a whole string (its ^ and $ anchors made exact)."""
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        body = pattern
        if body.startswith("^"):
            body = body[1:]
        if body.endswith("$") and not body.endswith("\\$"):
            body = body[:-1]
        compiled = _PATTERNS[pattern] = re.compile("(?:%s)" % body)
    return compiled


class _Walk(object):
    def __init__(self, root, limit):
        self.root = root
        self.limit = limit
        self.out = []

    def add(self, path, text):
        if len(self.out) < self.limit:
            self.out.append("%s %s" % ("/".join(str(p) for p in path) or "The document", text))

    def check(self, value, sch, path):
        if len(self.out) >= self.limit:
            return
        while "$ref" in sch:
            sch = self.root["$defs"][sch["$ref"].rsplit("/", 1)[-1]]
        kinds = sch.get("type")
        if kinds is not None:
            kinds = [kinds] if isinstance(kinds, str) else kinds
            if not any(_is(k, value) for k in kinds):
                self.add(path, "must be %s, not %s." % (" or ".join(_TYPE_NAMES[k] for k in kinds), _type_of(value)))
                return
        if "const" in sch and value != sch["const"]:
            self.add(path, "must be %s, not %s." % (_short(sch["const"]), _short(value)))
            return
        if "enum" in sch and value not in sch["enum"]:
            self.add(path, "must be one of %s, not %s." % (", ".join(map(str, sch["enum"])), _short(value)))
            return
        if isinstance(value, str):
            self._string(value, sch, path)
        elif _is("number", value):
            if "minimum" in sch and value < sch["minimum"]:
                self.add(path, "must be at least %s, not %s." % (sch["minimum"], _short(value)))
            elif "maximum" in sch and value > sch["maximum"]:
                self.add(path, "must be at most %s, not %s." % (sch["maximum"], _short(value)))
        elif isinstance(value, dict):
            self._object(value, sch, path)
        elif isinstance(value, list):
            self._array(value, sch, path)

    def _string(self, value, sch, path):
        if len(value) < sch.get("minLength", 0):
            self.add(path, "must not be empty." if sch["minLength"] == 1
                     else "must be at least %d characters long." % sch["minLength"])
        elif "maxLength" in sch and len(value) > sch["maxLength"]:
            self.add(path, "must be at most %d characters long, not %d." % (sch["maxLength"], len(value)))
        elif "pattern" in sch and not _whole(sch["pattern"]).fullmatch(value):
            self.add(path, "%s %s." % (_short(value), sch.get("x-rule")
                                       or "does not match %s" % sch["pattern"]))

    def _object(self, value, sch, path):
        for key in sch.get("required", ()):
            if key not in value:
                self.add(path, "is missing the required field %r." % key)
        props = sch.get("properties", {})
        extra = sch.get("additionalProperties", True)
        names = sch.get("propertyNames")
        for key, item in value.items():
            if not isinstance(key, str):
                self.add(path, "has a field name that is not a string: %s." % _short(key))
                continue
            if names is not None:
                before = len(self.out)
                self.check(key, names, path + ["(name %s)" % _short(key)])
                if len(self.out) > before:
                    continue
            if key in props:
                self.check(item, props[key], path + [key])
            elif extra is False:
                self.add(path, "has an unknown field %r." % key)
            elif isinstance(extra, dict):
                self.check(item, extra, path + [key])

    def _array(self, value, sch, path):
        if len(value) < sch.get("minItems", 0):
            self.add(path, "must hold at least %d items." % sch["minItems"])
        if "maxItems" in sch and len(value) > sch["maxItems"]:
            self.add(path, "must hold at most %d items, not %d." % (sch["maxItems"], len(value)))
            return
        items = sch.get("items")
        if items is not None:
            for index, item in enumerate(value):
                self.check(item, items, path + [index])
                if len(self.out) >= self.limit:
                    return
        if sch.get("uniqueItems") and all(isinstance(v, str) for v in value) and len(set(value)) != len(value):
            self.add(path, "lists an item twice.")


def errors(doc, schema, limit=20):
    """Every problem of DOC against SCHEMA, one sentence each naming the field (at most LIMIT)."""
    walk = _Walk(schema, limit)
    walk.check(doc, schema, [])
    return walk.out


def first_error(doc, schema):
    """The first problem of DOC against SCHEMA, or None when it is valid."""
    found = errors(doc, schema, limit=1)
    return found[0] if found else None
