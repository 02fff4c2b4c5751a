# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Repository server filters: thin wrappers over module_utils/_repo/repo_index.py.

Documentation: the adjacent gpg_fingerprints.yml.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.mo.fleet.plugins.module_utils._repo.repo_index import secret_key_fingerprints


def gpg_fingerprints(colons):
    if not isinstance(colons, str):
        raise AnsibleFilterError(f"mo.fleet.gpg_fingerprints: the input must be gpg's --with-colons text, not {type(colons).__name__}.")
    return secret_key_fingerprints(str(colons))


class FilterModule:
    def filters(self):
        return {"gpg_fingerprints": gpg_fingerprints}
