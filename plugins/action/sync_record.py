# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for mo.fleet.sync_record: write a host's sync record on the controller.

It runs in the controller's worker for the host and never contacts the host, so a rollout
writes its records without a module round trip per host and file (two per host before).
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.mo.fleet.plugins.plugin_utils._controller_paths import controller_path
from ansible_collections.mo.fleet.plugins.module_utils._release.rollout import (
    RolloutError, sync_record_paths, write_sync_record,
)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=dict(
            dir=dict(type="path", required=True),
            record=dict(type="dict", required=True),
            history=dict(type="bool", default=True),
        ))
        reports_dir = controller_path(args["dir"])
        record = args["record"]
        # A record reports on the host; writing it is no change to the host, so a second
        # converge of an unchanged host stays changed=0.
        result["changed"] = False
        try:
            last, kept = sync_record_paths(reports_dir, record)
            written = [] if self._task.check_mode else write_sync_record(reports_dir, record, history=args["history"])
        except RolloutError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        except OSError as exc:
            result.update(failed=True, msg=f"sync record of {record.get('host')}: cannot write under "
                                           f"{reports_dir} ({exc.strerror or exc})")
            return result
        result.update(path=last, history_path=kept if args["history"] else None, written=written)
        return result
