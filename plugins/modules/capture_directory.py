#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: capture_directory
short_description: Clean up or reset the capture directory on a target
version_added: "0.1.0"
description:
  - O(state=cleanup) keeps the newest O(keep) templates of every capture name (and anything younger than
    O(max_age_days) when set), removes older templates, their snapshots rows and fetched-or-stale archives,
    and leftovers of killed captures. This is MO-capture's C(cleanup) with retention.
  - The dpkg hook's records (C(hook/records.jsonl)) get the same retention - the newest O(keep) of each program
    that asked for package changes, those younger than O(max_age_days) - and every record made since the drift
    baseline is kept (drift captures attribute package changes to them).
  - O(state=reset) removes every snapshot and template (MO-capture's C(reset)) and the hook's records older
    than the drift baseline.
  - Takes the capture lock, so it never races a running capture.
  - The module's old name C(mo.fleet.capture_store) still works until
    mo.fleet 2.0.0, with a deprecation warning.
author:
  - mo.fleet developers (@mo-fleet)
options:
  state:
    description: What to do.
    type: str
    choices: [cleanup, reset]
    default: cleanup
  keep:
    description:
      - Templates to keep per capture name with O(state=cleanup).
      - A trailing capture time (C(-20261202T013018), as the host CLI's intercepted captures and its dpkg hook
        name theirs) is not part of the name here, so such captures are counted together.
    type: int
    default: 5
  max_age_days:
    description: With O(state=cleanup), also keep templates younger than this many days (0 = only O(keep) counts).
    type: int
    default: 0
extends_documentation_fragment:
  - mo.fleet.capture_index
attributes:
  check_mode:
    support: full
    description: Reports what would be removed.
  diff_mode:
    support: none
    description: No diff is returned.
seealso:
  - module: mo.fleet.capture
  - module: mo.fleet.capture_info
"""

EXAMPLES = r"""
- name: Keep the three newest templates of each capture
  mo.fleet.capture_directory:
    keep: 3

- name: Start over
  mo.fleet.capture_directory:
    state: reset
"""

RETURN = r"""
removed:
  description:
    - Template ids, archives and work directories removed (or that would be, in check mode).
    - "C(hook/records.jsonl: N record(s)) when N of the dpkg hook's records were removed."
  returned: always
  type: list
  elements: str
kept:
  description: Template ids kept.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mo.fleet.plugins.module_utils._capture.capture_index import (
    CaptureDirectory, CaptureDirectoryError, capture_directory_argument_spec,
)


def main():
    module = AnsibleModule(
        argument_spec=capture_directory_argument_spec(
            state=dict(type="str", default="cleanup", choices=["cleanup", "reset"]),
            keep=dict(type="int", default=5),
            max_age_days=dict(type="int", default=0),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["keep"] < 0:
        module.fail_json(msg="keep must be zero or more.")
    if p["max_age_days"] < 0:
        module.fail_json(msg="max_age_days must be zero or more.")
    store = CaptureDirectory(p["capture_directory"])
    if not store.exists():
        module.exit_json(changed=False, removed=[], kept=[], msg=f"The capture directory {store.root} does not exist.")
    try:
        removed, kept = store.cleanup(reset=p["state"] == "reset", keep=p["keep"], max_age_days=p["max_age_days"],
                                      check_mode=module.check_mode)
    except CaptureDirectoryError as exc:
        module.fail_json(msg=str(exc))
    if module.check_mode:
        msg = f"check mode: would remove {len(removed)} item(s)."
    else:
        msg = f"Removed {len(removed)} item(s), kept {len(kept)} template(s)."
    module.exit_json(changed=bool(removed), removed=removed, kept=kept, msg=msg)


if __name__ == "__main__":
    main()
