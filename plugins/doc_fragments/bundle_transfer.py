# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How bundle archives leave the target (mo.fleet.capture, mo.fleet.harvest): options their action plugins set."""

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r"""
options:
  inline_max:
    description:
      - Set by the action plugin when it brings bundles to the controller (4 MiB); rarely useful by hand.
      - Bundle archives of at most this many bytes (for M(mo.fleet.harvest), in all) come back base64-encoded in the
        module's result and leave no archive file on the target; a larger one is written to O(archive_dir) (or the
        capture directory's outbox) for the caller to fetch and delete.
    type: int
    default: 0
  archive_dir:
    description:
      - Set by the action plugin to its remote temporary directory, which Ansible removes after the task;
        rarely useful by hand.
      - An existing absolute directory on the target that receives the archives larger than O(inline_max) instead
        of the capture directory's outbox.
    type: path
"""
