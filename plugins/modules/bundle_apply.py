#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: bundle_apply
short_description: Converge every path of a capture bundle on a host in one run
version_added: "0.1.0"
description:
  - Converges the directories, files (content, mode, owner, group), symlinks, mode and owner
    changes and removals of a mo.fleet capture bundle, in the order the role mo.fleet.apply_template
    used to apply them one task each, in one module run on the target, which compares every
    path with what the bundle wants itself.
  - The same-name action plugin renders the path plan from O(bundle) on the controller
    (the template and every bundled file are checked first - paths, names, sha256, nothing
    unlisted), runs the module once to find what differs, and only when something differs
    ships the content of the differing files, once, as one tar named by sha256 over the
    connection, then runs the module again to converge. A host that already matches costs
    one module run and no transfer. A host that looks fresh (none of a sample of the plan's
    files exists there, one shell round trip) gets every content at once and one module run,
    which still compares every path and writes only what differs.
  - Check mode reports exactly the paths that would change and changes nothing, without
    shipping any content. Diff mode shows a text diff for every text file whose content
    changes and a one-line summary for binary or large files (over 256 KiB), and the mode,
    owner and group changes.
  - Packages, users, groups and systemd units are not its business; the filter mo.fleet.to_tasks
    renders them as ansible.builtin tasks around this one (accounts and packages before it,
    units after it, and the configuration file of a unit to restart keeps its own
    ansible.builtin.copy task, whose change triggers the restart).
  - Files are written to a temp file beside their destination, checked against their sha256
    and renamed into place; a path that lies below a symlink the bundle creates, a content
    archive with anything but files named by their sha256, or more than O(max_content_bytes)
    bytes, is refused with one sentence.
author:
  - mo.fleet developers (@mo-fleet)
options:
  bundle:
    description:
      - The bundle directory (or its template.json) on the controller, as written by playbooks/capture.yml.
      - Exactly one of O(bundle) and O(plan) is required.
    type: path
  plan:
    description:
      - A plan file (JSON with C(items), and C(sources) relative to the directory it is in) on
        the controller, as C(playbooks/template_to_role.yml) writes it into a role's files/.
    type: path
  rollback:
    description: Undo the capture on the host it was taken on instead (remove what it created, restore what it changed from the bundle's before/ content).
    type: bool
    default: false
  options:
    description:
      - Renderer options (C(include), C(exclude), C(allowed_roots), C(skip_services),
        C(skip_generated)) as for M(mo.fleet.to_tasks).
    type: dict
    default: {}
  max_content_bytes:
    description: The most content bytes one run ships and unpacks.
    type: int
    default: 17179869184
  conffile_patch:
    description:
      - For a conffile the capture recorded as changed, with its unified diff against the packaged default
        (C(metadata.conffile_diffs)), edit the host's file with that diff instead of replacing it whole, so what
        the host's copy has of its own elsewhere (a slightly different packaged default, a local line) stays.
      - A file the patch is already applied to is left alone (a second run reports no change). Where the patch
        applies neither way, or the host's file is not UTF-8 text of at most 1 MiB, the whole file is replaced and
        its RV(changes) entry says so.
      - V(false) replaces every such file whole, as M(ansible.builtin.copy) would.
    type: bool
    default: true
  paths_only:
    description:
      - Converge only when the bundle holds nothing but paths (its rendered tasks, as M(mo.fleet.template_render)
        would write them with C(apply_module), are this module's one task); otherwise change nothing and return
        RV(needs_tasks=true), so that the caller renders and runs the tasks (packages, accounts, units) around it.
      - The role mo.fleet.apply_template does so, and a bundle of paths only then costs one task.
    type: bool
    default: false
  manifest:
    description:
      - Internal, set by the action plugin - the checked path plan as rows (path, state, mode, owner, group,
        sha256, size, target, patch), as JSON text.
    type: str
  content:
    description: Internal, set by the action plugin - the path of the shipped content tar on the target.
    type: path
  probe:
    description: Internal, set by the action plugin - compare only, change nothing.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: One module run compares every path and reports the exact change list; nothing is shipped or written.
  diff_mode:
    support: full
    description: A text diff per file whose content changes (a summary for binary or large files), and the mode, owner and link changes.
  action:
    support: full
    description: The action plugin renders the plan on the controller and ships only the contents the host lacks.
notes:
  - Run it with C(become) when the paths belong to root.
  - Only ansible-core is needed on the controller for the roles C(playbooks/template_to_role.yml)
    writes; they carry this module, its engine and its action plugin.
seealso:
  - module: mo.fleet.template_verify
"""

EXAMPLES = r"""
- name: Converge the paths of a captured install
  mo.fleet.bundle_apply:
    bundle: captures/h1/nginx
  become: true
  register: nginx_paths

- name: Show what changed
  ansible.builtin.debug:
    msg: "{{ nginx_paths.changes | map(attribute='path') | list }}"

- name: Undo only what the capture did below /etc/nginx
  mo.fleet.bundle_apply:
    bundle: captures/h1/nginx
    rollback: true
    options:
      include:
        - /etc/nginx
  become: true
"""

RETURN = r"""
changes:
  description: The paths that changed (or would change in check mode), in plan order, with what differed.
  returned: always
  type: list
  elements: dict
  sample: [{"path": "/usr/local/bin/hello", "state": "file", "what": ["content"]},
           {"path": "/etc/adduser.conf", "state": "file", "what": ["content (patch)"]},
           {"path": "/srv/app", "state": "directory", "what": ["mode 0755 -> 0750"]}]
shipped:
  description: How many distinct file contents were shipped to the host (0 when nothing differs and in check mode).
  returned: always
  type: int
  sample: 12
needs_tasks:
  description: With O(paths_only), true when the bundle holds more than paths and nothing was done.
  returned: always
  type: bool
  sample: false
items:
  description: How many path items the plan holds.
  returned: always
  type: int
  sample: 2124
need:
  description:
    - The sha256 values of the contents the host lacks (sorted); in check mode, what a real run would ship.
  returned: always
  type: list
  elements: str
  sample: ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]
after:
  description:
    - Path of each conffile a patch edits -> the text it will have. Empty unless diff mode is on.
  returned: always
  type: dict
  sample: {"/etc/adduser.conf": "DSHELL=/bin/sh\n"}
before:
  description:
    - Path of each file whose content differs -> the host's text of it before the change (a one-line summary
      for a binary file or one larger than 256 KiB). Empty unless diff mode is on.
  returned: always
  type: dict
  sample: {"/etc/app/app.conf": "port=80\n"}
