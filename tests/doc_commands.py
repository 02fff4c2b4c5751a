"""The command lines of README.md and docs/**/*.md, as a user would copy them.

The convention the docs follow (tests/unit/test_doc_commands.py enforces it):

- A command a reader runs goes in a fenced block marked ``sh`` (or ``bash``, ``shell``,
  ``console``). Every line of it is one command: ``\\`` at the end of a line continues it, a
  ``#`` comment (at the start of a line, or after a space outside quotes) is left out. Blocks of
  output, trees, YAML and files use another marker or none, and hold no command line.
- An inline code span is a command when its first word (after ``VAR=value`` assignments) is an
  Ansible program (``ansible``, ``ansible-playbook``, ``ansible-doc``, ...), a path under
  ``.venv/bin/`` or ``make`` with a target of the Makefile, followed by at least one argument.
  Anything else in backticks (a program's name alone, ``make install`` of a captured project,
  an ``-e`` option alone) is prose.
- Commands run as written from the checkout with the lab's inventory: the lab's host names, no
  placeholders (``INVENTORY``, ``HOST``, ``<...>``, ``[--check]``); optional variants are
  lines of their own.

tests/integration/test_docs_commands.py runs every command found here that EXCLUDED does not
name, in doc order, against a disposable fleet with the lab's names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHELL_FENCES = {"sh", "bash", "shell", "console"}
PROGRAMS = re.compile(r"ansible(-[a-z]+)?|\.venv/bin/[A-Za-z0-9_.-]+|make")
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=\S*")
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([A-Za-z0-9_+-]*)")
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
PLACEHOLDER = re.compile(r"\bINVENTORY\b|\bHOST\b|\bDIR\b|\bPATH\b|<[^>]*>|\[\s*-|\.\.\.|…")

# Commands the docs show that the integration test does not run, each with its reason.
# (pattern matched with re.fullmatch against the command, reason). Keep this list short.
EXCLUDED = (
    (r"make (test|unit|integration|molecule|lint|sanity)",
     "the test suite itself (tests/run-suite.sh): a test running it would run itself"),
    (r"make demo|bash demo/run\.sh",
     "the demo, run as its own stage (`make demo` from a clean clone) on the shared lab"),
    (r"make setup",
     "sets up this machine (system packages, the virtualenv, images), which `make test` did "
     "before any test ran"),
    (r"make (lab|lab-down|lab-down-all)",
     "builds or removes the shared lab and its base image, which every other test uses; "
     "tests/integration/test_lab_lifecycle.py covers labctl's up and down on its own fleet"),
    (r"make bench",
     "benchmarks take minutes and belong to `make bench`, never to the test suite"),
    (r"\.venv/bin/python benchmarks/bench_\w+\.py( .*)?",
     "one benchmark (docs/scale.md: 2,000 simulated hosts against its own lab server, minutes): "
     "it belongs to `make bench`, never to the test suite"),
)

# The docs whose commands tests/integration/test_docs_commands.py runs, in this order, in a
# scratch copy of the checkout: later docs use what earlier ones made (captures/, out/, the
# repository server); where that test splits them, it runs those commands first. A doc with a
# command to run must be listed here.
RUN_ORDER = (
    "README.md",
    "docs/capture.md",
    "docs/renderers.md",
    "docs/repo_server.md",
    "docs/release.md",
    "docs/release_client.md",
    "docs/pull.md",
    "docs/lab.md",
    "docs/interception.md",
    "docs/architecture.md",
    "docs/scale.md",
)


@dataclass(frozen=True)
class Command:
    """One command line of a doc: the file (relative to the checkout), its first line, the text."""

    doc: str
    line: int
    text: str
    inline: bool = False

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: {self.text}"


def doc_files(root: Path = ROOT) -> list[str]:
    """README.md and every docs/**/*.md, relative to ROOT, in a stable order."""
    files = [root / "README.md"] + sorted((root / "docs").rglob("*.md"))
    return [str(p.relative_to(root)) for p in files if p.is_file()]


def strip_comment(line: str) -> str:
    """LINE without a trailing shell comment: '#' at the start or after a blank, outside quotes."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
            elif ch == "\\" and quote == '"':
                continue
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def fenced_blocks(text: str):
    """(marker, first line number of the content, lines) of every fenced block of TEXT."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, marker, start = m.group(2), m.group(3).lower(), i + 2
        body = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        yield marker, start, body
        i += 1


def block_commands(body: list[str], start: int) -> list[tuple[int, str]]:
    """(line number, command) of a shell block's lines, continuations joined, comments out."""
    out, parts, first = [], [], None
    for offset, raw in enumerate(body):
        line = strip_comment(raw.strip())
        if not parts and not line:
            continue
        if first is None:
            first = start + offset
        if line.endswith("\\"):
            parts.append(line[:-1].strip())
            continue
        parts.append(line)
        out.append((first, " ".join(p for p in parts if p)))
        parts, first = [], None
    if parts:
        out.append((first, " ".join(parts)))
    return out


