# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one deb822 reader and writer of mo.fleet (control files, Packages, Release, .sources).

The reader parses as apt's ``pkgTagSection`` and dpkg do: lines end at ``\\n`` only (never
at ``\\r``, U+2028, U+0085 or ``\\x1c``, which ``str.splitlines`` would also split on),
field names are compared without regard to case (the first spelling is kept), a line
starting with a space or a tab continues the previous field.  Where apt and mo.fleet
could disagree the text is refused rather than guessed at: a field given twice (apt keeps
the LAST one, a naive reader the first), a whitespace-only line inside a paragraph, a
comment line, control characters (``\\r``, NUL, ``\\x1c``, DEL, U+0085, U+2028, U+2029),
a field name outside Debian Policy's charset.  Parsing is linear in the text's length.

The writer refuses, in one sentence naming the field, any name or value that would not
read back unchanged through apt: line breaks other than proper continuation lines,
control characters, leading or trailing whitespace on a line, empty continuation lines
(an empty line of a description is written `` .``).  So what mo.fleet reports about a
paragraph it wrote is exactly what apt reads from it.

Standard library only: this file runs on targets too.

API::

    parse_paragraphs(text, label, max_fields=...) -> [dict field -> value]
    parse_stanza(text, label, ...) -> dict (exactly one paragraph)
    get(fields, name, default=None) -> value of NAME in FIELDS, any case
    has(fields, name) -> bool
    check_field(name, value, label) -> None or Deb822Error
    format_field(name, value, label) -> 'Name: value\\n' (continuations kept)
    format_stanza(pairs, label) -> text of one paragraph (pairs: mapping or (name, value)s)
