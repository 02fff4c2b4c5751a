# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Publish the deployments of a release catalog as signed, atomically switched APT repositories.

Layout under ``<root>/<project>/`` (``root`` defaults to ``/var/lib/mo-fleet/repo``)::

    stores/<store>/<file>.deb            uploaded packages (the pool; never copied)
    stores/<store>/<set>/<file>.deb      package sets (a directory uploaded at once)
    repos/<deployment>/pool -> ../../stores
    repos/<deployment>/dists -> .gen/<N>  (one symlink, swapped with one rename)
    repos/<deployment>/.gen/<N>/<suite>/{Release,InRelease,Release.gpg,main/binary-<arch>/...}
    disabled/<deployment>/               a disabled deployment's tree, kept as history
    state/{lock,cache.bin,chunks.bin,publish.json} internal state (never served)

A client uses ``URIs: http://<server>/pub/<project>/repos/<deployment>`` and
``Suites: <suite>`` (the deployment name unless the catalog says otherwise).  ``Filename:``
entries read ``pool/<store>/<file>.deb``, which the ``pool`` symlink resolves into the
stores.

Atomicity: a generation is written completely in ``.gen/.tmp-*``, renamed to ``.gen/<N>``,
and served by replacing the ``dists`` symlink with ``rename(2)``.  Index files are also
reachable by hash (``Acquire-By-Hash: yes``) and the last ``keep_generations`` generations'
by-hash files are carried into each new generation, so a client holding an older InRelease
still finds the indexes it names.  A publish holds an ``flock`` on ``state/lock``: two
publishes serialize and a killed one leaves no stale lock (the kernel drops it) and only
``.tmp-*`` leftovers, which the next publish removes.

Incremental: every .deb is read once (:class:`DebCache`); each deployment has a fingerprint
over its package files and hashes, suite, architectures, signing key and options; only
deployments whose fingerprint changed are rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from datetime import datetime, timedelta, timezone

from ansible_collections.mo.fleet.plugins.module_utils._common import layout, names
from ansible_collections.mo.fleet.plugins.module_utils._common.layout import project_paths
from ansible_collections.mo.fleet.plugins.module_utils._common.lock import FileLock
from ansible_collections.mo.fleet.plugins.module_utils._repo.deb import DebCache, DebError, record_fields
from ansible_collections.mo.fleet.plugins.module_utils._repo.deb import split_pool_name  # noqa: F401 pylint: disable=unused-import
from ansible_collections.mo.fleet.plugins.module_utils._repo.repo_index import (
    COMPONENT, ChunkStore, PublishError, build_packages_chunks, build_release, compress_indexes,
    parse_release_sha256, sign_release, signing_key_fingerprint,
)

from ansible_collections.mo.fleet.plugins.module_utils._repo.package_resolve import (  # noqa: F401 pylint: disable=unused-import
    package_ref, PackagesMissing, pool_matches, prepare_catalog, resolve_packages,
    validate_catalog_for_publish)
from ansible_collections.mo.fleet.plugins.module_utils._repo.publish_state import (  # noqa: F401 pylint: disable=unused-import
    _fingerprint, load_state, save_state, STATE_SCHEMA)


DEFAULT_ROOT = layout.REPO_ROOT


def repo_lock(path, timeout=600.0):
    """The project lock that publish and upload share (PublishError when it stays busy)."""
    return FileLock(path, timeout, holder="another publish or upload", error=PublishError)


# ------------------------------------------------------------------ publish

def _generation_dirs(gen_root):
    try:
        return sorted(int(n) for n in os.listdir(gen_root) if n.isdigit())
    except OSError:
        return []


def _clean_leftovers(dep_dir):
    """Remove what a killed publish left behind (temporary trees and links)."""
    removed = 0
    gen_root = os.path.join(dep_dir, ".gen")
    for n in os.listdir(gen_root) if os.path.isdir(gen_root) else []:
        if n.startswith(".tmp-"):
            shutil.rmtree(os.path.join(gen_root, n), ignore_errors=True)
            removed += 1
    for n in os.listdir(dep_dir) if os.path.isdir(dep_dir) else []:
        if n.startswith(".dists.tmp-"):
            os.unlink(os.path.join(dep_dir, n))
            removed += 1
    return removed


def _current_generation(dep_dir):
    try:
        target = os.readlink(os.path.join(dep_dir, "dists"))
    except OSError:
        return None
    base = os.path.basename(target.rstrip("/"))
    return int(base) if base.isdigit() else None


