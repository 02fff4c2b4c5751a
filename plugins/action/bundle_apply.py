# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for mo.fleet.bundle_apply: render the path plan, ship only what differs.

1. The plan: from ``bundle`` (``apply_plan.path_plan``: the template and the bundle checked
   on the controller) or from ``plan`` (a JSON file a generated role carries in files/).
2. One module run compares every item with the host (``probe``) and names the sha256 of
   the contents it lacks; in check mode that is the answer.
3. Only when something differs: the missing contents go as one tar named by sha256 (each
   content once, however many paths share it) through the connection's put_file, and a
   second module run converges every item.  A host that matches costs one module run.
   A host that looks fresh (none of a sample of the plan's files there: one shell round
   trip) gets every content first and one module run, with no probe before it.

A digest exchange, not one archive of everything: the second and every no-change run ship
nothing, and a drifted host gets only what drifted.  Standard library and ansible-core only
(the collection's plan renderer is imported when present): generated roles carry this file
as their ``action_plugins/`` copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import tarfile
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

try:
    from ansible_collections.mo.fleet.plugins.module_utils._render import apply_plan
    from ansible_collections.mo.fleet.plugins.plugin_utils._controller_paths import controller_path
except ImportError:  # a generated role: only plan files
    apply_plan = controller_path = None

MAX_DIFF_BYTES = 256 * 1024
MAX_PLAN_BYTES = 256 * 1024 ** 2
_FIELDS = ("path", "state", "mode", "owner", "group", "sha256", "size", "target", "patch")  # apply.FIELDS
_SHAPE = (("changed", bool), ("changes", list), ("need", list))


def check_result(out, host):
    """OUT (a module result from HOST, hostile) when it has the shape this plugin reads, else
    AnsibleActionFail in one sentence."""
    bad = [key for key, kind in _SHAPE if not isinstance(out.get(key), kind)]
    changes = out.get("changes") if isinstance(out.get("changes"), list) else []
    if not bad and not all(isinstance(c, dict) and isinstance(c.get("path"), str) and isinstance(c.get("state"), str)
                           and isinstance(c.get("what"), list) and c["what"]
                           and all(isinstance(w, str) for w in c["what"]) for c in changes):
        bad = ["changes"]
    if not bad and not all(isinstance(d, str) for d in out["need"]):
        bad = ["need"]
    for key in ("before", "after"):
        if not bad and not isinstance(out.get(key, {}), dict):
            bad = [key]
    if bad:
        raise AnsibleActionFail(f"{host} returned a bundle_apply result whose {bad[0]} is not what the module "
                                "returns; nothing was shipped.")
    return out


def _pack(items):
    """The compact manifest of ITEMS (apply.pack; the same rows, written here too, as a
    generated role's action plugin has no module_utils import)."""
    return {"fields": list(_FIELDS), "rows": [[item.get(key) for key in _FIELDS] for item in items]}


class _Hashing:
    """A file read through while its sha256 is computed (the tar is built from it)."""

    def __init__(self, handle):
        self.handle, self.digest = handle, hashlib.sha256()

    def read(self, size=-1):
        data = self.handle.read(size)
        self.digest.update(data)
        return data


def _text_or_summary(path, digest):
    """PATH's text for a diff, or a one-line summary of a binary or large file."""
    size = os.path.getsize(path)
    if size <= MAX_DIFF_BYTES:
        with open(path, "rb") as handle:
            data = handle.read()
        if b"\x00" not in data:
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return "(binary file of %d bytes, sha256 %s)\n" % (size, digest)
    return "(a file of %d bytes, sha256 %s, too large to show)\n" % (size, digest)


def _read_plan(path):
    """ITEMS and SOURCES (absolute paths) of a plan file; sources stay inside its directory."""
    base = os.path.realpath(os.path.dirname(path))
    if os.path.getsize(path) > MAX_PLAN_BYTES:
        raise AnsibleActionFail("The plan %s is larger than %d bytes." % (path, MAX_PLAN_BYTES))
    with open(path, "rb") as handle:
        try:
            plan = json.loads(handle.read().decode("utf-8"))
        except ValueError as exc:
            raise AnsibleActionFail("The plan %s is not JSON: %s." % (path, exc))
    if not isinstance(plan, dict) or not isinstance(plan.get("items"), list) or not isinstance(plan.get("sources"), dict):
        raise AnsibleActionFail("The plan %s must hold items (a list) and sources (a mapping)." % path)
    sources = {}
    for digest, rel in plan["sources"].items():
        local = os.path.realpath(os.path.join(base, str(rel)))
        if not local.startswith(base + os.sep) or not os.path.isfile(local):
            raise AnsibleActionFail("The plan %s names the source %r, which is not a file below it." % (path, rel))
        sources[digest] = local
    for item in plan["items"]:
        if isinstance(item, dict) and item.get("state") == "file" and item.get("sha256") not in sources:
            raise AnsibleActionFail("The plan %s has no source for the file %s." % (path, str(item.get("path"))[:200]))
    return plan["items"], sources


class ActionModule(ActionBase):

    # the content tar is the one file sent, and only when the host lacks some content: the
    # remote tmp directory is made then (not at the start of every run, as ActionBase does for
    # plugins that say they transfer files)
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        try:
            result.update(self._apply(task_vars))
        except AnsibleActionFail as exc:
            result.update(failed=True, changed=False, msg=to_text(exc.message))
        finally:
            if self._connection._shell.tmpdir:
                self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _plan(self):
        """(items, sources) of the plan, or None when paths_only is set and the bundle holds
        more than paths (its rendered tasks are more than this module's task)."""
        args = self._task.args
        if bool(args.get("bundle")) == bool(args.get("plan")):
            raise AnsibleActionFail("bundle_apply needs exactly one of bundle and plan.")
        if args.get("plan"):
            return _read_plan(self._find_needle("files", args["plan"]))
        if apply_plan is None:
            raise AnsibleActionFail("bundle_apply with bundle needs the mo.fleet collection on the controller.")
        bundle = controller_path(args["bundle"], self)
        if bundle is None:
            raise AnsibleActionFail(f"bundle_apply: the bundle {str(args['bundle'])[:200]} is not on the controller.")
        options = args.get("options") or {}
        if not isinstance(options, dict):
            raise AnsibleActionFail("bundle_apply: options must be a mapping.")
        rollback = bool(args.get("rollback"))
        try:
            prep = apply_plan.render.prepare(bundle, dict(options, handlers="inline"))
            if args.get("paths_only") and not apply_plan.only_paths(prep, rollback):
                return None
            plan = apply_plan.plan_of(prep, rollback)
        except ValueError as exc:  # render.RenderError: one sentence naming the item
            raise AnsibleActionFail("bundle_apply: %s" % exc)
        return plan["items"], plan["sources"]

    def _module(self, task_vars, args):
        name = self._task.resolved_action or self._task.action
        out = self._execute_module(module_name=name, module_args=args, task_vars=task_vars)
        if out.get("failed"):
            raise AnsibleActionFail(out.get("msg") or "bundle_apply failed on the host.")
        return out

    def _apply(self, task_vars):
        plan = self._plan()
        if plan is None:  # skipped: this task did nothing, the rendered tasks do it all
            return {"changed": False, "skipped": True, "needs_tasks": True, "changes": [], "items": 0, "shipped": 0,
                    "msg": "The bundle holds packages, accounts or units too: render its tasks (nothing was done)."}
        items, sources = plan
        cap = self._task.args.get("max_content_bytes") or 16 * 1024 ** 3
        try:
            cap = int(cap)
        except (TypeError, ValueError):
            raise AnsibleActionFail(f"bundle_apply: max_content_bytes must be a number of bytes, not {str(cap)[:40]!r}.")
        base = {"manifest": json.dumps(_pack(items), separators=(",", ":")), "max_content_bytes": cap,
                "conffile_patch": bool(self._task.args.get("conffile_patch", True))}
        host = (task_vars or {}).get("inventory_hostname", "the host")
        everything = self._fresh(items, sources, cap)
        if everything:
            done = check_result(self._module(task_vars, dict(base, content=self._ship(everything, sources, cap))), host)
            return {"changed": done["changed"], "changes": done["changes"], "items": len(items),
                    "shipped": len(everything), "needs_tasks": False}
        probe = check_result(self._module(task_vars, dict(base, probe=True)), host)
        out = {"changed": probe["changed"], "changes": probe["changes"], "items": len(items), "shipped": 0,
               "needs_tasks": False}
        if self._task.diff and probe["changed"]:
            out["diff"] = self._diff(probe, items, sources)
        if self._task.check_mode or not probe["changed"]:
            return out
        args = dict(base)
        if probe["need"]:
            args["content"] = self._ship(probe["need"], sources, base["max_content_bytes"])
            out["shipped"] = len(probe["need"])
        done = check_result(self._module(task_vars, args), host)
        out.update(changed=done["changed"], changes=done["changes"])
        return out

    def _fresh(self, items, sources, cap):
        """Every content digest when the host looks fresh: none of up to 8 of the plan's files
        (spread over it) exists there, asked in one shell round trip as the login user (a path
        it cannot see counts as absent), and all of it fits in CAP; else []. Then the content
        goes first and one module run converges, instead of a probe run before it; the module
        still compares every path and writes only what differs. Not in check or diff mode
        (the probe is the answer there)."""
        files = [item for item in items if isinstance(item, dict) and item.get("state") == "file"
                 and isinstance(item.get("path"), str) and item["path"][:1] == "/" and "\x00" not in item["path"]
                 and isinstance(item.get("sha256"), str)]  # a plan file's items are checked by the module only
        if self._task.check_mode or self._task.diff or not files:
            return []
        digests = sorted(set(item["sha256"] for item in files))
        if sum(os.path.getsize(sources[d]) for d in digests if d in sources) > cap:
            return []
        sample = [item["path"] for item in files[::max(1, len(files) // 8)][:8]]
        test = " && ".join("test ! -e %s" % shlex.quote(path) for path in sample)  # paths as quoted words
        return digests if self._low_level_execute_command(test, sudoable=False).get("rc") == 0 else []

    def _ship(self, need, sources, cap):
        """The contents NEED names, as one tar on the host; its remote path."""
        fd, local = tempfile.mkstemp(prefix="mo-fleet-content-", suffix=".tar")
        try:
            total = 0
            with os.fdopen(fd, "wb") as handle, tarfile.open(fileobj=handle, mode="w", format=tarfile.GNU_FORMAT) as tar:
                for digest in need:
                    if digest not in sources:
                        raise AnsibleActionFail("The host asked for content %s, which the plan does not hold." % digest)
                    with open(sources[digest], "rb") as data:
                        info = tarfile.TarInfo(digest)
                        info.size = os.fstat(data.fileno()).st_size
                        info.mode = 0o600
                        total += info.size
                        if total > cap:
                            raise AnsibleActionFail("The content to ship exceeds max_content_bytes (%d)." % cap)
                        reader = _Hashing(data)
                        tar.addfile(info, reader)
                        if reader.digest.hexdigest() != digest:
                            raise AnsibleActionFail(f"The source {sources[digest]} does not match its sha256 {digest}; "
                                                    "nothing was shipped or changed.")
            shell = self._connection._shell
            if not shell.tmpdir:
                self._make_tmp_path()
            remote = shell.join_path(shell.tmpdir, "content.tar")
            self._transfer_file(local, remote)
            self._fixup_perms2((shell.tmpdir, remote), execute=False)  # read, not run: no chmod when root reads it
            return remote
        finally:
            os.unlink(local)

    def _diff(self, probe, items, sources):
        """Ansible diffs: text before/after of each file whose content changes (a summary for
        binary and large ones), and one entry for the other changes."""
        by_path = dict((i["path"], i) for i in items)
        before, patched = probe.get("before") or {}, probe.get("after") or {}
        diffs, other = [], []
        for change in probe["changes"]:
            item = by_path.get(change["path"], {})
            if item.get("state") == "file" and change["what"][0].startswith(("created", "content")):
                after = patched.get(change["path"])
                if not isinstance(after, str):
                    after = _text_or_summary(sources[item["sha256"]], item["sha256"])
                diffs.append({"before_header": change["path"] if change["what"][0] != "created" else "%s (absent)"
                              % change["path"], "after_header": change["path"],
                              "before": before.get(change["path"], ""), "after": after})
                rest = change["what"][1:]
            else:
                rest = change["what"]
            if rest:
                other.append("%s (%s): %s" % (change["path"], change["state"], "; ".join(rest)))
        if other:
            diffs.append({"before_header": "paths", "after_header": "paths", "before": "",
                          "after": "\n".join(other) + "\n"})
        return diffs
