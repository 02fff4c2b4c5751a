# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The client side of a release (migasfree's sync): pure helpers used by ``mo.fleet.release_sync``.

Target-side code: Python 3.9+ and the standard library only.  Nothing here runs a command;
the module feeds command output in and applies what comes out.

API::

    source_file_name(deployment, prefix='mo-fleet-') -> 'mo-fleet-<deployment>.sources'
    deployment_of_file(filename, prefix='mo-fleet-') -> deployment name or None
    sources_text(entry, keyring) -> deb822 text of one deployment's .sources file
    package_name(spec) -> 'name' of 'name:arch=version'
    parse_dpkg_query(text) -> {name: (version, status_abbrev)}   ('ii' = installed)
    is_installed(spec, installed) -> bool (a '=version' spec needs that version)
    is_present(spec, installed) -> bool (on the system at all, e.g. half-configured)
    parse_packages_index(text) -> [(name, version)]
    parse_simulation(text) -> {'install': [...], 'remove': [...], 'configure': [...]}
    failed_packages(text) -> [names] from apt/dpkg's "Errors were encountered" block
    state_changes(before, after) -> {'installed': [...], 'removed': [...], 'upgraded': [...]}
    attribute_failure(packages, deployments, provided, new) -> sorted deployment names
"""

from __future__ import annotations

import re

from ansible_collections.mo.fleet.plugins.module_utils._common import deb822, names
from ansible_collections.mo.fleet.plugins.module_utils._common.fields import APT_FIELDS

__all__ = [
    "SOURCE_PREFIX", "source_file_name", "deployment_of_file", "sources_text", "package_name",
    "parse_dpkg_query", "is_installed", "is_present", "parse_packages_index", "parse_simulation",
    "failed_packages", "state_changes", "attribute_failure", "ClientError", "check_entry",
]

SOURCE_PREFIX = "mo-fleet-"


class ClientError(ValueError):
    """Bad input for the client: one sentence naming the deployment and the field."""


def source_file_name(deployment, prefix=SOURCE_PREFIX):
    return f"{prefix}{deployment}.sources"


def deployment_of_file(filename, prefix=SOURCE_PREFIX):
    """The deployment a managed ``.sources`` file belongs to, or None for other files."""
    if not filename.startswith(prefix) or not filename.endswith(".sources"):
        return None
    name = filename[len(prefix):-len(".sources")]
    return name if names.is_valid("safe", name) else None


def check_entry(entry):
    """Validate one deployment entry given to the module; return a normalized copy."""
    if not isinstance(entry, dict):
        raise ClientError("deployments: every item must be a mapping with at least 'name' and 'uri'")
    name = entry.get("name")
    if not names.is_valid("safe", name):
        raise ClientError(f"deployments: field 'name': {name!r} is not a valid deployment name")
    owner = f"deployment '{name}'"
    uri = entry.get("uri")
    if not names.is_valid("uri", uri):
        raise ClientError(f"{owner}: field 'uri': {uri!r} is not an http://, https:// or file:// URI")
    suite = entry.get("suite") or name
    if not names.is_valid("suite", suite):
        raise ClientError(f"{owner}: field 'suite': {suite!r} is not a suite name")
    components = entry.get("components") or ["main"]
    if not isinstance(components, list) or not all(names.is_valid("suite", c) for c in components):
        raise ClientError(f"{owner}: field 'components': must be a list of component names")
    out = {"name": name, "uri": uri.rstrip("/"), "suite": suite, "components": list(components),
           "signed": bool(entry.get("signed", True))}
    for field in APT_FIELDS:
        value = entry.get(field) or []
        if isinstance(value, str):
            value = value.split()
        if not isinstance(value, list):
            raise ClientError(f"{owner}: field '{field}': must be a list of package names, not {type(value).__name__}")
        for index, item in enumerate(value):
            if not names.is_valid("apt_package", item):
                raise ClientError(f"{owner}: field '{field}[{index}]': {item!r} is not a Debian package name")
        out[field] = list(value)
    return out


def sources_text(entry, keyring):
    """The deb822 ``.sources`` file of one deployment (``Signed-By`` KEYRING when signed).

    Written by the deb822 writer: a value that would start a new line or field is refused
    (ClientError naming the deployment and the field).
    """
    owner = f"deployment '{entry.get('name')}'"
    if not names.is_valid("safe", entry.get("name")):
        raise ClientError(f"deployments: field 'name': {entry.get('name')!r} is not a valid deployment name")
    fields = [("Types", "deb"), ("URIs", entry["uri"]), ("Suites", entry["suite"]),
              ("Components", " ".join(entry["components"]))]
    if entry.get("signed", True) and keyring:
        if not isinstance(keyring, str) or not keyring.startswith("/") or not names.is_valid("line", keyring) or " " in keyring:
            raise ClientError(f"{owner}: field 'keyring': {keyring!r} is not an absolute path without spaces")
        fields.append(("Signed-By", keyring))
    try:
        body = deb822.format_stanza(fields, f"{owner} .sources file")
    except deb822.Deb822Error as exc:
        raise ClientError(str(exc)) from None
    return f"# Managed by mo.fleet (deployment {entry['name']}); changes are overwritten.\n" + body


def package_name(spec):
    """'name' of a 'name:arch=version' package spec."""
    return spec.split("=", 1)[0].split(":", 1)[0]


def parse_dpkg_query(text):
    """{name: (version, status)} from ``dpkg-query -W -f '${Package}\\t${Version}\\t${db:Status-Abbrev}\\n'``."""
    out = {}
    for line in text.split("\n"):
        parts = line.split("\t")
        if len(parts) < 3 or not parts[0]:
            continue
        name, version, status = parts[0], parts[1], parts[2].strip()
        previous = out.get(name)
        if previous is None or previous[1] != "ii":  # multiarch: one installed instance is enough
            out[name] = (version, status)
    return out


def is_installed(spec, installed):
    """True when SPEC ('name[:arch][=version]') is fully installed ('ii', and that version if given)."""
    name = package_name(spec)
    current = installed.get(name)
    if current is None or current[1] != "ii":
        return False
    if "=" in spec:
        return current[0] == spec.split("=", 1)[1]
    return True


def is_present(spec, installed):
    """True when SPEC's package is on the system at all (installed, half-installed, config-files aside)."""
    current = installed.get(package_name(spec))
    return current is not None and len(current[1]) >= 2 and current[1][1] not in ("n", "c")


