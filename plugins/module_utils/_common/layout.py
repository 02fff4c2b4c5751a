# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every path constant of mo.fleet, in one place.

Targets keep their capture data in ``CAPTURE_DIR``; the repository server keeps one tree per
project under ``REPO_ROOT`` (layout: :func:`project_paths`), its signing keys under
``GNUPG_ROOT`` and the web root it serves (repositories and the status site) under ``WWW_ROOT``.

Standard library only: this file runs on targets too.
"""

from __future__ import annotations

import os

CAPTURE_DIR = "/var/lib/mo-fleet"
REPO_ROOT = "/var/lib/mo-fleet/repo"
GNUPG_ROOT = "/var/lib/mo-fleet/gnupg"
WWW_ROOT = "/var/lib/mo-fleet/www"
STATUS_DIR = "status"  # below WWW_ROOT: the status site and release-state.json
PULL_ROOT = "/var/lib/mo-fleet/pull"  # the server's pull mode: git repository, wheels, records
PULL_CLIENT_DIR = "/var/lib/mo-fleet/pull-client"  # a pulling host: venv, checkout, key, secret
PULL_CLIENT_REPORTS = PULL_CLIENT_DIR + "/reports"  # its sync records (reports/sync/<host>.json)


def project_paths(root: str, project: str) -> dict[str, str]:
    """The paths of one project's tree on the repository server."""
    base = os.path.join(root, project)
    return {
        "base": base,
        "stores": os.path.join(base, "stores"),
        "repos": os.path.join(base, "repos"),
        "disabled": os.path.join(base, "disabled"),
        "state": os.path.join(base, "state"),
        "lock": os.path.join(base, "state", "lock"),
        "cache": os.path.join(base, "state", "cache.bin"),
        "publish": os.path.join(base, "state", "publish.json"),
    }


def gnupg_home(project: str, root: str = GNUPG_ROOT) -> str:
    """The GnuPG home holding PROJECT's signing key."""
    return os.path.join(root, project)


def pull_paths(root: str = PULL_ROOT) -> dict[str, str]:
    """The paths of the repository server's pull mode (docs/pull.md).

    Served by nginx: ``git`` (``/pull/fleet.git/``, a bare repository), ``wheels``
    (``/pull/wheels/``); written by nginx: ``incoming`` (``PUT /records/<host>.json``); written by
    push rollouts over SSH (root's own): ``pushed`` (their batches' sync records).
    Everything under ``state`` is root's own and never served: the inputs of the pull
    repository (``source``), its work tree and index, the per-host secrets, the checked
    records (``reports/sync/<host>.json``, the layout of the controller's reports) and the lock.
    """
    state = os.path.join(root, "state")
    return {
        "root": root,
        "git": os.path.join(root, "fleet.git"),
        "wheels": os.path.join(root, "wheels"),
        "incoming": os.path.join(root, "records"),
        "pushed": os.path.join(root, "records-push"),
        "htpasswd": os.path.join(root, "htpasswd"),
        "state": state,
        "source": os.path.join(state, "source"),
        "collection": os.path.join(state, "source", "ansible_collections", "mo", "fleet"),
        "work": os.path.join(state, "work"),
        "index": os.path.join(state, "git-index"),
        "secrets": os.path.join(state, "secrets"),
        "reports": os.path.join(state, "reports"),
        "lock": os.path.join(state, "lock"),
    }
