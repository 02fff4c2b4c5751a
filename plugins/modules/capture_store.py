#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: capture_store
short_description: Clean up or reset the capture store on a target
version_added: "0.1.0"
description:
  - O(state=cleanup) keeps the newest O(keep) templates of every capture name (and anything younger than
    O(max_age_days) when set), removes older templates, their snapshots rows and fetched-or-stale archives,
    and leftovers of killed captures. This is MO-capture's C(cleanup) with retention.
  - O(state=reset) removes every snapshot and template (MO-capture's C(reset)).
  - Takes the capture lock, so it never races a running capture.
author:
  - mo.fleet developers (@mo-fleet)
options:
  state:
    description: What to do.
    type: str
    choices: [cleanup, reset]
    default: cleanup
  keep:
    description: Templates to keep per capture name with O(state=cleanup).
    type: int
    default: 5
  max_age_days:
    description: With O(state=cleanup), also keep templates younger than this many days (0 = only O(keep) counts).
    type: int
    default: 0
  store:
    description: The store directory.
    type: path
    default: /var/lib/mo-fleet
attributes:
  check_mode:
    support: full
    description: Reports what would be removed.
  diff_mode:
    support: none
    description: No diff is returned.
seealso:
  - module: mo.fleet.capture
  - module: mo.fleet.capture_info
"""

EXAMPLES = r"""
- name: Keep the three newest templates of each capture
  mo.fleet.capture_store:
    keep: 3

- name: Start over
  mo.fleet.capture_store:
    state: reset
"""

RETURN = r"""
removed:
  description: Template ids, archives and work directories removed (or that would be, in check mode).
  returned: always
  type: list
  elements: str
kept:
  description: Template ids kept.
  returned: always
  type: list
  elements: str
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mo.fleet.plugins.module_utils.capture_index import Store, StoreError, remove_tree


def plan_cleanup(templates, keep, max_age_days, now):
    """(remove, keep) template ids: newest KEEP per name, plus younger than MAX_AGE_DAYS."""
    by_name = {}
    for item in templates:
        by_name.setdefault(item["name"] or "", []).append(item)
    remove, kept = [], []
    for items in by_name.values():
        items.sort(key=lambda t: (t["created"], t["id"]), reverse=True)
        for index, item in enumerate(items):
            young = max_age_days > 0 and now - item["created"] < max_age_days * 86400
            (kept if index < keep or young else remove).append(item["id"])
    return sorted(remove), sorted(kept)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="cleanup", choices=["cleanup", "reset"]),
            keep=dict(type="int", default=5),
            max_age_days=dict(type="int", default=0),
            store=dict(type="path", default="/var/lib/mo-fleet"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["keep"] < 0:
        module.fail_json(msg="keep must be zero or more.")
    if p["max_age_days"] < 0:
        module.fail_json(msg="max_age_days must be zero or more.")
    store = Store(p["store"])
    if not store.exists():
        module.exit_json(changed=False, removed=[], kept=[], msg="The store %s does not exist." % store.root)
    templates = store.list_templates()
    if p["state"] == "reset":
        remove, kept = sorted(t["id"] for t in templates), []
    else:
        remove, kept = plan_cleanup(templates, p["keep"], p["max_age_days"], time.time())
    known = set(t["id"] for t in templates)
    orphans = []
    if os.path.isdir(store.templates):
        orphans = sorted(n for n in os.listdir(store.templates) if n not in known and
                         (p["state"] == "reset" or not n.startswith(".")))
    archives = [a for a in store.outbox_files()
                if p["state"] == "reset" or os.path.basename(a)[:-len(".tar.gz")] not in kept]
    removed = list(remove) + ["templates/" + n for n in orphans] + ["outbox/" + os.path.basename(a) for a in archives]
    if module.check_mode:
        stale = ["work/" + os.path.basename(w) for w in store.stale_work()]
        module.exit_json(changed=bool(removed or stale), removed=removed + stale, kept=kept,
                         msg="check mode: would remove %d item(s)." % len(removed + stale))
    try:
        store.lock(wait=60)
    except StoreError as exc:
        module.fail_json(msg=str(exc))
    try:
        stale = store.stale_work()
        for path in stale:
            remove_tree(path)
        removed += ["work/" + os.path.basename(w) for w in stale]
        by_id = dict((t["id"], t) for t in templates)
        for template_id in remove:
            remove_tree(by_id[template_id]["path"])
            store.forget_template(template_id)
        for name in orphans:
            remove_tree(os.path.join(store.templates, name))
        for path in archives:
            remove_tree(path)
        if p["state"] == "reset":
            with store.db() as db:
                db.execute("DELETE FROM snapshots")
                db.execute("DELETE FROM templates")
    finally:
        store.unlock()
    module.exit_json(changed=bool(removed), removed=removed, kept=kept,
                     msg="Removed %d item(s), kept %d template(s)." % (len(removed), len(kept)))


if __name__ == "__main__":
    main()
