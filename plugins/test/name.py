# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``mo.fleet.name`` test: the name patterns of module_utils/_common/names.py in Jinja.

Documentation: the adjacent name.yml.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.mo.fleet.plugins.module_utils._common import names


def name(value, kind="safe"):
    """True when VALUE is a name of KIND (matched whole, as every engine matches it)."""
    if kind not in names.PATTERNS:
        raise AnsibleFilterError(f"mo.fleet.name: kind must be one of {', '.join(sorted(names.PATTERNS))}, not {kind!r}.")
    return names.is_valid(kind, value)


class TestModule:
    def tests(self):
        return {"name": name}