def makefile_targets(root: Path = ROOT) -> set[str]:
    """The targets of the checkout's Makefile (`make X` with X among them is a command)."""
    text = (root / "Makefile").read_text()
    return {t for group in re.findall(r"^([A-Za-z0-9_ -]+):(?!=)", text, re.M) for t in group.split()}


def command_word(text: str) -> str:
    """The program of a command line: its first word after VAR=value assignments."""
    words = text.split()
    while words and ASSIGNMENT.fullmatch(words[0]):
        words.pop(0)
    return words[0] if words else ""


def is_inline_command(span: str, targets: set[str]) -> bool:
    word = command_word(span)
    if not PROGRAMS.fullmatch(word) or len(span.split()) < 2:
        return False
    if word == "make":
        rest = span.split()[1:]
        return bool(rest) and all(t in targets for t in rest)
    return True


def commands(doc: str, root: Path = ROOT) -> list[Command]:
    """Every command line of DOC (relative to ROOT), in the order the doc shows them."""
    text = (root / doc).read_text()
    targets = makefile_targets(root)
    found = []
    for marker, start, body in fenced_blocks(text):
        if marker in SHELL_FENCES:
            found += [Command(doc, n, cmd) for n, cmd in block_commands(body, start)]
    fenced = {n for _, start, body in fenced_blocks(text) for n in range(start - 1, start + len(body) + 1)}
    for number, line in enumerate(text.splitlines(), 1):
        if number in fenced:
            continue
        for m in INLINE.finditer(line):
            span = m.group(1).strip()
            if is_inline_command(span, targets):
                found.append(Command(doc, number, span, inline=True))
    return sorted(found, key=lambda c: c.line)


def all_commands(root: Path = ROOT) -> list[Command]:
    return [c for doc in doc_files(root) for c in commands(doc, root)]


def exclusion(command: Command) -> str | None:
    """The reason COMMAND is not run by the integration test, or None when it is run."""
    for pattern, reason in EXCLUDED:
        if re.fullmatch(pattern, command.text):
            return reason
    return None


def untagged_command_lines(doc: str, root: Path = ROOT) -> list[tuple[int, str]]:
    """Lines of fenced blocks not marked as shell that start like a command (a marker is missing)."""
    text = (root / doc).read_text()
    targets = makefile_targets(root)
    out = []
    for marker, start, body in fenced_blocks(text):
        if marker in SHELL_FENCES:
            continue
        for offset, raw in enumerate(body):
            line = raw.strip()
            word = command_word(line)
            if PROGRAMS.fullmatch(word) and (word != "make" or is_inline_command(line, targets)):
                out.append((start + offset, line))
            elif word == "podman" and len(line.split()) > 2:
                out.append((start + offset, line))
    return out
