# -*- coding: utf-8 -*-
# Copyright: mo.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The argument spec of mo.fleet.template_render, shared by its action plugin and its module
stub (which only refuses to run on a host), so the two can never disagree."""

from __future__ import annotations

TEMPLATE_RENDER_ARGS = dict(
    src=dict(type="path", required=True),
    dest=dict(type="path", required=True),
    output=dict(type="str", default="tasks", choices=["tasks", "rollback", "role"]),
    options=dict(type="dict", default={}),
    role_name=dict(type="str"),
    origin=dict(type="str"),
    role_engine=dict(type="str", default="module", choices=["module", "tasks"]),
)
