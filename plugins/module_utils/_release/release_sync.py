# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The client engine of mo.fleet.release_sync: converge a Debian host on its deployments.

``Sync(module, download).converge() -> result`` writes the deployments' deb822 ``.sources``
files, runs ``apt-get update`` for them (restoring every file it wrote when the server
cannot be reached), then removes, installs and upgrades packages in the catalog's order.
In check mode it works in a throw-away apt sandbox and parses apt's simulation instead.

MODULE is anything with ``params``, ``check_mode``, ``_diff``, ``run_command`` and
``get_bin_path`` (an ``AnsibleModule``; in the unit tests a fake that answers recorded
command lines); DOWNLOAD(url, timeout) returns the key's bytes or raises SyncFailed.
The parsing of apt and dpkg output lives in release_client.py.  Standard library only.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from ansible_collections.mo.fleet.plugins.module_utils._common import names as name_rules
from ansible_collections.mo.fleet.plugins.module_utils._common.fs import atomic_write
from ansible_collections.mo.fleet.plugins.module_utils._release.release_client import (
    ClientError, attribute_failure, check_entry, deployment_of_file, failed_packages,
    is_installed, is_present, parse_dpkg_query, parse_packages_index,
    parse_simulation, source_file_name, sources_text, state_changes,
)

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C", "LANG": "C"}
DPKG_OPTS = ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
APT_LISTS = "/var/lib/apt/lists"
RESULT_LISTS = ("new_deployments", "sources_written", "sources_removed", "removed", "installed",
                "upgraded", "failed_packages", "failed_deployments")


class SyncFailed(Exception):
    """apt, dpkg or the server failed; PACKAGES are the packages the errors name."""

    def __init__(self, msg, packages=()):
        super().__init__(msg)
        self.packages = list(packages)


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


