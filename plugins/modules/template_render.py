#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: template_render
short_description: Write the task file or the standalone role rendered from a capture bundle
version_added: "0.1.0"
description:
  - Renders a capture bundle on the controller and writes the result there. The renderer
    filters (P(mo.fleet.to_task_yaml#filter), P(mo.fleet.to_role#filter)) return the same data and write
    nothing; this action is what writes it.
  - With O(output=tasks) or O(output=rollback), writes the task file that applies the bundle
    or undoes it (every template value C(!unsafe)), and with the renderer option
    C(files_archive) also the tar of the created directories and copied files that the task
    file unpacks.
  - With O(output=role), writes a standalone role into O(dest) (tasks, handlers, defaults,
    meta with argument_specs, a README, the bundle's files under C(files/), the role's own
    copy of M(mo.fleet.bundle_apply) with O(role_engine=module), the files archive with
    O(role_engine=tasks)), and removes the files an earlier generation left below the
    role's directories that this one has not.
  - Every file is written through a temporary file and a rename; a file whose content and
    mode are already right is not touched, so a second run reports C(changed=false).
  - Runs on the controller only (an action plugin) and never contacts the host.
author:
  - mo.fleet contributors (@mo-fleet)
options:
  src:
    description:
      - The bundle directory on the controller. A relative path is taken from the directory
        C(ansible-playbook) was started in.
    type: path
    required: true
  dest:
    description:
      - The task file (O(output=tasks) or O(output=rollback)) or the role directory
        (O(output=role)) on the controller, relative as O(src).
    type: path
    required: true
  output:
    description: What to write.
    type: str
    choices: [tasks, rollback, role]
    default: tasks
  options:
    description:
      - The renderer options (C(pin_versions), C(include), C(exclude), C(skip_services),
        C(allowed_roots), C(account_ids), C(archive_min_files), C(apply_module),
        C(files_archive), C(var_prefix), ...), as the filter P(mo.fleet.to_tasks#filter) takes
        them. Unknown keys are refused.
    type: dict
    default: {}
  role_name:
    description:
      - The name of the role (O(output=role)); lower-case letters, digits and underscores.
      - The default is the name of O(dest), lower case, every other character C(_).
    type: str
  origin:
    description: Where the role says it came from in its README (default O(src) as given).
    type: str
  role_engine:
    description:
      - How the role converges its paths (O(output=role)). V(module), one run of its own copy
        of M(mo.fleet.bundle_apply); V(tasks), one C(ansible.builtin) task per kind of path,
        with the files archive C(files/mo-fleet-files.tar) from C(archive_min_files) on.
    type: str
    choices: [module, tasks]
    default: module
attributes:
  check_mode:
    support: full
    description: Writes nothing and reports what would change.
  diff_mode:
    support: partial
    description: Shows the task file and the role's tasks, handlers, defaults, meta and README; copied files and the archive are only named.
  action:
    support: full
    description: Runs on the controller only.
notes:
  - The role M(mo.fleet.apply_template) and the playbook C(playbooks/template_to_role.yml) use it.
seealso:
  - module: mo.fleet.bundle_apply
"""

EXAMPLES = r"""
- name: Write a standalone role from a bundle
  mo.fleet.template_render:
    src: captures/h1/nginx
    dest: out/nginx
    output: role
    options:
      pin_versions: false

- name: Write the task file that undoes a capture
  mo.fleet.template_render:
    src: captures/h1/nginx
    dest: /tmp/undo-nginx.yml
    output: rollback
"""

RETURN = r"""
dest:
  description: The task file or role directory, absolute.
  returned: success
  type: str
  sample: /srv/fleet/out/nginx
written:
  description: The files written from rendered text (role paths, or the task file); in check mode, those that would be.
  returned: success
  type: list
  elements: str
  sample: [tasks/main.yml, README.md]
copied:
  description: The role paths copied from the bundle (or the collection); in check mode, those that would be.
  returned: success
  type: list
  elements: str
  sample: [files/etc/nginx/nginx.conf]
removed:
  description: The role paths an earlier generation left that this one has not; in check mode, those that would go.
  returned: success
  type: list
  elements: str
  sample: [files/etc/nginx/old.conf]
archive:
  description: The files archive (absolute), or null when none is used.
  returned: success
  type: str
  sample: /srv/fleet/out/nginx/files/mo-fleet-files.tar
archive_changed:
  description: Whether the files archive was (or in check mode would be) written.
  returned: success
  type: bool
  sample: false
files:
  description: How many files the role copies (0 for a task file).
  returned: success
  type: int
  sample: 12
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mo.fleet.plugins.module_utils._render.args import TEMPLATE_RENDER_ARGS


def main():
    module = AnsibleModule(argument_spec=TEMPLATE_RENDER_ARGS, supports_check_mode=True)
    module.fail_json(msg="mo.fleet.template_render runs on the controller through its action plugin; "
                         "it cannot run as a module on a host")


if __name__ == "__main__":
    main()
