# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's half of mo.fleet.bundle_apply: what the action plugin checks, packs, ships
and shows, without a host (the plugin is the glue between these and the connection).

``check_result(out, host) -> out``     a module result (hostile) has the shape read here, or
                                       AnsibleActionFail in one sentence
``pack(items) -> manifest``            the compact manifest the module unpacks (apply.pack)
``manifest(items) -> str``             pack(items) as the JSON text the module takes
``fresh_test(items, sources, cap) -> (digests, command) or None``  the shell test that a
                                       host lacks every sampled file, and what to ship then
``content_cap(value) -> int``          the max_content_bytes option as a number of bytes
``parse_plan(data, path) -> (items, sources)``  a plan file's bytes; sources stay below it
``bundle_plan(args, action) -> (items, sources) or None``  the plan of the task's bundle,
                                       rendered on the controller (needs the collection)
``content_tar(need, sources, cap) -> path``     the contents NEED names, as one local tar,
                                       each hashed while it is written (a source edited
                                       since the plan was written is refused before shipping)
``diff(probe, items, sources) -> list``         Ansible diffs of the probe's changes

Standard library and ansible-core only: a generated role carries this file as
``action_plugins/mo_fleet_bundle_apply_engine.py`` beside its copy of the action plugin.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import tarfile
import tempfile

from ansible.errors import AnsibleActionFail

MAX_DIFF_BYTES = 256 * 1024
MAX_PLAN_BYTES = 256 * 1024 ** 2
MAX_CONTENT_BYTES = 16 * 1024 ** 3
FIELDS = ("path", "state", "mode", "owner", "group", "sha256", "size", "target", "patch")  # apply.FIELDS
_SHAPE = (("changed", bool), ("changes", list), ("need", list))


def check_result(out: dict, host: str) -> dict:
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


def pack(items: list) -> dict:
    """The compact manifest of ITEMS (apply.pack; the same rows, written here too, as a
    generated role's action plugin has no module_utils import)."""
    return {"fields": list(FIELDS), "rows": [[item.get(key) for key in FIELDS] for item in items]}


def manifest(items: list) -> str:
    """The manifest the module's ``manifest`` option takes: pack(ITEMS) as one JSON text (no_log
    there, so the journal and the result never hold a row of it)."""
    return json.dumps(pack(items), separators=(",", ":"))


def fresh_test(items: list, sources: dict, cap: int, sample: int = 8):
    """(digests, command) when a host may be fresh: COMMAND is one shell line that succeeds when
    none of up to SAMPLE of the plan's files (spread over it) exists, each path one quoted word;
    DIGESTS are every content the plan names, to ship before one module run. None when the plan
    has no file or its contents exceed CAP (the probe decides what to ship then)."""
    files = [item for item in items if isinstance(item, dict) and item.get("state") == "file"
             and isinstance(item.get("path"), str) and item["path"][:1] == "/" and "\x00" not in item["path"]
             and isinstance(item.get("sha256"), str)]  # the module checks every item again
    if not files:
        return None
    digests = sorted({item["sha256"] for item in files})
    if sum(os.path.getsize(sources[d]) for d in digests if d in sources) > cap:
        return None
    paths = [item["path"] for item in files[::max(1, len(files) // sample)][:sample]]
    return digests, " && ".join(f"test ! -e {shlex.quote(path)}" for path in paths)


def content_cap(value) -> int:
    """The max_content_bytes option VALUE (unset: MAX_CONTENT_BYTES) as a number of bytes."""
    value = value or MAX_CONTENT_BYTES
    try:
        return int(value)
    except (TypeError, ValueError):
        raise AnsibleActionFail(f"bundle_apply: max_content_bytes must be a number of bytes, not {str(value)[:40]!r}.")


def parse_plan(data: bytes, path: str) -> tuple:
    """ITEMS and SOURCES (absolute paths) of the plan file PATH holding DATA; sources stay
    inside its directory and every file item has one."""
    base = os.path.realpath(os.path.dirname(path))
    try:
        plan = json.loads(data.decode("utf-8"))
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


def bundle_plan(args: dict, action):
    """(items, sources) of the bundle ARGS name (``apply_plan.path_plan``, rendered on the
    controller of ACTION), or None when paths_only is set and the bundle holds more than paths
    (its rendered tasks are more than this module's task)."""
    try:  # the collection's renderer: a generated role's copy plans from its plan file alone
        from ansible_collections.mo.fleet.plugins.module_utils._render import apply_plan
        from ansible_collections.mo.fleet.plugins.plugin_utils._controller_paths import controller_path
    except ImportError:
        raise AnsibleActionFail("bundle_apply with bundle needs the mo.fleet collection on the controller.")
    bundle = controller_path(args["bundle"], action)
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


class _Hashing:
    """A file read through while its sha256 is computed (the tar is built from it)."""

    def __init__(self, handle):
        self.handle, self.digest = handle, hashlib.sha256()

    def read(self, size=-1):
        data = self.handle.read(size)
        self.digest.update(data)
        return data


def content_tar(need: list, sources: dict, cap: int) -> str:
    """A local tar (the caller removes it) of the contents NEED names, each once, named by its
    sha256; AnsibleActionFail (and no tar left) when one is not in SOURCES, does not match
    its sha256, or all of them exceed CAP bytes."""
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
        return local
    except BaseException:
        os.unlink(local)
        raise


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


def diff(probe: dict, items: list, sources: dict) -> list:
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
