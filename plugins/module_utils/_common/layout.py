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
