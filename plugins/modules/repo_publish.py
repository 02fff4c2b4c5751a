#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: repo_publish
short_description: Publish the deployments of a release catalog as signed APT repositories
version_added: "0.1.0"
description:
  - For every enabled internal deployment of O(catalog) writes a standard APT repository
    (C(Release), C(InRelease), C(Release.gpg), C(Packages), C(Packages.gz), C(Packages.xz) per
    architecture, MD5Sum and SHA256 sections, C(Date), optional C(Valid-Until),
    C(Acquire-By-Hash) with several generations kept) under
    C(<root>/<project>/repos/<deployment>/).
  - C(Filename) entries point into the stores through the C(pool) symlink; packages are never copied.
  - Atomic. A new generation is built aside and served by replacing the C(dists) symlink with
    one rename, so a client never sees new indexes beside an old Release or the reverse.
  - Incremental. Each C(.deb) is read once (control data and hashes are cached by content) and
    only deployments whose package list, signing key or options changed are rebuilt.
  - Two publishes serialize on an C(flock); a publish killed mid-way leaves the previous
    repositories served and no stale lock.
  - Disabled deployments, and deployments no longer in the catalog, stop being served; their
    tree is moved to C(<root>/<project>/disabled/) and their history is kept.
  - External deployments (C(source=external)) are not published here; the
    M(mo.fleet.repo_server) role serves them through its nginx caching proxy.
author:
  - mo.fleet developers (@mo-fleet)
options:
  catalog:
    description:
      - The release catalog, normally the inventory variable C(mo_fleet_catalog) with
        C(project) (C(name), C(architectures)), C(stores), C(package_sets), C(schedules) and
        C(deployments).
      - A deployment's C(packages) entries are C(file.deb), C(store/file.deb), a package set
        name or C(store/set).
    type: dict
    required: true
  gnupg_home:
    description:
      - GNUPGHOME holding the secret signing key. Must be outside anything served.
      - Defaults to C(/var/lib/mo-fleet/gnupg/<project>).
    type: path
  signing_key:
    description: Fingerprint or user id of the signing key; needed only when the keyring holds several.
    type: str
  valid_for_days:
    description:
      - Write C(Valid-Until) this many days after C(Date). A deployment is re-signed when half
        of the window has passed.
    type: float
  keep_generations:
    description: How many generations (and their by-hash index files) to keep per deployment.
    type: int
    default: 3
  compressions:
    description: Compressed C(Packages) variants to write besides the uncompressed one.
    type: list
    elements: str
    choices: [gz, xz]
    default: [gz, xz]
  xz_preset:
    description: xz compression preset (0-9) for C(Packages.xz).
    type: int
    default: 6
  origin:
    description:
      - C(Origin) field of the Release files; defaults to the project name.
      - Must be one line of printable text without leading or trailing spaces (no line breaks
        of any kind, no control characters); anything else is refused.
    type: str
  label:
    description:
      - C(Label) field of the Release files; defaults to C(<project> <deployment>).
      - Must be one line of printable text without leading or trailing spaces, as O(origin).
    type: str
  missing:
    description:
      - What a deployment whose C(packages) or C(package_sets) name something not in the stores
        yet does.
      - V(fail) fails the publish with one sentence naming the deployment and the entry, before
        anything is written (an explicit publish says the packages are there, so a name that
        is not is most likely a mistake).
      - V(skip) publishes every deployment that can be published and leaves the others
        pending. A pending deployment is not written at all. If it was never published it is
        not created. If it is served, it keeps its last complete generation. It is listed in
        RV(pending) with one warning each, and the first publish that finds all of its packages
        publishes it. The M(mo.fleet.repo_server) role uses V(skip) because a server's first
        setup comes before anything is uploaded.
      - Anything else wrong with a deployment (an entry naming several versions or stores, a
        broken C(.deb), a wrong architecture) fails the publish in both cases.
    type: str
    choices: [fail, skip]
    default: fail
  validate_only:
    description:
      - Only validate O(catalog) (schema, references, unique names, what publishing needs) and
        change nothing; needs neither the stores nor the signing key.
    type: bool
    default: false
extends_documentation_fragment:
  - mo.fleet.repo_server
  - mo.fleet.repo_server.lock_timeout
attributes:
  check_mode:
    support: full
    description: Reports which deployments would change, which packages would enter or leave, and which would be pending.
  diff_mode:
    support: full
    description: The package list of each changed deployment before and after.
notes:
  - Runs on the repository server. Needs C(gpg) there (the M(mo.fleet.repo_server) role installs it).
seealso:
  - module: mo.fleet.repo_package
  - module: mo.fleet.repo_info
"""

EXAMPLES = r"""
- name: Publish every enabled deployment
  mo.fleet.repo_publish:
    catalog: "{{ mo_fleet_catalog }}"

- name: Publish what can be published; deployments waiting for an upload stay pending
  mo.fleet.repo_publish:
    catalog: "{{ mo_fleet_catalog }}"
    missing: skip

- name: Publish with a one-week Valid-Until and only xz indexes
  mo.fleet.repo_publish:
    catalog: "{{ mo_fleet_catalog }}"
    valid_for_days: 7
    compressions: [xz]
