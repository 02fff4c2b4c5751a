#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: harvest
short_description: Bring home every template captured on a host since the last harvest
version_added: "0.1.0"
description:
  - Lists the templates of the target's capture directory (C(/var/lib/mo-fleet/)) that the controller has not
    harvested yet - captures of M(mo.fleet.capture), commands intercepted in login shells, C(mo-capture)
    captures, drift captures and the packages-only templates of the dpkg hook - and packs each bundle.
  - The same-name action plugin keeps the ids it harvested (under a lock, pruned to the ids the host still has) in
    C(<dest>/<inventory_hostname>/.harvested.json),
    passes them as O(skip), fetches each new bundle into C(<dest>/<inventory_hostname>/<name>/) and checks it
    with the code of the M(mo.fleet.capture) action (sha256, archive members and limits, template schema,
    every bundled file). A second run with nothing new captured changes nothing.
  - With O(drift), a drift capture of everything changed since the host's baseline (C(mo-capture baseline),
    taken by the C(mo.fleet.target) role) is taken first, under that name.
  - With O(remove_harvested), once the run's bundles are safely home (received, checked, recorded in the harvest
    state), every harvested template whose bundle is on the controller is removed from the host's capture
    directory (under its lock), so a host keeps only what has not come home yet. Off by default.
author:
  - mo.fleet developers (@mo-fleet)
options:
  dest:
    description:
      - Controller directory that receives the bundles (handled by the action plugin); relative to the
        controller's current directory.
    type: path
    default: captures
  drift:
    description:
      - Take a drift capture with this name before listing (a plain file name part). It becomes a template like
        any other and is harvested in the same run. Needs a baseline on the host.
    type: str
  remove_harvested:
    description:
      - Remove each harvested template from the host once its bundle is safely on the controller (handled by the
        action plugin, which then calls the module again with O(remove)); in check mode the ids that would be
        removed are listed.
      - Only templates recorded in the harvest state with their directory under C(<dest>/<inventory_hostname>/)
        still holding its C(template.json) go; a refused template, or one whose directory was removed from the
        controller, stays on the host.
      - When another capture holds the capture directory's lock for more than 60 seconds, nothing is removed in this
        run (a warning says so) and the next harvest removes them.
    type: bool
    default: false
  remove:
    description: Only remove these template ids from the host's capture directory (set by the action plugin).
    type: list
    elements: str
    default: []
  skip:
    description: Template ids the controller already has (set by the action plugin).
    type: list
    elements: str
    default: []
  list_only:
    description: Only list the pending templates (set by the action plugin in check mode).
    type: bool
    default: false
extends_documentation_fragment:
  - mo.fleet.capture_index
  - mo.fleet.bundle_transfer
attributes:
  check_mode:
    support: full
    description: Lists what would be harvested; takes no drift capture and fetches nothing.
  diff_mode:
    support: none
    description: No diff is returned.
notes:
  - Runs as root on the target (the capture directory's template directories are root's only); use C(become).
  - Names and ids from the host are checked on the controller as plain file name parts before anything is
    written there.
seealso:
  - module: mo.fleet.capture
  - module: mo.fleet.capture_info
"""

EXAMPLES = r"""
- name: Bring home everything captured on the hosts
  mo.fleet.harvest:
    dest: captures
  become: true

- name: Bring everything home and remove it from the hosts once it is
  mo.fleet.harvest:
    remove_harvested: true
  become: true

- name: Capture the drift since the baseline, then harvest
  mo.fleet.harvest:
    drift: web1-drift
  become: true
"""

RETURN = r"""
templates:
  description: The templates not harvested before (all of them in check mode, none fetched then).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Capture id in the host's capture directory.
      type: str
    name:
      description:
        - Capture name; the bundle goes to C(<dest>/<host>/<name>/), or to C(<dest>/<host>/<name>@<id>/) when another
          capture of the same name was harvested there before (names are not unique).
      type: str
    origin:
      description: C(module), C(cli), C(intercepted), C(drift) or C(dpkg-hook).
      type: str
    command:
      description: The command that was captured.
      type: str
    created:
      description: When the capture was taken (seconds since the epoch).
      type: int
    status:
      description: How the captured command ended (C(succeeded), C(failed), ...).
      type: str
    sha256:
      description: sha256 of the bundle archive (not in check mode).
      type: str
    size:
      description: Size of the bundle archive in bytes (not in check mode).
      type: int
    archive:
      description:
        - Path of the bundle archive left on the target for the controller to fetch, or null when the archive
          came in the result (not in check mode). The action plugin fetches it and leaves it out of its result.
      type: str
    content:
      description:
        - The bundle archive, base64, while the results stay within the inline budget (not in check mode).
          The action plugin decodes it and leaves it out of its result.
      type: str
    dest:
      description: Where the bundle was put on the controller (action plugin).
      type: str
    written:
      description: Whether that directory was written (false when it already held the same bundle).
      type: bool
