#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: template_verify
short_description: Check a host against a capture template, or validate a bundle
version_added: "0.1.0"
description:
  - With O(template), checks the host item by item against what the capture template says it
    must look like once applied, and reports drift; the task fails when the host does not
    conform (unless O(fail_on_drift=false)). Checked are paths (present or absent, type,
    content sha256, mode, owner, group, symlink target), packages (installed or removed, and
    the version), systemd units (enabled, active) and users and groups (present or absent,
    home, shell). It reads only, so it is safe under C(--check).
  - The same-name action plugin loads O(template) on the controller when it is a bundle
    directory or template file, validates it (schema, paths, sha256 of the bundled files), and
    ships the template to the host as a module argument.
  - With O(path) instead, loads a capture template or bundle (on the host the module runs on,
    usually the controller), converts MO-capture v2.x templates to the current version,
    validates it against the template JSON Schema and, for a bundle, checks that every bundled
    file exists with the recorded sha256 and that nothing unlisted is there (MO-install's
    C(--verify) and C(--info)).
author:
  - mo.fleet developers (@mo-fleet)
options:
  template:
    description:
      - The template to check the host against, as a mapping, or a bundle directory or
        template file on the controller (the action plugin loads it).
      - Exactly one of O(template) and O(path) is required.
    type: raw
  path:
    description: A bundle directory or template file to validate (no host check).
    type: path
  include:
    description: Only check paths equal to or below these absolute paths (or matching these globs).
    type: list
    elements: str
    default: []
  exclude:
    description: Do not check paths equal to or below these absolute paths (or matching these globs).
    type: list
    elements: str
    default: []
  check_content:
    description: Compare the sha256 of files with the template.
    type: bool
    default: true
  check_versions:
    description: Compare package versions with the template (else only installed or not).
    type: bool
    default: true
  skip_services:
    description: V(true) to check no units, or a list of unit names not to check.
    type: raw
    default: false
  skip_generated:
    description: Do not compare the content of files the system writes itself (account databases, C(/etc/ld.so.cache)).
    type: bool
    default: true
  fail_on_drift:
    description: Fail the task when the host does not conform.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode runs the same checks.
  diff_mode:
    support: none
    description: Drift is reported in the result, not as a diff.
notes:
  - The role C(mo.fleet.apply_template) applies a bundle; this module then verifies the host against it.
  - The host check reads C(dpkg-query), C(systemctl) and the passwd and group databases; it changes nothing.
seealso:
  - module: mo.fleet.capture
"""

EXAMPLES = r"""
- name: Check web servers against the nginx capture
  mo.fleet.template_verify:
    template: captures/web1/nginx

- name: Report drift without failing, ignoring package versions
  mo.fleet.template_verify:
    template: "{{ lookup('ansible.builtin.file', 'captures/web1/nginx/template.json') | from_json }}"
    check_versions: false
    fail_on_drift: false
  register: drift

- name: Validate a fetched bundle on the controller
  mo.fleet.template_verify:
    path: captures/web1/nginx
  delegate_to: localhost
"""

RETURN = r"""
conforms:
  description: Whether the host matches the template (host check).
  returned: with template
  type: bool
checked:
  description: Number of items checked.
  returned: with template
  type: int
drift_lines:
  description: The first 50 differences as readable lines.
  returned: with template
  type: list
  elements: str
drift:
  description: One record per difference (kind, name, check, expected, actual).
  returned: with template
  type: list
  elements: dict
  sample: [{"kind": "path", "name": "/etc/nginx/nginx.conf", "check": "mode", "expected": "0644", "actual": "0600"}]
valid:
  description: Whether the template (and the bundle content) is valid.
  returned: with path
  type: bool
info:
  description: Summary of the template (name, host, command, status, counts, packages, units, users, redacted paths).
  returned: with path, when valid
  type: dict
validator:
  description:
    - Always C(builtin) - the collection's one stdlib checker of the template schema runs on the controller and on
      targets alike, whether or not the jsonschema library is installed (kept for compatibility; it was
      C(jsonschema) when that library did the checking).
  returned: with path
  type: str
template:
  description: The template, converted to the current version.
  returned: with path, when valid
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._capture import verify


def validate_path(module, path):
    validator = "builtin"  # the one checker (module_utils/_common/validate.py), everywhere
    if not os.path.exists(path):
        module.fail_json(msg="path %s does not exist." % path, valid=False, validator=validator)
    try:
        doc = tpl.verify_bundle(path) if os.path.isdir(path) else tpl.load_file(path)
    except tpl.TemplateError as exc:
        module.fail_json(msg=str(exc), valid=False, validator=validator)
    module.exit_json(changed=False, valid=True, validator=validator, info=tpl.describe(doc), template=doc)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            template=dict(type="raw"),
            path=dict(type="path"),
            include=dict(type="list", elements="str", default=[]),
            exclude=dict(type="list", elements="str", default=[]),
            check_content=dict(type="bool", default=True),
            check_versions=dict(type="bool", default=True),
            skip_services=dict(type="raw", default=False),
            skip_generated=dict(type="bool", default=True),
            fail_on_drift=dict(type="bool", default=True),
        ),
        mutually_exclusive=[("template", "path")],
        required_one_of=[("template", "path")],
        supports_check_mode=True,
    )
    p = module.params
    if p["path"] is not None:
        validate_path(module, p["path"])
    doc = p["template"]
    if not isinstance(doc, dict):
        module.fail_json(msg="template must be a template mapping on the host (the action plugin loads bundle paths on the controller).")
    try:
        doc = tpl.check(tpl.migrate(doc), use_jsonschema=False)
    except tpl.TemplateError as exc:
        module.fail_json(msg=str(exc))
    skip = p["skip_services"]
    if isinstance(skip, str):
        skip = module.boolean(skip) if skip.lower() in ("true", "false", "yes", "no") else [skip]
    if not isinstance(skip, (bool, list)):
        module.fail_json(msg="skip_services must be true, false or a list of unit names.")
    for key in ("include", "exclude"):
        for item in p[key]:
            if not item.startswith("/"):
                module.fail_json(msg="%s holds %r, which is not an absolute path or glob." % (key, item))
    options = {"include": p["include"], "exclude": p["exclude"], "check_content": p["check_content"],
               "check_versions": p["check_versions"], "skip_services": skip, "skip_generated": p["skip_generated"]}
    try:
        result = verify.check(doc, options)
    except verify.VerifyError as exc:
        module.fail_json(msg=str(exc))
    result["changed"] = False
    result["drift_lines"] = [verify.describe_drift(d) for d in result["drift"][:50]]
    if result["drift"] and p["fail_on_drift"]:
        first = verify.describe_drift(result["drift"][0])
        more = len(result["drift"]) - 1
        result["msg"] = "The host does not conform to the template: %s%s." % (
            first, (" (and %d more differences)" % more) if more else "")
        module.fail_json(**result)
    result["msg"] = "The host conforms to the template (%d items checked)." % result["checked"] if not result["drift"] \
        else "The host differs from the template in %d items." % len(result["drift"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
