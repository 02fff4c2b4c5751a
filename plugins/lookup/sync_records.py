# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: sync_records
author: mo.fleet developers (@mo-fleet)
version_added: "0.1.0"
short_description: Read the hosts' last sync records on the controller
description:
  - Returns a mapping host -> record for the given hosts that have a last sync record
    (C(<reports_dir>/sync/<host>.json), as the M(mo.fleet.sync_record) module writes it).
  - With O(field), a mapping host -> that field of its record instead (for example C(deployments), what each host had
    at its last sync).
  - A host name that is no plain file name, or a record that cannot be parsed or does not match the
    sync record schema, fails in one sentence naming the file and the field.
  - A relative reports directory is taken from the current directory, as C(ansible.builtin.realpath) does.
options:
  _terms:
    description: The reports directory (one).
    type: path
    required: true
  hosts:
    description: Inventory host names whose records are read.
    type: list
    elements: str
    required: true
  field:
    description: Return only this field of each record (hosts whose record lacks it get V(default)).
    type: str
  default:
    description: The value of O(field) for a record without it.
    type: raw
    default: []
"""

EXAMPLES = r"""
- name: What each host had at its last sync
  ansible.builtin.set_fact:
    already: "{{ lookup('mo.fleet.sync_records', 'reports', hosts=groups['all'], field='deployments') }}"
"""

RETURN = r"""
_raw:
  description: One mapping, host name -> its last record (or the record's O(field)).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.mo.fleet.plugins.plugin_utils._controller_paths import single_path_term

from ansible_collections.mo.fleet.plugins.module_utils._common.plain import plain
from ansible_collections.mo.fleet.plugins.module_utils._release.rollout import RolloutError, read_sync_records


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        reports_dir = single_path_term(terms, "sync_records", "reports directory")
        field, default = self.get_option("field"), plain(self.get_option("default"))
        try:
            records = read_sync_records(reports_dir, plain(self.get_option("hosts")))
        except RolloutError as exc:
            raise AnsibleLookupError(str(exc)) from None
        if field:
            records = {host: record.get(field, default) for host, record in records.items()}
        return [records]
