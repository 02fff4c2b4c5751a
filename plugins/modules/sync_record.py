#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: sync_record
short_description: Write a host's sync record on the controller
version_added: "0.1.0"
description:
  - Writes the record of one host's release sync (what the M(mo.fleet.release) role built in
    C(release_sync_record)) as C(<dir>/sync/<host>.json), the host's last record, and with
    O(history) also as C(<dir>/sync/history/<host>/<time>-<date>.json).
  - Runs on the controller only (an action plugin) and never contacts the host, so writing
    the records of a large fleet costs no module run per host.
  - Each file is written atomically (temporary file and rename); missing directories are made.
  - The task reports C(changed=false) although it writes files. A record reports on the host;
    it is no change to it.
  - Refuses a record whose C(host), C(time) or C(date) is not a plain file name part.
author:
  - mo.fleet developers (@mo-fleet)
options:
  dir:
    description: The reports directory on the controller (the role's C(release_reports_dir)).
    type: path
    required: true
  record:
    description:
      - The sync record. Needs C(host), C(time) (C(YYYY-MM-DDTHH:MM:SSZ)) and C(date) (the day
        of the release rule); every other field is written as it is.
    type: dict
    required: true
  history:
    description: Also keep the record in the host's history.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Writes nothing and returns where the record would go.
  diff_mode:
    support: none
    description: No diff is returned.
  action:
    support: full
    description: Runs on the controller only.
notes:
  - The M(mo.fleet.release) role calls it after every sync, outside check mode.
seealso:
  - module: mo.fleet.release_sync
  - module: mo.fleet.release_state
"""

EXAMPLES = r"""
- name: Record what this host's sync did
  mo.fleet.sync_record:
    dir: reports
    record:
      host: "{{ inventory_hostname }}"
      time: "{{ now(utc=true, fmt='%Y-%m-%dT%H:%M:%SZ') }}"
      date: "2026-12-07"
      status: ok
      deployments: [base]
"""

RETURN = r"""
path:
  description: The host's last record.
  returned: always
  type: str
  sample: /srv/fleet/reports/sync/web1.json
history_path:
  description: The record's file in the host's history (null without O(history)).
  returned: always
  type: str
  sample: /srv/fleet/reports/sync/history/web1/2026-12-07T093000Z-2026-12-07.json
written:
  description: The files written (none in check mode).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dir=dict(type="path", required=True),
            record=dict(type="dict", required=True),
            history=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    module.fail_json(msg="mo.fleet.sync_record runs on the controller through its action plugin; "
                         "it cannot run as a module on a host")


if __name__ == "__main__":
    main()
