#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: repo_package
short_description: Upload a .deb or a package set to a store of the repository server
version_added: "0.1.0"
description:
  - The Ansible form of migasfree's C(migasfree-upload -f FILE) and C(migasfree-upload -d DIR).
  - Sends a C(.deb) file, or every C(.deb) of a directory (a package set), from the controller to
    a store on the repository server, creating the store on first use.
  - Each package is parsed (name, version, architecture, control fields) on the controller before
    anything is sent, and again on the server. It is stored under its Debian pool name
    C(<name>_<version>_<arch>.deb) in C(<root>/<project>/stores/<store>/) (or
    C(<store>/<set>/) for a package set).
  - The same file again is C(ok). A different file under an existing name, version and
    architecture is refused unless O(force=true).
  - All or nothing. When one file of a set is bad, nothing is written.
  - The same-name action plugin does the transfer; with O(remote_src=true) O(src) is a path on
    the server instead.
author:
  - mo.fleet developers (@mo-fleet)
options:
  src:
    description: Path of a C(.deb) file or of a directory of C(.deb) files (a package set), on the controller.
    type: path
    required: true
  store:
    description: Store name, a plain directory name (no C(/), no C(..)).
    type: str
    required: true
  set:
    description:
      - Package set name. The files go to C(<store>/<set>/) and deployments name the set
        instead of each file. Defaults to the directory name when O(src) is a directory.
    type: str
  project:
    description: Project name (C(mo_fleet_catalog.project.name)).
    type: str
    required: true
  force:
    description: Replace a stored package of the same name, version and architecture whose content differs.
    type: bool
    default: false
  remote_src:
    description: O(src) is already on the repository server; do not transfer it.
    type: bool
    default: false
extends_documentation_fragment:
  - mo.fleet.repo_server
  - mo.fleet.repo_server.lock_timeout
attributes:
  check_mode:
    support: full
    description: Parses and compares, writes nothing.
  diff_mode:
    support: none
    description: Nothing to show as a diff.
  action:
    support: full
    description: The same-name action plugin transfers O(src) from the controller.
notes:
  - Reads C(.deb) files whose members are compressed with zstd (Ubuntu's default), xz, gzip or not at all.
    zstd is read by the Python standard library on Python 3.14 or later, else by the C(zstd) command
    (Debian package C(zstd)), which must then be installed on the controller and the server
    (the C(mo.fleet.repo_server) role installs it there).
  - A control archive larger than 16 MiB once decompressed is refused, whatever its compression.
seealso:
  - module: mo.fleet.repo_publish
"""

EXAMPLES = r"""
- name: Upload one package to the store "main"
  mo.fleet.repo_package:
    src: out/hello_1.0-1_all.deb
    store: main
    project: "{{ mo_fleet_catalog.project.name }}"

- name: Upload a directory of packages as the package set "base-2026-11"
  mo.fleet.repo_package:
    src: /srv/debs/base/
    store: frozen
    set: base-2026-11
    project: demo
"""

RETURN = r"""
store:
  description: The store written to.
  returned: always
  type: str
  sample: main
set:
  description: The package set, if any.
  returned: always
  type: str
  sample: null
created_store:
  description: Whether the store was created by this upload.
  returned: always
  type: bool
packages:
  description: One entry per uploaded file.
  returned: always
  type: list
  elements: dict
  contains:
    source:
      description: The uploaded file's name.
      type: str
    filename:
      description: Path below the stores directory.
      type: str
      sample: main/hello_1.0-1_all.deb
    name:
      description: Package name.
      type: str
    version:
      description: Package version.
      type: str
    architecture:
      description: Package architecture.
      type: str
    sha256:
      description: SHA256 of the file.
      type: str
    size:
      description: Size in bytes.
      type: int
    status:
      description: C(added), C(unchanged) or C(replaced).
      type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mo.fleet.plugins.module_utils._repo.store import (
    UPLOAD_ARGUMENT_SPEC, collect_debs, package_set_of, run_engine, store_packages,
)


def upload(p, check_mode):
    return store_packages(p["root"], p["project"], p["store"], collect_debs(p["src"]),
                          package_set=package_set_of(p["src"], p["set"]), force=p["force"],
                          check_mode=check_mode, lock_timeout=p["lock_timeout"])


def main():
    module = AnsibleModule(argument_spec=UPLOAD_ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(**run_engine(module, "upload", upload, module.params, module.check_mode))


if __name__ == "__main__":
    main()
