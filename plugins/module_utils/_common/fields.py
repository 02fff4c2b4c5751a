# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Field lists shared by the catalog, the rollout and the client (defined once, here).

Standard library only: this file runs on targets too.
"""

from __future__ import annotations

# the apt package lists a deployment may carry, in the order the client applies them
APT_FIELDS = ("packages_to_install", "packages_to_remove", "default_preincluded_packages",
              "default_included_packages", "default_excluded_packages")
