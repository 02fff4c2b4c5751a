#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: repo_info
short_description: Report the packages of the repository server, their deployments and the orphans
version_added: "0.1.0"
description:
  - Lists every package in the stores of a project with its metadata (control fields,
    conffiles, size, SHA256) and the deployments of the catalog that hold it.
  - Lists orphan packages, that is packages held by no deployment (migasfree's "paquetes huérfanos").
  - Reads each C(.deb) at most once (shared content cache with M(mo.fleet.repo_publish)); changes nothing.
author:
  - mo.fleet developers (@mo-fleet)
extends_documentation_fragment:
  - mo.fleet.catalog
  - mo.fleet.repo_server
attributes:
  check_mode:
    support: full
    description: Never changes anything.
  diff_mode:
    support: none
    description: Nothing to show as a diff.
seealso:
  - module: mo.fleet.repo_publish
"""

EXAMPLES = r"""
- name: Which packages are orphans?
  mo.fleet.repo_info:
    catalog: "{{ mo_fleet_catalog }}"
  register: repo

- name: Show them
  ansible.builtin.debug:
    var: repo.orphans
"""

RETURN = r"""
project:
  description: The project name.
  returned: always
  type: str
packages:
  description: Every stored package.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: Path below the stores directory.
      type: str
    name:
      description: Package name.
      type: str
    version:
      description: Package version.
      type: str
    architecture:
      description: Package architecture.
      type: str
    size:
      description: Size in bytes.
      type: int
    sha256:
      description: SHA256 of the file.
      type: str
    fields:
      description:
        - Control fields as apt reads them (lines end at a newline only, each field name once in
          any case, spelled as in the package). A control file apt could read differently is
          refused at upload, so these are the fields every apt client sees in the signed index.
      type: dict
    conffiles:
      description: Conffiles of the package.
      type: list
      elements: str
    deployments:
      description: Deployments holding the package.
      type: list
      elements: str
orphans:
  description: Paths of packages held by no deployment.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mo.fleet.plugins.module_utils._repo.publish import repo_report
from ansible_collections.mo.fleet.plugins.module_utils._repo.store import CATALOG_OPTION, repo_argument_spec, run_engine


def main():
    module = AnsibleModule(argument_spec=repo_argument_spec(catalog=CATALOG_OPTION), supports_check_mode=True)
    report = run_engine(module, "reading the stores", repo_report, module.params["catalog"], root=module.params["root"])
    module.exit_json(changed=False, **report)


if __name__ == "__main__":
    main()
