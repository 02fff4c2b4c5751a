# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unified diffs applied to text, exactly as recorded: the patch-like edit of a conffile.

A capture records, for each conffile it saw changed, the unified diff from the packaged
default to the host's file (``confdiff``).  Applying that diff to another host's copy keeps
whatever that host's file has of its own elsewhere (a slightly different packaged default, a
local line), where copying the whole file would drop it.

``parse(diff) -> list``
    The hunks of DIFF: ``(old_start, old_lines, new_lines)``; PatchError (one sentence) for
    text that is not a unified diff of one file.
``apply(text, hunks) -> str | None``
    TEXT with every hunk applied, each where its old lines (context included) match exactly,
    at the recorded line or the nearest place after the previous hunk (no fuzz); None when a
    hunk matches nowhere.
``converge(text, diff) -> (str | None, bool)``
    ``(TEXT, True)`` when the patch is already applied (every hunk's new side, context
    included, is there: a second run changes nothing), else ``(new text, False)`` when the
    patch applies, ``(None, False)`` when neither.

Standard library only (runs on targets; generated roles carry a copy).
"""

from __future__ import annotations

import re

MAX_HUNKS = 10000
_HUNK = re.compile(r"@@ -([0-9]+)(?:,([0-9]+))? \+([0-9]+)(?:,([0-9]+))? @@")


class PatchError(ValueError):
    """A diff that is not what this reads; the message is one sentence."""


def parse(diff: str) -> list:
    lines = diff.splitlines(True)
    index = 0
    while index < len(lines) and not lines[index].startswith("@@"):
        if not lines[index].startswith(("--- ", "+++ ")):
            raise PatchError(f"Line {index + 1} of the diff is neither a file header nor a hunk.")
        index += 1
    hunks = []
    while index < len(lines):
        match = _HUNK.match(lines[index])
        if match is None or len(hunks) >= MAX_HUNKS:
            raise PatchError(f"Line {index + 1} of the diff is not a hunk header.")
        old_count = 1 if match.group(2) is None else int(match.group(2))
        new_count = 1 if match.group(4) is None else int(match.group(4))
        old, new = [], []
        index += 1
        while index < len(lines) and (len(old) < old_count or len(new) < new_count):
            line = lines[index]
            kind, body = line[:1], line[1:]
            if kind in (" ", "-"):
                old.append(body)
            if kind in (" ", "+"):
                new.append(body)
            if kind not in (" ", "-", "+"):
                raise PatchError(f"Line {index + 1} of the diff is not part of its hunk.")
            index += 1
        if len(old) != old_count or len(new) != new_count:
            raise PatchError("The diff's last hunk is shorter than its header says.")
        start = int(match.group(1)) - (1 if old_count else 0)
        hunks.append((start, old, new))
    return hunks


def _find(lines: list, want: list, at: int, low: int):
    """The index nearest AT (not below LOW) where WANT matches LINES, or None."""
    size = len(want)
    for distance in range(0, len(lines) + 1):
        for index in (at + distance, at - distance) if distance else (at,):
            if low <= index <= len(lines) - size and lines[index:index + size] == want:
                return index
    return None


def apply(text: str, hunks: list):
    lines = text.splitlines(True)
    out, pos, offset = [], 0, 0
    for start, old, new in hunks:
        index = _find(lines, old, start + offset, pos)
        if index is None:
            return None
        out += lines[pos:index] + new
        pos, offset = index + len(old), index - start
    return "".join(out + lines[pos:])


def converge(text: str, diff: str):
    hunks = parse(diff)
    shifted, reverse = 0, []
    for start, old, new in hunks:
        reverse.append((start + shifted, new, old))
        shifted += len(new) - len(old)
    # already applied first: a hunk that only adds lines still finds its context afterwards
    if apply(text, reverse) is not None:
        return text, True
    return apply(text, hunks), False
