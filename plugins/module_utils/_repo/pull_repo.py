# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pull repository of the repository server (pull mode, docs/pull.md).

A bare git repository served by nginx over git's dumb HTTP protocol at ``/pull/fleet.git/``
holds what a pulling host runs with ``ansible-pull``: ``site.yml`` (the collection's
``playbooks/pull_site.yml``), ``inventory.json`` (every host and its groups, as push sees
them), ``group_vars/all.yml`` (the catalog, the server URL, the day), ``host_vars/<host>.yml``
(``mo_fleet_attributes``), ``release-state.json`` (the halted deployments) and the collection
under ``collections/ansible_collections/mo/fleet/``.  Every commit is signed with the
archive key APT already trusts, so ``ansible-pull --verify-commit`` refuses anything else.

Ansible YAML goes through ``_common/inert_yaml.py`` only (every string ``!unsafe``): a
catalog comment holding ``{{ }}`` is never evaluated on a host.

API::

    ensure_secrets(secrets_dir, hosts, token=...) -> [hosts given a new secret]
    htpasswd_text(secrets_dir, hosts, salt=...) -> str       # nginx auth_basic_user_file
    check_inventory(inventory) -> {host: {'groups': [...], 'attributes': [...]}}
    write_source(paths, catalog, inventory, settings, collection_tar) -> bool (changed)
    build(paths, state_file, gnupg_home, run) -> {'changed', 'commit'}
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets as _secrets
import shutil
import tarfile

from ansible_collections.mo.fleet.plugins.module_utils._common import inert_yaml, names, paths as _paths
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import atomic_write, sha256_file, write_if_changed
from ansible_collections.mo.fleet.plugins.module_utils._repo.catalog import load_catalog
from ansible_collections.mo.fleet.plugins.module_utils._release.rollout import read_state

__all__ = ["PullError", "ensure_secrets", "htpasswd_text", "check_inventory", "write_source",
           "build", "load_source", "BRANCH", "COLLECTION_DIR"]

BRANCH = "main"
COLLECTION_DIR = "collections/ansible_collections/mo/fleet"
SITE_PLAYBOOK = "playbooks/pull_site.yml"
MAX_MEMBERS = 5000              # files in the collection archive
MAX_ARCHIVE_BYTES = 64 << 20    # bytes once unpacked
MAX_HOSTS = 200000


class PullError(ValueError):
    """Bad pull-mode input or a failed git step: one sentence naming the field."""


def ensure_secrets(secrets_dir: str, hosts, token=_secrets.token_urlsafe) -> list:
    """Give every host of HOSTS a random secret (mode 0600) unless it has one; return those given one."""
    os.makedirs(secrets_dir, mode=0o700, exist_ok=True)
    os.chmod(secrets_dir, 0o700)
    made = []
    for host in sorted(set(hosts)):
        names.check("file_part", host, f"pull host {host!r}")
        path = os.path.join(secrets_dir, host)
        if not os.path.exists(path):
            atomic_write(path, token(32) + "\n", mode=0o600)
            made.append(host)
    return made


def _secret(secrets_dir, host):
    with open(os.path.join(secrets_dir, host), encoding="ascii") as handle:
        return handle.read().strip()


def htpasswd_text(secrets_dir: str, hosts, salt=None) -> str:
    """nginx ``auth_basic_user_file`` lines ``<host>:{SSHA}...`` for HOSTS (sorted).

    ``{SSHA}`` is nginx's salted SHA-1 scheme (base64 of sha1(secret + salt) + salt); the
    secrets are 32 random bytes, so no dictionary reaches them.  SALT (a function host ->
    bytes) keeps the file unchanged across runs: by default the salt is derived from the
    secret itself, so an unchanged secret gives the same line.
    """
    lines = []
    for host in sorted(set(hosts)):
        names.check("file_part", host, f"pull host {host!r}")
        secret = _secret(secrets_dir, host).encode("ascii")
        grain = salt(host) if salt else hashlib.sha256(b"mo.fleet salt:" + secret).digest()[:8]
        digest = hashlib.sha1(secret + grain).digest()
        lines.append(f"{host}:{{SSHA}}{base64.b64encode(digest + grain).decode('ascii')}")
    return "".join(line + "\n" for line in lines)


def check_inventory(inventory) -> dict:
    """INVENTORY ({host: {groups: [...], attributes: [...]}}) checked: names whole, lists of strings."""
    if not isinstance(inventory, dict) or len(inventory) > MAX_HOSTS:
        raise PullError(f"field 'inventory': must map at most {MAX_HOSTS} host names to their groups")
    out = {}
    for host, entry in inventory.items():
        names.check("file_part", host, "field 'inventory': host")
        entry = entry if isinstance(entry, dict) else {}
        groups = entry.get("groups", [])
        attributes = entry.get("attributes", [])
        for field, values in (("groups", groups), ("attributes", attributes)):
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise PullError(f"field 'inventory': host '{host}': '{field}' must be a list of strings")
        for group in groups:
            names.check("file_part", group, f"field 'inventory': host '{host}': group")
        for attribute in attributes:
            names.check("line", attribute, f"field 'inventory': host '{host}': attribute")
        out[host] = {"groups": sorted(set(groups) - {"all", "ungrouped"}), "attributes": list(attributes)}
    return out


