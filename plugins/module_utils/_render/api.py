# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Renderers over the capture template model: tasks, rollback tasks, Dockerfile, role, .deb.

One template model (``template.py``), many renderers.  Every function here is pure (it only
reads the bundle when asked to verify it) and uses the standard library only.

``prepare(source, options=None) -> Prepared``
    Load (dict / JSON text / template file / bundle directory), migrate, validate and check
    the template for rendering: absolute clean paths inside the allowed roots, names that
    are safe in shell and YAML, nothing below a symlink the template itself creates or
    changes, and (when a bundle directory is known) every bundled file present with its
    recorded sha256 and nothing else in the bundle.  Raises RenderError with one
    sentence naming the item; nothing is rendered from a template that fails.
``to_tasks(source, options=None) -> list[dict]``
    Ordered Ansible task dicts that reproduce the capture with idempotent FQCN modules.
    The renderer's own Jinja (conditions, ``{{ item.path }}`` references, registered names)
    is marked ``Expr``; every other string is data.  Write tasks to a file only with
    ``_common/inert_yaml.dump`` (the filter ``mo.fleet.to_task_yaml``): it emits every
    non-Expr string ``!unsafe``, so Ansible never evaluates a template value.  Jinja in a
    value is therefore not refused.  Shell and Dockerfile lines quote every value with
    ``_q`` (which refuses line breaks) and show header fields with ``_one_line``.
``to_handlers(source, options=None) -> list[dict]``
    Handlers (restart a unit) for ``to_tasks(..., handlers="notify")``.
``to_rollback_tasks(source, options=None) -> list[dict]``
    Ordered task dicts that undo the capture on the host it was taken on.
``to_dockerfile(source, options=None) -> dict``
    ``{"Dockerfile": text, "setup.sh": text, "files": [(context path, bundle path)]}``:
    a build context (Dockerfile + files).
``to_deb(source, options=None) -> dict``
    Control data, conffiles, maintainer scripts and the file list of a binary package.
``to_role(source, options=None) -> dict``
    ``{"files": {relpath: data}, "copies": [(role relpath, bundle path)]}`` of a standalone role.
``archive_members(source, options=None) -> list[dict]``
    The directories and files ``to_tasks`` ships as one tar when ``files_archive`` is set
    (empty when fewer than ``archive_min_files``).
``write_files_archive(source, options=None) -> int``
    Write that tar to ``files_archive`` on the controller (atomically); the one function
    here that writes.
``files_archive_differs(source, options=None) -> bool``
    Whether that write would change ``files_archive`` (check mode, and ``changed``).

Options (every renderer accepts the same dict; unknown keys are refused):
    include, exclude        lists of paths or shell globs; a path also matches everything below
    pin_versions            apt ``name=version`` (default true)
    install_auto            also install packages apt marked automatic (default false: apt pulls them)
    skip_services           true, or a list of unit names, to leave units alone
    handlers                ``inline`` (register + conditional restart, default), ``notify`` or ``none``
    allowed_roots           paths renderers may touch (default DEFAULT_ALLOWED_ROOTS)
    account_ids             keep captured uid/gid numbers for users and groups (default false)
    bundle                  bundle directory on the controller (set by prepare from a path source)
    src_base                what copy ``src`` is relative to (default <bundle>/files)
    before_base             what rollback copy ``src`` is relative to (default <bundle>/before)
    verify_bundle           check bundled files' sha256 (default true when a bundle is known)
    var_prefix              prefix of registered variable names (default ``mo_fleet_``)
    base_image              Dockerfile FROM (default DEFAULT_BASE_IMAGE)
    files_archive           controller path of a tar (see write_files_archive): to_tasks then
                            unpacks the created directories and the copied files (those
                            without a service to restart) with one ansible.builtin.unarchive
                            instead of one file/copy item each; leave it unset for --check
                            (unarchive skips tar archives in check mode) and --diff (the
                            archive shows no per-file diff), as the apply_template role does
    archive_min_files       use the archive only from this many directories + files (default
                            100; 0 never)
    apply_module            one mo.fleet.bundle_apply task converges the paths (directories,
                            files, links, modes, owners, removals: check and diff native)
                            instead of the per-item loops and the archive (default false);
                            the configuration of a unit to restart keeps its copy task
"""

from __future__ import annotations

# The renderers' public names, one module per output under _render/ (this module only gathers them).
from ansible_collections.mo.fleet.plugins.module_utils._render.prepare import (  # noqa: F401 pylint: disable=unused-import
    ACCOUNT_DATABASES, CONFIG_ROOTS, DEFAULT_ALLOWED_ROOTS, DEFAULT_BASE_IMAGE, GENERATED_PATHS, OPTION_DEFAULTS,
    UNIT_DIRS, Prepared, RenderError, fast_errors, normalize_options, prepare)
from ansible_collections.mo.fleet.plugins.module_utils._render.tasks import (  # noqa: F401 pylint: disable=unused-import
    APPLY_MODULE, MODULE_OPTIONS, apply_paths, module_options, to_handlers, to_tasks)
from ansible_collections.mo.fleet.plugins.module_utils._render.archive import (  # noqa: F401 pylint: disable=unused-import
    archive_members, files_archive_differs, write_files_archive)
from ansible_collections.mo.fleet.plugins.module_utils._render.rollback import rollback_paths, to_rollback_tasks  # noqa: F401 pylint: disable=unused-import
# _q: quoting a shell word, which tests use through this module
from ansible_collections.mo.fleet.plugins.module_utils._render.shell import _q  # noqa: F401 pylint: disable=unused-import
from ansible_collections.mo.fleet.plugins.module_utils._render.dockerfile import to_dockerfile  # noqa: F401 pylint: disable=unused-import
from ansible_collections.mo.fleet.plugins.module_utils._render.deb import deb_architecture, to_deb  # noqa: F401 pylint: disable=unused-import
from ansible_collections.mo.fleet.plugins.module_utils._render.role import ROLE_ARCHIVE, to_role  # noqa: F401 pylint: disable=unused-import