diff:
  description:
    - In diff mode, one entry per file whose content changes (C(before)/C(after) text or summaries, with
      headers) and one C(paths) entry listing the mode, owner, group and link changes.
  returned: when diff mode is on and something changes
  type: list
  elements: dict
  sample: [{"before_header": "/etc/app/app.conf", "after_header": "/etc/app/app.conf",
            "before": "port=80\n", "after": "port=8080\n"}]
"""

from ansible.module_utils.basic import AnsibleModule

try:
    from ansible_collections.mo.fleet.plugins.module_utils._render import apply
except ImportError:  # inside a generated role: a copy in the role's module_utils/
    from ansible.module_utils import mo_fleet_apply as apply  # type: ignore[no-redef]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            bundle=dict(type="path"),
            plan=dict(type="path"),
            rollback=dict(type="bool", default=False),
            options=dict(type="dict", default={}),
            max_content_bytes=dict(type="int", default=apply.MAX_CONTENT_BYTES),
            paths_only=dict(type="bool", default=False),
            # not a secret: no_log keeps hundreds of KB of rows out of the host's journal and
            # out of the echoed invocation
            manifest=dict(type="str", no_log=True),
            content=dict(type="path"),
            probe=dict(type="bool", default=False),
            conffile_patch=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["manifest"] is None:
        module.fail_json(msg="bundle_apply runs through its action plugin, which sets manifest from bundle or plan.")
    content = None
    try:
        items = apply.unpack(params["manifest"])
        if params["content"]:
            content = apply.ContentArchive(params["content"], params["max_content_bytes"])
        result = apply.converge(items, content, check=module.check_mode or params["probe"], diff=module._diff,
                                patch=params["conffile_patch"])
    except apply.ApplyError as exc:
        module.fail_json(msg=str(exc), changed=False)
    finally:
        if content is not None:
            content.close()
    result["items"] = len(items)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
