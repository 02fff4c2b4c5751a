# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attributes the release rule looks at: a host's groups, its ``mo_fleet_attributes`` and
its networks (``NET-`` attributes from the gathered facts), for one host or the fleet.

Standard library only.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Mapping


from ansible_collections.mo.fleet.plugins.module_utils._release.calendar import ReleaseError


# Host attributes

def _networks_of(entry, out):
    if not isinstance(entry, Mapping) or not entry.get("address"):
        return
    mask = entry.get("prefix") or entry.get("netmask")
    if mask in (None, ""):
        return
    try:
        iface = ipaddress.ip_interface(f"{entry['address']}/{mask}")
    except ValueError:
        return
    if iface.ip.is_loopback or iface.ip.is_link_local:
        return
    out.add(f"NET-{iface.network.with_prefixlen}")


def _interface_entries(facts, prefix=""):
    """Interface fact dicts of FACTS (``ansible_facts`` style, or hostvars with PREFIX 'ansible_')."""
    names = facts.get(prefix + "interfaces")
    if isinstance(names, (list, tuple)):
        for name in names:
            entry = facts.get(prefix + str(name).replace("-", "_").replace(".", "_")) \
                or facts.get(prefix + str(name))
            if isinstance(entry, Mapping):
                yield entry
    elif isinstance(facts, dict) and not prefix:
        for value in facts.values():  # interface facts carry 'device'
            if isinstance(value, Mapping) and "device" in value:
                yield value


def network_attributes(facts):
    """``NET-<network>/<prefix>`` for every address in gathered FACTS (``ansible_facts`` or hostvars).

    Loopback and link-local addresses are skipped.  Hostvars are read through ``ansible_facts``
    when present, else through the injected ``ansible_interfaces`` / ``ansible_<iface>`` variables.
    """
    if not isinstance(facts, Mapping):
        return []
    prefix = ""
    inner = facts.get("ansible_facts") if "ansible_facts" in facts else None
    if isinstance(inner, Mapping) and inner:
        facts = inner
    elif "ansible_interfaces" in facts:
        prefix = "ansible_"
    elif "interfaces" not in facts and not isinstance(facts, dict):
        return []
    out = set()
    for value in _interface_entries(facts, prefix):
        _networks_of(value.get("ipv4"), out)
        for entry in value.get("ipv4_secondaries") or ():
            _networks_of(entry, out)
        for entry in value.get("ipv6") or ():
            _networks_of(entry, out)
    return sorted(out)


def _extra_attributes(host, hostvars):
    extra = hostvars.get("mo_fleet_attributes") if "mo_fleet_attributes" in hostvars else None
    if extra is None:
        return []
    if isinstance(extra, str) or not isinstance(extra, (list, tuple)):
        raise ReleaseError(f"host '{host}': field 'mo_fleet_attributes': must be a list of strings")
    for index, item in enumerate(extra):
        if not isinstance(item, str) or not item:
            raise ReleaseError(f"host '{host}': field 'mo_fleet_attributes[{index}]': "
                               f"{item!r} is not a non-empty string")
    return [str(item) for item in extra]


def host_attributes(host, groups=(), hostvars=None):
    """Sorted attributes of HOST: its GROUPS (add 'all'), HST-<host>, NET-... from facts, extras."""
    attrs = {str(g) for g in groups}
    attrs.add("all")
    attrs.add(f"HST-{host}")
    if hostvars is not None and not isinstance(hostvars, Mapping):
        raise ReleaseError(f"host '{host}': its hostvars must be a mapping, not {type(hostvars).__name__}")
    if hostvars is not None:
        attrs.update(network_attributes(hostvars))
        attrs.update(_extra_attributes(host, hostvars))
    return sorted(attrs)


def fleet_attributes(hostvars, groups, hosts=None):
    """{host: sorted attributes} from Ansible's ``hostvars`` and ``groups`` (group -> host list).

    HOSTS limits the result (default: every host in ``groups['all']``, else every host named in
    ``groups``).
    """
    if not isinstance(groups, Mapping):
        raise ReleaseError("field 'groups': must be a mapping of group name to host names")
    member = defaultdict(set)
    for group, names in groups.items():
        if isinstance(names, str) or not isinstance(names, (list, tuple, set)):
            raise ReleaseError(f"field 'groups': group '{group}' must list host names")
        for name in names:
            member[str(name)].add(str(group))
    if hosts is None:
        hosts = groups.get("all") or sorted(member)
    elif isinstance(hosts, str):
        hosts = [hosts]
    elif not isinstance(hosts, (list, tuple, set)):
        raise ReleaseError(f"field 'hosts': must be a list of host names, not {type(hosts).__name__}")
    out = {}
    for host in hosts:
        host = str(host)
        try:
            vars_ = hostvars[host] if hostvars is not None and host in hostvars else None
        except (KeyError, TypeError):
            vars_ = None
        out[host] = host_attributes(host, member.get(host, ()), vars_)
    return out
