#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pull_repo
short_description: Build the repository server's signed pull repository and the record credentials
version_added: "0.1.0"
description:
  - Runs on the repository server. Gives every pull host a random secret (mode 0600, under
    C(<root>/state/secrets/), never served) and writes nginx's C(htpasswd) from them
    (C({SSHA}) lines, mode 0640, group C(www-data)).
  - Stores the inputs of the pull repository (catalog, inventory, settings, the collection
    archive built by C(ansible-galaxy collection build)) under C(<root>/state/source/).
  - Regenerates the bare git repository C(<root>/fleet.git) (served at C(/pull/fleet.git/)) from
    them and the release state, with a commit signed by the archive key when anything changed,
    then C(git update-server-info) for git's dumb HTTP protocol. See docs/pull.md.
author:
  - mo.fleet developers (@mo-fleet)
extends_documentation_fragment:
  - mo.fleet.catalog
options:
  groups:
    description: Every host of the fleet mapped to its inventory groups (C(group_names)), as push sees them.
    type: dict
    required: true
  attributes:
    description: Hosts mapped to their C(mo_fleet_attributes) (hosts left out have none).
    type: dict
    default: {}
  pull_hosts:
    description: The hosts in pull mode (they get a secret and may upload their record).
    type: list
    elements: str
    required: true
  server_url:
    description: Base URL of the repository server as the hosts reach it, e.g. C(http://repo1).
    type: str
    required: true
  today:
    description: The day C(YYYY-MM-DD) pulling hosts plan for; empty for their own today.
    type: str
    default: ""
  collection_tar:
    description: Path on the server of the collection archive to put in the repository; empty keeps the stored one.
    type: path
    default: ""
  project:
    description: Project name (selects the signing key C(<gnupg_root>/<project>)).
    type: str
    required: true
  root:
    description: The server's pull directory.
    type: path
    default: /var/lib/mo-fleet/pull
  gnupg_root:
    description: Directory of the per-project signing keyrings.
    type: path
    default: /var/lib/mo-fleet/gnupg
  state_file:
    description: The server's release state (what C(playbooks/resume.yml) and the record ingest write).
    type: path
    default: /var/lib/mo-fleet/www/status/release-state.json
attributes:
  check_mode:
    support: none
    description: Not supported (the repository is built to know whether it changes).
  diff_mode:
    support: none
    description: No diff.
"""

EXAMPLES = r"""
- name: Build the pull repository
  mo.fleet.pull_repo:
    catalog: "{{ mo_fleet_catalog }}"
    groups: {web1: [web, pull_hosts], repo1: [repo_server]}
    attributes: {web1: [CTX-PERSONNEL]}
    pull_hosts: [web1]
    server_url: http://repo1
    project: demo
    collection_tar: /var/lib/mo-fleet/pull/state/mo-fleet.tar.gz
"""

RETURN = r"""
commit:
  description: The commit the branch C(main) points at.
  returned: always
  type: str
repo_changed:
  description: Whether a new commit was made.
  returned: always
  type: bool
new_secrets:
  description: Pull hosts given a new secret by this run.
  returned: always
  type: list
  elements: str
"""

import grp
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mo.fleet.plugins.module_utils._common import layout, names
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import write_if_changed
from ansible_collections.mo.fleet.plugins.module_utils._repo.catalog import CatalogError
from ansible_collections.mo.fleet.plugins.module_utils._repo.pull_repo import (
    PullError, build, ensure_secrets, htpasswd_text, write_source,
)
from ansible_collections.mo.fleet.plugins.module_utils._release.rollout import RolloutError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            catalog=dict(type="dict", required=True),
            groups=dict(type="dict", required=True),
            attributes=dict(type="dict", default={}),
            pull_hosts=dict(type="list", elements="str", required=True),
            server_url=dict(type="str", required=True),
            today=dict(type="str", default=""),
            collection_tar=dict(type="path", default=""),
            project=dict(type="str", required=True),
            root=dict(type="path", default=layout.PULL_ROOT),
            gnupg_root=dict(type="path", default=layout.GNUPG_ROOT),
            state_file=dict(type="path", default=os.path.join(layout.WWW_ROOT, layout.STATUS_DIR, "release-state.json")),
        ),
        supports_check_mode=False,
    )
    p = module.params
    paths = layout.pull_paths(p["root"])

    def run(argv, env):
        return module.run_command(argv, environ_update=env)

    try:
        names.check("safe", p["project"], "field 'project'")
        new = ensure_secrets(paths["secrets"], p["pull_hosts"])
        changed = write_if_changed(paths["htpasswd"], htpasswd_text(paths["secrets"], p["pull_hosts"]), mode=0o640,
                                   owner=0, group=grp.getgrnam("www-data").gr_gid)
        settings = {"server_url": p["server_url"], "today": p["today"], "pull_hosts": p["pull_hosts"]}
        inventory = {host: {"groups": groups, "attributes": p["attributes"].get(host) or []}
                     for host, groups in p["groups"].items()}
        changed |= write_source(paths, p["catalog"], inventory, settings, p["collection_tar"])
        repo = build(paths, p["state_file"], layout.gnupg_home(p["project"], p["gnupg_root"]), run,
                     layout.PULL_CLIENT_REPORTS)
    except (PullError, CatalogError, RolloutError, names.NameError_, OSError, KeyError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=changed or bool(new) or repo["changed"], commit=repo["commit"],
                     repo_changed=repo["changed"], new_secrets=new)


if __name__ == "__main__":
    main()
