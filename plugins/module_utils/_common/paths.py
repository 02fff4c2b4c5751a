# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one path guard: where a path from elsewhere may lead, decided in one place.

Standard library only: this file runs on targets too.  Every refusal is a PathError whose
message is one sentence naming the field.

``normalize(path, field) -> str``
    PATH as a clean absolute path: a string, absolute, no NUL, no ``.``/``..`` component.
``within(path, root) -> bool``
    Normalised PATH equals ROOT or lies below it (component-wise, never by string prefix).
``check_roots(path, roots, field, below=False) -> str``
    PATH normalised and inside one of ROOTS; with BELOW, strictly below one (never a root
    itself, never ``/``): what a document may create or delete.
``stays_inside(base, candidate) -> bool``
    CANDIDATE, symlinks resolved, is BASE or below it; ``Inside(base)`` is the same check
    for many candidates, each parent directory resolved once.
``join(base, parts, field) -> str``
    BASE joined with PARTS, each a plain file name part (``names.check("file_part")``: no
    ``/``, no ``..``, no NUL, no line break), and the result (symlinks resolved) still below
    BASE.  Every controller-side write under a directory a user gave goes through here.
``symlink_ancestors(entries) -> None``
    ENTRIES is an iterable of (field, path, kind) with kind ``"link"`` for a symlink the
    document creates or changes, ``"path"`` for any other path it acts on.  Refuses a path
    with an ancestor among those symlinks: once the symlink exists, a change or deletion
    below it would be followed through it to wherever it points (outside the allowed roots
    as easily as inside).
"""

from __future__ import annotations

import fnmatch
import os
import stat

try:
    from ansible_collections.mo.fleet.plugins.module_utils._common import names
except ImportError:  # the copy a generated role carries in its module_utils/
    from ansible.module_utils import mo_fleet_names as names  # type: ignore[no-redef]


class PathError(ValueError):
    """A path would lead somewhere it must not; the message is one sentence."""


def normalize(path, field):
    """PATH as a normalised absolute path, or PathError naming FIELD."""
    if isinstance(path, str) and path[:1] == "/" and "/." not in path and "//" not in path \
            and "\x00" not in path and (len(path) == 1 or path[-1] != "/"):
        return path  # already clean: no '.', '..' or empty component (the common case, fast)
    if not isinstance(path, str) or not path:
        raise PathError("%s must be a non-empty string, not %r." % (field, path))
    if "\x00" in path:
        raise PathError("%s %r contains a NUL byte." % (field, path))
    if not path.startswith("/"):
        raise PathError("%s %r is not absolute." % (field, path))
    parts = [p for p in path.split("/") if p]
    if any(p in ("..", ".") for p in parts):
        raise PathError("%s %r contains a '.' or '..' component." % (field, path))
    return "/" + "/".join(parts)


def within(path, root):
    """True when normalised PATH equals ROOT or lies below it."""
    if root[:1] != "/" or "//" in root or root[-1:] == "/" and root != "/":  # else clean already (the common case)
        root = "/" + "/".join(p for p in root.split("/") if p)
    return root == "/" or path == root or path.startswith(root + "/")


def matches(path: str, pattern: str) -> bool:
    """True when PATH is selected by PATTERN, the one include/exclude rule of render and verify.

    A plain path selects itself and everything below it; a shell glob (``*``, ``?``, ``[``)
    selects the paths it matches and everything below them (``/opt/app?`` selects
    ``/opt/app1/x``).  Matching is case-sensitive, as file names are.
    """
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, pattern.rstrip("/") + "/*")
    return within(path, pattern)


def selected(path: str, include=(), exclude=()) -> bool:
    """True when PATH matches one of INCLUDE (or INCLUDE is empty) and none of EXCLUDE."""
    if include and not any(matches(path, p) for p in include):
        return False
    return not any(matches(path, p) for p in exclude or ())


_PREFIXES = {}


def check_roots(path, roots, field, below=False):
    """PATH normalised and inside one of ROOTS (strictly below one with BELOW), or PathError
    naming FIELD."""
    norm = normalize(path, field)
    if below and norm == "/":
        raise PathError("%s is /, which no template may create or delete." % field)
    if not roots:
        return norm
    key = tuple(roots)
    prefixes = _PREFIXES.get(key)
    if prefixes is None:
        clean = ["/" + "/".join(p for p in r.split("/") if p) for r in roots]
        prefixes = _PREFIXES[key] = (frozenset(clean), tuple(r.rstrip("/") + "/" for r in clean), "/" in clean)
    if below and norm in prefixes[0]:
        raise PathError("%s %s is an allowed root itself, which no template may create or delete." % (field, norm))
    if prefixes[2]:
        return norm
    if norm not in prefixes[0] and not norm.startswith(prefixes[1]):
        raise PathError("%s %s is outside the allowed roots (%s)." % (field, norm, ", ".join(roots)))
    return norm


def join(base, parts, field):
    """BASE/PARTS... for a write on this machine, refusing any part or result that leaves BASE."""
    if isinstance(parts, str):
        parts = [parts]
    for part in parts:
        try:
            names.check("file_part", part, field)
        except names.NameError_ as exc:
            raise PathError(str(exc))
    base = os.path.abspath(base)
    joined = os.path.join(base, *parts)
    if not stays_inside(base, joined):
        raise PathError("%s leads to %s, which is outside %s." % (field, os.path.realpath(joined), base))
    return joined


def stays_inside(base, candidate):
    """True when CANDIDATE, symlinks resolved, is BASE or lies below it (symlinks resolved)."""
    return Inside(base)(candidate)


class Inside:
    """``stays_inside(base, candidate)`` for many candidates below one BASE (a bundle's
    thousands of files): the real path of each parent directory is resolved once, by
    ``os.path.realpath`` itself, and cached under the parent as given; only the last
    component is looked at for each candidate (``lstat``: a symlink there is resolved in
    full).  Nothing a candidate's name says is trusted: a ``.``, ``..`` or empty last part is
    resolved in full too.  One instance serves one check; a tree that changes meanwhile is
    the caller's race as it was with realpath."""

    def __init__(self, base: str):
        self.real_base = os.path.realpath(base)
        self._below = self.real_base.rstrip("/") + "/"
        self._parents = {}

    def __call__(self, candidate: str) -> bool:
        parent, name = os.path.split(candidate)
        if not parent or name in ("", ".", ".."):
            real = os.path.realpath(candidate)
        else:
            real_parent = self._parents.get(parent)
            if real_parent is None:
                real_parent = self._parents[parent] = os.path.realpath(parent)
            try:
                is_link = stat.S_ISLNK(os.lstat(candidate).st_mode)
            except OSError:  # absent (or unreadable): realpath keeps the name as it is
                is_link = False
            real = os.path.realpath(candidate) if is_link else os.path.join(real_parent, name)
        return real == self.real_base or real.startswith(self._below)


def symlink_ancestors(entries):
    """Refuse (PathError) any path of ENTRIES below a symlink ENTRIES creates or changes."""
    entries = list(entries)
    links = set(path for _field, path, kind in entries if kind == "link")
    if not links:
        return
    for field, path, _kind in entries:
        cut = path.rfind("/")
        while cut > 0:
            ancestor = path[:cut]
            if ancestor in links:
                raise PathError("%s %s lies below the symlink %s that the template creates or changes, "
                                "so it could be followed out of its place." % (field, path, ancestor))
            cut = path.rfind("/", 0, cut)
