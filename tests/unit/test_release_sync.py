# -*- coding: utf-8 -*-
"""The release_sync engine driven by recorded apt-get / dpkg-query answers (no host needed).

The cases are in data/release_sync.yaml (community.general's UTHelper pattern): a fake module
answers each expected command line, in order, with what apt answered; any other command line,
or a missing one, fails the test.
"""

from __future__ import annotations

import os
import re
import tempfile

import pytest
import yaml

from ansible_collections.mo.fleet.plugins.module_utils._release.release_client import check_entry, sources_text
from ansible_collections.mo.fleet.plugins.module_utils._release.release_sync import Sync, SyncFailed

CASES = yaml.safe_load(open(os.path.join(os.path.dirname(__file__), "data", "release_sync.yaml"), encoding="utf-8"))
KEY = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\nrecorded\n-----END PGP PUBLIC KEY BLOCK-----\n"
TEMP_DIRS = re.compile(r"/[^\s]*/(mo-fleet-check|mo-fleet-sources)-[A-Za-z0-9_]+")


class RecordedModule:
    """What Sync needs of an AnsibleModule; run_command answers from the recorded list."""

    def __init__(self, params, check_mode, calls, tmp):
        self.params, self.check_mode, self._diff = params, check_mode, False
        self.calls, self.tmp = list(calls), tmp

    def get_bin_path(self, name, required=False):
        return f"/testbin/{name}"

    def _normal(self, text):
        text = TEMP_DIRS.sub(lambda m: "<sandbox>" if m.group(1) == "mo-fleet-check" else "<ours>", text)
        return text.replace(self.tmp, "<tmp>")

    def run_command(self, args, environ_update=None):
        assert environ_update == {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C", "LANG": "C"}
        assert self.calls, f"unexpected command {args}"
        expected = self.calls.pop(0)
        assert [self._normal(a) for a in args] == expected["command"]
        fill = lambda text: (text or "").replace("<tmp>", self.tmp)  # noqa: E731
        return expected.get("rc", 0), fill(expected.get("out")), fill(expected.get("err"))


def _content(text, tmp):
    if text == "@key":
        return KEY
    if text.startswith("@sources "):
        entry = next(e for e in CASES["anchors"].values() if isinstance(e, dict) and e.get("name") == text[9:])
        return sources_text(check_entry(entry), os.path.join(tmp, "keyring.asc")).encode()
    return text.encode()


@pytest.mark.parametrize("case", CASES["test_cases"], ids=[c["id"] for c in CASES["test_cases"]])
def test_release_sync_engine(case, tmp_path, monkeypatch):
    tmp = str(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", tmp)  # the sandbox and <ours> land here: checked below
    for rel, text in case.get("files", {}).items():
        os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
        with open(os.path.join(tmp, rel), "wb") as handle:
            handle.write(_content(text, tmp))
    os.makedirs(os.path.join(tmp, "sources"), exist_ok=True)
    before = {rel: open(os.path.join(tmp, rel), "rb").read() for rel in case.get("unchanged", [])}
    params = {"key_url": "http://repo1/pub/acme/archive-key.asc", "keyring": os.path.join(tmp, "keyring.asc"),
              "sources_dir": os.path.join(tmp, "sources"), "prefix": "mo-fleet-", "apply_defaults": False,
              "timeout": 30, **case["input"]}
    module = RecordedModule(params, case.get("check_mode", False), case["run_command"], tmp)
    sync = Sync(module, lambda url, timeout: KEY, lists_dir=os.path.join(tmp, "lists"))
    if "failed" in case:
        with pytest.raises(SyncFailed) as err:
            sync.converge()
        assert str(err.value) == case["failed"]
        result = sync.failure(err.value)
    else:
        result = sync.converge()
    assert module.calls == [], "recorded commands that were never run"
    expected = {k: [v.replace("<tmp>", tmp) for v in val] if isinstance(val, list) else val
                for k, val in case["output"].items()}
    assert {k: result[k] for k in expected} == expected
    for rel in case.get("written", []):
        assert os.path.exists(os.path.join(tmp, rel)), rel
    for rel, data in before.items():
        assert open(os.path.join(tmp, rel), "rb").read() == data, rel
    for rel in case.get("absent", []):
        assert not os.path.exists(os.path.join(tmp, rel)), rel
    assert not [n for n in os.listdir(tmp) if n.startswith(("mo-fleet-check", "mo-fleet-sources"))]