class Sync:
    """One converge run; see the module docstring for MODULE and DOWNLOAD."""

    def __init__(self, module, download, lists_dir: str = APT_LISTS):
        self.module = module
        self.download = download
        self.lists_dir = lists_dir
        p = module.params
        self.check = module.check_mode
        self.prefix = p["prefix"]
        if not name_rules.is_valid("file_part", self.prefix):
            raise ClientError(f"prefix: {self.prefix!r} must be {name_rules.RULES['file_part']}")
        self.sources_dir = p["sources_dir"]
        self.keyring = p["keyring"]
        self.apt = module.get_bin_path("apt-get", required=True)
        self.dpkg_query = module.get_bin_path("dpkg-query", required=True)
        self.entries = [check_entry(e) for e in p["deployments"]]
        names = [e["name"] for e in self.entries]
        if len(set(names)) != len(names):
            raise ClientError("deployments: field 'name': a deployment is listed twice")
        self.result = {"changed": False, "status": "ok", "deployments": sorted(names),
                       **{field: [] for field in RESULT_LISTS}}
        self.sandbox = None
        self.provided = {}

    # -- commands -------------------------------------------------------------------------
    def run(self, args, check_rc=False):
        rc, out, err = self.module.run_command(args, environ_update=APT_ENV)
        if check_rc and rc != 0:
            raise SyncFailed(f"{' '.join(args[:2])} failed: {(err or out).strip()[-400:]}")
        return rc, out, err

    def apt_opts(self):
        if self.sandbox is None:
            return []
        return ["-o", f"Dir::Etc::sourceparts={self.sandbox}/all",
                "-o", f"Dir::State::Lists={self.sandbox}/lists",
                "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache="]

    def installed(self):
        rc, out, err = self.run([self.dpkg_query, "-W", "-f",
                                 "${Package}\t${Version}\t${db:Status-Abbrev}\n"])
        if rc not in (0, 1):
            raise SyncFailed(f"dpkg-query failed: {err.strip()}")
        return parse_dpkg_query(out)

    # -- sources --------------------------------------------------------------------------
    def existing(self):
        out = {}
        if os.path.isdir(self.sources_dir):
            for filename in sorted(os.listdir(self.sources_dir)):
                name = deployment_of_file(filename, self.prefix)
                if name is not None:
                    out[name] = os.path.join(self.sources_dir, filename)
        return out

    def fetch_key(self):
        url = self.module.params["key_url"]
        if not url:
            raise ClientError("key_url: required when a deployment is signed")
        data = self.download(url, self.module.params["timeout"])
        if self.keyring.endswith(".asc") and b"-----BEGIN PGP PUBLIC KEY BLOCK-----" not in data:
            raise SyncFailed(f"{url} is not an armored OpenPGP public key")
        if not data:
            raise SyncFailed(f"{url} is empty")
        return data

    def update(self, only_managed, opts=None):
        """apt-get update; ONLY_MANAGED restricts it to the mo-fleet sources (other lists kept)."""
        args = [self.apt, "-q", "update"]
        if only_managed:
            args += ["-o", "Dir::Etc::sourcelist=/dev/null",
                     "-o", f"Dir::Etc::sourceparts={only_managed}",
                     "-o", "APT::Get::List-Cleanup=0"]
        args += opts or []
        rc, out, err = self.run(args)
        text = out + "\n" + err
        problems = [line for line in text.splitlines() if line.startswith(("E:", "Err:"))]
        if only_managed:  # warnings about our own sources are errors too (e.g. a bad signature)
            problems += [line for line in text.splitlines()
                         if line.startswith("W:") and "unsandboxed" not in line]
        if rc != 0 or problems:
            raise SyncFailed("apt-get update of the mo-fleet sources failed: "
                             + " ".join(problems or [text.strip()[-300:]])[:600])

    def read_provided(self):
        """{deployment: set of package names} from the index files apt fetched for it."""
        rc, out, _err = self.run([self.apt, "indextargets", "--format",
                                  "$(REPO_URI)\t$(RELEASE)\t$(FILENAME)", "Identifier: Packages"]
                                 + self.apt_opts())
        provided = {e["name"]: set() for e in self.entries}
        if rc != 0:
            return provided
        by_key = {(e["uri"].rstrip("/"), e["suite"]): e["name"] for e in self.entries}
        for line in out.split("\n"):
            parts = line.split("\t")
            if len(parts) != 3:
                continue
            name = by_key.get((parts[0].rstrip("/"), parts[1].rstrip("/")))
            if name is None:
                continue
            data = _read(parts[2])
            if data is None:
                continue
            try:
                provided[name].update(pkg for pkg, _v in parse_packages_index(data.decode("utf-8", "replace")))
            except ClientError:
                continue  # an index apt could read otherwise names nothing to blame

        return provided

    # -- sandbox for check mode -------------------------------------------------------------
    def make_sandbox(self, desired, key):
        box = tempfile.mkdtemp(prefix="mo-fleet-check-")
        self.sandbox = box
        os.chmod(box, 0o755)  # apt downloads as the _apt user
        for sub in ("ours", "all", "lists/partial"):
            os.makedirs(os.path.join(box, sub), mode=0o755)
        keyring = os.path.join(box, "keyring" + os.path.splitext(self.keyring)[1])
        if key is not None:
            atomic_write(keyring, key)
        for entry in self.entries:
            text = sources_text(entry, keyring).encode("utf-8")
            for sub in ("ours", "all"):
                atomic_write(os.path.join(box, sub, source_file_name(entry["name"], self.prefix)), text)
        if os.path.isdir(self.sources_dir):
            for filename in os.listdir(self.sources_dir):
                if deployment_of_file(filename, self.prefix) is None \
                        and filename.endswith((".list", ".sources")):
                    shutil.copy(os.path.join(self.sources_dir, filename), os.path.join(box, "all", filename))
        if os.path.isdir(self.lists_dir):
            for filename in os.listdir(self.lists_dir):
                path = os.path.join(self.lists_dir, filename)
                if os.path.isfile(path) and filename != "lock":
                    os.symlink(path, os.path.join(box, "lists", filename))
        return box

    # -- package steps ------------------------------------------------------------------------
    def union(self, field):
        out = []
        for entry in self.entries:
            for spec in entry[field]:
                if spec not in out:
                    out.append(spec)
        return out

    def _add(self, key, names):
        for name in names:
            if name not in self.result[key]:
                self.result[key].append(name)

    def step(self, action, specs, state):
        """Run (or simulate) one apt step on SPECS; return the new dpkg state."""
        if not specs:
            return state
        args = [self.apt, "-q", "-y"] + DPKG_OPTS
        if action == "remove":
            args += ["remove"]
        elif action == "upgrade":
            args += ["install", "--only-upgrade"]
        else:
            args += ["install"]
        if self.check:
            rc, out, err = self.run(args[:1] + ["-s"] + args[1:] + self.apt_opts() + specs)
            if rc != 0:
                raise SyncFailed(f"apt-get {action} would fail: "
                                 + " ".join(line for line in (out + err).splitlines()
                                            if line.startswith("E:"))[:600], packages=specs)
            sim = parse_simulation(out)
            if action == "remove":
                self._add("removed", sim["remove"])
            elif action == "upgrade":
                self._add("upgraded", sim["install"])
            else:
                self._add("installed", [n for n in sim["install"] if n not in state])
                self._add("upgraded", [n for n in sim["install"] if n in state])
                self._add("installed", [n for n in sim["configure"]
                                        if n not in sim["install"] and not is_installed(n, state)])
                self._add("removed", sim["remove"])
            return state
        rc, out, err = self.run(args + specs)
        after = self.installed()
        changes = state_changes(state, after)
        for key in ("installed", "removed", "upgraded"):
            self.result[key] += changes[key]
        if rc != 0:
            text = out + "\n" + err
            errors = " ".join(line for line in text.splitlines() if line.startswith(("E:", "dpkg:")))
            raise SyncFailed(f"apt-get {action} {' '.join(specs)} failed: {errors[:600] or text.strip()[-400:]}",
                             packages=failed_packages(text) or specs)
        return after

    def packages(self):
        state = self.installed()
        remove = [p for p in self.union("packages_to_remove") if is_present(p, state)]
        state = self.step("remove", remove, state)
        install = [p for p in self.union("packages_to_install") if not is_installed(p, state)]
        state = self.step("install", install, state)
        provided = set()
        for names in self.provided.values():
            provided |= names
        upgrade = sorted(n for n in provided if is_installed(n, state))
        state = self.step("upgrade", upgrade, state)
        if not self.module.params["apply_defaults"]:
            return
        pre = [p for p in self.union("default_preincluded_packages") if not is_installed(p, state)]
        state = self.step("install", pre, state)
        if pre and not self.check:
            self.update(None)
        include = [p for p in self.union("default_included_packages") if not is_installed(p, state)]
        state = self.step("install", include, state)
        exclude = [p for p in self.union("default_excluded_packages") if is_present(p, state)]
        self.step("remove", exclude, state)

    # -- the run ------------------------------------------------------------------------------
    def plan_sources(self, desired, existing, key):
        """(writes {path: bytes}, removes [path], key_changed) and the result's file lists + diff."""
        writes = {}
        for name, entry in desired.items():
            path = os.path.join(self.sources_dir, source_file_name(name, self.prefix))
            text = sources_text(entry, self.keyring).encode("utf-8")
            if _read(path) != text:
                writes[path] = text
        removes = [path for name, path in existing.items() if name not in desired]
        key_changed = key is not None and _read(self.keyring) != key
        self.result["sources_written"] = sorted(writes)
        self.result["sources_removed"] = sorted(removes)
        if self.module._diff:
            self.result["diff"] = {
                "before": "".join((_read(p) or b"").decode() for p in sorted(set(writes) | set(removes))),
                "after": "".join(writes[p].decode() for p in sorted(writes)),
                "before_header": f"{self.sources_dir}/{self.prefix}*.sources",
                "after_header": f"{self.sources_dir}/{self.prefix}*.sources",
            }
        if writes or removes or key_changed:
            self.result["changed"] = True
        return writes, removes, key_changed

    def simulate(self, desired, key):
        """Check mode: update into a sandbox and simulate the package steps against it."""
        try:
            box = self.make_sandbox(desired, key)
            if self.entries:
                self.update(os.path.join(box, "ours"),
                            ["-o", f"Dir::State::Lists={box}/lists",
                             "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache="])
            self.result["deployments"] = sorted(desired)
            self.provided = self.read_provided()
            self.packages()
        finally:
            shutil.rmtree(self.sandbox, ignore_errors=True)

    def install_sources(self, desired, writes, removes, key, key_changed):
        """Write the sources and the key, then apt-get update them; all put back on failure."""
        backup = {path: _read(path) for path in list(writes) + removes + [self.keyring]}
        try:
            if key_changed:
                os.makedirs(os.path.dirname(self.keyring), mode=0o755, exist_ok=True)
                atomic_write(self.keyring, key)
            for path, text in writes.items():
                atomic_write(path, text)
            for path in removes:
                os.unlink(path)
            if self.entries:
                ours = tempfile.mkdtemp(prefix="mo-fleet-sources-")
                try:
                    for name in desired:
                        shutil.copy(os.path.join(self.sources_dir, source_file_name(name, self.prefix)), ours)
                    self.update(ours)
                finally:
                    shutil.rmtree(ours, ignore_errors=True)
        except SyncFailed:
            for path, data in backup.items():  # the server is unreachable: put everything back
                if data is None:
                    if os.path.exists(path):
                        os.unlink(path)
                else:
                    atomic_write(path, data)
            self.result.update(changed=False, sources_written=[], sources_removed=[])
            self.result.pop("diff", None)
            raise

    def converge(self):
        """Run the sync; the result dict of the module (SyncFailed: see :meth:`failure`)."""
        existing = self.existing()
        desired = {e["name"]: e for e in self.entries}
        self.result["new_deployments"] = sorted(set(desired) - set(existing))
        self.result["deployments"] = sorted(existing)  # until the new sources are in effect
        key = self.fetch_key() if any(e["signed"] for e in self.entries) else None
        writes, removes, key_changed = self.plan_sources(desired, existing, key)
        if self.check:
            self.simulate(desired, key)
        else:
            self.install_sources(desired, writes, removes, key, key_changed)
            self.result["deployments"] = sorted(desired)
            self.provided = self.read_provided()
            self.packages()
        self._settle_changed()
        return self.result

    def _settle_changed(self):
        if self.result["installed"] or self.result["removed"] or self.result["upgraded"]:
            self.result["changed"] = True

    def failure(self, exc: SyncFailed) -> dict:
        """The result of a run that raised EXC: status error, the failed packages, and the
        deployments they are blamed on (package failures blame the deployments naming or
        providing the packages; a server that cannot be reached blames none)."""
        result = self.result
        result["status"] = "error"
        result["failed_packages"] = exc.packages
        result["failed_deployments"] = attribute_failure(exc.packages, self.entries, self.provided,
                                                         result["new_deployments"]) if exc.packages else []
        self._settle_changed()
        return result
