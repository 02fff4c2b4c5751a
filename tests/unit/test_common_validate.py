"""_common/validate.py: the one stdlib validator every document goes through."""

import math

import pytest
from hypothesis import given, strategies as st

from ansible_collections.mo.fleet.plugins.module_utils._common import names, validate

SCHEMA = {
    "type": "object",
    "required": ["name", "uid"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8, "x-rule": "is not a lower-case word"},
        "uid": {"type": ["integer", "null"], "minimum": 0, "maximum": 4294967295},
        "size": {"type": "number", "minimum": 0},
        "tags": {"type": "array", "maxItems": 2, "items": {"$ref": "#/$defs/tag"}},
        "extra": {"type": "object", "propertyNames": {"pattern": "^[a-z]+$"},
                  "additionalProperties": {"type": "string"}},
    },
    "$defs": {"tag": {"type": "string", "minLength": 1}},
}


def test_valid_document_has_no_errors():
    assert validate.errors({"name": "abc", "uid": 0, "tags": ["x"], "extra": {"k": "v"}}, SCHEMA) == []


@pytest.mark.parametrize("doc, expected", [
    ({"name": "abc\n", "uid": 1}, "name 'abc\\n' is not a lower-case word."),
    ({"name": "abc", "uid": [1]}, "uid must be an integer or null, not a list."),
    ({"name": "abc", "uid": 1e30}, "uid must be an integer or null, not a number."),
    ({"name": "abc", "uid": 10 ** 30}, "uid must be at most 4294967295"),
    ({"name": "abc", "uid": True}, "uid must be an integer or null, not a boolean."),
    ({"name": "abc", "uid": -1}, "uid must be at least 0"),
    ({"name": "abc", "uid": 1, "size": math.nan}, "size must be a number, not a non-finite number."),
    ({"name": "abc", "uid": 1, "tags": ["a", "b", "c"]}, "tags must hold at most 2 items"),
    ({"name": "abc", "uid": 1, "tags": [""]}, "tags/0 must not be empty."),
    ({"name": "abc", "uid": 1, "extra": {"K\n": "v"}}, "does not match"),
    ({"name": "abc", "uid": 1, "Name": "x"}, "The document has an unknown field 'Name'."),
    ({"uid": 1}, "The document is missing the required field 'name'."),
    ({"name": "abcdefghij", "uid": 1}, "name must be at most 8 characters long"),
])
def test_one_sentence_naming_the_field(doc, expected):
    found = validate.errors(doc, SCHEMA)
    assert found, doc
    assert expected in found[0]
    assert found[0].count(". ") == 0 and found[0].endswith(".")


@given(st.text())
def test_patterns_match_the_whole_string(text):
    ok = not validate.errors({"name": text, "uid": 0}, SCHEMA)
    assert ok == (0 < len(text) <= 8 and text.isascii() and text.isalpha() and text.islower())


@given(st.text(min_size=1).map(lambda t: t + "\n"))
def test_no_name_kind_accepts_a_trailing_line_break(text):
    for kind in names.PATTERNS:
        assert not names.is_valid(kind, text), kind


APPLICATORS = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z.]+$", "not": {"pattern": "^[\\s\\S]*\\.\\.[\\s\\S]*$"},
                 "x-rule": "is not a dotted word without '..'"},
        "id": {"anyOf": [{"type": "integer"}, {"type": "string", "minLength": 1}],
               "x-rule": "is neither an integer nor a non-empty string"},
        "kind": {"enum": ["a", "b"]},
        "url": {"type": "string"},
        "gone": False,
        "any": True,
    },
    "if": {"properties": {"kind": {"const": "b"}}, "required": ["kind"]},
    "then": {"required": ["url"]},
    "else": {"properties": {"url": {"not": {}, "x-rule": "is only valid with kind b"}}},
}


@pytest.mark.parametrize("doc, expected", [
    ({"name": "a..b"}, "name 'a..b' is not a dotted word without '..'."),
    ({"name": "a.b\n"}, "name 'a.b\\n' is not a dotted word without '..'."),
    ({"id": [1]}, "id [1] is neither an integer nor a non-empty string."),
    ({"id": ""}, "id '' is neither an integer nor a non-empty string."),
    ({"kind": "b"}, "The document is missing the required field 'url'."),
    ({"url": "http://x"}, "url 'http://x' is only valid with kind b."),
    ({"gone": 1}, "gone is not allowed here."),
])
def test_applicators_refuse_in_one_sentence(doc, expected):
    assert validate.errors(doc, APPLICATORS) == [expected]


@pytest.mark.parametrize("doc", [{"name": "a.b", "id": 3, "kind": "b", "url": "u", "any": [{}]}, {"id": "x"}, {}])
def test_applicators_accept(doc):
    assert validate.errors(doc, APPLICATORS) == []


def test_whole_document_is_named_as_asked():
    found = validate.errors([], {"type": "object"}, whole="The catalog")
    assert found == ["The catalog must be an object, not a list."]


@given(st.one_of(st.text(max_size=6), st.integers(), st.none(), st.lists(st.integers(), max_size=2)),
       st.sampled_from(["a", "b", None]))
def test_applicators_agree_with_jsonschema(value, kind):
    jsonschema = pytest.importorskip("jsonschema")
    doc = {"name": value, "id": value, "url": value}
    if kind:
        doc["kind"] = kind
    ours = validate.errors(doc, APPLICATORS)
    theirs = list(jsonschema.Draft202012Validator(APPLICATORS).iter_errors(doc))
    if not ours:
        assert not theirs, theirs[0].message
    if theirs:
        assert ours


class _TaggedInt(int):
    """Stands in for ansible-core's tagged values (a subclass with a private class name)."""


@pytest.mark.parametrize("value, words", [(_TaggedInt(5), "an integer"), (5, "an integer"), (True, "a boolean"),
                                          ([], "a list"), ({}, "an object"), (math.nan, "a non-finite number"),
                                          (1.5, "a number"), (None, "null"), (b"x", "a value of another kind")])
def test_describe_never_shows_a_class_name(value, words):
    assert validate.describe(value) == words