def _write(path, data):
    with open(path, "wb") as fh:
        fh.write(data)


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def build_generation(dep_dir, suite, meta, per_arch, options, gnupg_home, fingerprint, now, store=None):
    """Write generation N+1 of a deployment aside; return (gen number, tmp dir).

    PER_ARCH: {arch: [Packages text chunks]}.  The caller renames the result into place.
    """
    store = store or ChunkStore(None, options["xz_preset"])
    gen_root = os.path.join(dep_dir, ".gen")
    os.makedirs(gen_root, exist_ok=True)
    gens = _generation_dirs(gen_root)
    number = (max(gens) if gens else 0) + 1
    tmp = tempfile.mkdtemp(prefix=f".tmp-{number}-", dir=gen_root)
    os.chmod(tmp, 0o755)
    suite_dir = os.path.join(tmp, suite)
    index = {}
    for arch, chunks in sorted(per_arch.items()):
        rel_dir = f"{COMPONENT}/binary-{arch}"
        out_dir = os.path.join(suite_dir, rel_dir)
        byhash = os.path.join(out_dir, "by-hash", "SHA256")
        os.makedirs(byhash, exist_ok=True)
        if isinstance(chunks, str):
            chunks = [chunks] if chunks else []
        blobs = compress_indexes(chunks, store, options["compressions"])
        for fname, blob in blobs.items():
            sha = hashlib.sha256(blob).hexdigest()
            path = os.path.join(out_dir, fname)
            _write(path, blob)
            dst = os.path.join(byhash, sha)
            if not os.path.exists(dst):
                os.link(path, dst)
            index[f"{rel_dir}/{fname}"] = (len(blob), hashlib.md5(blob).hexdigest(), sha)
    # carry the by-hash files of the generations we keep, so clients holding their InRelease
    # still find the indexes it names
    keep_old = [g for g in gens if g != number][-(options["keep_generations"] - 1):] if options["keep_generations"] > 1 else []
    for old in keep_old:
        old_suite = os.path.join(gen_root, str(old), suite)
        try:
            with open(os.path.join(old_suite, "Release"), encoding="utf-8") as fh:
                old_hashes = parse_release_sha256(fh.read())
        except OSError:
            continue
        for rel, sha in old_hashes.items():
            src = os.path.join(old_suite, os.path.dirname(rel), "by-hash", "SHA256", sha)
            dst_dir = os.path.join(suite_dir, os.path.dirname(rel), "by-hash", "SHA256")
            dst = os.path.join(dst_dir, sha)
            if os.path.exists(src) and not os.path.exists(dst):
                os.makedirs(dst_dir, exist_ok=True)
                _link_or_copy(src, dst)
    valid_until = None
    if options.get("valid_for_days"):
        valid_until = now + timedelta(days=options["valid_for_days"])
    _write(os.path.join(suite_dir, "Release"), build_release(meta, index, now, valid_until).encode("utf-8"))
    sign_release(suite_dir, gnupg_home, fingerprint)
    for dirpath, dirnames, filenames in os.walk(tmp):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)
    return number, tmp


def switch_generation(dep_dir, number, tmp):
    """Rename the finished tree to .gen/N and swap the dists symlink with one rename."""
    final = os.path.join(dep_dir, ".gen", str(number))
    os.rename(tmp, final)
    link_tmp = os.path.join(dep_dir, f".dists.tmp-{os.getpid()}")
    if os.path.lexists(link_tmp):
        os.unlink(link_tmp)
    os.symlink(os.path.join(".gen", str(number)), link_tmp)
    os.replace(link_tmp, os.path.join(dep_dir, "dists"))


def prune_generations(dep_dir, keep):
    gen_root = os.path.join(dep_dir, ".gen")
    current = _current_generation(dep_dir)
    gens = _generation_dirs(gen_root)
    for g in gens[:-keep] if keep > 0 else []:
        if g != current:
            shutil.rmtree(os.path.join(gen_root, str(g)), ignore_errors=True)


def _ensure_pool_link(dep_dir):
    link = os.path.join(dep_dir, "pool")
    target = os.path.join("..", "..", "stores")
    if os.path.islink(link) and os.readlink(link) == target:
        return
    tmp = link + ".tmp"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _pkg_label(rel, rec):
    return f"{rel} ({rec['name']} {rec['version']} {rec['architecture']})"


