"""The release catalog: schema, pure-Python checks, one-sentence errors, normalization."""

import copy
import datetime
import json

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.mo.fleet.plugins.module_utils import catalog as catalog_mod
from ansible_collections.mo.fleet.plugins.module_utils.catalog import (
    SCHEMA_PATH, CatalogError, load_catalog, parse_date, schema_errors, validate_catalog,
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


# (catalog, expected first sentence, whether the JSON Schema alone can also see it)
BAD = [
    (mutate(["deployments", 0, "start_date"], "2026-13-01"),
     "deployment 'firefox-12': field 'start_date': '2026-13-01' is not a valid YYYY-MM-DD date", False),
    (mutate(["deployments", 0, "start_date"], "2026-02-30"),
     "deployment 'firefox-12': field 'start_date': '2026-02-30' is not a valid YYYY-MM-DD date", False),
    (mutate(["deployments", 0, "start_date"], "next monday"),
     "deployment 'firefox-12': field 'start_date': 'next monday' is not a valid YYYY-MM-DD date", True),
    (mutate(["deployments", 0, "start_date"], 20261207),
     "deployment 'firefox-12': field 'start_date': 20261207 is not a valid YYYY-MM-DD date", True),
    (mutate(["deployments", 0, "start_date"], delete=True),
     "deployment 'firefox-12': field 'start_date': missing (required)", True),
    (mutate(["deployments", 0, "schedule"], "slowest"),
     "deployment 'firefox-12': field 'schedule': names the schedule 'slowest', which is not in 'schedules'",
     False),
    (mutate(["schedules", 0, "delays", 1, "delay"], -1),
     "schedule 'slow' (used by deployment 'firefox-12'): field 'delays[1].delay': -1 is below the minimum 0",
     True),
    (mutate(["schedules", 0, "delays", 1, "duration"], 0),
     "schedule 'slow' (used by deployment 'firefox-12'): field 'delays[1].duration': 0 is below the minimum 1",
     True),
    (mutate(["schedules", 1, "delays", 0, "delay"], 10001),
     "schedule 'fast': field 'delays[0].delay': 10001 is above the maximum 10000", True),
    (mutate(["schedules", 1, "delays", 0, "duration"], 1001),
     "schedule 'fast': field 'delays[0].duration': 1001 is above the maximum 1000", True),
    (mutate(["schedules", 1, "delays", 0, "duration"], 1.5),
     "schedule 'fast': field 'delays[0].duration': 1.5 is not an integer", True),
    (mutate(["schedules", 1, "delays", 0, "delay"], True),
     "schedule 'fast': field 'delays[0].delay': true is not an integer", True),
    (mutate(["schedules", 1, "delays", 0, "attributes"], ["web", 7]),
     "schedule 'fast': field 'delays[0].attributes[1]': 7 is not a string", True),
    (mutate(["deployments", 0, "included_attributes"], ["canary", 5]),
     "deployment 'firefox-12': field 'included_attributes[1]': 5 is not a string", True),
    (mutate(["deployments", 0, "excluded_attributes"], [True]),
     "deployment 'firefox-12': field 'excluded_attributes[0]': true is not a string", True),
    (mutate(["deployments", 0, "included_attributes"], "canary"),
     "deployment 'firefox-12': field 'included_attributes': must be a list, got a string 'canary'", True),
    (mutate(["deployments", 1, "name"], "firefox-12"),
     "deployment 'firefox-12': field 'name': duplicate deployment name 'firefox-12'", False),
    (mutate(["deployments", 0, "package_sets"], ["nope"]),
     "deployment 'firefox-12': field 'package_sets[0]': names the package set 'nope', which is not in "
     "'package_sets'", False),
    (mutate(["deployments", 0, "store"], "other"),
     "deployment 'firefox-12': field 'store': names the store 'other', which is not in 'stores'", False),
    (mutate(["deployments", 0, "shedule"], "slow"),
     "deployment 'firefox-12': field 'shedule': unknown field (expected one of: name, enabled, comment, "
     "start_date, schedule, packages, package_sets, included_attributes, excluded_attributes, "
     "packages_to_install, packages_to_remove, default_preincluded_packages, default_included_packages, "
     "default_excluded_packages, source, base_url, suite, components, frozen, store, halt_after_failures)",
     True),
    (mutate(["deployments", 0, "enabled"], "yes"),
     "deployment 'firefox-12': field 'enabled': 'yes' is not a boolean", True),
    (mutate(["deployments", 0, "packages_to_install"], ["rm -rf /"]),
     "deployment 'firefox-12': field 'packages_to_install[0]': 'rm -rf /' is not a Debian package name "
     "(optionally ':arch' and '=version')", True),
    (mutate(["deployments", 0, "halt_after_failures"], 150),
     "deployment 'firefox-12': field 'halt_after_failures': 150 is not a percentage between 0 and 100", True),
    (mutate(["deployments", 0, "name"], "../etc"),
     "deployment '../etc': field 'name': '../etc' is not a valid name (letters, digits, '.', '_', '-', "
     "starting with a letter or digit, at most 64 characters, no '..')", True),
    (mutate(["deployments", 1, "base_url"], delete=True),
     "deployment 'debian-frozen': field 'base_url': missing (required)", True),
    (mutate(["deployments", 0, "suite"], "bookworm"),
     "deployment 'firefox-12': field 'suite': is only valid with 'source: external'", True),
    (mutate(["deployments", 1, "components"], []),
     "deployment 'debian-frozen': field 'components': must have at least 1 item(s)", True),
    (mutate(["deployments", 0, "source"], "upstream"),
     "deployment 'firefox-12': field 'source': 'upstream' is not 'internal' or 'external'", True),
    (mutate(["stores", 1, "name"], "a..b"),
     "store 'a..b': field 'name': 'a..b' is not a valid name (letters, digits, '.', '_', '-', starting with "
     "a letter or digit, at most 64 characters, no '..')", True),
    (mutate(["holidays", 1], "2026-12-32"),
     "catalog: field 'holidays[1]': '2026-12-32' is not a valid YYYY-MM-DD date", False),
    (mutate(["schedules", 1, "name"], "slow"),
     "schedule 'slow': field 'name': duplicate schedule name 'slow'", False),
    (mutate(["deployments"], delete=True), "catalog: field 'deployments': missing (required)", True),
    (mutate(["deployments"], {"name": "x"}), "catalog: field 'deployments': must be a list, got a mapping",
     True),
    (mutate(["deployments", 0], "firefox"), "catalog: field 'deployments[0]': must be a mapping, got a string",
     True),
]


@pytest.mark.parametrize("cat, sentence, schema_sees", BAD, ids=[b[1][:60] for b in BAD])
def test_bad_catalog_gives_one_sentence_naming_object_and_field(cat, sentence, schema_sees):
    with pytest.raises(CatalogError) as info:
        load_catalog(cat)
    assert str(info.value) == sentence
    assert "\n" not in str(info.value)
    assert info.value.errors[0] == sentence


@pytest.mark.parametrize("cat, sentence, schema_sees", BAD, ids=[b[1][:60] for b in BAD])
def test_schema_agrees_on_structural_problems(cat, sentence, schema_sees):
    raw = catalog_mod._plain(cat)
    if schema_sees:
        assert schema_errors(raw), f"the JSON Schema misses: {sentence}"
    else:  # semantic only (references, duplicates, calendar validity): the schema accepts the shape
        assert not schema_errors(raw) or "date" in sentence


@pytest.mark.parametrize("cat, sentence, schema_sees", BAD, ids=[b[1][:60] for b in BAD])
def test_validation_is_complete_without_jsonschema(monkeypatch, cat, sentence, schema_sees):
    monkeypatch.setattr(catalog_mod, "HAS_JSONSCHEMA", False)
    assert validate_catalog(cat)[0] == sentence


def test_good_catalog_is_valid_for_python_and_schema():
    cat = good_catalog()
    assert validate_catalog(cat) == []
    assert schema_errors(cat) == []


def test_schema_file_is_a_valid_draft_2020_12_schema():
    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        schema = json.load(handle)
    jsonschema.Draft202012Validator.check_schema(schema)


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
    assert schema_errors(catalog_mod._plain(once)) == []
    internal = mutate(["deployments", 0, "frozen"], True)
    with pytest.raises(CatalogError, match="field 'frozen': is only valid with 'source: external'"):
        load_catalog(internal)
    assert schema_errors(internal)


def test_yaml_dates_are_accepted():
    cat = good_catalog()
    cat["holidays"] = [datetime.date(2026, 12, 8)]
    cat["deployments"][0]["start_date"] = datetime.date(2026, 12, 7)
    assert load_catalog(cat)["deployments"][0]["start_date"] == "2026-12-07"


def test_not_a_mapping():
    with pytest.raises(CatalogError, match=r"^catalog: must be a mapping, got a list$"):
        load_catalog([])


def test_all_errors_are_collected():
    cat = good_catalog()
    cat["deployments"][0]["start_date"] = "x"
    cat["deployments"][1]["enabled"] = "no"
    errors = validate_catalog(cat)
    assert len(errors) == 2
    assert errors[1] == "deployment 'debian-frozen': field 'enabled': 'no' is not a boolean"


def test_parse_date():
    assert parse_date("2026-12-07") == datetime.date(2026, 12, 7)
    assert parse_date(datetime.datetime(2026, 12, 7, 13, 0)) == datetime.date(2026, 12, 7)
    for bad in ("2026-1-7", "2026-12-07T00:00", "", None, 7):
        with pytest.raises(ValueError):
            parse_date(bad)


# -- property: the hand-written checks and the JSON Schema agree on the shape -------------------

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
def test_python_checks_and_schema_agree(cat):
    raw = catalog_mod._plain(cat)
    python = catalog_mod._check(raw)
    schema = schema_errors(raw)
    if not python:
        assert not schema, schema
        once = load_catalog(cat)
        assert load_catalog(once) == once  # a normalized catalog is valid input again
    if schema:
        assert python, schema
