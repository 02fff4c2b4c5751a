"""The JSON files in schemas/ are generated from the schemas in code (the single source of truth).

Regenerate them with:  MO_FLEET_WRITE_SCHEMAS=1 .venv/bin/python -m pytest -q tests/unit/test_schema_files.py
"""

import json
import os
from pathlib import Path

import jsonschema
import pytest

from ansible_collections.mo.fleet.plugins.module_utils._repo import publish
from ansible_collections.mo.fleet.plugins.module_utils._release import rollout
from ansible_collections.mo.fleet.plugins.module_utils._common import validate

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"

FILES = {
    "sync_record.schema.json": (rollout.SYNC_RECORD_SCHEMA, "urn:mo-fleet:schema:sync-record:1",
                                "mo.fleet sync record (reports/sync/<host>.json)"),
    "release_state.schema.json": (rollout.STATE_SCHEMA, "urn:mo-fleet:schema:release-state:1",
                                  "mo.fleet release state (halted deployments)"),
    "publish_state.schema.json": (publish.STATE_SCHEMA, "urn:mo-fleet:schema:publish-state:1",
                                  "mo.fleet repository server publish state"),
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_schema_file_is_generated_from_the_code(name):
    text = validate.export(*FILES[name])
    path = SCHEMAS / name
    if os.environ.get("MO_FLEET_WRITE_SCHEMAS"):
        path.write_text(text)
    assert path.read_text() == text, f"regenerate schemas/{name} (see this file's docstring)"
    jsonschema.Draft202012Validator.check_schema(json.loads(text))


@pytest.mark.parametrize("name", sorted(FILES))
def test_the_file_means_what_the_checker_does(name):
    """jsonschema (ECMA-262 patterns) on the file agrees with the one validator on the code."""
    schema, _id, _title = FILES[name]
    checker = jsonschema.Draft202012Validator(json.loads(validate.export(*FILES[name])))
    samples = [{"host": "web1\n"}, {"host": "web1"}, {"date": "2026-12-01"}, {"date": "2026-12-01\n"},
               {"halted": {"app\n": {}}}, {"halted": {"app": {"failed": 1}}}, {"version": 1}, {"status": "ok"}]
    for sample in samples:
        assert checker.is_valid(sample) == (not validate.errors(sample, schema)), (name, sample)


def test_the_template_file_refuses_a_trailing_line_break_as_the_checker_does():
    from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
    doc = tpl.build({"argv": ["true"], "timestamp": "2026-01-01T00:00:00+00:00", "name": "hello"}, {})
    checker = jsonschema.Draft202012Validator(json.loads((SCHEMAS / "template.schema.json").read_text()))
    assert checker.is_valid(doc)
    doc["MO_template"]["name"] = "hello\n"
    assert not checker.is_valid(doc) and tpl.validate(doc)
