#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_sync
short_description: Converge a Debian host on its release deployments (migasfree's sync)
version_added: "0.1.0"
description:
  - Writes one deb822 C(.sources) file per deployment
    (C(<sources_dir>/mo-fleet-<deployment>.sources)) with C(Signed-By) the repository server's
    public key, fetched from O(key_url) and stored at O(keyring); removes the C(mo-fleet-*.sources)
    files of deployments not in O(deployments).
  - Runs C(apt-get update) for the managed sources, then in this order removes the
    C(packages_to_remove) that are installed, installs the C(packages_to_install), and upgrades the
    installed packages that the deployments' indexes provide.
  - With O(apply_defaults=true) (migasfree's C(migasfree-tags --set)) it then installs the
    C(default_preincluded_packages), runs C(apt-get update) again, installs the
    C(default_included_packages) and removes the C(default_excluded_packages).
  - When the server cannot be reached (key download or C(apt-get update) of the managed sources
    fails) nothing on the host changes; sources written in this run are put back as they were.
  - Which deployments a host gets is decided on the controller by the release rule
    (M(mo.fleet.release) role, filter C(mo.fleet.release_plan)); this module only converges.
author:
  - mo.fleet developers (@mo-fleet)
options:
  deployments:
    description:
      - The deployments the host has today. Each item has C(name) and C(uri) (the repository base
        URL, e.g. C(http://repo/pub/<project>/repos/<name>)) and optionally C(suite) (default the
        name), C(components) (default C([main])), C(signed) (default true, write C(Signed-By)),
        C(packages_to_install), C(packages_to_remove), C(default_preincluded_packages),
        C(default_included_packages), C(default_excluded_packages).
    type: list
    elements: dict
    required: true
  key_url:
    description: URL of the server's armored public key; needed when a deployment is signed.
    type: str
  keyring:
    description: Where the public key is stored (the C(Signed-By) path).
    type: path
    default: /etc/apt/keyrings/mo-fleet.asc
  sources_dir:
    description: Directory of the C(.sources) files.
    type: path
    default: /etc/apt/sources.list.d
  prefix:
    description:
      - File name prefix that marks the sources this module manages.
      - Letters, digits, C(.), C(_), C(@), C(+) and C(-) only (no C(/), no C(..)); anything else is refused.
    type: str
    default: mo-fleet-
  apply_defaults:
    description: Also apply the default pre-included, included and excluded packages.
    type: bool
    default: false
  timeout:
    description: Seconds allowed for downloading the key.
    type: int
    default: 30
attributes:
  check_mode:
    support: full
    description:
      - Downloads the key and runs C(apt-get update) into a throw-away directory, then
        C(apt-get -s) against it, so the packages reported are the ones a real run would change.
        Nothing under C(/etc/apt) or C(/var/lib/apt) is written.
  diff_mode:
    support: full
    description: Shows the managed C(.sources) files before and after.
notes:
  - Uses only the Python standard library, C(apt-get) and C(dpkg-query) on the target.
seealso:
  - module: mo.fleet.repo_publish
"""

EXAMPLES = r"""
- name: Converge on two deployments
  mo.fleet.release_sync:
    key_url: http://repo1/pub/acme/archive-key.asc
    keyring: /etc/apt/keyrings/mo-fleet-acme.asc
    deployments:
      - name: base
        uri: http://repo1/pub/acme/repos/base
        packages_to_install: [mo-hello]
      - name: browser
        uri: http://repo1/pub/acme/repos/browser
        packages_to_remove: [old-browser]
"""

RETURN = r"""
status:
  description: C(ok) or C(error).
  returned: always
  type: str
deployments:
  description: Deployment names the host has after the run.
  returned: always
  type: list
  elements: str
new_deployments:
  description: Deployments whose source was added in this run.
  returned: always
  type: list
  elements: str
sources_written:
  description: Managed C(.sources) files created or rewritten.
  returned: always
  type: list
  elements: str
sources_removed:
  description: Managed C(.sources) files removed (deployments no longer available).
  returned: always
  type: list
  elements: str
removed:
  description: Packages removed (C(name=version)); in check mode the names apt would remove.
  returned: always
  type: list
  elements: str
installed:
  description: Packages installed (C(name=version)); in check mode the names apt would install.
  returned: always
  type: list
  elements: str
upgraded:
  description: Packages upgraded (C(name=old->new)); in check mode the names apt would upgrade.
  returned: always
  type: list
  elements: str
failed_packages:
  description: Packages apt or dpkg named in its errors.
  returned: always
  type: list
  elements: str
failed_deployments:
  description: Deployments blamed for the failure (they name or provide a failed package, else the new ones).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import fetch_url

from ansible_collections.mo.fleet.plugins.module_utils._release.release_client import ClientError
from ansible_collections.mo.fleet.plugins.module_utils._release.release_sync import Sync, SyncFailed


def _downloader(module):
    def download(url, timeout):
        resp, info = fetch_url(module, url, timeout=timeout)
        if info.get("status") != 200 or resp is None:
            raise SyncFailed(f"cannot download the server key {url}: {info.get('msg', 'no answer')}")
        return resp.read()
    return download


def main():
    module = AnsibleModule(
        argument_spec=dict(
            deployments=dict(type="list", elements="dict", required=True),
            key_url=dict(type="str", no_log=False),
            keyring=dict(type="path", default="/etc/apt/keyrings/mo-fleet.asc"),
            sources_dir=dict(type="path", default="/etc/apt/sources.list.d"),
            prefix=dict(type="str", default="mo-fleet-"),
            apply_defaults=dict(type="bool", default=False),
            timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    try:
        sync = Sync(module, _downloader(module))
        module.exit_json(**sync.converge())
    except ClientError as exc:
        module.fail_json(msg=str(exc), status="error")
    except SyncFailed as exc:
        module.fail_json(msg=str(exc), **sync.failure(exc))


if __name__ == "__main__":
    main()
