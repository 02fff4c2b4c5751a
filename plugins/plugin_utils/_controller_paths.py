# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one convention for paths on the controller (lookups and action plugins).

A relative path the user gives (``-e``, a task argument) is taken from the current directory,
the directory ``ansible-playbook`` was started in, as a shell would take it.  Only when nothing
is there does an action plugin look where Ansible's own file actions look (the role's or
playbook's ``files/`` and the playbook directory: ``_find_needle``), so a role can ship what it
uploads.  docs/architecture.md states the convention for users.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleError


def controller_path(path: str, action=None, subdir: str = "files") -> str | None:
    """PATH made absolute by the convention above; None when ACTION's search finds nothing."""
    path = os.path.expanduser(str(path))
    if os.path.isabs(path):
        return path
    if action is None or os.path.exists(path):
        return os.path.abspath(path)
    try:
        return action._find_needle(subdir, path)
    except AnsibleError:
        return None


def single_path_term(terms, plugin: str, what: str) -> str:
    """The one controller path a lookup takes as its term (absolute), or AnsibleError naming PLUGIN."""
    if len(terms) != 1 or not isinstance(terms[0], str) or not terms[0]:
        raise AnsibleError(f"mo.fleet.{plugin}: give exactly one {what}.")
    return controller_path(terms[0])
