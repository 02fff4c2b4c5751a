# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Put uploaded .deb files into a store of the repository server (all or nothing).

A package lands in ``<root>/<project>/stores/<store>/[<set>/]<name>_<version>_<arch>.deb``
(the Debian pool name, so name, version and architecture identify one path).  The same
file again is a no-op; a different file under an existing name, version and architecture
is refused unless ``force``.  Every file is checked before any is written.
"""

from __future__ import annotations

import os

from ansible_collections.mo.fleet.plugins.module_utils._repo.deb import (
    DebCache, DebError, canonical_filename, check_safe_name, parse_deb,
)
from ansible_collections.mo.fleet.plugins.module_utils._common.layout import REPO_ROOT, project_paths
from ansible_collections.mo.fleet.plugins.module_utils._repo.publish import PublishError, repo_lock
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import atomic_write


# ------------------------------------------------------------------ module glue
# What the repository server modules (repo_info, repo_package and its action plugin,
# repo_publish) share: the options (documented once in the mo.fleet.repo_server doc
# fragment) and how engine errors end a module.

CATALOG_OPTION = dict(type="dict", required=True)
LOCK_TIMEOUT_OPTION = dict(type="float", default=600)


def repo_argument_spec(**options):
    """The argument spec of a repository server module: OPTIONS plus the shared ``root``."""
    spec = {name: dict(option) for name, option in options.items()}
    spec["root"] = dict(type="path", default=REPO_ROOT)
    return spec


UPLOAD_ARGUMENT_SPEC = repo_argument_spec(
    src=dict(type="path", required=True),
    store=dict(type="str", required=True),
    set=dict(type="str"),
    project=dict(type="str", required=True),
    force=dict(type="bool", default=False),
    remote_src=dict(type="bool", default=False),
    lock_timeout=LOCK_TIMEOUT_OPTION,
)


def run_engine(module, action, func, *args, **kwargs):
    """Return FUNC(*ARGS, **KWARGS); an engine error ends MODULE with one sentence.

    ACTION names what failed in the sentence for an OS error (``"publishing"``, ``"upload"``).
    """
    try:
        return func(*args, **kwargs)
    except (PublishError, DebError) as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=f"{action} failed on {exc.filename or 'a file'}: {exc.strerror}.")
    return None  # fail_json does not return


def package_set_of(src, package_set=None):
    """The package set an upload of SRC goes to: PACKAGE_SET, else the name of SRC when it
    is a directory, else none."""
    if not package_set and os.path.isdir(src):
        return os.path.basename(os.path.normpath(src))
    return package_set


def collect_debs(src):
    """Return the .deb paths of SRC (a file, or a directory's top-level *.deb files)."""
    if os.path.isdir(src):
        files = sorted(os.path.join(src, n) for n in os.listdir(src)
                       if n.endswith(".deb") and not n.startswith(".") and os.path.isfile(os.path.join(src, n)))
        if not files:
            raise DebError(f"directory {src} holds no .deb files.")
        return files
    if not os.path.isfile(src):
        raise DebError(f"src {src} does not exist.")
    return [src]


def check_upload(files, store, package_set=None):
    """Parse FILES; return [(path, label, target name, record)] or raise DebError (no writes)."""
    check_safe_name(store, "store name")
    if package_set is not None:
        check_safe_name(package_set, "package set name")
    records = []
    seen = {}
    for path in files:
        label = os.path.basename(path)
        check_safe_name(label, "package file name", kind="deb_file")
        rec = parse_deb(path, label)
        target = canonical_filename(rec["name"], rec["version"], rec["architecture"])
        if target in seen and seen[target][1] != rec["sha256"]:
            raise DebError(f"{label} and {seen[target][0]} are different files for {rec['name']} {rec['version']} {rec['architecture']}.")
        seen[target] = (label, rec["sha256"])
        records.append((path, label, target, rec))
    return records


def _plan(records, dest_dir, store, force):
    planned = []
    for path, label, target, rec in records:
        dest = os.path.join(dest_dir, target)
        status = "added"
        if os.path.lexists(dest):
            if os.path.islink(dest) or not os.path.isfile(dest):
                raise DebError(f"store {store} path {target} exists and is not a regular file.")
            try:
                same = parse_deb(dest, target)["sha256"] == rec["sha256"]
            except DebError:
                same = False
            if same:
                status = "unchanged"
            elif not force:
                raise DebError(f"store {store} already holds a different file for {rec['name']} {rec['version']} "
                               f"{rec['architecture']} ({target}); set force=true to replace it.")
            else:
                status = "replaced"
        planned.append((path, label, target, rec, dest, status))
    return planned


def store_packages(root, project, store, files, package_set=None, force=False, check_mode=False,
                   lock_timeout=600.0):
    """Put FILES into STORE (optionally package set PACKAGE_SET); return a result dict."""
    check_safe_name(project, "project name")
    records = check_upload(files, store, package_set)
    paths = project_paths(root, project)
    dest_dir = os.path.join(paths["stores"], store, *([package_set] if package_set else []))
    result = {"changed": False, "store": store, "set": package_set, "created_store": False, "packages": []}
    if check_mode:
        planned = _plan(records, dest_dir, store, force)
        result["created_store"] = not os.path.isdir(os.path.join(paths["stores"], store))
    else:
        os.makedirs(paths["state"], mode=0o750, exist_ok=True)
        with repo_lock(paths["lock"], lock_timeout):
            planned = _plan(records, dest_dir, store, force)
            result["created_store"] = not os.path.isdir(os.path.join(paths["stores"], store))
            os.makedirs(dest_dir, mode=0o755, exist_ok=True)
            cache = DebCache(paths["cache"])
            for path, _label, _target, rec, dest, status in planned:
                if status == "unchanged":
                    continue
                with open(path, "rb") as src:
                    atomic_write(dest, src, mode=0o644)
                cache.add(dest, rec)
            cache.save()
    for _path, label, _target, rec, dest, status in planned:
        result["packages"].append({
            "source": label, "filename": os.path.relpath(dest, paths["stores"]), "name": rec["name"],
            "version": rec["version"], "architecture": rec["architecture"], "sha256": rec["sha256"],
            "size": rec["size"], "status": status,
        })
    result["changed"] = result["created_store"] or any(p["status"] != "unchanged" for p in result["packages"])
    return result
