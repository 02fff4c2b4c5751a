"""The release catalog: schema, pure-Python checks, one-sentence errors, normalization."""

import copy
import datetime
import json
import re

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.mo.fleet.plugins.module_utils._repo import catalog as catalog_mod
from ansible_collections.mo.fleet.plugins.module_utils._common import validate
from ansible_collections.mo.fleet.plugins.module_utils._repo.catalog import (
    SCHEMA_PATH, CatalogError, load_catalog, parse_date, validate_catalog,
)


def good_catalog():
    return {
        "project": {"name": "fleet", "architectures": ["amd64", "all"]},
        "holidays": ["2026-12-08", "2026-12-25"],
        "halt_after_failures": 10,
        "stores": [{"name": "main", "comment": "our packages"}, {"name": "dvd"}],
        "package_sets": [{"name": "bookworm-dvd", "store": "dvd", "packages": ["a_1_all.deb"]}],
        "schedules": [
            {"name": "slow", "description": "LENTO", "delays": [
                {"delay": 0, "attributes": ["canary"]},
                {"delay": 5, "attributes": ["web"], "duration": 3},
                {"delay": 10, "attributes": ["all"]},
            ]},
            {"name": "fast", "delays": [{"delay": 0, "attributes": ["web", "db"]},
                                        {"delay": 2, "attributes": ["all"]}]},
        ],
        "deployments": [
            {
                "name": "firefox-12", "enabled": True, "comment": "[alberto@2013-03-09] added",
                "start_date": "2026-12-07", "schedule": "slow", "store": "main",
                "packages": ["azl-firefox_12.0-3_all.deb"], "package_sets": ["bookworm-dvd"],
                "packages_to_install": ["azl-firefox", "hello=2.10-3"],
                "packages_to_remove": ["firefox-esr"],
                "default_preincluded_packages": ["vx-repo-openshot"],
                "default_included_packages": ["openshot"],
                "default_excluded_packages": ["nano"],
                "included_attributes": ["NET-192.168.92.0/24"],
                "excluded_attributes": ["HST-PC13098"],
                "halt_after_failures": 25.5,
            },
            {"name": "debian-frozen", "start_date": "2026-12-01", "source": "external",
             "base_url": "http://deb.example.invalid/debian", "suite": "bookworm",
             "components": ["main", "contrib"], "frozen": True, "included_attributes": ["all"]},
        ],
    }


def mutate(path, value=None, delete=False):
    """A good catalog with the item at PATH (list of keys/indexes) set to VALUE (or deleted)."""
    cat = good_catalog()
    node = cat
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return cat


SAFE = ("is not a safe name (letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 "
        "characters, no '..').")