def _options(opts):
    opts = dict(opts or {})
    out = {
        "keep_generations": int(opts.get("keep_generations") or 3),
        "valid_for_days": opts.get("valid_for_days"),
        "compressions": sorted(opts.get("compressions") or ["gz", "xz"]),
        "xz_preset": int(opts.get("xz_preset", 6)),
        "origin": opts.get("origin"),
        "label": opts.get("label"),
    }
    if out["keep_generations"] < 1:
        raise PublishError("keep_generations must be at least 1.")
    for key in ("origin", "label"):
        value = out[key]
        if value is not None and (not isinstance(value, str) or not value.strip() or value != value.strip()
                                  or not names.is_valid("line", value)):
            raise PublishError(f"{key} must be one line of printable text without leading or trailing spaces, not {value!r}.")
    bad = [c for c in out["compressions"] if c not in ("gz", "xz")]
    if bad:
        raise PublishError(f"compressions may only hold 'gz' and 'xz', not {bad[0]!r}.")
    if out["valid_for_days"] is not None:
        out["valid_for_days"] = float(out["valid_for_days"])
        if out["valid_for_days"] <= 0:
            raise PublishError("valid_for_days must be a positive number of days.")
    return out


MISSING_CHOICES = ("fail", "skip")


def plan(catalog, root=DEFAULT_ROOT, cache=None, check_catalog=True, strict_disabled=False, report_disabled=False,
         missing="fail"):
    """Resolve every deployment to its packages (reading new .debs); no writes.

    Returns (project, {deployment: {"dep", "entries"[, "pending"]}}, cache).  Disabled
    deployments are resolved best effort (their packages may have been deleted since) unless
    STRICT_DISABLED.  An enabled deployment naming packages not in the stores raises
    :class:`PackagesMissing` when MISSING is ``fail``; with ``skip`` it gets no entries and
    ``pending`` ({"deployment", "missing", "reason"}) instead.
    """
    if missing not in MISSING_CHOICES:
        raise PublishError(f"missing must be 'fail' or 'skip', not {missing!r}.")
    if check_catalog:
        catalog = prepare_catalog(catalog)
    project = validate_catalog_for_publish(catalog)
    paths = project_paths(root, project["name"])
    arches = list(project["architectures"])
    cache = cache if cache is not None else DebCache(paths["cache"])
    resolved = {}
    for dep in catalog.get("deployments") or []:
        if dep.get("source", "internal") == "external":
            continue
        try:
            rels = resolve_packages(catalog, dep, paths["stores"])
        except PackagesMissing as exc:
            if dep.get("enabled", True) and missing == "skip":
                resolved[dep["name"]] = {"dep": dep, "entries": [], "pending": {
                    "deployment": dep["name"], "missing": exc.missing, "reason": str(exc)}}
                continue
            if dep.get("enabled", True) or strict_disabled:
                raise
            resolved[dep["name"]] = {"dep": dep, "entries": []}
            continue
        except PublishError:
            if dep.get("enabled", True) or strict_disabled:
                raise
            resolved[dep["name"]] = {"dep": dep, "entries": []}
            continue
        if not dep.get("enabled", True) and not report_disabled:
            rels = [r for r in rels if os.path.isfile(os.path.join(paths["stores"], r))]
        entries = []
        ident = {}
        stores_prefix = os.path.abspath(paths["stores"]) + os.sep
        for rel in rels:
            try:
                rec = cache.get(stores_prefix + rel, label=rel)
            except DebError as exc:
                raise PublishError(f"deployment {dep['name']!r}: {exc}") from None
            if rec["architecture"] != "all" and rec["architecture"] not in arches:
                raise PublishError(f"deployment {dep['name']!r} field packages holds {rel} for architecture {rec['architecture']}, "
                                   "which is not in mo_fleet_catalog.project.architectures.")
            key = (rec["name"], rec["version"], rec["architecture"])
            if key in ident and ident[key][1] != rec["sha256"]:
                raise PublishError(f"deployment {dep['name']!r} field packages holds two different files for {' '.join(key)} ({ident[key][0]} and {rel}).")
            ident[key] = (rel, rec["sha256"])
            entries.append((rel, rec))
        resolved[dep["name"]] = {"dep": dep, "entries": entries}
    return project, resolved, cache


