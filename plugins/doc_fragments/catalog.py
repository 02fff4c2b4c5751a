# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release catalog option of the modules that read it whole (mo.fleet.repo_info, mo.fleet.pull_repo)."""

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r"""
options:
  catalog:
    description: The release catalog (C(mo_fleet_catalog)).
    type: dict
    required: true
"""