# (catalog, expected first sentence, whether the JSON Schema alone can also see it)
BAD = [
    (mutate(["deployments", 0, "start_date"], "2026-13-01"),
     "deployment 'firefox-12': field 'start_date': '2026-13-01' is not a valid YYYY-MM-DD date", False),
    (mutate(["deployments", 0, "start_date"], "2026-02-30"),
     "deployment 'firefox-12': field 'start_date': '2026-02-30' is not a valid YYYY-MM-DD date", False),
    (mutate(["deployments", 0, "start_date"], "next monday"),
     "deployment 'firefox-12': field 'start_date': 'next monday' is not a date YYYY-MM-DD.", True),
    (mutate(["deployments", 0, "start_date"], 20261207),
     "deployment 'firefox-12': field 'start_date': must be a string, not an integer.", True),
    (mutate(["deployments", 0, "start_date"], delete=True),
     "deployment 'firefox-12': is missing the required field 'start_date'.", True),
    (mutate(["deployments", 0, "schedule"], "slowest"),
     "deployment 'firefox-12': field 'schedule': names the schedule 'slowest', which is not in 'schedules'", False),
    (mutate(["schedules", 0, "delays", 1, "delay"], -1),
     "schedule 'slow' (used by deployment 'firefox-12'): field 'delays[1].delay': must be at least 0, not -1.", True),
    (mutate(["schedules", 0, "delays", 1, "duration"], 0),
     "schedule 'slow' (used by deployment 'firefox-12'): field 'delays[1].duration': must be at least 1, not 0.", True),
    (mutate(["schedules", 1, "delays", 0, "delay"], 10001),
     "schedule 'fast': field 'delays[0].delay': must be at most 10000, not 10001.", True),
    (mutate(["schedules", 1, "delays", 0, "duration"], 1001),
     "schedule 'fast': field 'delays[0].duration': must be at most 1000, not 1001.", True),
    (mutate(["schedules", 1, "delays", 0, "duration"], 1.5),
     "schedule 'fast': field 'delays[0].duration': must be an integer, not a number.", True),
    (mutate(["schedules", 1, "delays", 0, "delay"], True),
     "schedule 'fast': field 'delays[0].delay': must be an integer, not a boolean.", True),
    (mutate(["schedules", 1, "delays", 0, "attributes"], ["web", 7]),
     "schedule 'fast': field 'delays[0].attributes[1]': must be a string, not an integer.", True),
    (mutate(["deployments", 0, "included_attributes"], ["canary", 5]),
     "deployment 'firefox-12': field 'included_attributes[1]': must be a string, not an integer.", True),
    (mutate(["deployments", 0, "excluded_attributes"], [True]),
     "deployment 'firefox-12': field 'excluded_attributes[0]': must be a string, not a boolean.", True),
    (mutate(["deployments", 0, "included_attributes"], "canary"),
     "deployment 'firefox-12': field 'included_attributes': must be a list, not a string.", True),
    (mutate(["deployments", 1, "name"], "firefox-12"),
     "deployment 'firefox-12': field 'name': duplicate deployment name 'firefox-12'", False),
    (mutate(["deployments", 0, "package_sets"], ["nope"]),
     "deployment 'firefox-12': field 'package_sets[0]': names the package set 'nope', which is not in "
     "'package_sets'", False),
    (mutate(["deployments", 0, "store"], "other"),
     "deployment 'firefox-12': field 'store': names the store 'other', which is not in 'stores'", False),
    (mutate(["deployments", 0, "shedule"], "slow"), "deployment 'firefox-12': has an unknown field 'shedule'.", True),
    (mutate(["deployments", 0, "enabled"], "yes"),
     "deployment 'firefox-12': field 'enabled': must be true or false, not a string.", True),
    (mutate(["deployments", 0, "packages_to_install"], ["rm -rf /"]),
     "deployment 'firefox-12': field 'packages_to_install[0]': 'rm -rf /' is not an apt package name, optionally "
     "with ':arch' and '=version'.", True),
    (mutate(["deployments", 0, "halt_after_failures"], 150),
     "deployment 'firefox-12': field 'halt_after_failures': must be at most 100, not 150.", True),
    (mutate(["deployments", 0, "halt_after_failures"], float("nan")),
     "deployment 'firefox-12': field 'halt_after_failures': must be a number, not a non-finite number.", False),
    (mutate(["deployments", 0, "name"], "../etc"),
     "deployment '../etc': field 'name': '../etc' " + SAFE, True),
    (mutate(["deployments", 0, "name"], "firefox-12\n"),
     "deployment 'firefox-12\\n': field 'name': 'firefox-12\\n' " + SAFE, False),  # re.search: $ before \n
    (mutate(["deployments", 0, "comment"], "one\u2028two"),
     "deployment 'firefox-12': field 'comment': 'one\\u2028two' is not one line of printable text.", True),
    (mutate(["schedules", 0, "name"], "slow\x1c"),
     "schedule 'slow\\x1c': field 'name': 'slow\\x1c' " + SAFE, True),
    (mutate(["deployments", 1, "base_url"], delete=True),
     "deployment 'debian-frozen': is missing the required field 'base_url'.", True),
    (mutate(["deployments", 1, "base_url"], "http://x/debian stable main\nURIs: http://evil"),
     "deployment 'debian-frozen': field 'base_url': 'http://x/debian stable main\\nURIs: http://evil' is not an "
     "http:// or https:// URL of RFC 3986 characters without '$', ';', braces, quotes or spaces.", True),
    (mutate(["deployments", 0, "suite"], "bookworm"),
     "deployment 'firefox-12': field 'suite': 'bookworm' is only valid with 'source: external'.", True),
    (mutate(["deployments", 1, "components"], []),
     "deployment 'debian-frozen': field 'components': must hold at least 1 items.", True),
    (mutate(["deployments", 1, "suite"], "../../etc"),
     "deployment 'debian-frozen': field 'suite': '../../etc' is not an apt suite or component name (no '..', not ending in '/').", True),
    (mutate(["deployments", 0, "source"], "upstream"),
     "deployment 'firefox-12': field 'source': must be one of internal, external, not 'upstream'.", True),
    (mutate(["stores", 1, "name"], "a..b"),
     "store 'a..b': field 'name': 'a..b' " + SAFE, True),
    (mutate(["holidays", 1], "2026-12-32"), "catalog: field 'holidays[1]': '2026-12-32' is not a valid YYYY-MM-DD date",
     False),
    (mutate(["schedules", 1, "name"], "slow"), "schedule 'slow': field 'name': duplicate schedule name 'slow'", False),
    (mutate(["deployments", 0, "included_attributes"], ["x"] * 10001),
     "deployment 'firefox-12': field 'included_attributes': must hold at most 10000 items, not 10001.", True),
    (mutate(["deployments", 0, "comment"], "x" * 1025),
     "deployment 'firefox-12': field 'comment': must be at most 1024 characters long, not 1025.", True),
    (mutate(["deployments"], delete=True), "catalog: is missing the required field 'deployments'.", True),
    (mutate(["deployments"], {"name": "x"}), "catalog: field 'deployments': must be a list, not an object.", True),
    (mutate(["deployments", 0], "firefox"), "catalog: field 'deployments[0]': must be an object, not a string.", True),
]