def _safe_member(member, total):
    name = member.name
    if not (member.isfile() or member.isdir()):
        raise PullError(f"collection archive: member {name!r} is not a plain file or directory")
    if name.startswith("/"):
        raise PullError(f"collection archive: member {name!r} is an absolute path")
    try:  # the one path guard: no '.' or '..' component, no NUL
        rel = _paths.normalize("/" + name, "collection archive: member")[1:]
    except _paths.PathError as exc:
        raise PullError(str(exc)) from None
    if not rel:
        raise PullError(f"collection archive: member {name!r} names the archive root")
    if total + member.size > MAX_ARCHIVE_BYTES:
        raise PullError(f"collection archive: more than {MAX_ARCHIVE_BYTES >> 20} MiB once unpacked")
    return rel


def _unpack_collection(tar_path, dest):
    """Unpack the collection archive (ansible-galaxy collection build) into DEST, checked."""
    tmp = dest + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp, mode=0o755)  # parents too: state/source/ansible_collections/mo/
    total = 0
    try:
        with tarfile.open(tar_path, "r:gz") as tar:
            for count, member in enumerate(tar):
                if count >= MAX_MEMBERS:
                    raise PullError(f"collection archive: more than {MAX_MEMBERS} members")
                rel = _safe_member(member, total)
                target = os.path.join(tmp, rel)
                if member.isdir():
                    os.makedirs(target, mode=0o755, exist_ok=True)
                    continue
                total += member.size
                os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
                with tar.extractfile(member) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
                os.chmod(target, 0o644)
    except (OSError, tarfile.TarError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise PullError(f"collection archive {tar_path}: cannot be unpacked ({exc})") from None
    except PullError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not os.path.isfile(os.path.join(tmp, "MANIFEST.json")):
        shutil.rmtree(tmp, ignore_errors=True)
        raise PullError(f"collection archive {tar_path}: has no MANIFEST.json (not a collection build)")
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(tmp, dest)


def write_source(paths: dict, catalog, inventory, settings: dict, collection_tar: str = "") -> bool:
    """Store the inputs of the pull repository under ``state/source`` (root's only); True if any changed.

    SETTINGS: ``server_url`` (http URL of the repository server), ``today`` ('' or YYYY-MM-DD),
    ``pull_hosts`` (host names).  COLLECTION_TAR, when given, replaces the stored collection.
    """
    load_catalog(catalog)  # one sentence naming the deployment and the field
    inventory = check_inventory(inventory)
    url = settings.get("server_url")
    names.check("http_url", url, "field 'server_url'")
    today = settings.get("today") or ""
    if today:
        names.check("date", today, "field 'today'")
    pull_hosts = sorted(set(settings.get("pull_hosts") or []))
    for host in pull_hosts:
        if host not in inventory:
            raise PullError(f"field 'pull_hosts': host {host!r} is not in the inventory")
    source = paths["source"]
    changed = False
    for name, data in (("catalog.json", catalog), ("inventory.json", inventory),
                       ("settings.json", {"server_url": url.rstrip("/"), "today": today, "pull_hosts": pull_hosts})):
        changed |= write_if_changed(os.path.join(source, name), json.dumps(data, indent=1, sort_keys=True) + "\n",
                                    mode=0o600, dir_mode=0o700)
    if collection_tar:
        marker = os.path.join(source, "collection.sha256")
        digest = sha256_file(collection_tar)
        if not os.path.isdir(paths["collection"]) or _read(marker) != digest:
            _unpack_collection(collection_tar, paths["collection"])
            write_if_changed(marker, digest, mode=0o600, dir_mode=0o700)
            changed = True
    return changed


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        return ""


def load_source(paths):
    try:
        with open(os.path.join(paths["source"], "catalog.json"), encoding="utf-8") as handle:
            catalog = json.load(handle)
        with open(os.path.join(paths["source"], "inventory.json"), encoding="utf-8") as handle:
            inventory = json.load(handle)
        with open(os.path.join(paths["source"], "settings.json"), encoding="utf-8") as handle:
            settings = json.load(handle)
    except (OSError, ValueError) as exc:
        raise PullError(f"pull source {paths['source']}: cannot be read ({exc}); run the repo_server role with pull hosts first") from None
    return catalog, check_inventory(inventory), settings


def tree_files(catalog, inventory: dict, settings: dict, state: dict, reports_dir: str) -> dict:
    """{relative path: text} of the pull repository, besides the collection and site.yml."""
    groups = {}
    for host, entry in inventory.items():
        for group in entry["groups"]:
            groups.setdefault(group, {"hosts": {}})["hosts"][host] = None
    document = {"all": {"hosts": {host: None for host in sorted(inventory)},
                        "children": {g: groups[g] for g in sorted(groups)}}}
    files = {
        "inventory.json": json.dumps(document, indent=1, sort_keys=True) + "\n",
        "release-state.json": json.dumps(state, indent=2, sort_keys=True) + "\n",
        # strings a YAML reader could take for a date or null are only inert inside a mapping
        "group_vars/all.yml": inert_yaml.dump({
            "mo_fleet_catalog": catalog,
            "mo_fleet_pull": {"server_url": settings["server_url"], "today": settings.get("today") or "",
                              "reports_dir": reports_dir},
            "ansible_connection": "local",
        }),
        "ansible.cfg": "[defaults]\ncollections_path = ./collections\nretry_files_enabled = false\n",
    }
    for host in sorted(inventory):
        if inventory[host]["attributes"]:
            files[f"host_vars/{host}.yml"] = inert_yaml.dump({"mo_fleet_attributes": inventory[host]["attributes"]})
    return files


def _fill_work_tree(work, files, collection):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work, mode=0o700)
    for rel, text in files.items():
        target = os.path.join(work, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(text)
    site = os.path.join(collection, SITE_PLAYBOOK)
    if not os.path.isfile(site):
        raise PullError(f"pull source: the collection has no {SITE_PLAYBOOK}")
    shutil.copyfile(site, os.path.join(work, "site.yml"))
    shutil.copytree(collection, os.path.join(work, COLLECTION_DIR))


def _git(run, paths, *args, check=True, env=None):
    env = {"GIT_DIR": paths["git"], "GIT_WORK_TREE": paths["work"], "GIT_INDEX_FILE": paths["index"], **(env or {})}
    rc, out, err = run(["git", "-C", paths["work"], *args], env)
    if check and rc != 0:
        raise PullError(f"git {' '.join(a for a in args if not a.startswith('user.'))[:60]} in {paths['git']} failed: {(err or out).strip()[:500]}")
    return rc, out


def signing_fingerprint(colons: str) -> str:
    """The first secret key's fingerprint in gpg --with-colons --list-secret-keys output."""
    seen_sec = False
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] == "sec":
            seen_sec = True
        elif fields[0] == "fpr" and seen_sec and len(fields) > 9 and fields[9]:
            return fields[9]
    raise PullError("the signing key home holds no secret key: run the repo_server role first")


