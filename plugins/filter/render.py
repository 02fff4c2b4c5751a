# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Renderer filters: thin wrappers over module_utils/_render/api.py.

Documentation: the adjacent to_tasks.yml, to_task_yaml.yml, to_rollback_tasks.yml,
to_dockerfile.yml, to_role.yml and to_deb.yml.

The filters are pure: they return data and write nothing (mo.fleet.template_render writes
task files, roles and files archives).  Rendered tasks reach disk only as text written by the one emitter
(module_utils/_common/inert_yaml.py): to_task_yaml and the YAML files of to_role.  There,
every value from the template is ``!unsafe``; only the renderer's own expressions are
template text.  The task dicts of to_tasks and to_rollback_tasks are for reading: written
with to_nice_yaml they would be trusted template text again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.mo.fleet.plugins.module_utils._render import api as render
from ansible_collections.mo.fleet.plugins.module_utils._render import output
from ansible_collections.mo.fleet.plugins.module_utils._common.plain import plain as _plain


def _source(name, template):
    if isinstance(template, Mapping):
        return _plain(template)
    if isinstance(template, str):
        return str(template)
    raise AnsibleFilterError(f"mo.fleet.{name}: the input must be a template mapping or a bundle path, "
                             f"not {type(template).__name__}.")


def _run(name, func, template, options, **extra):
    try:
        return func(_source(name, template), _plain(options), **extra)
    except render.RenderError as exc:
        raise AnsibleFilterError(f"mo.fleet.{name}: {exc}") from None
    except ValueError as exc:  # the emitter refused a value (one sentence)
        raise AnsibleFilterError(f"mo.fleet.{name}: {exc}") from None


def _readable(tasks):
    """Task dicts as plain types (the renderer's Expr marks dropped): for reading only."""
    return json.loads(json.dumps(tasks))


def to_tasks(template, **options):
    """Template or bundle path -> ordered list of idempotent task dicts.  For reading: write
    task files with to_task_yaml; mo.fleet.template_render writes a files_archive."""
    return _readable(_run("to_tasks", render.to_tasks, template, options))


def _task_yaml(source, options, rollback):
    return output.task_text(source, options, rollback=rollback)


def to_task_yaml(template, rollback=False, **options):
    """Template or bundle path -> the text of a task file (to_tasks, or to_rollback_tasks with
    rollback=true) in which Ansible can evaluate no value from the template."""
    if not isinstance(rollback, bool):
        raise AnsibleFilterError(f"mo.fleet.to_task_yaml: rollback must be true or false, not {rollback!r}.")
    return _run("to_task_yaml", _task_yaml, template, options, rollback=rollback)


def _role(source, options, role_name, origin):
    out = output.role_output(source, options, role_name=role_name, origin=origin)
    out["archive_changed"] = bool(out["archive"]) and output.archive_differs(source, out["archive_options"])
    return out


def to_rollback_tasks(template, **options):
    """Template or bundle path -> ordered list of task dicts undoing the capture."""
    return _readable(_run("to_rollback_tasks", render.to_rollback_tasks, template, options))


def to_dockerfile(template, **options):
    """Template or bundle path -> build context {Dockerfile, setup_script, files}."""
    out = _run("to_dockerfile", render.to_dockerfile, template, options)
    return {"Dockerfile": out["Dockerfile"], "setup_script": out["setup.sh"],
            "files": [{"dest": dest, "src": src} for dest, src in out["files"]]}


def to_role(template, role_name="captured", origin=None, write_archive=True, **options):
    """Template or bundle path -> standalone role {files: {relpath: text}, copies: [...]}.
    WRITE_ARCHIVE is deprecated and without effect: mo.fleet.template_render writes."""
    if not isinstance(write_archive, bool):
        raise AnsibleFilterError(f"mo.fleet.to_role: write_archive must be true or false, not {write_archive!r}.")
    out = _run("to_role", _role, template, options, role_name=role_name, origin=origin)
    files = out["files"]
    return {"files": files, "copies": [{"dest": dest, "src": src} for dest, src in out["copies"]],
            "archive": out["archive"], "archive_changed": out["archive_changed"]}


def to_deb(template, **options):
    """Template or bundle path -> control data, maintainer scripts and file list of a .deb."""
    out = _run("to_deb", render.to_deb, template, options)
    out["files"] = [{"path": p, "src": s, "mode": m} for p, s, m in out["files"]]
    out["dirs"] = [{"path": p, "mode": m} for p, m in out["dirs"]]
    out["links"] = [{"path": p, "target": t} for p, t in out["links"]]
    out["left_out"] = [{"path": p, "reason": r} for p, r in out["left_out"]]
    return out


class FilterModule:
    """mo.fleet renderer filters."""

    def filters(self):
        return {
            "to_tasks": to_tasks,
            "to_rollback_tasks": to_rollback_tasks,
            "to_task_yaml": to_task_yaml,
            "to_dockerfile": to_dockerfile,
            "to_role": to_role,
            "to_deb": to_deb,
        }
