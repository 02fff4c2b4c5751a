#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: capture_info
short_description: Status of the capture directory, its snapshots and templates
version_added: "0.1.0"
description:
  - Reads the target's capture directory (C(/var/lib/mo-fleet/)) and its SQLite index, as MO-capture's
    C(status), C(list-snapshots) and C(list-templates) did. Changes nothing.
author:
  - mo.fleet developers (@mo-fleet)
options:
  name:
    description: Only list templates (and their snapshots) of captures with this name.
    type: str
  template:
    description: Also return the full template of the capture with this id (C(bundle.id) of mo.fleet.capture).
    type: str
extends_documentation_fragment:
  - mo.fleet.capture_index
attributes:
  check_mode:
    support: full
    description: Runs nothing and changes nothing in check mode.
  diff_mode:
    support: none
    description: No diff is returned.
seealso:
  - module: mo.fleet.capture
  - module: mo.fleet.capture_directory
"""

EXAMPLES = r"""
- name: Show the capture directory
  mo.fleet.capture_info:
  register: capture_directory

- name: Templates of the nginx captures
  mo.fleet.capture_info:
    name: nginx
"""

RETURN = r"""
status:
  description:
    - The capture directory's path (C(capture_directory); C(store) is its old name, kept until mo.fleet 2.0.0),
      whether it exists, whether a capture holds the lock now, counts and bytes used.
  returned: always
  type: dict
  sample:
    capture_directory: /var/lib/mo-fleet
    store: /var/lib/mo-fleet
    exists: true
    locked: false
    snapshots: 2
    templates: 1
    bytes: 20480
    pending_archives: 0
snapshots:
  description: Snapshots in the index (id, created, phase pre/post, template_id, roots, entries, packages, units, method).
  returned: always
  type: list
  elements: dict
templates:
  description: Templates in the index (id, name, created, command, status, rc, path, archive, summary, bytes, present).
  returned: always
  type: list
  elements: dict
template:
  description: The full template asked for with O(template).
  returned: when O(template) is set and found
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._capture.capture_index import CaptureDirectory, capture_directory_argument_spec


def main():
    module = AnsibleModule(
        argument_spec=capture_directory_argument_spec(name=dict(type="str"), template=dict(type="str")),
        supports_check_mode=True,
    )
    store = CaptureDirectory(module.params["capture_directory"])
    result = dict(changed=False, **store.report(module.params["name"]))
    result["status"]["template_version"] = tpl.TEMPLATE_VERSION
    wanted = module.params["template"]
    if wanted:
        match = [t for t in store.list_templates() if t["id"] == wanted]
        if not match:
            module.fail_json(msg=f"template {wanted} is not in the capture index.", **result)
        try:
            result["template"] = tpl.load_file(os.path.join(match[0]["path"], tpl.BUNDLE_TEMPLATE))
        except tpl.TemplateError as exc:
            module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
