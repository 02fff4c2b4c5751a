# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Renderer filters: thin wrappers over module_utils/render.py.

Documentation: the adjacent to_tasks.yml, to_task_yaml.yml, to_rollback_tasks.yml,
to_dockerfile.yml, to_role.yml and to_deb.yml.

Rendered tasks reach disk only as text written by the one emitter
(module_utils/_common/inert_yaml.py): to_task_yaml and the YAML files of to_role.  There,
every value from the template is ``!unsafe``; only the renderer's own expressions are
template text.  The task dicts of to_tasks and to_rollback_tasks are for reading: written
with to_nice_yaml they would be trusted template text again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.mo.fleet.plugins.module_utils import apply_plan
from ansible_collections.mo.fleet.plugins.module_utils import render
from ansible_collections.mo.fleet.plugins.module_utils._common import inert_yaml
from ansible_collections.mo.fleet.plugins.module_utils._common.plain import plain as _plain


def _source(name, template):
    if isinstance(template, Mapping):
        return _plain(template)
    if isinstance(template, str):
        return str(template)
    raise AnsibleFilterError("mo.fleet.%s: the input must be a template mapping or a bundle path, not %s."
                             % (name, type(template).__name__))


def _run(name, func, template, options, **extra):
    try:
        return func(_source(name, template), _plain(options), **extra)
    except render.RenderError as exc:
        raise AnsibleFilterError("mo.fleet.%s: %s" % (name, exc)) from None
    except ValueError as exc:  # the emitter refused a value (one sentence)
        raise AnsibleFilterError("mo.fleet.%s: %s" % (name, exc)) from None


def _readable(tasks):
    """Task dicts as plain types (the renderer's Expr marks dropped): for reading only."""
    return json.loads(json.dumps(tasks))


def _tasks_and_archive(source, options):
    prep = render.prepare(source, options)
    if prep.options["files_archive"]:
        render.write_files_archive(prep)
    return render.to_tasks(prep)


def to_tasks(template, **options):
    """Template or bundle path -> ordered list of idempotent task dicts (with files_archive:
    the tar of the directories and files is written there too).  For reading: write task
    files with to_task_yaml."""
    return _readable(_run("to_tasks", _tasks_and_archive, template, options))


def _task_yaml(source, options, rollback):
    if rollback:
        return inert_yaml.dump(render.to_rollback_tasks(source, options))
    return inert_yaml.dump(_tasks_and_archive(source, options))


def to_task_yaml(template, rollback=False, **options):
    """Template or bundle path -> the text of a task file (to_tasks, or to_rollback_tasks with
    rollback=true) in which Ansible can evaluate no value from the template."""
    if not isinstance(rollback, bool):
        raise AnsibleFilterError("mo.fleet.to_task_yaml: rollback must be true or false, not %r." % (rollback,))
    return _run("to_task_yaml", _task_yaml, template, options, rollback=rollback)


def _role_and_archive(source, options, role_name, origin, write_archive):
    if options.get("apply_module"):  # the role's paths: one run of its own copy of bundle_apply
        out = apply_plan.to_role(source, options, role_name=role_name, origin=origin)
    else:
        out = render.to_role(source, options, role_name=role_name, origin=origin)
    # the YAML files as text from the one inert emitter, before anything is written
    out["files"] = dict((rel, data if rel.endswith((".md", ".json")) else yaml_text(data))
                        for rel, data in out["files"].items())
    out["archive_changed"] = False
    if out["archive"]:
        opts = dict(options, verify_bundle=False)  # the bundle was verified just now
        out["archive_changed"] = render.files_archive_differs(source, opts)
        if out["archive_changed"] and write_archive:
            render.write_files_archive(source, opts)
    return out


def to_rollback_tasks(template, **options):
    """Template or bundle path -> ordered list of task dicts undoing the capture."""
    return _readable(_run("to_rollback_tasks", render.to_rollback_tasks, template, options))


def to_dockerfile(template, **options):
    """Template or bundle path -> build context {Dockerfile, setup_script, files}."""
    out = _run("to_dockerfile", render.to_dockerfile, template, options)
    return {"Dockerfile": out["Dockerfile"], "setup_script": out["setup.sh"],
            "files": [{"dest": dest, "src": src} for dest, src in out["files"]]}


def yaml_text(data):
    """DATA as a YAML document text ('---' first) from the one inert emitter."""
    return inert_yaml.dump(data)


def to_role(template, role_name="captured", origin=None, write_archive=True, **options):
    """Template or bundle path -> standalone role {files: {relpath: text}, copies: [...]}."""
    if not isinstance(write_archive, bool):
        raise AnsibleFilterError("mo.fleet.to_role: write_archive must be true or false, not %r." % (write_archive,))
    out = _run("to_role", _role_and_archive, template, options, role_name=role_name, origin=origin,
               write_archive=write_archive)
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


class FilterModule(object):
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