present:
  description:
    - Ids of every template whose bundle is still in the host's capture directory; the action plugin prunes its harvest state
      to these and leaves them out of its result.
  returned: always
  type: list
  elements: str
refused:
  description: One sentence for each template from the host that was refused (recorded, never fetched again).
  returned: when not in check mode (action plugin)
  type: list
  elements: str
removed:
  description:
    - With O(remove_harvested), the ids removed from the host because their bundles are safely home (in check mode,
      the ids that would be removed).
  returned: when O(remove_harvested) is true
  type: list
  elements: str
drift:
  description: Id of the drift capture taken with O(drift).
  returned: when O(drift) was given and not in check mode
  type: str
msg:
  description: What happened, in one sentence.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mo.fleet.plugins.module_utils._capture import harvest
from ansible_collections.mo.fleet.plugins.module_utils._capture.capture import CaptureError
from ansible_collections.mo.fleet.plugins.module_utils._capture.capture_index import CaptureDirectory, CaptureDirectoryError, capture_directory_argument_spec
from ansible_collections.mo.fleet.plugins.module_utils._capture.drift import DriftError
from ansible_collections.mo.fleet.plugins.module_utils._capture.host_cli import drift_capture
from ansible_collections.mo.fleet.plugins.module_utils._capture.host_config import ConfigError, load_config
from ansible_collections.mo.fleet.plugins.module_utils._common import names


def main():
    module = AnsibleModule(
        argument_spec=capture_directory_argument_spec(
            dest=dict(type="path", default="captures"), drift=dict(type="str"),
            skip=dict(type="list", elements="str", default=[]), list_only=dict(type="bool", default=False),
            remove_harvested=dict(type="bool", default=False), remove=dict(type="list", elements="str", default=[]),
            inline_max=dict(type="int", default=0), archive_dir=dict(type="path")),
        supports_check_mode=True,
    )
    p = module.params
    store = CaptureDirectory(p["capture_directory"])
    result = dict(changed=False)
    if p["drift"] is not None and not names.is_valid("file_part", p["drift"]):
        module.fail_json(msg="drift must be %s, not %r." % (names.RULES["file_part"], p["drift"]))
    if os.geteuid() != 0 and not module.check_mode:
        module.fail_json(msg="mo.fleet.harvest must run as root on the target; use become: true.")
    if p["remove"]:
        if module.check_mode:
            module.exit_json(changed=True, removed=list(p["remove"]), msg="check mode: nothing removed.")
        removed, problem = harvest.remove_home(store, p["remove"])
        module.exit_json(changed=bool(removed), removed=removed, warnings=[problem] if problem else [],
                         msg=f"{len(removed)} harvested template(s) removed from the host.")
    if p["drift"] and not module.check_mode:
        try:
            config = load_config()
            config["capture_directory"] = p["capture_directory"]
            result["drift"] = drift_capture(config, p["drift"])["bundle"]["id"]
            result["changed"] = True
        except (ConfigError, DriftError, CaptureError, CaptureDirectoryError) as exc:
            module.fail_json(msg="No drift capture was taken: %s" % exc)
    items = harvest.pending(store, p["skip"])
    if module.check_mode or p["list_only"]:
        for item in items:
            item.pop("path")
    else:
        try:
            items = harvest.pack(store, items, p["inline_max"], p["archive_dir"])
        except OSError as exc:
            module.fail_json(msg="The bundles could not be packed: %s: %s." % (exc.filename, exc.strerror))
    result["templates"] = items
    result["present"] = harvest.present_ids(store)
    result["msg"] = "%d template(s) not harvested yet." % len(items)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
