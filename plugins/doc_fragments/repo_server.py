# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options the repository server modules share (argument spec: module_utils/_repo/store.py)."""

from __future__ import annotations


class ModuleDocFragment:

    # root: every repository server module (mo.fleet.repo_server)
    DOCUMENTATION = r"""
options:
  root:
    description: Directory holding one sub-directory per project (stores, repos, state).
    type: path
    default: /var/lib/mo-fleet/repo
"""

    # lock_timeout: the modules that take the project lock (mo.fleet.repo_server.lock_timeout)
    LOCK_TIMEOUT = r"""
options:
  lock_timeout:
    description: Seconds to wait for another publish or upload (they share one lock per project) to finish.
    type: float
    default: 600
"""
