# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The .deb renderer's entry points (``debrender``: imported when used, it builds on the
other renderers).
"""

from __future__ import annotations


def to_deb(source, options=None):
    """The .deb renderer (``debrender.to_deb``; imported when used, it builds on this module)."""
    from ansible_collections.mo.fleet.plugins.module_utils._render import debrender
    return debrender.to_deb(source, options)


def deb_architecture(requested, system, sources):
    """``debrender.deb_architecture``."""
    from ansible_collections.mo.fleet.plugins.module_utils._render import debrender
    return debrender.deb_architecture(requested, system, sources)