def publish(catalog, root=DEFAULT_ROOT, gnupg_home=None, signing_key=None, options=None,
            check_mode=False, lock_timeout=600.0, now=None, _after_build=None, missing="fail"):
    """Publish every enabled internal deployment of CATALOG; return a report.

    Report: {"changed": bool, "project": name, "deployments": {name: {...}}, "pending": [...]}
    where each deployment has changed, action (published | unchanged | unpublished |
    external | pending), reason, added, removed, packages, generation, suite, path.

    MISSING says what a deployment naming packages not in the stores yet does: ``fail``
    (the publish fails with one sentence before anything is written) or ``skip`` (the
    deployment is ``pending``: listed in ``pending`` as {"deployment", "missing", "reason"},
    left as it is served, or not created when it never was, and published by the first
    publish that finds all its packages; the other deployments are published as usual).
    """
    if missing not in MISSING_CHOICES:
        raise PublishError(f"missing must be 'fail' or 'skip', not {missing!r}.")
    opts = _options(options)
    catalog = prepare_catalog(catalog)
    project = catalog["project"]
    name = project["name"]
    paths = project_paths(root, name)
    gnupg_home = gnupg_home or layout.gnupg_home(name)
    now = now or datetime.now(timezone.utc).replace(microsecond=0)
    if not check_mode:
        for key in ("stores", "repos", "disabled", "state"):
            os.makedirs(paths[key], exist_ok=True)
        os.chmod(paths["state"], 0o750)
    report = {"changed": False, "project": name, "deployments": {}, "pending": []}
    args = (catalog, root, project, paths, gnupg_home, signing_key, opts, check_mode, now, report, _after_build, missing)
    if check_mode and not os.path.isdir(paths["state"]):
        return _publish_locked(*args)
    with repo_lock(paths["lock"], lock_timeout):
        return _publish_locked(*args)


