# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one validator: every document mo.fleet reads from elsewhere is checked here.

A schema is a JSON Schema (draft 2020-12) dict, the single source of truth that the files in
``schemas/`` are generated from.  This checker implements the subset the collection's
schemas use, in plain Python, so controller and targets run the same rules:

``type`` (with booleans never counting as numbers, and NaN/infinity never numbers at all),
``const``, ``enum``, ``pattern``, ``minLength``, ``maxLength``, ``minimum``, ``maximum``,
``minItems``, ``maxItems``, ``maxProperties``, ``x-rule`` (the words a pattern refusal uses), ``uniqueItems`` (for strings), ``required``, ``properties``,
``additionalProperties`` (false or a schema), ``propertyNames``, ``items``, ``$ref`` to
``#/$defs/<name>``, the applicators ``not``, ``anyOf`` and ``if``/``then``/``else`` (a refusal
by ``not`` or ``anyOf`` uses the node's ``x-rule`` words), and the boolean schemas ``true`` and
``false``.  Annotations (``title``, ``description``, ``default``, ``format``, ``$schema``,
``$id``) are not checked.

``pattern`` is matched against the WHOLE string: a pattern written ``^...$`` means what it
means in JSON Schema's ECMA-262 dialect, where ``$`` never matches before a trailing line
break (Python's ``re.search`` with ``$`` would accept ``"name\\n"``).

``errors(doc, schema, limit=20, whole="The document") -> list[str]``
    Every problem as one sentence naming the field (``operations/users_created/0/gid``).
``problems(doc, schema, limit=20) -> list[(path tuple, str)]``
    The same problems with the path apart from the words that follow it.
``first_error(doc, schema) -> str or None``
``export(schema, schema_id, title) -> str``
    The text of SCHEMA's file in ``schemas/`` (patterns anchored for other JSON Schema tools).
``describe(value) -> str``
    What a value is in words ("an integer"), for sentences that must not show a class name.
"""

from __future__ import annotations

import json
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


def describe(value):
    """What VALUE is, in words for a sentence ("an integer", "a list"), never a Python class name."""
    for kind, words in (("object", "an object"), ("array", "a list"), ("string", "a string"),
                        ("boolean", "a boolean"), ("null", "null"), ("integer", "an integer")):
        if _is(kind, value):
            return words
    if isinstance(value, float):
        return "a number" if math.isfinite(value) else "a non-finite number"
    if isinstance(value, (tuple, set, frozenset)):
        return "a list"
    return "a value of another kind"


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


class _Out(object):
    def __init__(self, limit, whole="The document"):
        self.limit = limit
        self.whole = whole
        self.out = []
        self.pairs = []

    def add(self, path, key, text):
        if len(self.out) < self.limit:
            if key is not _NO_KEY:
                path = path + (key,)
            self.out.append("%s %s" % ("/".join(str(p) for p in path) or self.whole, text))
            self.pairs.append((tuple(path), text))


_NO_KEY = object()
_PY = {"object": (dict,), "array": (list,), "string": (str,), "integer": (int,), "number": (int, float),
       "boolean": (bool,), "null": (type(None),)}


def _compile(sch, root, cache):
    """A checker function(value, parent path, key, out) for the schema node SCH.

    Compiled once per node (cached by identity), so a big document only pays for the
    comparisons, not for reading the schema again per value.  The checker is built of
    closures (one per part of the node: the value's own keywords, an object's fields, an
    array's items, the applicators), as a closure's variables cost less than attributes."""
    while isinstance(sch, dict) and "$ref" in sch:
        sch = root["$defs"][sch["$ref"].rsplit("/", 1)[-1]]
    if sch is True:
        return _accept
    if sch is False:
        return _refuse
    cached = cache.get(id(sch))
    if cached is not None:
        return cached[1]
    cell = []

    def deferred(value, path, key, out):
        return cell[0](value, path, key, out)

    cache[id(sch)] = (sch, deferred)  # keeps SCH alive, so its id stays unique
    value_check = _value_checker(sch, _object_checker(sch, root, cache), _array_checker(sch, root, cache))
    apply = _applicator(sch, root, cache)
    if apply is None:
        check = value_check
    else:
        def check(value, path, key, out):
            before = len(out.out)
            value_check(value, path, key, out)
            if len(out.out) == before:
                apply(value, path, key, out)
    cell.append(check)
    return check


def _value_checker(sch, check_object, check_array):
    """The checker of SCH's own keywords (type, const, enum, string and number bounds), handing
    an object to CHECK_OBJECT and a list to CHECK_ARRAY."""
    kinds = sch.get("type")
    if isinstance(kinds, str):
        kinds = [kinds]
    exact = frozenset(t for k in (kinds or ()) for t in _PY[k]) - {float}
    type_words = " or ".join(_TYPE_NAMES[k] for k in kinds) if kinds else None
    has_const, const = "const" in sch, sch.get("const")
    enum = sch.get("enum")
    min_len, max_len = sch.get("minLength", 0), sch.get("maxLength")
    regex = _whole(sch["pattern"]) if "pattern" in sch else None
    rule = sch.get("x-rule") or ("does not match %s" % sch["pattern"] if regex else None)
    minimum, maximum = sch.get("minimum"), sch.get("maximum")

    def check(value, path, key, out):
        kind = type(value)
        if kinds is not None and kind not in exact and not any(_is(k, value) for k in kinds):
            out.add(path, key, "must be %s, not %s." % (type_words, _type_of(value)))
            return
        if has_const and value != const:
            out.add(path, key, "must be %s, not %s." % (_short(const), _short(value)))
            return
        if enum is not None and value not in enum:
            out.add(path, key, "must be one of %s, not %s." % (", ".join(map(str, enum)), _short(value)))
            return
        if isinstance(value, str):
            if len(value) < min_len:
                out.add(path, key, "must not be empty." if min_len == 1
                        else "must be at least %d characters long." % min_len)
            elif max_len is not None and len(value) > max_len:
                out.add(path, key, "must be at most %d characters long, not %d." % (max_len, len(value)))
            elif regex is not None and regex.fullmatch(value) is None:
                out.add(path, key, "%s %s." % (_short(value), rule))
        elif kind is dict or isinstance(value, dict):
            check_object(value, path if key is _NO_KEY else path + (key,), out)
        elif kind is list or isinstance(value, list):
            check_array(value, path if key is _NO_KEY else path + (key,), out)
        elif (minimum is not None or maximum is not None) and _is("number", value):
            if minimum is not None and value < minimum:
                out.add(path, key, "must be at least %s, not %s." % (minimum, _short(value)))
            elif maximum is not None and value > maximum:
                out.add(path, key, "must be at most %s, not %s." % (maximum, _short(value)))

    return check


def _object_checker(sch, root, cache):
    """The checker of an object's fields (required, properties, additionalProperties,
    propertyNames, maxProperties): function(value, path, out)."""
    required = tuple(sch.get("required", ()))
    max_props = sch.get("maxProperties")
    props = dict((k, _compile(v, root, cache)) for k, v in sch.get("properties", {}).items())
    extra = sch.get("additionalProperties", True)
    extra_check = _compile(extra, root, cache) if isinstance(extra, dict) else None
    closed = extra is False
    names = _compile(sch["propertyNames"], root, cache) if "propertyNames" in sch else None

    def check(value, path, out):
        if max_props is not None and len(value) > max_props:
            out.add(path, _NO_KEY, "must hold at most %d fields, not %d." % (max_props, len(value)))
            return
        for name in required:
            if name not in value:
                out.add(path, _NO_KEY, "is missing the required field %r." % name)
        for name, item in value.items():
            if len(out.out) >= out.limit:
                return
            if not isinstance(name, str):
                out.add(path, _NO_KEY, "has a field name that is not a string: %s." % _short(name))
                continue
            if names is not None:
                before = len(out.out)
                names(name, path, "(name %s)" % _short(name), out)
                if len(out.out) > before:
                    continue
            sub = props.get(name)
            if sub is not None:
                sub(item, path, name, out)
            elif closed:
                out.add(path, _NO_KEY, "has an unknown field %s." % _short(name))
            elif extra_check is not None:
                extra_check(item, path, name, out)

    return check


def _array_checker(sch, root, cache):
    """The checker of a list's items (items, minItems, maxItems, uniqueItems): function(value, path, out)."""
    min_items, max_items = sch.get("minItems", 0), sch.get("maxItems")
    items = _compile(sch["items"], root, cache) if isinstance(sch.get("items"), dict) else None
    unique = sch.get("uniqueItems")

    def check(value, path, out):
        if len(value) < min_items:
            out.add(path, _NO_KEY, "must hold at least %d items." % min_items)
        if max_items is not None and len(value) > max_items:
            out.add(path, _NO_KEY, "must hold at most %d items, not %d." % (max_items, len(value)))
            return
        if items is not None:
            for index, item in enumerate(value):
                items(item, path, index, out)
                if len(out.out) >= out.limit:
                    return
        if unique and all(isinstance(v, str) for v in value) and len(set(value)) != len(value):
            out.add(path, _NO_KEY, "lists an item twice.")

    return check


def _applicator(sch, root, cache):
    """The checker of not, anyOf and if/then/else (run only on a value that passed the node's
    own keywords), or None when SCH has none of them."""
    negated = _compile(sch["not"], root, cache) if "not" in sch else None
    any_of = tuple(_compile(s, root, cache) for s in sch.get("anyOf", ()))
    condition = _compile(sch["if"], root, cache) if "if" in sch else None
    then_ = _compile(sch["then"], root, cache) if "then" in sch else None
    else_ = _compile(sch["else"], root, cache) if "else" in sch else None
    if not (negated is not None or any_of or condition is not None):
        return None

    def apply(value, path, key, out):
        if negated is not None and _passes(negated, value):
            out.add(path, key, "%s %s." % (_short(value), sch.get("x-rule") or "matches a shape that is not allowed"))
            return
        if any_of and not any(_passes(sub, value) for sub in any_of):
            out.add(path, key, "%s %s." % (_short(value), sch.get("x-rule") or "matches none of the allowed shapes"))
            return
        if condition is not None:
            branch = then_ if _passes(condition, value) else else_
            if branch is not None:
                branch(value, path, key, out)

    return apply


def _passes(sub, value):
    probe = _Out(1)
    sub(value, (), _NO_KEY, probe)
    return not probe.out


def _accept(value, path, key, out):
    return None


def _refuse(value, path, key, out):
    out.add(path, key, "is not allowed here.")


_CHECKERS = {}


_END = r"(?![\s\S])"  # the end of the input in ECMA-262 and Python alike ($ is not, in Python)


def anchored(schema):
    """SCHEMA with every pattern made a whole-string match for any JSON Schema tool:
    ``^(?:body)(?![\\s\\S])``, which ECMA-262 and Python's re read the same way (Python's ``$``
    also matches before a final line break, so ``^...$`` would not do)."""
    if isinstance(schema, dict):
        out = {}
        for key, value in schema.items():
            if key == "pattern" and isinstance(value, str) and not value.endswith(_END):
                body = value[1:] if value.startswith("^") else value
                if body.endswith("$") and not body.endswith("\\$"):
                    body = body[:-1]
                value = "^(?:%s)%s" % (body, _END)
            out[key] = anchored(value)
        return out
    if isinstance(schema, list):
        return [anchored(v) for v in schema]
    return schema


def export(schema, schema_id=None, title=None):
    """SCHEMA as the canonical text of its file in schemas/ (draft 2020-12, patterns anchored)."""
    doc = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    if schema_id:
        doc["$id"] = schema_id
    if title:
        doc["title"] = title
    doc.update(anchored(schema))
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def checker(schema):
    """The compiled checker of SCHEMA (compiled on first use, then kept)."""
    found = _CHECKERS.get(id(schema))
    if found is None or found[0] is not schema:
        found = _CHECKERS[id(schema)] = (schema, _compile(schema, schema, {}))
    return found[1]


def errors(doc, schema, limit=20, whole="The document"):
    """Every problem of DOC against SCHEMA, one sentence each naming the field (at most LIMIT).

    A problem of the document itself (not of one field) is named WHOLE ("The catalog")."""
    out = _Out(limit, whole)
    checker(schema)(doc, (), _NO_KEY, out)
    return out.out


def problems(doc, schema, limit=20):
    """Every problem of DOC as (path, words): the field's path as a tuple of keys and indexes
    (``()`` for the document itself) and the sentence that follows the path in ``errors``.

    For a caller that names fields its own way (the catalog names the deployment by its name)."""
    out = _Out(limit)
    checker(schema)(doc, (), _NO_KEY, out)
    return out.pairs


def first_error(doc, schema):
    """The first problem of DOC against SCHEMA, or None when it is valid."""
    found = errors(doc, schema, limit=1)
    return found[0] if found else None