def build(paths: dict, state_file: str, gnupg_home: str, run, reports_dir: str) -> dict:
    """Regenerate the pull repository from the stored source and the release state; commit if it changed.

    RUN(argv, env) -> (rc, stdout, stderr) runs a command with ENV added (``run_command``).
    The commit is signed with the key in GNUPG_HOME; ``git update-server-info`` keeps the dumb
    HTTP protocol's ``info/refs`` current.
    """
    catalog, inventory, settings = load_source(paths)
    state = read_state(state_file)
    files = tree_files(catalog, inventory, settings, state, reports_dir)
    _fill_work_tree(paths["work"], files, paths["collection"])
    if not os.path.isfile(os.path.join(paths["git"], "HEAD")):
        rc, out, err = run(["git", "init", "-q", "--bare", "-b", BRANCH, paths["git"]], {})
        if rc != 0:
            raise PullError(f"git init {paths['git']} failed: {(err or out).strip()[:500]}")
    _git(run, paths, "add", "-A")
    has_head = _git(run, paths, "rev-parse", "-q", "--verify", f"refs/heads/{BRANCH}", check=False)[0] == 0
    changed = not has_head or _git(run, paths, "diff", "--cached", "--quiet", f"refs/heads/{BRANCH}", check=False)[0] != 0
    if changed:
        rc, colons, err = run(["gpg", "--batch", "--with-colons", "--list-secret-keys"], {"GNUPGHOME": gnupg_home})
        if rc != 0:
            raise PullError(f"gpg cannot list the signing key in {gnupg_home}: {err.strip()[:300]}")
        halted = sorted(state.get("halted", {}))
        _git(run, paths, "-c", "user.name=mo.fleet repository server", "-c", "user.email=mo-fleet@localhost",
             "-c", f"user.signingkey={signing_fingerprint(colons)}", "-c", "gpg.program=gpg",
             "commit", "-q", "-S", "-m", f"pull repository: halted {halted or 'none'}",
             env={"GNUPGHOME": gnupg_home})
    _git(run, paths, "update-server-info")
    commit = _git(run, paths, "rev-parse", f"refs/heads/{BRANCH}")[1].strip()
    return {"changed": changed, "commit": commit}
