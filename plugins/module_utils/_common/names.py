# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The names mo.fleet accepts from elsewhere: one pattern per kind, matched whole.

Every pattern is matched with ``re.fullmatch`` (never ``re.match(...$)``, whose ``$`` also
matches before a trailing newline), so a name can never carry a line break into a deb822
file, a shell line or a path.  Standard library only: this file runs on targets too.

``check(kind, value, field) -> str``
    VALUE when it is a string of KIND; otherwise NameError_ naming FIELD and the rule, in
    one sentence.
``is_valid(kind, value) -> bool``
"""

from __future__ import annotations

import re

PATTERNS = {
    # store, package set, deployment, project, schedule: also file and directory names
    "safe": r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
    # a Debian package name (Debian Policy 5.6.7)
    "package": r"[a-z0-9][a-z0-9+.-]+",
    # a Debian version (Policy 5.6.12): optional epoch, upstream version, optional revision
    # (as dpkg --validate-version: an epoch of at most nine digits, an upstream version
    # starting with a digit, a non-empty revision after the last '-')
    "version": r"(?:[0-9]{1,9}:)?[0-9][A-Za-z0-9.+~]*(?:-[A-Za-z0-9.+~]+)*",
    "architecture": r"[a-z0-9][a-z0-9-]*",
    # apt's name[:arch][=version]
    "apt_package": r"[a-z0-9][a-z0-9+.-]+(?::[a-z0-9-]+)?(?:=[A-Za-z0-9.+~:_-]+)?",
    "unit": r"[A-Za-z0-9][A-Za-z0-9:_.@\\-]*\.(?:service|socket|timer|path|mount|automount|target|swap|slice|scope|device)",
    "account": r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?",
    "suite": r"[A-Za-z0-9](?:[A-Za-z0-9._/-]*[A-Za-z0-9._-])?",
    "date": r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
    # a file name part: what a host name, a record or a capture name may become on disk
    "file_part": r"[A-Za-z0-9_][A-Za-z0-9._@+-]{0,254}",
    # an uploaded package's file name (pool names carry '+', '~' and an epoch as '%3a')
    "deb_file": r"[A-Za-z0-9][A-Za-z0-9._+~%-]{0,254}",
    # a repository URL (printable ASCII, no spaces: it is written into deb822 and shell lines)
    # RFC 3986 characters less those a web server's or apt's configuration gives a meaning
    # ($ ; { } quotes, backslash): a URL is written into nginx and .sources files
    "http_url": r"https?://[A-Za-z0-9._~:/?#\[\]@!&()*+,=%-]+",
    "uri": r"(?:https?|file)://[A-Za-z0-9._~:/?#\[\]@!&()*+,=%-]+",
    # a single line of printable text (origin, label, description of a Release file)
    "line": r"[^\x00-\x1f\x7f\x85\u2028\u2029]*",
    # the name of a role a renderer writes (its variables are prefixed with it)
    "role": r"[a-z][a-z0-9_]{0,63}",
    # a prefix of the variables rendered tasks register
    "var_prefix": r"[a-z_][a-z0-9_]*",
}

RULES = {
    "safe": "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters, no '..'",
    "package": "a Debian package name (lower-case letters, digits, '+', '-' and '.', at least two characters)",
    "version": "a Debian version",
    "architecture": "a Debian architecture name",
    "apt_package": "an apt package name, optionally with ':arch' and '=version'",
    "unit": "a systemd unit name",
    "account": "a user or group name",
    "suite": "an apt suite or component name (no '..', not ending in '/')",
    "date": "a date YYYY-MM-DD",
    "file_part": "a plain file name part (letters, digits, '.', '_', '@', '+' and '-', no '..')",
    "deb_file": "a plain .deb file name (letters, digits, '.', '_', '+', '~', '%' and '-', no '..')",
    "http_url": "an http:// or https:// URL of RFC 3986 characters without '$', ';', braces, quotes or spaces",
    "uri": "an http://, https:// or file:// URI of RFC 3986 characters without '$', ';', braces, quotes or spaces",
    "line": "one line of printable text",
    "role": "a role name (lower-case letters, digits and '_', starting with a letter, at most 64 characters)",
    "var_prefix": "a lower-case variable name prefix",
}

_COMPILED = dict((kind, re.compile(pattern)) for kind, pattern in PATTERNS.items())


class NameError_(ValueError):
    """A name from elsewhere is not what its field allows; the message is one sentence."""


def is_valid(kind, value):
    """True when VALUE is a string that KIND's pattern matches whole."""
    if not isinstance(value, str) or _COMPILED[kind].fullmatch(value) is None:
        return False
    if kind in ("safe", "file_part", "deb_file", "suite") and ".." in value:
        return False
    return True


def check(kind, value, field):
    """VALUE if it is a valid KIND, else NameError_ naming FIELD."""
    if not is_valid(kind, value):
        raise NameError_("%s must be %s, not %r." % (field, RULES[kind], value))
    return value


def by_deployment(fields: dict) -> dict:
    """The JSON Schema of a mapping deployment name -> object with FIELDS (a state file's shape)."""
    return {"type": "object",
            "propertyNames": {"type": "string", "pattern": PATTERNS["safe"], "x-rule": "is not a deployment name"},
            "additionalProperties": {"type": "object", "properties": fields}}
