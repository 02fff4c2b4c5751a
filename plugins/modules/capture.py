#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: capture
short_description: Record everything a command changes and bring the template home
version_added: "0.1.0"
description:
  - Runs a command on the target (C(apt-get install), C(make install), C(pip install), C(dpkg -i), a script)
    between two snapshots of the system and writes a versioned JSON template of every change it made
    (see C(schemas/template.schema.json)) - files, directories and symlinks created, modified and deleted,
    mode and ownership changes, packages installed, removed and upgraded, systemd units, users and groups,
    and everything left out on purpose (excluded trees, redacted secrets) with the reason.
  - The snapshot walks the O(roots) once before and once after the command (lstat only, no cap on the
    number of files) and hashes only what changed. With O(trace=auto) and a kernel and filesystem that allow
    it, fanotify reports the touched paths so the after-walk shrinks to them.
  - The content of every captured file a package cannot reproduce (built files, files changed from their
    package default, new configuration) is kept in the bundle under C(files/<absolute path>); the
    before-content of configuration files the command modified or deleted under O(config_roots) is kept under
    C(before/<absolute path>) for rollback. Secrets never enter a bundle unless O(keep_secrets) names them -
    shadow files, C(/etc/sudoers) and C(/etc/sudoers.d/*), SSH C(authorized_keys*) of every account, SSH host
    keys, C(/etc/ssl/private/*), Kerberos keytabs, GnuPG private keys, network and cloud credentials, private
    keys found by content, C(.netrc) and files named like credentials. They are listed in
    C(operations.redacted) with path and reason, never with content.
  - Target state lives in C(/var/lib/mo-fleet/) with an SQLite index; a lock keeps two captures on one host
    apart. The same-name action plugin fetches the bundle to the controller at
    C(<dest>/<inventory_hostname>/<name>/), verifies every checksum and reports C(changed) only when it wrote
    something there.
author:
  - mo.fleet developers (@mo-fleet)
options:
  cmd:
    description:
      - The command to run, split into words like M(ansible.builtin.command) does (no shell unless
        O(shell=true)). Exactly one of O(cmd) and O(argv) is required.
    type: str
  argv:
    description: The command as a list of words. Exactly one of O(cmd) and O(argv) is required.
    type: list
    elements: str
  shell:
    description: Run O(cmd) through C(/bin/sh -c) (pipes, redirections, C(&&)).
    type: bool
    default: false
  chdir:
    description: Change into this directory before running the command; it must exist.
    type: path
  environment:
    description:
      - Extra environment variables for the command. C(DEBIAN_FRONTEND=noninteractive) is set unless given.
    type: dict
    default: {}
  name:
    description:
      - Name of the capture; the bundle lands in C(<dest>/<inventory_hostname>/<name>/).
      - A plain file name part (letters, digits, C(.), C(_), C(@), C(+) and C(-), at most 255 characters, no
        C(..)); anything else is refused before the command runs.
      - Defaults to the command's program name.
    type: str
  creates:
    description: A path or glob; when it already exists the command does not run (as in M(ansible.builtin.command)).
    type: path
  removes:
    description: A path or glob; when it does not exist the command does not run.
    type: path
  roots:
    description: Directory trees to snapshot.
    type: list
    elements: path
    default: ["/"]
  exclude:
    description:
      - Absolute paths (or shell patterns starting with C(/)) left out of the snapshot; each is listed in the
        template's C(excluded) list with the reason.
      - The default leaves out volatile trees and package-manager internals, which are recorded as package
        changes instead. Setting this option replaces the default list; use O(exclude_extra) to add to it.
    type: list
    elements: str
    default: [/proc, /sys, /dev, /run, /tmp, /var/tmp, /var/cache, /var/log, /var/lib/dpkg, /var/lib/apt, /var/lib/mo-fleet]
  exclude_extra:
    description: More paths or patterns to leave out, added to O(exclude).
    type: list
    elements: str
    default: []
  keep_secrets:
    description:
      - Absolute paths or shell globs (a path also covers everything below it) whose content is kept in the
        bundle although it would be redacted as a secret (see the description). Default is to keep none.
      - Whoever can read the bundle, the controller's C(dest) and every rendered role can then read these
        secrets.
    type: list
    elements: str
    default: []
  config_roots:
    description: Trees whose files' before-content is kept in the bundle when the command modifies or deletes them.
    type: list
    elements: path
    default: ["/etc"]
  trace:
    description:
      - How to learn what the command touched.
      - V(auto) uses fanotify where the kernel and filesystem allow it (root, C(FAN_MARK_FILESYSTEM) with file
        handles) and falls back to the full after-walk otherwise (for example on podman's overlay root).
      - V(fanotify) fails when fanotify is not possible.
      - V(strace) runs the command under C(strace -f -e trace=file,chmod,chown) (MO-capture's method; needs
        strace on the target), does the full walk, and records which process touched which path.
      - V(none) only walks.
    type: str
    choices: [auto, fanotify, strace, none]
    default: auto
  timeout:
    description: Seconds the command may run; on expiry its whole process tree is killed and the task fails. 0 means no limit.
    type: int
    default: 0
  allow_failure:
    description: Do not fail the task when the command exits non-zero (the template is marked failed either way).
    type: bool
    default: false
  lock_timeout:
    description: Seconds to wait for another capture on the same host to finish.
    type: int
    default: 300
  dest:
    description:
      - Controller directory that receives the bundles (handled by the action plugin). A relative path is
        relative to the current directory of the controller process.
    type: path
    default: captures
  fetch:
    description: Bring the bundle to the controller (action plugin). With V(false) it stays on the target only.
    type: bool
    default: true
extends_documentation_fragment:
  - mo.fleet.bundle_transfer
attributes:
  check_mode:
    support: full
    description: Runs nothing; reports the command that would run (or why it would be skipped).
  diff_mode:
    support: none
    description: No diff is returned.
notes:
  - Runs as root on the target (it reads every file and the dpkg database).
  - Integrity of the transfer is checked with sha256 over the archive and every bundled file.
  - With O(inline_max=0) (run without the action plugin) the archive stays in the capture directory's outbox
    (C(/var/lib/mo-fleet/outbox/)) and the index records it for a later fetch; otherwise the index records no
    archive, and an inline one comes back as RV(bundle.content).
  - The action plugin treats what the target returns as hostile. It refuses, with one sentence and without
    writing anything under O(dest), an C(inventory_hostname) or capture name that is not a plain file name part
    (letters, digits, C(.), C(_), C(@), C(+), C(-); no C(..)), a destination that would leave O(dest), an archive
    larger than 16 GiB, with more than 1,000,000 members or more than 32 GiB of content, and any member that is
    not a plain file or directory under C(template.json), C(files/) or C(before/).
seealso:
  - module: mo.fleet.capture_info
  - module: mo.fleet.capture_directory
"""

EXAMPLES = r"""
- name: Capture an nginx install
  mo.fleet.capture:
    cmd: apt-get install -y nginx
    name: nginx
    creates: /usr/sbin/nginx

- name: Capture make install of a source tree, MO-capture's strace method
  mo.fleet.capture:
    cmd: make install
    chdir: /src/app-1.0
    trace: strace
    timeout: 600

- name: Capture a script that may fail, keep going
  mo.fleet.capture:
    cmd: ./migrate.sh && systemctl restart app
    shell: true
    chdir: /opt/app
    allow_failure: true
    dest: /srv/captures
"""

RETURN = r"""
rc:
  description: Exit status of the command (null when it did not run).
  returned: when the command ran
  type: int
  sample: 0
stdout:
  description: Standard output of the command.
  returned: when the command ran
  type: str
stderr:
  description: Standard error of the command.
  returned: when the command ran
  type: str
status:
  description: C(succeeded), C(failed) (non-zero exit) or C(timeout).
  returned: when the command ran
  type: str
  sample: succeeded
cmd:
  description: The argv that ran (or would run in check mode).
  returned: always
  type: list
  elements: str
  sample: [apt-get, install, -y, nginx]
template:
  description: The capture template (current version; see C(schemas/template.schema.json)).
  returned: when the command ran
  type: dict
summary:
  description: The template's summary block (counts per operation).
  returned: when the command ran
  type: dict
  sample: {total_files_created: 312, total_packages_installed: 4}
trace:
  description: Requested and used trace method, fallback reason, number of events.
  returned: when the command ran
  type: dict
  sample: {requested: auto, used: walk, fallback: "fanotify cannot mark the filesystem of /: Operation not supported"}
bundle:
  description:
    - Where the bundle is on the target (id, directory, archive, archive sha256 and size).
    - When the action plugin fetched the bundle, C(archive) is null (the archive came back in the result or was
      fetched from Ansible's temporary directory, which is gone) and the base64 content is not shown.
  returned: when the command ran
  type: dict
  contains:
    id:
      description: Capture id.
      type: str
    path:
      description: Directory of the bundle on the target (C(/var/lib/mo-fleet/templates/<id>)).
      type: str
    archive:
      description: Path of the bundle archive on the target, or null when none is left there.
      type: str
    sha256:
      description: sha256 of the bundle archive.
      type: str
    size:
      description: Size of the bundle archive in bytes.
      type: int
    content:
      description: The bundle archive, base64-encoded, when it is at most O(inline_max) bytes (module only; the action
        plugin removes it from the result).
      type: str
      returned: when O(inline_max) is set and the archive is small enough
dest:
  description: Controller directory holding the fetched bundle (set by the action plugin).
  returned: when the bundle was fetched
  type: str
  sample: captures/web1/nginx
msg:
  description: What happened, in one sentence.
  returned: always
  type: str
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mo.fleet.plugins.module_utils._capture.capture import (
    CaptureError, capture, check_early, resolve_argv, skip_reason, TRACE_MODES)
from ansible_collections.mo.fleet.plugins.module_utils._capture.snapshot import CONFIG_ROOTS, DEFAULT_EXCLUDE


def main():
    module = AnsibleModule(
        argument_spec=dict(
            cmd=dict(type="str"),
            argv=dict(type="list", elements="str"),
            shell=dict(type="bool", default=False),
            chdir=dict(type="path"),
            environment=dict(type="dict", default={}),
            name=dict(type="str"),
            creates=dict(type="path"),
            removes=dict(type="path"),
            roots=dict(type="list", elements="path", default=["/"]),
            exclude=dict(type="list", elements="str", default=list(DEFAULT_EXCLUDE)),
            exclude_extra=dict(type="list", elements="str", default=[]),
            keep_secrets=dict(type="list", elements="str", default=[], no_log=False),
            config_roots=dict(type="list", elements="path", default=list(CONFIG_ROOTS)),
            trace=dict(type="str", default="auto", choices=list(TRACE_MODES)),
            timeout=dict(type="int", default=0),
            allow_failure=dict(type="bool", default=False),
            lock_timeout=dict(type="int", default=300),
            dest=dict(type="path", default="captures"),
            fetch=dict(type="bool", default=True),
            inline_max=dict(type="int", default=0),
            archive_dir=dict(type="path"),
        ),
        mutually_exclusive=[("cmd", "argv")],
        required_one_of=[("cmd", "argv")],
        supports_check_mode=True,
    )
    p = module.params
    try:
        check_early(p)
    except CaptureError as exc:
        module.fail_json(msg=str(exc))
    reason = skip_reason(p["creates"], p["removes"], p["chdir"])
    try:
        argv = resolve_argv(p["cmd"], p["argv"], p["shell"], p["chdir"], p["environment"])
    except CaptureError as exc:
        if reason:
            module.exit_json(changed=False, skipped=False, msg=reason, cmd=p["argv"] or [p["cmd"]], rc=0)
        module.fail_json(msg=str(exc))
    if reason:
        module.exit_json(changed=False, msg=reason, cmd=argv, rc=0, stdout=reason, stderr="")
    if module.check_mode:
        module.exit_json(changed=True, cmd=argv,
                         msg="check mode: would run %s with trace=%s and capture its changes." % (" ".join(argv), p["trace"]))
    if os.geteuid() != 0:
        module.fail_json(msg="mo.fleet.capture must run as root on the target; use become: true.", cmd=argv)
    options = dict(p)
    options["name"] = p["name"] or re.sub(r"[^A-Za-z0-9_.@+-]", "_", os.path.basename(
        argv[0] if argv[0] != "/bin/sh" else "shell")).lstrip(".")[:64] or "capture"
    options["timeout"] = p["timeout"] or None
    try:
        result = capture(options)
    except CaptureError as exc:
        module.fail_json(msg=str(exc), cmd=argv)
    doc = result["template"]
    result["summary"] = doc["summary"]
    result["changed"] = True
    result["name"] = options["name"]
    if result["status"] == "timeout":
        result["msg"] = "The command %s did not finish within %d seconds; its process tree was killed." % (
            argv[0], p["timeout"])
        module.fail_json(**result)
    if result["status"] == "failed":
        result["msg"] = "The command %s exited with rc %d: %s" % (
            argv[0], result["rc"], (result["stderr"].strip().splitlines() or [""])[-1])
        if not p["allow_failure"]:
            module.fail_json(**result)
        result["failed"] = False  # a non-zero rc would otherwise mark the task failed
    else:
        counts = ", ".join("%d %s" % (v, k[6:].replace("_", " ")) for k, v in sorted(doc["summary"].items())
                           if v and k not in ("total_excluded",))
        result["msg"] = "Captured %s: %s." % (" ".join(argv), counts or "no changes")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
