#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_state
short_description: Halt or resume deployments in the release state file
version_added: "0.1.0"
description:
  - 'Reads and updates the release state, a JSON file C({"version": 1, "halted": {deployment: details}})
    that the M(mo.fleet.release) role reads so a halted deployment reaches no new host.'
  - 'The file is written atomically (temporary file and rename) under an C(flock) on
    C(<path>.lock), so two rollouts serialize. Run it where the state lives (the controller,
    with C(delegate_to: localhost)); C(playbooks/rollout.yml) also copies it to the repository server.'
  - An already halted deployment keeps the details of its first halt.
author:
  - mo.fleet developers (@mo-fleet)
options:
  path:
    description: The release state file.
    type: path
    required: true
  halt:
    description: Deployments to halt, each mapped to details (failed, total, threshold, hosts, date...).
    type: dict
    default: {}
  resume:
    description: Deployments to resume (clear from the halted set).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Reports what would change, writes nothing.
  diff_mode:
    support: full
    description: Shows the halted deployments before and after.
"""

EXAMPLES = r"""
- name: Halt a deployment
  mo.fleet.release_state:
    path: reports/release-state.json
    halt:
      firefox-128: {failed: 2, total: 2, threshold: 0, hosts: [canary1, canary2]}
  delegate_to: localhost

- name: Resume it
  mo.fleet.release_state:
    path: reports/release-state.json
    resume: [firefox-128]
  delegate_to: localhost
"""

RETURN = r"""
path:
  description: The release state file.
  returned: always
  type: str
halted:
  description: The halted deployments after the run, with their details.
  returned: always
  type: dict
halted_now:
  description: Deployments halted by this run.
  returned: always
  type: list
  elements: str
resumed:
  description: Deployments resumed by this run.
  returned: always
  type: list
  elements: str
state:
  description: The whole state.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mo.fleet.plugins.module_utils._release.rollout import (
    RolloutError, read_state, update_state,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            halt=dict(type="dict", default={}),
            resume=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    try:
        before = sorted(read_state(path)["halted"])
        changed, state, halted_now, resumed = update_state(
            path, halt=module.params["halt"], resume=module.params["resume"], check=module.check_mode)
    except (RolloutError, OSError) as exc:
        module.fail_json(msg=str(exc))
    changed = bool(halted_now or resumed)
    result = dict(changed=changed, halted=state["halted"], halted_now=halted_now, resumed=resumed,
                  state=state, path=path)
    if module._diff:
        result["diff"] = {"before": "\n".join(before) + "\n", "after": "\n".join(sorted(state["halted"])) + "\n",
                          "before_header": f"{path} (halted)", "after_header": f"{path} (halted)"}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
