# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: release_state
author: mo.fleet developers (@mo-fleet)
version_added: "0.1.0"
short_description: Read the release state (the halted deployments) on the controller
description:
  - Reads the release state file that M(mo.fleet.release_state) writes (C(reports/release-state.json))
    with the same reader the module uses, and returns it as C({version, halted}).
  - A missing file is an empty state; a file that cannot be parsed or does not match the state's
    schema fails in one sentence naming the file and the field (never an empty state in its place).
  - A relative path is taken from the current directory, as C(ansible.builtin.realpath) does.
options:
  _terms:
    description: Path of the release state file (one).
    type: path
    required: true
"""

EXAMPLES = r"""
- name: The deployments halted today
  ansible.builtin.debug:
    msg: "{{ lookup('mo.fleet.release_state', 'reports/release-state.json').halted | list }}"
"""

RETURN = r"""
_raw:
  description: The release state, one mapping with C(version) and C(halted) (deployment -> details).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.mo.fleet.plugins.plugin_utils._controller_paths import single_path_term

from ansible_collections.mo.fleet.plugins.module_utils._release.rollout import RolloutError, read_state


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        path = single_path_term(terms, "release_state", "path of a release state file")
        try:
            return [read_state(path)]
        except RolloutError as exc:
            raise AnsibleLookupError(str(exc)) from None