def jsonschema_errors(raw):
    return list(jsonschema.Draft202012Validator(catalog_mod.SCHEMA).iter_errors(raw))


@pytest.mark.parametrize("cat, sentence, schema_sees", BAD, ids=[b[1][:60] for b in BAD])
def test_bad_catalog_gives_one_sentence_naming_object_and_field(cat, sentence, schema_sees):
    with pytest.raises(CatalogError) as info:
        load_catalog(cat)
    assert str(info.value) == sentence
    assert "\n" not in str(info.value)
    assert info.value.errors[0] == sentence


@pytest.mark.parametrize("cat, sentence, schema_sees", BAD, ids=[b[1][:60] for b in BAD])
def test_jsonschema_agrees_on_structural_problems(cat, sentence, schema_sees):
    # jsonschema is a test-only second opinion on the same schema: what it sees, the one
    # validator sees; the one validator also refuses NaN and a name with a trailing line break
    # (jsonschema's re.search lets "$" match before it); the rest are semantic checks.
    assert bool(jsonschema_errors(catalog_mod._json_ready(cat))) == schema_sees


def test_no_jsonschema_at_run_time():
    with open(catalog_mod.__file__, encoding="utf-8") as handle:
        assert "jsonschema" not in handle.read()


def test_good_catalog_is_valid_for_the_validator_and_jsonschema():
    cat = good_catalog()
    assert validate_catalog(cat) == []
    assert jsonschema_errors(cat) == []


def test_schema_file_is_generated_from_the_model():
    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        on_disk = handle.read()
    assert on_disk == catalog_mod.schema_json(), "regenerate schemas/catalog.schema.json from catalog.SCHEMA"
    jsonschema.Draft202012Validator.check_schema(json.loads(on_disk))
    assert catalog_mod.schema() == catalog_mod.SCHEMA and catalog_mod.schema() is not catalog_mod.SCHEMA


def test_schema_patterns_are_the_names_patterns():
    from ansible_collections.mo.fleet.plugins.module_utils._common import names
    defs = catalog_mod.SCHEMA["$defs"]
    assert defs["safe_name"]["pattern"] == "^%s$" % names.PATTERNS["safe"]
    assert defs["date"]["pattern"] == "^%s$" % names.PATTERNS["date"]
    assert defs["apt_packages"]["items"]["pattern"] == "^%s$" % names.PATTERNS["apt_package"]


def test_normalized_catalog_fills_defaults_and_keeps_input_untouched():
    cat = good_catalog()
    cat["deployments"].append({"name": "plain", "start_date": datetime.date(2026, 12, 9),
                               "schedule": None, "included_attributes": None})
    before = copy.deepcopy(cat)
    norm = load_catalog(cat)
    assert cat == before
    plain = norm["deployments"][2]
    assert plain == {
        "name": "plain", "enabled": True, "comment": "", "start_date": "2026-12-09", "schedule": None,
        "source": "internal", "store": None, "halt_after_failures": 10, "packages": [], "package_sets": [],
        "included_attributes": [], "excluded_attributes": [], "packages_to_install": [],
        "packages_to_remove": [], "default_preincluded_packages": [], "default_included_packages": [],
        "default_excluded_packages": [], "base_url": None, "suite": None, "components": [], "frozen": False,
    }
    assert norm["deployments"][0]["halt_after_failures"] == 25.5
    assert norm["deployments"][1]["components"] == ["main", "contrib"]
    assert norm["schedules"][1]["delays"][0]["duration"] == 1
    assert norm["holidays"] == ["2026-12-08", "2026-12-25"]
    json.dumps(norm)  # plain types only


