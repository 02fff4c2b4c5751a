# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_catalog
author: mo.fleet developers (@mo-fleet)
version_added: "0.1.0"
short_description: The release catalog a controller play works with
description:
  - The one rule for which catalog a playbook uses - the O(file) given (its C(mo_fleet_catalog)
    key, or the whole file), else C(mo_fleet_catalog) of the play, else C(mo_fleet_catalog) of the
    first inventory host.
  - Returns the catalog as found (P(mo.fleet.release_catalog#filter) validates it), or V(null)
    when there is none (the private role task C(mo.fleet.common) C(catalog.yml) refuses that in
    one sentence).  A catalog file that cannot be read or parsed fails in one sentence.
options:
  file:
    description:
      - A YAML or JSON file holding the catalog (for example C(-e catalog_file=PATH)).
      - A relative path is taken from the current directory (docs/architecture.md, controller paths).
        An empty string is no file.
    type: str
"""

EXAMPLES = r"""
- name: Choose the catalog
  ansible.builtin.set_fact:
    rollout_catalog: "{{ lookup('mo.fleet.fleet_catalog') }}"
- name: Choose the catalog, a file first
  ansible.builtin.set_fact:
    plan_catalog: "{{ lookup('mo.fleet.fleet_catalog', file=catalog_file | default('')) }}"
"""

RETURN = r"""
_raw:
  description: The catalog mapping, or V(null) when none was found.
  type: list
  elements: dict
"""

from collections.abc import Mapping

import yaml

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.mo.fleet.plugins.module_utils._common.fs import TooLarge, read_capped
from ansible_collections.mo.fleet.plugins.plugin_utils._controller_paths import controller_path

MAX_FILE = 16 << 20  # bytes read from a catalog file


def _from_file(path: str):
    try:
        text = read_capped(path, MAX_FILE)
    except OSError as exc:
        raise AnsibleLookupError(f"catalog_file {path}: cannot be read ({exc.strerror}).") from None
    except TooLarge:
        raise AnsibleLookupError(f"catalog_file {path}: is larger than {MAX_FILE} bytes.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AnsibleLookupError(f"catalog_file {path}: is not YAML or JSON ({str(exc).splitlines()[0]}).") from None
    if isinstance(data, Mapping) and "mo_fleet_catalog" in data:
        data = data["mo_fleet_catalog"]
    return data


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        path = self.get_option("file")
        catalog = None
        if path:
            catalog = _from_file(controller_path(path))
        else:
            catalog = variables.get("mo_fleet_catalog")
            hosts = (variables.get("groups") or {}).get("all") or []
            if catalog is None and hosts:
                catalog = (variables.get("hostvars") or {}).get(hosts[0], {}).get("mo_fleet_catalog")
        return [catalog if isinstance(catalog, Mapping) else None]