"""

RETURN = r"""
project:
  description: The project name.
  returned: always
  type: str
  sample: demo
deployments:
  description: Per deployment, what happened (or would happen in check mode).
  returned: always
  type: dict
  sample:
    hello-v1:
      changed: true
      action: published
      reason: package list or options changed
      added: ["main/hello_1.0-2_all.deb (hello 1.0-2 all)"]
      removed: ["main/hello_1.0-1_all.deb (hello 1.0-1 all)"]
      packages: 1
      generation: 4
      suite: hello-v1
      path: demo/repos/hello-v1
      source: internal
  contains:
    changed:
      description: Whether the deployment's served repository changed.
      type: bool
    action:
      description: One of C(published), C(unchanged), C(unpublished), C(external), C(pending).
      type: str
    reason:
      description: Why it was (or was not) rebuilt.
      type: str
    added:
      description: Packages entering the deployment since the last publish.
      type: list
      elements: str
    removed:
      description: Packages leaving the deployment since the last publish.
      type: list
      elements: str
    packages:
      description: Number of packages in the deployment (for a pending one, in the generation it still serves).
      type: int
    missing:
      description: Only for a pending deployment, the catalog entries not in the stores yet.
      type: list
      elements: str
    generation:
      description:
        - The generation now served (absent in check mode for changed deployments, and for a
          pending deployment that was never published).
      type: int
    suite:
      description: The APT suite clients use.
      type: str
    path:
      description: Path of the repository below C(/pub/) on the server.
      type: str
changed_deployments:
  description: Names of the deployments that changed.
  returned: always
  type: list
  elements: str
pending:
  description:
    - The deployments not published because they name packages or package sets that are not in
      the stores yet (only with O(missing=skip)), in catalog order.
  returned: always
  type: list
  elements: dict
  sample:
    - deployment: hello
      missing: [mo-hello_2.10-1_amd64.deb]
      reason: deployment 'hello' field packages names 'mo-hello_2.10-1_amd64.deb', which is in no store.
      generation: null
  contains:
    deployment:
      description: The deployment's name.
      type: str
    missing:
      description: Its catalog entries that are not in the stores yet.
      type: list
      elements: str
    reason:
      description: One sentence naming what is missing.
      type: str
    generation:
      description: The generation it still serves, or null when it was never published.
      type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mo.fleet.plugins.module_utils._repo.publish import prepare_catalog, publish
from ansible_collections.mo.fleet.plugins.module_utils._repo.store import (
    CATALOG_OPTION, LOCK_TIMEOUT_OPTION, repo_argument_spec, run_engine,
)


def pending_warning(item):
    """One line for a pending deployment: what is missing, and what is served meanwhile."""
    served = (f"it keeps serving generation {item['generation']}" if item.get("generation") is not None
              else "it is not served yet")
    return (f"Deployment {item['deployment']!r} is pending: {item['reason']} "
            f"Upload what it names and publish again; until then {served}.")


def build_diff(report):
    diffs = []
    for name, dep in sorted(report["deployments"].items()):
        if not dep.get("changed"):
            continue
        before = list(dep.get("removed", []))
        after = list(dep.get("added", []))
        diffs.append({
            "before_header": f"deployment {name} (served)",
            "after_header": f"deployment {name} ({dep.get('action')}: {dep.get('reason')})",
            "before": "".join(f"- {p}\n" for p in before),
            "after": "".join(f"+ {p}\n" for p in after),
        })
    return diffs


def main():
    module = AnsibleModule(
        argument_spec=repo_argument_spec(
            catalog=CATALOG_OPTION,
            gnupg_home=dict(type="path"),
            signing_key=dict(type="str", no_log=False),
            valid_for_days=dict(type="float"),
            keep_generations=dict(type="int", default=3),
            compressions=dict(type="list", elements="str", choices=["gz", "xz"], default=["gz", "xz"]),
            xz_preset=dict(type="int", default=6),
            origin=dict(type="str"),
            label=dict(type="str"),
            lock_timeout=LOCK_TIMEOUT_OPTION,
            missing=dict(type="str", choices=["fail", "skip"], default="fail"),
            validate_only=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not 0 <= p["xz_preset"] <= 9:
        module.fail_json(msg="xz_preset must be between 0 and 9.")
    if p["validate_only"]:
        catalog = run_engine(module, "validating", prepare_catalog, p["catalog"])
        module.exit_json(changed=False, project=catalog["project"]["name"], deployments={}, changed_deployments=[], pending=[])
    options = {k: p[k] for k in ("keep_generations", "valid_for_days", "compressions", "xz_preset", "origin", "label")}
    report = run_engine(module, "publishing", publish, p["catalog"], root=p["root"], gnupg_home=p["gnupg_home"],
                        signing_key=p["signing_key"], options=options, check_mode=module.check_mode,
                        lock_timeout=p["lock_timeout"], missing=p["missing"])
    for item in report["pending"]:
        module.warn(pending_warning(item))
    result = dict(changed=report["changed"], project=report["project"], deployments=report["deployments"],
                  changed_deployments=sorted(n for n, d in report["deployments"].items() if d["changed"]),
                  pending=report["pending"])
    if module._diff:
        result["diff"] = build_diff(report)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
