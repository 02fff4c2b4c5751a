# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one YAML emitter for files Ansible loads as trusted template text (task files, roles).

Ansible templates every string of a task file it loads.  So a value that came from a
template, a bundle or any other data must reach such a file in a form Ansible never
evaluates, whatever characters it holds: this emitter writes EVERY string as
``!unsafe "..."`` (a double-quoted scalar with every line break and control character
escaped, so it can never start a new line, key or document), except the few strings the
renderer wrote itself as Jinja (``when:`` conditions, ``"{{ item.path }}"`` references),
which the renderer marks by wrapping them in ``Expr``.  No string is inspected for Jinja
delimiters: what is not an ``Expr`` is inert, whatever it holds.

``Expr(text)``
    A str the renderer wrote as an Ansible expression or template (never data).
``dump(data) -> str``
    DATA (dicts with identifier keys, lists, str, Expr, bool, int, None) as a YAML document
    text, ``---`` first.  Raises ValueError (one sentence) for any other type or key.

Standard library only: module_utils runs on targets too.
"""

from __future__ import annotations

import re


def _shown(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class Expr(str):
    """A string the renderer wrote itself as Jinja: emitted as trusted template text."""

    __slots__ = ()


_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
# plain scalars YAML 1.1 would read as something other than that string
_NOT_STR_KEYS = frozenset(("y", "n", "yes", "no", "on", "off", "true", "false", "null"))
# YAML 1.1's implicit scalar types as PyYAML resolves them (used with re.match, as PyYAML
# does).  Ansible re-resolves the value of a ``!unsafe`` SCALAR as if it were plain, so
# ``!unsafe "0644"`` would load as the integer 420 and ``!unsafe ""`` as null; such a string
# is written inside a collection tagged ``!unsafe`` instead, where quoting keeps it a string.
_IMPLICIT = re.compile(r"""^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$
    |^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
        |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$
    |^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+
        |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$
    |^(?:<<)$|^(?:~|null|Null|NULL|)$|^(?:=)$|^(?:!|&|\*)$
    |^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[\ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
         (?:[\ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""", re.X)
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": "\\0"}


def _keep(ch):
    """True for a character written as itself inside a double-quoted scalar: printable ASCII
    and printable Unicode that neither YAML nor libyaml reads as a line break or a BOM."""
    code = ord(ch)
    if 0x20 <= code <= 0x7E:
        return ch not in '"\\'
    if code < 0xA0:
        return False  # C0, DEL, C1 (NEL U+0085 included)
    if code in (0x2028, 0x2029, 0xFEFF):
        return False
    if code in (0xFFFE, 0xFFFF):
        return False
    return ch.isprintable()


def quote(text):
    """TEXT as a YAML double-quoted scalar on one line (every other character escaped)."""
    out = ['"']
    for ch in text:
        if 0xD800 <= ord(ch) <= 0xDFFF:
            raise ValueError("The value %s holds a lone UTF-16 surrogate, which no text file can carry." % _shown(text))
        if _keep(ch):
            out.append(ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        else:
            code = ord(ch)
            out.append("\\x%02x" % code if code < 0x100 else "\\u%04x" % code if code < 0x10000 else "\\U%08x" % code)
    out.append('"')
    return "".join(out)


def _has_expr(value):
    if isinstance(value, Expr):
        return True
    if isinstance(value, dict):
        return any(_has_expr(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_expr(v) for v in value)
    return False


def _scalar(value, inert):
    """One scalar.  INERT: inside a collection tagged !unsafe (a plain quoted string)."""
    if isinstance(value, Expr):
        if inert:
            raise ValueError("An expression cannot be written inside data.")
        return quote(str(value))
    if isinstance(value, str):
        if inert:
            return quote(value)
        if _IMPLICIT.match(value):
            raise ValueError("The value %s would not load back as a string outside a list or mapping." % _shown(value))
        return "!unsafe " + quote(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(int(value))
    raise ValueError("A value of type %s cannot be written to a task file." % type(value).__name__)


def _key(key):
    if not isinstance(key, str) or _KEY.fullmatch(key) is None or key.lower() in _NOT_STR_KEYS:
        raise ValueError("The key %s cannot be written to a task file: keys are the renderer's own identifiers." % _shown(key))
    return key


def _emit(value, indent, lines, lead, inert, whole=True):
    """Append VALUE's lines at INDENT.  LEAD is the text before it on its first line ('key:',
    '-' or ''); a non-empty collection without an Expr inside is tagged !unsafe as a whole,
    except the document and the items of a top-level list (plays, tasks), whose values are
    tagged one by one (ansible-lint matches tasks by their keys)."""
    pad = " " * indent
    if isinstance(value, (dict, list, tuple)) and value:
        if not inert and whole and not _has_expr(value):
            lead = (lead + " !unsafe") if lead else pad + "!unsafe"
            lines.append(lead)
            lead, inert = "", True
        elif lead and not (isinstance(value, dict) and lead.endswith("-")):
            lines.append(lead)
            lead = ""
        if isinstance(value, dict):
            for key, item in value.items():
                prefix = (lead + " ") if lead else pad  # the first key shares the '-' line
                _emit(item, indent + 2, lines, prefix + _key(key) + ":", inert)
                lead = ""
        else:
            for item in value:
                _emit(item, indent + 2, lines, pad + "-", inert, whole=bool(lead) or indent > 0)
        return
    if isinstance(value, dict):
        text = "{}"
    elif isinstance(value, (list, tuple)):
        text = "[]"
    else:
        text = _scalar(value, inert)
    lines.append((lead + " " + text) if lead else pad + text)


def dump(data):
    """DATA as a YAML document text in which only Expr strings are template text."""
    lines = ["---"]
    _emit(data, 0, lines, "", False, whole=False)
    return "\n".join(lines) + "\n"
