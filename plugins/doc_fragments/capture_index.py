# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The option the capture directory modules share (argument spec: module_utils/_capture/capture_index.py)."""

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r"""
options:
  capture_directory:
    description:
      - The capture directory (index, lock, templates, outbox, work).
      - Its old name C(store) still works until mo.fleet 2.0.0, with a deprecation warning; a package store is
        something else, on the repository server.
    type: path
    default: /var/lib/mo-fleet
    aliases: [store]
"""
