#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: collection_archive
short_description: Make an archive of a collection that ansible-galaxy can install
version_added: "0.1.0"
description:
  - 'Runs on the controller (C(delegate_to: localhost)); the M(mo.fleet.pull_repo) step of the
    C(mo.fleet.repo_server) role puts the archive into the pull repository (see docs/pull.md).'
  - A source tree (it has C(galaxy.yml)) is built with C(ansible-galaxy collection build).
  - An installed collection (C(MANIFEST.json) and C(FILES.json), no C(galaxy.yml)) is packed as
    it is, in the layout C(ansible-galaxy collection build) writes, with exactly the files
    C(FILES.json) lists, after checking each one's sha256 against it (a file changed since the
    install, a missing one or a symbolic link fails in one sentence naming it).
author:
  - mo.fleet developers (@mo-fleet)
options:
  src:
    description: The collection's root directory (where C(galaxy.yml) or C(MANIFEST.json) is).
    type: path
    required: true
  dest:
    description: The directory the archive is written to (created if missing).
    type: path
    required: true
attributes:
  check_mode:
    support: full
    description: The archive is a build artifact in a cache directory of the controller, not a
      managed state; it is made in check mode too, so later tasks can show what they would copy.
  diff_mode:
    support: none
    description: No diff.
"""

EXAMPLES = r"""
- name: Pack the collection this role belongs to
  mo.fleet.collection_archive:
    src: "{{ role_path }}/../.."
    dest: ~/.cache/mo-fleet/collection
  delegate_to: localhost
  become: false
  run_once: true
"""

RETURN = r"""
path:
  description: The archive.
  returned: success
  type: str
  sample: /home/me/.cache/mo-fleet/collection/mo-fleet-0.1.0.tar.gz
files_sha256:
  description: The sha256 of the archive's C(FILES.json), as its C(MANIFEST.json) names it (the content, not the timestamps).
  returned: success
  type: str
kind:
  description: C(source) (built by ansible-galaxy) or C(installed) (packed as installed).
  returned: success
  type: str
"""

import os
import re
import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mo.fleet.plugins.module_utils._repo.collection_archive import (
    ArchiveError, files_checksum, kind, pack_installed,
)

_BUILT = re.compile(r"(/\S+[.]tar[.]gz)")


def _galaxy(module):
    beside = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")
    return beside if os.access(beside, os.X_OK) else module.get_bin_path("ansible-galaxy", required=True)


def main():
    module = AnsibleModule(
        argument_spec=dict(src=dict(type="path", required=True), dest=dict(type="path", required=True)),
        supports_check_mode=True,
    )
    src, dest = module.params["src"], module.params["dest"]
    try:
        found = kind(src)
        if found == "installed":
            packed = pack_installed(src, dest)
            path, digest = packed["path"], packed["files_sha256"]
        else:
            os.makedirs(dest, exist_ok=True)
            rc, out, err = module.run_command([_galaxy(module), "collection", "build", src, "--output-path", dest,
                                               "--force"])
            built = _BUILT.search(out) if rc == 0 else None
            if not built:
                module.fail_json(msg=f"ansible-galaxy collection build {src} failed: {(err or out).strip()[:500]}")
            path = built.group(1)
            digest = files_checksum(path)
    except (ArchiveError, OSError) as exc:
        module.fail_json(msg=str(exc))
    # an artifact in the controller's cache, not a managed state
    module.exit_json(changed=False, path=path, files_sha256=digest, kind=found)


if __name__ == "__main__":
    main()