def test_normalization_is_idempotent():
    once = load_catalog(good_catalog())
    assert load_catalog(once) == once
    assert jsonschema_errors(catalog_mod._json_ready(once)) == []
    internal = mutate(["deployments", 0, "frozen"], True)
    with pytest.raises(CatalogError,
                       match="^deployment 'firefox-12': field 'frozen': True is only valid with 'source: external'.$"):
        load_catalog(internal)
    assert jsonschema_errors(internal)


def test_yaml_dates_are_accepted():
    cat = good_catalog()
    cat["holidays"] = [datetime.date(2026, 12, 8)]
    cat["deployments"][0]["start_date"] = datetime.date(2026, 12, 7)
    assert load_catalog(cat)["deployments"][0]["start_date"] == "2026-12-07"


def test_not_a_mapping():
    with pytest.raises(CatalogError, match=r"^catalog: must be an object, not a list.$"):
        load_catalog([])


def test_all_errors_are_collected():
    cat = good_catalog()
    cat["deployments"][0]["start_date"] = "x"
    cat["deployments"][1]["enabled"] = "no"
    errors = validate_catalog(cat)
    assert len(errors) == 2
    assert errors[1] == "deployment 'debian-frozen': field 'enabled': must be true or false, not a string."


def test_a_catalog_nested_too_deeply_is_one_sentence():
    deep = []
    for _ in range(100000):
        deep = [deep]
    cat = mutate(["deployments", 0, "comment"], deep)
    with pytest.raises(CatalogError, match=r"^catalog: is nested too deeply to be read"):
        load_catalog(cat)


def test_non_string_keys_and_twisted_case_are_unknown_fields():
    cat = good_catalog()
    cat["deployments"][0][7] = "x"
    cat["deployments"][1]["Start_Date"] = cat["deployments"][1].pop("start_date")
    assert validate_catalog(cat) == [
        "deployment 'firefox-12': has an unknown field '7'.",
        "deployment 'debian-frozen': is missing the required field 'start_date'.",
        "deployment 'debian-frozen': has an unknown field 'Start_Date'.",
    ]


def test_parse_date():
    assert parse_date("2026-12-07") == datetime.date(2026, 12, 7)
    assert parse_date(datetime.datetime(2026, 12, 7, 13, 0)) == datetime.date(2026, 12, 7)
    for bad in ("2026-1-7", "2026-12-07T00:00", "", None, 7):
        with pytest.raises(ValueError):
            parse_date(bad)


# -- property: the one validator and jsonschema agree on the shape ----------------------------

SCALARS = st.one_of(st.integers(-3, 3), st.booleans(), st.sampled_from(["", "x", "2026-12-07", "a b"]),
                    st.none(), st.floats(allow_nan=False, allow_infinity=False, width=16))


def maybe(strategy):
    return st.one_of(strategy, strategy, strategy, SCALARS)


@st.composite
def catalogs(draw):
    attributes = maybe(st.lists(maybe(st.sampled_from(["all", "web", "HST-a"])), max_size=3))
    delays = st.lists(maybe(st.fixed_dictionaries(
        {"delay": maybe(st.integers(0, 9)), "attributes": attributes},
        optional={"duration": maybe(st.integers(1, 4))})), min_size=1, max_size=3)
    sched = draw(maybe(st.fixed_dictionaries({"name": st.just("s"), "delays": delays})))
    deps = draw(st.lists(st.fixed_dictionaries(
        {"start_date": maybe(st.sampled_from(["2026-12-07", "2026-12-31"]))},
        optional={"enabled": maybe(st.booleans()), "included_attributes": attributes,
                  "excluded_attributes": attributes, "schedule": st.just("s"),
                  "halt_after_failures": maybe(st.integers(0, 100)),
                  "packages_to_install": maybe(st.lists(st.sampled_from(["hello", "Bad Name"]), max_size=2))}),
        max_size=3))
    for index, dep in enumerate(deps):
        dep["name"] = f"d{index}"
        if dep.get("schedule") and not (isinstance(sched, dict)):
            del dep["schedule"]
    cat = {"deployments": deps}
    if isinstance(sched, dict):
        cat["schedules"] = [sched]
    else:
        cat["schedules"] = sched if sched is not None else []
    if draw(st.booleans()):
        cat["holidays"] = draw(maybe(st.lists(maybe(st.just("2026-12-25")), max_size=2)))
    return cat


