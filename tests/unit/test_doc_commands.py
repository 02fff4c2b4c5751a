"""Every command line of README.md and docs/ is found, runnable as written, and either run by
tests/integration/test_docs_commands.py or excluded with a reason (tests/doc_commands.py)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import doc_commands as dc  # noqa: E402

COMMANDS = dc.all_commands()
RUN = [c for c in COMMANDS if dc.exclusion(c) is None]


def test_extractor_reads_blocks_continuations_comments_and_spans(tmp_path):
    (tmp_path / "Makefile").write_text(".PHONY: lab\nlab demo: setup\n\t@true\nX := 1\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(
        "Run `make lab`, then `make install` (prose), `ansible-lint` (a name) and\n"
        "`ansible-doc -t role mo.fleet.target`; `-e x=1` is an option.\n\n"
        "```sh\n"
        "# a comment line\n"
        "ansible-playbook a.yml -e '{\"k\": \"a # b\"}' \\\n"
        "  --limit web1   # trailing comment\n"
        "\n"
        "CONTAINERS_CONF=lab/c.conf podman build -t x out/img\n"
        "```\n\n"
        "```\n"
        "output line # not a command\n"
        "```\n")
    (tmp_path / "docs" / "a.md").write_text("```yaml\nansible-playbook in.yml\n```\n"
                                            "~~~bash\nmake demo\n~~~\n")
    found = dc.all_commands(tmp_path)
    assert [(c.doc, c.line, c.text, c.inline) for c in found] == [
        ("README.md", 1, "make lab", True),
        ("README.md", 2, "ansible-doc -t role mo.fleet.target", True),
        ("README.md", 6, "ansible-playbook a.yml -e '{\"k\": \"a # b\"}' --limit web1", False),
        ("README.md", 9, "CONTAINERS_CONF=lab/c.conf podman build -t x out/img", False),
        ("docs/a.md", 5, "make demo", False),
    ]
    assert dc.untagged_command_lines("docs/a.md", tmp_path) == [(2, "ansible-playbook in.yml")]
    assert dc.untagged_command_lines("README.md", tmp_path) == []


def test_the_docs_have_the_commands_a_reader_starts_with():
    texts = {c.text for c in COMMANDS}
    assert "make demo" in texts and "make test" in texts
    assert any(t.startswith("ansible-playbook playbooks/capture.yml -e '{\"capture_cmd\"") for t in texts)
    assert any("playbooks/repo_server.yml" in t for t in texts)
    assert len(RUN) >= 30, [str(c) for c in RUN]


@pytest.mark.parametrize("doc", dc.doc_files())
def test_command_blocks_are_marked_sh(doc):
    """A command in a fence without the sh marker would escape the test: mark the block ```sh."""
    assert dc.untagged_command_lines(doc) == [], f"{doc}: mark these blocks ```sh (or move the output out)"


def test_every_command_is_run_or_excluded_with_a_reason():
    not_run = [str(c) for c in RUN if c.doc not in dc.RUN_ORDER]
    assert not_run == [], ("these commands are in docs that tests/integration/test_docs_commands.py "
                           "does not run: add the doc to doc_commands.RUN_ORDER", not_run)
    for pattern, reason in dc.EXCLUDED:
        assert any(re.fullmatch(pattern, c.text) for c in COMMANDS), f"exclusion {pattern!r} matches no command"
        assert len(reason) > 20


@pytest.mark.parametrize("command", RUN, ids=str)
def test_command_runs_as_written(command):
    """No placeholder, no optional [brackets], valid shell syntax."""
    assert not dc.PLACEHOLDER.search(command.text), (
        f"{command}: a placeholder or an optional part; write the lab's names and one line per variant")
    proc = subprocess.run(["bash", "-n", "-c", command.text], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{command}: {proc.stderr}"


def test_placeholder_pattern_catches_the_old_forms():
    for old in ("ansible-playbook -i INVENTORY p.yml", "ansible HOST -m x", "ansible-doc mo.fleet.<module>",
                "ansible-playbook p.yml [--check]", "ansible-playbook p.yml -e mo_fleet_today=..."):
        assert dc.PLACEHOLDER.search(old), old
    assert not dc.PLACEHOLDER.search("ansible-playbook playbooks/rollout.yml -e rollout_hosts='all:!repo_server'")
