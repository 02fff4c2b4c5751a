#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: deb_build
short_description: Build a Debian package from a capture of unpackaged files
version_added: "0.2.0"
description:
  - Turns a capture bundle (C(make install), C(pip install)) into a binary package that can be
    shipped. The captured files are its data (files under C(/etc) are conffiles), accounts,
    ownership and units go into the maintainer scripts, and paths that other packages own are
    left to them (a mode or owner the capture recorded on them is set by the postinst).
  - C(Depends) names the packages the capture installed and, for the shared libraries of every
    ELF file in the package, the packages that own those libraries on the capture host with at
    least the installed version (recorded by M(mo.fleet.capture) in the template's
    C(shared_libraries)); a library the package ships itself is no dependency.
  - The package carries C(/usr/share/doc/<package>/changelog.Debian.gz) (C(changelog.gz) for a
    native version) and a machine-readable C(copyright) file.
  - Built with the Python standard library in dpkg-deb's layout and reproducibly (timestamps are
    the capture's, owners root, members sorted), so a second run with the same bundle and options
    finds the same file and reports no change. Runs where the bundle is, usually the controller
    (C(delegate_to) or a play on C(localhost)).
author:
  - mo.fleet developers (@mo-fleet)
options:
  template:
    description: The bundle directory (or template file) to package, on the host the module runs on.
    type: path
    required: true
  dest:
    description: The directory to write C(<package>_<version>_<arch>.deb) into (created when missing).
    type: path
    required: true
  name:
    description: The package name (default the capture's name, made a valid Debian name).
    type: str
  version:
    description: The package version (default V(1.0)).
    type: str
  maintainer:
    description:
      - The C(Maintainer) field and the changelog's signature, C(Name <mail>).
      - Default C(DEBFULLNAME <DEBEMAIL>) from the build host's environment (Debian's convention),
        else C(mo.fleet packager <packager@mo-fleet.invalid>).
    type: str
  architecture:
    description: The package architecture (default the captured machine's when it ships ELF files, else V(all)).
    type: str
  pin_versions:
    description: Depend on the exact versions of the packages the capture installed (C(=)), not just their names.
    type: bool
    default: false
  install_auto:
    description: Also depend on the packages apt marked as automatically installed.
    type: bool
    default: false
  relocate:
    description:
      - Move the C(/usr/local) prefix to V(/usr) or V(/opt) (C(/opt/<package>)) or C(/opt/<name>).
      - Refused, naming the file, when any packaged file holds the string C(/usr/local) (a path
        built into a program cannot be moved; build it with that C(--prefix) instead).
    type: str
  include:
    description: Only package paths equal to or below these absolute paths (or matching these globs).
    type: list
    elements: str
  exclude:
    description: Leave out paths equal to or below these absolute paths (or matching these globs).
    type: list
    elements: str
  changelog:
    description: The changelog entry's text (lines); default names the captured command.
    type: str
  distribution:
    description: The changelog's distribution.
    type: str
    default: unstable
  copyright:
    description: The C(Copyright) holders of the copyright file (one line).
    type: str
    default: the upstream authors
  license:
    description: The short license name of the copyright file (one line, e.g. V(GPL-3+)).
    type: str
    default: other
  license_text:
    description: The license text or pointer of the copyright file.
    type: str
    default: The license of the captured software applies.
  strip:
    description:
      - Strip the ELF files as C(dh_strip) does (symbols, C(.comment) and C(.note) sections), with
        C(strip) of binutils on the build host. The packaged bytes then differ from the captured ones.
    type: bool
    default: false
  lintian:
    description: Run lintian on the package (when installed) and return its findings.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: The package is built in a temporary directory and compared with O(dest); nothing is written.
  diff_mode:
    support: full
    description: Shows the control file before and after.
notes:
  - Every bundled file is checked against its recorded sha256 before anything is built.
seealso:
  - module: mo.fleet.capture
"""

EXAMPLES = r"""
- name: Package the capture of make install
  mo.fleet.deb_build:
    template: captures/web1/hello
    dest: out/debs
    name: mo-hello
    version: 2.10-1
    maintainer: Ops Team <ops@example.org>
    license: GPL-3+
    lintian: true
  delegate_to: localhost
  register: built
"""

RETURN = r"""
path:
  description: The package file.
  returned: always
  type: str
package:
  description: The package name, version and architecture.
  returned: always
  type: dict
depends:
  description: The C(Depends) entries.
  returned: always
  type: list
  elements: str
unresolved_libraries:
  description: Sonames an ELF file needs that the capture host could not resolve to a package (no C(Depends) for them).
  returned: always
  type: list
  elements: str
left_out:
  description: Captured paths not in the package, each with the reason.
  returned: always
  type: list
  elements: dict
relocated_to:
  description: The prefix C(/usr/local) was moved to, or null.
  returned: always
  type: str
sha256:
  description: The sha256 of the package (built in check mode).
  returned: always
  type: str
control:
  description: The control file.
  returned: always
  type: str
lintian:
  description: lintian's findings (null when not asked for or lintian is not installed).
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mo.fleet.plugins.module_utils._render import debbuild
from ansible_collections.mo.fleet.plugins.module_utils._repo import deb as _deb
from ansible_collections.mo.fleet.plugins.module_utils._template import template as tpl
from ansible_collections.mo.fleet.plugins.module_utils._render.prepare import RenderError

RENDER_OPTIONS = ("name", "version", "maintainer", "architecture", "pin_versions", "install_auto", "relocate",
                  "include", "exclude", "changelog", "distribution", "copyright", "license", "license_text", "strip")


def main():
    spec = dict(template=dict(type="path", required=True), dest=dict(type="path", required=True),
                name=dict(type="str"), version=dict(type="str"), maintainer=dict(type="str"),
                architecture=dict(type="str"), pin_versions=dict(type="bool", default=False),
                install_auto=dict(type="bool", default=False), relocate=dict(type="str"),
                include=dict(type="list", elements="str"), exclude=dict(type="list", elements="str"),
                changelog=dict(type="str"), distribution=dict(type="str", default="unstable"),
                copyright=dict(type="str", default="the upstream authors"), license=dict(type="str", default="other"),
                license_text=dict(type="str", default="The license of the captured software applies."),
                strip=dict(type="bool", default=False), lintian=dict(type="bool", default=False))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    options = {k: p[k] for k in RENDER_OPTIONS if p[k] is not None}
    options.setdefault("maintainer", debbuild.default_maintainer())
    try:
        deb = debbuild.plan(p["template"], options)
        target = os.path.join(p["dest"], deb["file_name"])
        before = _old_control(target)
        built = debbuild.build(deb, p["dest"], check_mode=module.check_mode, run_lintian=p["lintian"])
    except (RenderError, tpl.TemplateError) as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=f"The package could not be written in {p['dest']} ({exc.strerror or exc}).")
    result = dict(changed=built["changed"], path=built["path"], sha256=built["sha256"], control=built["control"],
                  package=dict(name=deb["package"], version=deb["version"], architecture=deb["architecture"]),
                  depends=deb["depends"], unresolved_libraries=deb["unresolved_libraries"],
                  left_out=[dict(path=path, reason=reason) for path, reason in deb["left_out"]],
                  relocated_to=deb["relocated_to"], lintian=built["lintian"])
    if module._diff:
        result["diff"] = dict(before=before, after=built["control"], before_header=target, after_header=target)
    module.exit_json(**result)


def _old_control(path):
    """The control file of the package already at PATH ('' when none or unreadable)."""
    if not os.path.isfile(path):
        return ""
    try:
        return _deb.parse_deb(path)["control"] + "\n"
    except _deb.DebError:
        return ""


if __name__ == "__main__":
    main()