@settings(max_examples=300, deadline=None)
@given(catalogs())
def test_builtin_checker_agrees_with_jsonschema(cat):
    raw = catalog_mod._json_ready(cat)
    ours = validate.errors(raw, catalog_mod.SCHEMA)
    theirs = jsonschema_errors(raw)
    if not ours:
        assert not theirs, theirs[0].message
        if not validate_catalog(cat):
            once = load_catalog(cat)
            assert load_catalog(once) == once  # a normalized catalog is valid input again
    if theirs:
        assert ours, theirs[0].message


# -- property: hostile values at every field path ------------------------------------------------

def _paths(node, prefix=()):
    """Every (path) to a value of NODE, containers included."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, prefix + (index,))


FIELD_PATHS = [p for p in _paths(good_catalog()) if p]
JINJA = "{{ lookup('pipe','id') }}"
HOSTILE = st.one_of(
    st.sampled_from([
        JINJA, "{% raw %}x", "main\n", "main\r", "main\u2028", "main\x85", "main\x1c", "main\x00", "..",
        "../../etc", "", " ", "x" * 5000, "2026-12-07\n", "firefox-12\nSuite: evil", "http://a/ b",
        10 ** 30, -10 ** 30, -1, 1e30, float("nan"), float("inf"), True, None, [], [1], [JINJA], {},
        {"name": "x"}, ["main\n"], [None], 2.5,
    ]),
    st.text(max_size=20),
    st.integers(),
    st.lists(st.text(max_size=8), max_size=3),
)
BREAKS = ("\n", "\r", "\u2028", "\x85", "\x1c", "\x00")


QUOTED = r"""('[^\n]*'|"[^\n]*")"""
OWNER = re.compile(r"(catalog|project|(deployment|schedule|store|package set) (%s|#[0-9]+ \(no name\))"
                   r"( \(used by deployment %s\))?): (field '[^']+': )?[^\n]+" % (QUOTED, QUOTED))


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(FIELD_PATHS), HOSTILE, st.sampled_from(["set", "set", "delete", "twist"]))
def test_hostile_value_at_any_field_is_one_sentence_naming_a_field_or_accepted(path, value, how):
    cat = good_catalog()
    node = cat
    for key in path[:-1]:
        node = node[key]
    last = path[-1]
    if how == "delete" or (how == "twist" and isinstance(last, int)):
        del node[last]
    elif how == "twist":  # a case-twisted field name: apt's habit, not ours
        node[last.swapcase() if last.swapcase() != last else last.upper() + "x"] = node.pop(last)
    else:
        node[last] = value
    found = validate_catalog(cat)
    try:
        norm = load_catalog(cat)
    except CatalogError as error:
        assert found and str(error) == found[0]
        for sentence in found:
            assert len(sentence) < 400 and OWNER.fullmatch(sentence), sentence
            assert not any(ch in sentence for ch in BREAKS), sentence
        # the sentence names the field that was changed (or the object holding it, or a
        # reference that the change broke: a store renamed, a deployment naming it)
        named = [str(p) for p in path if isinstance(p, str)]
        tokens = {named[-1], named[-1].swapcase()}
        if isinstance(last, int):
            tokens |= {f"[{last}]", f"#{last + 1} "}
        if len(path) == 2 and isinstance(last, int) and path[0] in catalog_mod._KINDS and last < len(node):
            tokens.add(catalog_mod._owner(catalog_mod._KINDS[path[0]], node[last], last) + ":")
        assert any(t in s for t in tokens for s in found) or all(" names the " in s for s in found) \
            or (how == "delete" and isinstance(last, int)), (path, found)
        return
    # accepted: then nothing hostile reached a name, a date or a URL, and values stay literal
    assert found == []
    json.dumps(norm)
    for dep in norm["deployments"]:
        for field in ("name", "store", "schedule", "suite", "base_url", "start_date", "comment"):
            text = dep.get(field)
            assert text is None or not any(ch in text for ch in BREAKS), (field, text)
        assert JINJA not in (dep["name"], dep["start_date"])
