# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which packages a deployment of the catalog gets from the project's package stores: the
catalog checked for publishing, package references matched against the pool, and
``resolve_packages`` (``PackagesMissing`` names what is not there yet).

Standard library only.
"""

from __future__ import annotations

import os

from ansible_collections.mo.fleet.plugins.module_utils._common import names
from ansible_collections.mo.fleet.plugins.module_utils._repo.deb import (
    DebError, check_safe_name, split_pool_name, version_matches,
)
from ansible_collections.mo.fleet.plugins.module_utils._repo.repo_index import PublishError


class PackagesMissing(PublishError):
    """A deployment names packages or package sets that are not in the stores (yet).

    ``deployment`` is its name, ``missing`` the catalog entries not found (in catalog
    order), ``reasons`` one sentence per entry; the message is the only sentence when one
    entry is missing, otherwise one sentence naming them all.
    """

    def __init__(self, deployment, missing):
        self.deployment = deployment
        self.missing = [entry for entry, _reason in missing]
        self.reasons = [reason for _entry, reason in missing]
        if len(missing) == 1:
            message = self.reasons[0]
        else:
            message = (f"deployment {deployment!r} names {len(missing)} packages or package sets that are not in the "
                       f"stores yet: {', '.join(repr(e) for e in self.missing)}.")
        super().__init__(message)


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    return list(value)


def _name_of(item):
    return item.get("name") if isinstance(item, dict) else item


def validate_catalog_for_publish(catalog):
    """Check what publishing needs (the full schema lives in catalog.py); return the project."""
    if not isinstance(catalog, dict):
        raise PublishError("mo_fleet_catalog must be a mapping.")
    project = catalog.get("project")
    if not isinstance(project, dict) or not project.get("name"):
        raise PublishError("mo_fleet_catalog.project.name is required.")
    try:
        check_safe_name(project["name"], "mo_fleet_catalog.project.name")
    except DebError as exc:
        raise PublishError(str(exc)) from None
    arches = project.get("architectures") or []
    if not isinstance(arches, list) or not arches or not all(names.is_valid("architecture", a) and a != "all" for a in arches):
        raise PublishError("mo_fleet_catalog.project.architectures must be a non-empty list of Debian architectures (not 'all').")
    seen = set()
    for index, dep in enumerate(catalog.get("deployments") or []):
        if not isinstance(dep, dict) or not dep.get("name"):
            raise PublishError(f"mo_fleet_catalog.deployments[{index}].name is required.")
        name = dep["name"]
        try:
            check_safe_name(name, f"deployment {name!r} field name")
        except DebError as exc:
            raise PublishError(str(exc)) from None
        if name in seen:
            raise PublishError(f"deployment {name!r} is defined twice in mo_fleet_catalog.deployments.")
        seen.add(name)
        schedule = dep.get("schedule")
        if schedule and schedule not in {_name_of(s) for s in catalog.get("schedules") or []}:
            raise PublishError(f"deployment {name!r} field schedule names {schedule!r}, which is not in mo_fleet_catalog.schedules.")
        if dep.get("source", "internal") not in ("internal", "external"):
            raise PublishError(f"deployment {name!r} field source must be 'internal' or 'external'.")
    return project


def _sentence(text):
    text = str(text).strip()
    return text if text.endswith(".") else text + "."


def prepare_catalog(catalog):
    """Validate CATALOG fully (module_utils/_repo/catalog.py when present) and return it normalized.

    The collection's catalog module checks every field the schema names; on top of it this
    checks what publishing needs (project name and architectures, safe deployment names).
    """
    try:
        from ansible_collections.mo.fleet.plugins.module_utils._repo.catalog import CatalogError, load_catalog
    except ImportError:  # pragma: no cover - catalog.py ships with the collection
        load_catalog = None
    if load_catalog is not None:
        try:
            catalog = load_catalog(catalog)
        except CatalogError as exc:
            raise PublishError(_sentence(exc)) from None
    validate_catalog_for_publish(catalog)
    return catalog


def _list_debs(directory):
    try:
        with os.scandir(directory) as entries:  # d_type: no stat per file
            return sorted(e.name for e in entries
                          if e.name.endswith(".deb") and not e.name.startswith(".") and e.is_file())
    except OSError:
        return []


def package_ref(entry):
    """What a ``packages`` entry names by identity: (name, version, architecture or None) for
    a .deb file name (as uploaded, or the pool's name) or apt's ``name[:arch]=version``;
    None when ENTRY is neither."""
    if entry.endswith(".deb"):
        return split_pool_name(entry)
    if "=" not in entry:
        return None
    left, _sep, version = entry.partition("=")
    name, _sep, arch = left.partition(":")
    if not (names.is_valid("package", name) and names.is_valid("version", version)
            and (not arch or names.is_valid("architecture", arch))):
        return None
    return name, version, arch or None


def pool_matches(files, entry):
    """The names of FILES (the .debs of one store or set directory) that ENTRY names.

    ENTRY is a file name (the pool's name matches itself), the file name dpkg-deb gave the
    package (no epoch: ``libfoo_2.0-1_amd64.deb`` names the pool's
    ``libfoo_1%3a2.0-1_amd64.deb``), the same with the epoch as ``:``, or apt's
    ``name[:arch]=version`` (every architecture unless one is given).  Raises PublishError
    when ENTRY could name more than one version.
    """
    if entry in files:
        return [entry]
    ref = package_ref(entry)
    if ref is None:
        return []
    name, version, arch = ref
    found = []
    for filename in files:
        have = split_pool_name(filename)
        if have and have[0] == name and (arch is None or have[2] == arch) and version_matches(version, have[1]):
            found.append((have[1], filename))
    if len({v for v, _file in found}) > 1:
        raise PublishError(f"{entry!r} names several versions ({', '.join(sorted(f for _v, f in found))}); "
                           "name one with its epoch (name_EPOCH%3aVERSION_ARCH.deb or name=EPOCH:VERSION).")
    return sorted(f for _v, f in found)


def resolve_packages(catalog, dep, stores_dir):
    """Return the sorted store-relative paths ('store/file.deb' or 'store/set/file.deb') of DEP.

    ``packages`` entries are ``file.deb`` (looked up in the deployment's ``store`` first,
    otherwise in exactly one store), ``store/file.deb``, ``store/set``, a package set name,
    or apt's ``name[:arch]=version`` (optionally ``store/name=version``).  A file is named by
    the pool's name or by the name it was uploaded as (see :func:`pool_matches`: the epoch
    dpkg-deb leaves out of its file names is found).  ``package_sets`` entries are package
    set names.  A package set lives in ``stores/<store>/<set>/``; when the catalog lists its
    ``packages`` only those files are used.

    Every entry that names something not in the stores is collected and, when any is,
    :class:`PackagesMissing` is raised naming them all (anything else wrong, such as an
    entry naming several versions or stores, raises :class:`PublishError` at once).
    """
    resolver = _Resolver(catalog, dep, stores_dir)
    out = []
    for entry in _as_list(dep.get("package_sets")):
        out.extend(resolver.package_set_entry(entry))
    for entry in _as_list(dep.get("packages")):
        out.extend(resolver.packages_entry(entry))
    if resolver.missing:
        raise PackagesMissing(resolver.name, resolver.missing)
    return sorted(set(out))


class _Resolver:
    """The files one deployment's entries name, in the package stores below STORES_DIR; what
    is not there is collected in ``missing`` ((what, sentence) pairs)."""

    def __init__(self, catalog, dep, stores_dir):
        self.name = dep["name"]
        self.stores_dir = stores_dir
        self.missing = []
        self.sets = {}
        for item in catalog.get("package_sets") or []:
            if isinstance(item, dict) and item.get("name"):
                self.sets[item["name"]] = item
        try:
            self.stores = sorted(s for s in os.listdir(stores_dir) if os.path.isdir(os.path.join(stores_dir, s)))
        except OSError:
            self.stores = []
        self.default_store = dep.get("store")
        self.listings = {}

    def _isdir(self, *parts):
        return os.path.isdir(os.path.join(self.stores_dir, *parts))

    def listing(self, rel):
        if rel not in self.listings:
            self.listings[rel] = _list_debs(os.path.join(self.stores_dir, rel))
        return self.listings[rel]

    def lookup(self, field, rel, entry):
        """The files of the directory stores/REL that ENTRY names (one sentence on ambiguity)."""
        try:
            return pool_matches(self.listing(rel), entry)
        except PublishError as exc:
            raise PublishError(f"deployment {self.name!r} field {field} in {rel}: {exc}") from None

    def set_files(self, field, set_name, store_hint=None):
        """The store-relative files of the package set SET_NAME (its declared ``packages`` only,
        when the catalog lists them)."""
        name = self.name
        declared = self.sets.get(set_name, {})
        store = declared.get("store") or store_hint or self.default_store
        candidates = [store] if store else self.stores
        found = [s for s in candidates if self._isdir(s, set_name)]
        if not found:
            where = f"store {store}" if store else "any store"
            self.missing.append((set_name, f"deployment {name!r} field {field} names package set {set_name!r}, "
                                           f"which has not been uploaded to {where}."))
            return []
        if len(found) > 1:
            raise PublishError(f"deployment {name!r} field {field} names package set {set_name!r}, "
                               f"which is in several stores ({', '.join(found)}); give the set a store.")
        rel = f"{found[0]}/{set_name}"
        files = self.listing(rel)
        wanted = declared.get("packages") or []
        if wanted:
            chosen = self._declared_members(field, set_name, rel, wanted)
            files = [f for f in files if f in chosen]
        return [f"{rel}/{f}" for f in files]

    def _declared_members(self, field, set_name, rel, wanted):
        name = self.name
        chosen = []
        for want in wanted:
            matched = self.lookup(field, rel, want) if isinstance(want, str) else []
            if not matched:
                if not isinstance(want, str):
                    raise PublishError(f"deployment {name!r} field {field}: package set {set_name!r} lists {want!r}, which is not a file name.")
                self.missing.append((f"{rel}/{want}", f"deployment {name!r} field {field}: package set {set_name!r} lists {want!r}, "
                                                      f"which is not in {rel}."))
            chosen.extend(matched)
        return chosen

    def package_set_entry(self, entry):
        """The files of one ``package_sets`` entry."""
        if not isinstance(entry, str) or "/" in entry or entry in ("", ".", ".."):
            raise PublishError(f"deployment {self.name!r} field package_sets entry {entry!r} is not a package set name.")
        return self.set_files("package_sets", entry)

    def packages_entry(self, entry):
        """The files of one ``packages`` entry: a file or apt name in a store, or a package set."""
        name = self.name
        if isinstance(entry, dict):
            entry = "/".join(x for x in (entry.get("store"), entry.get("name") or entry.get("file")) if x)
        if not isinstance(entry, str) or not entry:
            raise PublishError(f"deployment {name!r} field packages has an entry that is not a package or package set name.")
        parts = entry.split("/")
        if any(p in ("", ".", "..") for p in parts) or len(parts) > 2:
            raise PublishError(f"deployment {name!r} field packages entry {entry!r} is not 'file.deb', 'store/file.deb', "
                               "'name=version', a package set or 'store/set'.")
        leaf = parts[-1]
        by_identity = leaf.endswith(".deb") or package_ref(leaf) is not None
        if len(parts) == 2:
            return self._in_named_store(entry, parts[0], leaf, by_identity)
        if not by_identity:
            return self.set_files("packages", entry)
        return self._in_any_store(entry)

    def _in_named_store(self, entry, store, leaf, by_identity):
        """``store/file.deb``, ``store/name=version`` or ``store/set``."""
        if by_identity and self._isdir(store):
            matched = self.lookup("packages", store, leaf)
            if matched:
                return [f"{store}/{f}" for f in matched]
        if not by_identity and self._isdir(store, leaf):
            return self.set_files("packages", leaf, store)
        self.missing.append((entry, f"deployment {self.name!r} field packages names {entry!r}, which is not in the stores."))
        return []

    def _in_any_store(self, entry):
        """A file or apt name without a store: the deployment's store first, else exactly one store."""
        default_store = self.default_store
        if default_store and default_store in self.stores:
            matched = self.lookup("packages", default_store, entry)
            if matched:
                return [f"{default_store}/{f}" for f in matched]
        found = {}
        for store in self.stores:
            matched = self.lookup("packages", store, entry)
            if matched:
                found[store] = matched
        if not found:
            self.missing.append((entry, f"deployment {self.name!r} field packages names {entry!r}, which is in no store."))
            return []
        if len(found) > 1:
            raise PublishError(f"deployment {self.name!r} field packages names {entry!r}, which is in several stores "
                               f"({', '.join(found)}); write 'store/{entry}'.")
        store, matched = next(iter(found.items()))
        return [f"{store}/{f}" for f in matched]