class _Run:
    """What one locked publish works with; its steps are the methods below."""

    def __init__(self, catalog, project, paths, gnupg_home, signing_key, opts, check_mode, now, report,
                 after_build, missing, root):
        self.catalog, self.project, self.paths, self.opts = catalog, project, paths, opts
        self.gnupg_home, self.check_mode, self.now, self.report, self.after_build = (
            gnupg_home, check_mode, now, report, after_build)
        self.cache = DebCache(paths["cache"])
        self.resolved, self.cache = plan(catalog, root, self.cache, check_catalog=False, missing=missing)[1:]
        self.state = load_state(paths["publish"])
        self.fpr = None
        if any(d["dep"].get("enabled", True) and "pending" not in d for d in self.resolved.values()):
            try:
                self.fpr = signing_key_fingerprint(gnupg_home, signing_key)
            except PublishError:
                if not check_mode:  # a first check-mode run may come before the key exists
                    raise
        self.arches = list(project["architectures"])
        self.chunk_store = ChunkStore(os.path.join(paths["state"], "chunks.bin"), opts["xz_preset"])

    def deployment(self, dep):
        """Publish, keep, unpublish or skip one deployment of the catalog; fills its report entry."""
        dname = dep["name"]
        source = dep.get("source", "internal")
        entry = {"changed": False, "added": [], "removed": [], "suite": dname if source == "internal" else dep.get("suite"),
                 "path": f"{self.project['name']}/repos/{dname}", "source": source}
        self.report["deployments"][dname] = entry
        dep_dir = os.path.join(self.paths["repos"], dname)
        old = self.state["deployments"].get(dname, {})
        if source == "external":
            entry.update(action="external", reason="served by the nginx caching proxy, not published here")
        elif not dep.get("enabled", True):
            self.disabled(dname, entry, dep_dir, old)
        elif self.resolved[dname].get("pending") is not None:
            self.pending(dname, entry, dep_dir, old)
        else:
            self.enabled(dname, entry, dep_dir, old)

    def disabled(self, dname, entry, dep_dir, old):
        entry["packages"] = len(self.resolved[dname]["entries"])
        if os.path.isdir(dep_dir):
            entry.update(changed=True, action="unpublished", reason="deployment is disabled",
                         removed=sorted(old.get("packages", [])))
            if not self.check_mode:
                _unpublish(self.paths, dname, self.state, self.now)
        else:
            entry.update(action="unchanged", reason="deployment is disabled and not served")

    def pending(self, dname, entry, dep_dir, old):
        # nothing of it is written: a served deployment keeps its last complete generation, a
        # new one is not created
        pending = self.resolved[dname]["pending"]
        served_gen = _current_generation(dep_dir)
        entry.update(action="pending", reason=pending["reason"], missing=list(pending["missing"]),
                     packages=len(old.get("packages", [])))
        if served_gen is not None:
            entry["generation"] = served_gen
        self.report["pending"].append({"deployment": dname, "missing": list(pending["missing"]),
                                       "reason": pending["reason"], "generation": served_gen})

    def _meta(self, dname, suite):
        project, opts = self.project, self.opts
        return {
            "origin": opts["origin"] or project["name"],
            "label": opts["label"] or f"{project['name']} {dname}",
            "suite": suite,
            "architectures": self.arches,
            "description": f"mo.fleet deployment {dname} of project {project['name']}",
        }

    def _reasons(self, dname, dep_dir, old, fingerprint, suite):
        """Why DNAME is rebuilt (empty: it is not) and whether its tree is served now."""
        reasons = []
        if not os.path.isdir(dep_dir) and os.path.isdir(os.path.join(self.paths["disabled"], dname)):
            reasons.append("re-enabled")
        served = os.path.islink(os.path.join(dep_dir, "dists")) and os.path.isdir(os.path.join(dep_dir, "dists", suite))
        if old.get("fingerprint") != fingerprint:
            reasons.append("package list or options changed" if old else "first publish")
        elif not served and "re-enabled" not in reasons:
            reasons.append("published tree missing")
        if self.opts["valid_for_days"] and old.get("date"):
            age = self.now.timestamp() - old["date"]
            if age > self.opts["valid_for_days"] * 86400 / 2:
                reasons.append("Valid-Until refresh due")
        return reasons, served

    def enabled(self, dname, entry, dep_dir, old):
        entries = self.resolved[dname]["entries"]
        suite = entry["suite"]
        labels = sorted(_pkg_label(rel, rec) for rel, rec in entries)
        meta = self._meta(dname, suite)
        fingerprint = _fingerprint({
            "files": [(rel, rec["sha256"]) for rel, rec in entries], "meta": meta,
            "key": self.fpr, "options": {k: self.opts[k] for k in ("valid_for_days", "compressions", "xz_preset")},
        })
        old_pkgs = old.get("packages", [])
        entry["packages"] = len(entries)
        entry["added"] = sorted(set(labels) - set(old_pkgs))
        entry["removed"] = sorted(set(old_pkgs) - set(labels))
        reasons, served = self._reasons(dname, dep_dir, old, fingerprint, suite)
        if not reasons:
            entry.update(action="unchanged", reason="fingerprint unchanged", generation=_current_generation(dep_dir))
            return
        entry.update(changed=True, action="published", reason=", ".join(reasons))
        if self.check_mode:
            return
        if "re-enabled" in reasons:
            os.rename(os.path.join(self.paths["disabled"], dname), dep_dir)
        os.makedirs(dep_dir, exist_ok=True)
        _clean_leftovers(dep_dir)
        _ensure_pool_link(dep_dir)
        if "re-enabled" in reasons and old.get("fingerprint") == fingerprint and served:
            number = _current_generation(dep_dir)
        else:
            number = self._build(dname, dep_dir, suite, meta, entries)
        entry["generation"] = number
        self._record(dname, entry, old, fingerprint, labels, number, suite)

    def _build(self, dname, dep_dir, suite, meta, entries):
        per_arch = {arch: build_packages_chunks([(r, rec) for r, rec in entries if rec["architecture"] in (arch, "all")])
                    for arch in self.arches}
        self.chunk_store.owner = dname
        number, tmp = build_generation(dep_dir, suite, meta, per_arch, self.opts, self.gnupg_home, self.fpr, self.now,
                                       self.chunk_store)
        if self.after_build is not None:
            self.after_build(dname, tmp)
        switch_generation(dep_dir, number, tmp)
        prune_generations(dep_dir, self.opts["keep_generations"])
        return number

    def _record(self, dname, entry, old, fingerprint, labels, number, suite):
        now = int(self.now.timestamp())
        history = list(old.get("history", []))
        history.append({"generation": number, "date": now, "fingerprint": fingerprint,
                        "added": entry["added"], "removed": entry["removed"], "reason": entry["reason"]})
        chunk_store = self.chunk_store
        self.state["deployments"][dname] = {
            "fingerprint": fingerprint, "packages": labels, "generation": number, "suite": suite,
            "chunks": sorted(chunk_store.used_by(dname)) if dname in chunk_store.by_owner else old.get("chunks", []),
            "date": now, "enabled": True, "history": history[-50:],
        }
        save_state(self.paths["publish"], self.state)

    def gone(self):
        """Deployments that left the catalog stop being served too (history kept)."""
        repos = self.paths["repos"]
        names_now = {d["name"] for d in self.catalog.get("deployments") or []}
        for dname in sorted(os.listdir(repos)) if os.path.isdir(repos) else []:
            if dname in names_now or dname.startswith("."):
                continue
            self.report["deployments"][dname] = {
                "changed": True, "action": "unpublished", "reason": "not in the catalog any more", "added": [],
                "removed": sorted(self.state["deployments"].get(dname, {}).get("packages", [])),
                "source": "internal", "path": f"{self.project['name']}/repos/{dname}"}
            if not self.check_mode:
                _unpublish(self.paths, dname, self.state, self.now)

    def prune_caches(self):
        """Forget cache entries of files that left the stores (used ones are known to exist; the
        others, such as fresh uploads and orphans, are checked) and chunks no deployment uses."""
        cache, chunk_store = self.cache, self.chunk_store
        prefix = os.path.abspath(self.paths["stores"]) + os.sep
        used = {prefix + entry[0] for d in self.resolved.values() for entry in d["entries"]}
        cache.prune(used | {p for p in cache.paths if p not in used and os.path.isfile(p)})
        cache.save()
        keep_chunks = set()
        for rec in self.state["deployments"].values():
            if rec.get("enabled", True):
                keep_chunks.update(rec.get("chunks", []))
        chunk_store.prune(keep_chunks | chunk_store.used)
        chunk_store.save()


