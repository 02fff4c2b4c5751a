# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shell lines from template values: ``_q`` (one word, never a line break), ``_one_line``
(free text on one line), and the account and file-system scripts of the Dockerfile and the
maintainer scripts.

Standard library only.
"""

from __future__ import annotations

import posixpath
import shlex


from ansible_collections.mo.fleet.plugins.module_utils._render.prepare import LINE_BREAKS, RenderError, _shown
from ansible_collections.mo.fleet.plugins.module_utils._render.parts import (
    _account_items, _depth, _owner_value)


def _q(text, what="A value"):
    """TEXT as ONE shell word on the current line: shlex.quote, after refusing every line
    break (and NUL), so a value can never start a new command line."""
    text = str(text)
    if any(ch in LINE_BREAKS for ch in text):
        raise RenderError("%s %s holds a line break or NUL, which a shell line cannot carry." % (what, _shown(text)))
    return shlex.quote(text)


def _one_line(text):
    """TEXT for a comment or a free-text line: every character that is not printable (line
    breaks of any kind, controls) and every backslash is written as a visible escape, so it
    stays one line and never ends in the Dockerfile's line-continuation character."""
    text = str(text)
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(ch if ch.isprintable() and ch != "\\" else
                   ("\\x%02x" % ord(ch) if ord(ch) < 0x100 else "\\u%04x" % ord(ch) if ord(ch) < 0x10000
                    else "\\U%08x" % ord(ch)) for ch in text)


def _owner_spec(entry):
    owner = _owner_value(entry, "owner")
    group = _owner_value(entry, "group")
    if owner and group:
        return "%s:%s" % (owner, group)
    if owner:
        return owner
    if group:
        return ":" + group
    return None


def _account_script(prep, ops_users, ops_groups, ids=False):
    lines = []
    for g in _account_items(prep, ops_groups, "group"):
        args = ["groupadd"]
        if g.get("system"):
            args.append("--system")
        if g.get("gid") is not None:
            args += ["--gid", str(g["gid"])]
        args.append(g["name"])
        lines.append("getent group %s >/dev/null || %s" % (_q(g["name"]), " ".join(_q(a) for a in args)))
    for u in _account_items(prep, ops_users, "user"):
        args = ["useradd", "--no-create-home"]
        if u.get("system"):
            args.append("--system")
        if u.get("uid") is not None:
            args += ["--uid", str(u["uid"])]
        if u.get("group"):
            args += ["--gid", u["group"]]
        elif not u.get("system"):
            args.append("--user-group")
        if u.get("home"):
            args += ["--home-dir", u["home"]]
        if u.get("shell"):
            args += ["--shell", u["shell"]]
        if u.get("comment"):
            args += ["--comment", u["comment"]]
        args.append(u["name"])
        lines.append("getent passwd %s >/dev/null || %s" % (_q(u["name"]), " ".join(_q(a) for a in args)))
    return lines


def _mode_and_owner(state, path):
    """The chmod and chown lines that give PATH the mode and owner of STATE (those it records)."""
    lines = []
    if state.get("permissions"):
        lines.append("chmod %s -- %s" % (_q(state["permissions"], "The mode"), _q(path)))
    spec = _owner_spec(state)
    if spec:
        lines.append("chown %s -- %s" % (_q(spec), _q(path)))
    return lines


def _fs_script(prep, files_in_place=True):
    """Shell lines that create dirs, set modes/owners of copied files, links, perms, deletions."""
    lines = []
    for e in sorted(prep.entries("directories_created"), key=lambda e: e["path"]):
        if prep.package_made(e):
            continue
        lines.append("mkdir -p -- %s" % _q(e["path"]))
        lines += _mode_and_owner(e, e["path"])
    for op in ("files_created", "files_modified"):
        for e in prep.entries(op):
            if e.get("type") != "file" or not e.get("bundled") or prep.generated(e["path"]):
                continue
            lines += _mode_and_owner(e, e["path"])
    for op in ("symlinks_created", "symlinks_modified"):
        for e in prep.entries(op):
            if prep.package_made(e) or not e.get("target"):
                continue
            lines.append("mkdir -p -- %s && ln -sfn -- %s %s" % (_q(posixpath.dirname(e["path"])), _q(e["target"]), _q(e["path"])))
            spec = _owner_spec(e)
            if spec:
                lines.append("chown -h %s -- %s" % (_q(spec), _q(e["path"])))
    for e in prep.entries("permissions_changed"):
        lines += _mode_and_owner(e.get("after") or {}, e["path"])
    for op in ("files_deleted", "symlinks_deleted"):
        for e in prep.entries(op):
            lines.append("rm -f -- %s" % _q(e["path"]))
    for e in sorted(prep.entries("directories_deleted"), key=lambda e: -_depth(e["path"])):
        lines.append("rm -rf -- %s" % _q(e["path"]))
    return lines