"""

from __future__ import annotations

import re

__all__ = [
    "Deb822Error", "parse_paragraphs", "parse_stanza", "get", "has", "check_field",
    "format_field", "format_stanza", "MAX_FIELDS",
]

# Debian Policy 5.1: US-ASCII without control characters, space and colon; not starting
# with '#' or '-'.
FIELD_NAME = re.compile(r"[!-\"$-,.-9;-~][!-9;-~]*")
# what can never appear anywhere in a deb822 text mo.fleet reads or writes (\t and \n are
# structure; everything else here is a line break to someone or invisible)
BAD_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]")
MAX_FIELDS = 1000


class Deb822Error(ValueError):
    """A deb822 text or field is not what apt would read the same way; one sentence."""


def _describe(char):
    return {"\r": "a carriage return", "\x00": "a NUL byte", "\u2028": "a U+2028 line separator",
            "\u2029": "a U+2029 paragraph separator", "\x85": "a U+0085 next-line character"}.get(
                char, "the control character %r" % char)


def _field_name(name, label):
    if not isinstance(name, str) or FIELD_NAME.fullmatch(name) is None:
        raise Deb822Error("%s has field name %r, which is not a deb822 field name (printable ASCII without "
                          "spaces or ':', not starting with '#' or '-')." % (label, name))


def check_field(name, value, label="paragraph"):
    """Raise Deb822Error unless NAME: VALUE reads back through apt exactly as given."""
    _field_name(name, label)
    if not isinstance(value, str):
        raise Deb822Error("%s field %s must be text, not %s." % (label, name, type(value).__name__))
    bad = BAD_CHARS.search(value)
    if bad:
        raise Deb822Error("%s field %s holds %s, which a deb822 file cannot carry." % (label, name, _describe(bad.group())))
    lines = value.split("\n")
    first = lines[0]
    if first != first.strip(" \t"):
        raise Deb822Error("%s field %s starts or ends with whitespace, which apt would drop." % (label, name))
    if not first and len(lines) == 1:
        raise Deb822Error("%s field %s is empty." % (label, name))
    if not first and lines[1][:1] == "\t":
        raise Deb822Error("%s field %s has an empty first line followed by a tab-indented line, "
                          "which apt reads differently from other deb822 readers." % (label, name))
    for line in lines[1:]:
        if line[:1] not in (" ", "\t"):
            raise Deb822Error("%s field %s has a line break that does not start a continuation line "
                              "(the next line would become a new field)." % (label, name))
        if not line.strip(" \t"):
            raise Deb822Error("%s field %s has an empty continuation line (write ' .' for an empty line), "
                              "which would end the paragraph." % (label, name))
        if line != line.rstrip(" \t"):
            raise Deb822Error("%s field %s has a line ending in whitespace, which apt would drop." % (label, name))


def format_field(name, value, label="paragraph"):
    """'NAME: VALUE\\n' after :func:`check_field` (a VALUE whose first line is empty: 'NAME:')."""
    check_field(name, value, label)
    return "%s:%s%s\n" % (name, " " if value[:1] != "\n" else "", value)


def format_stanza(pairs, label="paragraph"):
    """One paragraph from PAIRS (a mapping or (name, value) pairs); names unique in any case."""
    items = pairs.items() if isinstance(pairs, dict) else pairs
    seen = set()
    out = []
    for name, value in items:
        key = name.lower() if isinstance(name, str) else name
        if key in seen:
            raise Deb822Error("%s has field %s twice." % (label, name))
        seen.add(key)
        out.append(format_field(name, value, label))
    return "".join(out)


def get(fields, name, default=None):
    """The value of NAME in FIELDS (a parsed paragraph), whatever the case of either."""
    value = fields.get(name)
    if value is not None:
        return value
    low = name.lower()
    for key, value in fields.items():
        if key.lower() == low:
            return value
    return default


def has(fields, name):
    return get(fields, name) is not None


def parse_paragraphs(text, label="deb822 text", max_fields=MAX_FIELDS):
    """Every paragraph of TEXT as a dict field -> value (file order, first spelling kept).

    Continuation lines are joined with ``\\n`` and keep their leading and trailing whitespace;
    only the whitespace at the end of the whole value is dropped, and a value whose first line
    is empty (``MD5Sum:``) starts at its first continuation line: both as apt's TagFile and
    dpkg read it.
    """
    if not isinstance(text, str):
        raise Deb822Error("%s must be text, not %s." % (label, type(text).__name__))
    bad = BAD_CHARS.search(text)
    if bad:
        lineno = text.count("\n", 0, bad.start()) + 1
        raise Deb822Error("%s line %d holds %s, which apt and mo.fleet would read differently." % (label, lineno, _describe(bad.group())))
    paragraphs = []
    fields = None
    lower = None
    name = None
    parts = None
    count = 0

    def close():
        if name is not None:
            # as apt: a value whose first line is empty starts at its first continuation line
            fields[name] = "\n".join(parts).lstrip(" \t\n").rstrip(" \t")

    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip(" \t")
        if not line:
            if raw:
                raise Deb822Error("%s line %d holds only whitespace, which apt does not read as the end of a paragraph." % (label, lineno))
            if fields is not None:
                close()
                paragraphs.append(fields)
                fields = name = parts = None
            continue
        if line[0] in " \t":
            if name is None:
                raise Deb822Error("%s line %d is a continuation line without a field." % (label, lineno))
            if len(parts) == 1 and not parts[0] and line[0] == "\t":
                raise Deb822Error("%s line %d is a tab-indented first line of field %s, which apt reads "
                                  "differently from other deb822 readers." % (label, lineno, name))
            parts.append(raw)
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise Deb822Error("%s line %d is not a 'Field: value' line." % (label, lineno))
        _field_name(key, "%s line %d" % (label, lineno))
        if fields is None:
            fields, lower, count = {}, set(), 0
        else:
            close()
        low = key.lower()
        if low in lower:
            raise Deb822Error("%s has field %s twice (apt compares field names without regard to case and keeps the last one)." % (label, key))
        count += 1
        if count > max_fields:
            raise Deb822Error("%s has a paragraph with more than %d fields." % (label, max_fields))
        lower.add(low)
        name, parts = key, [raw.partition(":")[2].lstrip(" \t")]
    if fields is not None:
        close()
        paragraphs.append(fields)
    return paragraphs


def parse_stanza(text, label="paragraph", max_fields=MAX_FIELDS):
    """The one paragraph of TEXT (empty lines around it allowed); Deb822Error otherwise.

    Every field must also be one :func:`format_field` can write back, so a stanza mo.fleet
    accepts can always be published as read.
    """
    paragraphs = parse_paragraphs(text, label, max_fields)
    if not paragraphs:
        raise Deb822Error("%s is empty." % label)
    if len(paragraphs) > 1:
        raise Deb822Error("%s holds %d paragraphs where one is expected." % (label, len(paragraphs)))
    fields = paragraphs[0]
    for key, value in fields.items():
        if value == "":
            raise Deb822Error("%s field %s is empty." % (label, key))
    return fields