def parse_packages_index(text):
    """[(name, version)] of an APT ``Packages`` index, read as apt reads it (``_common/deb822``:
    lines end at ``\\n`` only, field names in any case); an index apt and mo.fleet could read
    differently raises ClientError."""
    try:
        paragraphs = deb822.parse_paragraphs(text, "Packages index")
    except deb822.Deb822Error as exc:
        raise ClientError(str(exc)) from None
    out = []
    for fields in paragraphs:
        name = deb822.get(fields, "Package")
        if name:
            out.append((name, deb822.get(fields, "Version") or ""))
    return out


_SIM = re.compile(r"^(Inst|Remv|Conf|Purg)\s+(\S+)")


def parse_simulation(text):
    """What ``apt-get -s`` would do: {'install': [...], 'remove': [...], 'configure': [...]}."""
    out = {"install": [], "remove": [], "configure": []}
    for line in text.split("\n"):
        match = _SIM.match(line)
        if not match:
            continue
        kind, name = match.groups()
        key = {"Inst": "install", "Remv": "remove", "Purg": "remove", "Conf": "configure"}[kind]
        name = name.split(":", 1)[0]
        if name not in out[key]:
            out[key].append(name)
    return out


def failed_packages(text):
    """Package names listed after apt/dpkg's 'Errors were encountered while processing:'."""
    names = []
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if "Errors were encountered while processing" not in line:
            continue
        for follow in lines[index + 1:]:
            if not follow.startswith(" ") or not follow.strip():
                break
            name = follow.strip().split(":", 1)[0].split("_", 1)[0]
            if name and name not in names:
                names.append(name)
    return names


def state_changes(before, after):
    """Compare two parse_dpkg_query maps: packages installed, removed and upgraded in between."""
    installed, removed, upgraded = [], [], []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        old_ok = old is not None and old[1] == "ii"
        new_ok = new is not None and new[1] == "ii"
        if new_ok and not old_ok:
            installed.append(f"{name}={new[0]}")
        elif old_ok and not new_ok:
            removed.append(f"{name}={old[0]}")
        elif old_ok and new_ok and old[0] != new[0]:
            upgraded.append(f"{name}={old[0]}->{new[0]}")
    return {"installed": installed, "removed": removed, "upgraded": upgraded}


def attribute_failure(packages, deployments, provided, new):
    """Deployments to blame for a failure on PACKAGES.

    DEPLOYMENTS are checked entries, PROVIDED maps deployment -> set of package names in its
    indexes, NEW lists deployments the host received in this run.  A deployment is blamed when it
    names or provides one of PACKAGES; when nothing matches, the NEW deployments are blamed.
    """
    blamed = set()
    wanted = {package_name(p) for p in packages}
    for entry in deployments:
        names = set(provided.get(entry["name"], ()))
        for field in APT_FIELDS:
            names.update(package_name(p) for p in entry.get(field, ()))
        if names & wanted:
            blamed.add(entry["name"])
    if not blamed:
        blamed = set(new)
    return sorted(blamed)