def _publish_locked(catalog, root, project, paths, gnupg_home, signing_key, opts, check_mode, now, report, after_build, missing):
    run = _Run(catalog, project, paths, gnupg_home, signing_key, opts, check_mode, now, report, after_build, missing, root)
    for dep in catalog.get("deployments") or []:
        run.deployment(dep)
    run.gone()
    if not check_mode:
        run.prune_caches()
    report["changed"] = any(d["changed"] for d in report["deployments"].values())
    return report


def _unpublish(paths, dname, state, now):
    dep_dir = os.path.join(paths["repos"], dname)
    dest = os.path.join(paths["disabled"], dname)
    if os.path.exists(dest):
        os.rename(dest, f"{dest}.{now.strftime('%Y%m%dT%H%M%S')}")
    os.makedirs(paths["disabled"], exist_ok=True)
    os.rename(dep_dir, dest)
    rec = state["deployments"].setdefault(dname, {})
    rec["enabled"] = False
    rec.setdefault("history", []).append({"date": int(now.timestamp()), "reason": "unpublished"})
    save_state(paths["publish"], state)


# ------------------------------------------------------------------ report (orphans, metadata)

def repo_report(catalog, root=DEFAULT_ROOT):
    """Every stored package with its metadata and the deployments holding it; orphans."""
    catalog = prepare_catalog(catalog)
    project, resolved, cache = plan(catalog, root, check_catalog=False, report_disabled=True)
    paths = project_paths(root, project["name"])
    holders = {}
    for dname, d in resolved.items():
        for rel, _rec in d["entries"]:
            holders.setdefault(rel, []).append(dname)
    packages = []
    for dirpath, dirs, files in os.walk(paths["stores"]):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        for f in sorted(files):
            if not f.endswith(".deb") or f.startswith("."):
                continue
            full = os.path.join(dirpath, f)
            rel = os.path.relpath(full, paths["stores"])
            try:
                rec = cache.get(full, label=rel)
            except DebError as exc:
                packages.append({"path": rel, "error": str(exc), "deployments": holders.get(rel, [])})
                continue
            packages.append({
                "path": rel, "name": rec["name"], "version": rec["version"],
                "architecture": rec["architecture"], "size": rec["size"], "sha256": rec["sha256"],
                "fields": record_fields(rec), "conffiles": rec["conffiles"],
                "deployments": sorted(holders.get(rel, [])),
            })
    orphans = [p["path"] for p in packages if not p["deployments"]]
    return {"project": project["name"], "packages": packages, "orphans": orphans}
