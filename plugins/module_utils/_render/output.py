# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the renderers produce, as files on the controller: the one place that writes them.

The filters in plugins/filter/render.py only return data; the action plugin
mo.fleet.template_render writes it through the functions here, which plan first (what would
change: check mode and diff mode come from the plan) and then write every file atomically.

``role_output(source, options, role_name, origin) -> dict``
    The standalone role of a bundle: ``files`` (role path -> text, YAML from the one inert
    emitter), ``copies`` [(role path, controller path)], ``archive`` (role path or None) and
    the options the archive is written with.
``plan_role(role_dir, out) -> dict`` / ``write_role(role_dir, out, plan) -> None``
    What writing that role into ROLE_DIR changes (files to write, files to copy, whether the
    archive differs, what an earlier generation left that this one has not), and the writing.
``plan_tasks(dest, text, source, options) -> dict`` / ``write_tasks(...)``
    The same for a task file and its files archive (option files_archive).
"""

from __future__ import annotations

import os
import posixpath

from ansible_collections.mo.fleet.plugins.module_utils._render import apply_plan
from ansible_collections.mo.fleet.plugins.module_utils._render import api as render
from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._common import inert_yaml
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import atomic_write

FILE_MODE = 0o644
DIR_MODE = 0o755
TASK_FILE_MODE = 0o600  # a task file may name paths and accounts of a host: the user's own
TEXT_KINDS = (".md", ".json")  # role files that are text already; every other one is YAML data


def role_output(source, options: dict, role_name: str = "captured", origin=None) -> dict:
    """The role of SOURCE (bundle path or template) with its YAML files as text."""
    if options.get("apply_module"):  # the role's paths: one run of its own copy of bundle_apply
        out = apply_plan.to_role(source, options, role_name=role_name, origin=origin)
    else:
        out = render.to_role(source, options, role_name=role_name, origin=origin)
    out["files"] = {rel: data if rel.endswith(TEXT_KINDS) else inert_yaml.dump(data)
                    for rel, data in out["files"].items()}
    out["archive_source"] = source
    out["archive_options"] = dict(options, verify_bundle=False)  # the bundle was verified just now
    return out


def task_text(source, options: dict, rollback: bool = False) -> str:
    """The text of a task file that applies SOURCE (or undoes it), from the one inert emitter."""
    if rollback:
        return inert_yaml.dump(render.to_rollback_tasks(source, options))
    return inert_yaml.dump(render.to_tasks(source, options))


def role_name_of(role_dir: str) -> str:
    """The default role name: the directory's name, lower case, every other character '_'."""
    base = os.path.basename(os.path.normpath(role_dir)).lower()
    return "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in base)


def archive_differs(source, options: dict) -> bool:
    """True when a files archive is used and the file at files_archive would change."""
    return bool(options.get("files_archive")) and render.files_archive_differs(source, options)


def _read(path: str):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _mode_differs(path: str, mode: int) -> bool:
    try:
        return (os.lstat(path).st_mode & 0o7777) != mode
    except OSError:
        return True


def _same_file(src: str, dest: str) -> bool:
    if not os.path.isfile(dest) or os.path.islink(dest) or _mode_differs(dest, FILE_MODE):
        return False
    return tpl.sha256_file(src) == tpl.sha256_file(dest)


def _diff(rel: str, before, after: str) -> dict:
    return {"before_header": rel, "after_header": rel,
            "before": before.decode("utf-8", "replace") if before is not None else "", "after": after}


def _stale(role_dir: str, out: dict) -> list:
    """Regular files an earlier generation left below the directories this role writes."""
    tops = {"files"} | {rel.split("/", 1)[0] for rel in out["files"] if "/" in rel}
    wanted = set(out["files"]) | {dest for dest, _src in out["copies"]}
    if out["archive"]:
        wanted.add(out["archive"])
    stale = []
    for top in sorted(tops):
        for root, _dirs, names in os.walk(os.path.join(role_dir, top)):
            for name in names:
                path = os.path.join(root, name)
                rel = os.path.relpath(path, role_dir).replace(os.sep, "/")
                if rel not in wanted and os.path.isfile(path) and not os.path.islink(path):
                    stale.append(rel)
    return sorted(stale)


def plan_role(role_dir: str, out: dict) -> dict:
    """What writing OUT into ROLE_DIR changes: write (role paths), copy, archive, remove, diff."""
    write, diff = [], []
    for rel, text in sorted(out["files"].items()):
        path = os.path.join(role_dir, rel)
        before = _read(path)
        if before != text.encode("utf-8") or _mode_differs(path, FILE_MODE):
            write.append(rel)
            diff.append(_diff(rel, before, text))
    copy = [(dest, src) for dest, src in out["copies"] if not _same_file(src, os.path.join(role_dir, dest))]
    archive = bool(out["archive"]) and archive_differs(out["archive_source"], _archive_options(role_dir, out))
    remove = _stale(role_dir, out)
    return {"write": write, "copy": copy, "archive": archive, "remove": remove, "diff": diff,
            "changed": bool(write or copy or archive or remove)}


def _archive_options(role_dir: str, out: dict) -> dict:
    return dict(out["archive_options"], files_archive=os.path.join(role_dir, out["archive"]))


def _make_dirs(role_dir: str, rels) -> None:
    for rel in sorted({posixpath.dirname(r) for r in rels} | {"files"}):
        os.makedirs(os.path.join(role_dir, rel), mode=DIR_MODE, exist_ok=True)


def write_role(role_dir: str, out: dict, plan: dict) -> None:
    """Carry out PLAN (from plan_role): every file through a temp file and a rename."""
    _make_dirs(role_dir, list(out["files"]) + [dest for dest, _src in out["copies"]])
    for rel in plan["write"]:
        atomic_write(os.path.join(role_dir, rel), out["files"][rel], mode=FILE_MODE)
    for dest, src in plan["copy"]:
        with open(src, "rb") as data:
            atomic_write(os.path.join(role_dir, dest), data, mode=FILE_MODE)
    if plan["archive"]:
        render.write_files_archive(out["archive_source"], _archive_options(role_dir, out))
    for rel in plan["remove"]:
        os.unlink(os.path.join(role_dir, rel))


def plan_tasks(dest: str, text: str, source, options: dict) -> dict:
    """What writing the task file TEXT to DEST (and its files archive) changes."""
    before = _read(dest)
    write = before != text.encode("utf-8") or _mode_differs(dest, TASK_FILE_MODE)
    archive = archive_differs(source, dict(options, verify_bundle=False))
    return {"write": [dest] if write else [], "copy": [], "archive": archive, "remove": [],
            "diff": [_diff(dest, before, text)] if write else [], "changed": bool(write or archive)}


def write_tasks(dest: str, text: str, source, options: dict, plan: dict) -> None:
    """Carry out PLAN (from plan_tasks): the archive first, then the task file that names it."""
    if plan["archive"]:
        render.write_files_archive(source, dict(options, verify_bundle=False))
    if plan["write"]:
        atomic_write(dest, text, mode=TASK_FILE_MODE)
