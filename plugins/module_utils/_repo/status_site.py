# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The static status site of a release (``playbooks/report.yml``), served at ``/status/``.

One self-contained page (no script, no external request) built from what the controller knows:
the catalog and host attributes (timelines through the release rule of ``release.py``, charts by
``release_report.py``), the release state (halted deployments), the hosts' last sync records
(``reports/sync/<host>.json``) and the repository server's package report (``repo_info``:
packages, the deployments holding them, orphans).  Elements carry ``data-*`` attributes
(``data-host``, ``data-status``, ``data-deployment``, ``data-halted``, ``data-orphan``) so tests and
scrapers read the page as a person sees it.

API::

    build_site(catalog, hosts, records, halted, repo, start, end, generated, today=None)
        -> {'index.html': str, 'status.json': str}
"""

from __future__ import annotations

import datetime
import json
from html import escape

from ansible_collections.mo.fleet.plugins.module_utils._common import validate
from ansible_collections.mo.fleet.plugins.module_utils._release.release import ReleaseEngine, to_date
from ansible_collections.mo.fleet.plugins.module_utils._release.release_report import PAGE_CSS, timeline_section

__all__ = ["build_site", "summarize"]

SITE_CSS = PAGE_CSS + """
table.grid{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
table.grid th,table.grid td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
table.grid th{background:#f6f6f6}
.ok{color:#186a1d;font-weight:600}.error{color:#b00020;font-weight:600}.never{color:#777}
.halted{background:#fde8e8}.badge{display:inline-block;padding:0 .4em;border-radius:.3em;font-size:.75rem}
.badge.halted{background:#b00020;color:#fff}.badge.active{background:#186a1d;color:#fff}
.badge.disabled{background:#777;color:#fff}
nav a{margin-right:1rem}
code{font-size:.8rem}
"""


def _list(value):
    return value if isinstance(value, list) else []


def summarize(records):
    """Counts of hosts by last sync status."""
    out = {"ok": 0, "error": 0, "never": 0}
    for record in records.values():
        status = (record or {}).get("status") if isinstance(record, dict) else None
        out[status if status in ("ok", "error") else "never"] += 1
    return out


def _cell_list(items):
    items = [str(i) for i in items]
    return ", ".join(escape(i) for i in items) if items else '<span class="muted">-</span>'


def _table_head(section_id: str, title: str, columns) -> str:
    """The start of a section holding one table with COLUMNS (the caller closes it)."""
    heads = "".join(f"<th>{column}</th>" for column in columns)
    return f'<section id="{section_id}"><h2>{title}</h2><table class="grid"><thead><tr>{heads}</tr></thead><tbody>'


def _row(data: dict, cells) -> str:
    """One table row: DATA as data-* attributes (escaped), then CELLS (HTML already)."""
    attrs = "".join(f' data-{key}="{escape(str(value))}"' for key, value in data.items())
    return f"<tr{attrs}>" + "".join(cells) + "</tr>"


def _checked_inputs(halted, records, repo):
    """HALTED, RECORDS and REPO as plain dicts, checked against the schemas they are read with
    for a rollout (they come from files anyone with the reports directory could have written)."""
    from ansible_collections.mo.fleet.plugins.module_utils._release.rollout import (
        STATE_SCHEMA, RolloutError, _quote_field, check_sync_record,
    )
    if not isinstance(halted or {}, dict) or not isinstance(records or {}, dict) or not isinstance(repo or {}, dict):
        raise RolloutError("status site: records, halted and repo must be mappings")
    halted = dict(halted or {})
    records = dict(records or {})
    repo = dict(repo or {})
    problem = validate.first_error({"halted": halted}, STATE_SCHEMA)
    if problem:
        raise RolloutError(f"status site: field {_quote_field(problem)}")
    for host, record in records.items():
        if record is not None:
            check_sync_record(record, f"status site: records: host '{host}'")
    return halted, records, repo


def _halted_section(halted):
    """The halted deployments table (HTML lines)."""
    out = []
    out.append('<section id="halted"><h2>Halted deployments</h2>')
    if halted:
        out.append('<table class="grid"><thead><tr><th>deployment</th><th>halted on</th><th>failed</th>'
                   '<th>threshold</th><th>failing hosts</th></tr></thead><tbody>')
        for name in sorted(halted):
            info = halted[name] if isinstance(halted[name], dict) else {}
            out.append(f'<tr class="halted" data-halted="{escape(name)}"><td>{escape(name)}</td>'
                       f'<td>{escape(str(info.get("date", "")))} {escape(str(info.get("time", "")))}</td>'
                       f'<td>{escape(str(info.get("failed", "?")))} of {escape(str(info.get("total", "?")))}</td>'
                       f'<td>{escape(str(info.get("threshold", "?")))}%</td>'
                       f'<td>{_cell_list(info.get("hosts") or [])}</td></tr>')
        out.append("</tbody></table><p class=\"muted\">A halted deployment reaches no new host until "
                   "<code>playbooks/resume.yml -e resume=NAME</code>; hosts that have it keep it.</p>")
    else:
        out.append('<p class="muted" id="no-halted">No deployment is halted.</p>')
    out.append("</section>")
    return out


def _deployments_section(engine, halted, plan_today):
    """The deployments table: state, start, schedule, hosts today."""
    columns = ("deployment", "state", "start", "schedule", "hosts today", "packages", "install", "remove", "comment")
    out = [_table_head("deployments", "Deployments", columns)]
    for dep in sorted(engine.catalog["deployments"], key=lambda d: d["name"]):
        name = dep["name"]
        state = "halted" if name in halted else ("active" if dep["enabled"] else "disabled")
        having = sorted(h for h, names in plan_today.items() if name in names)
        out.append(_row({"deployment": name, "state": state, "hosts": len(having)}, (
            f'<td>{escape(name)}</td>', f'<td><span class="badge {state}">{state}</span></td>',
            f'<td>{escape(dep["start_date"])}</td>', f'<td>{escape(dep["schedule"] or "-")}</td>',
            f'<td title="{escape(", ".join(having))}">{len(having)}</td>',
            f'<td>{_cell_list(dep["packages"] + dep["package_sets"])}</td>',
            f'<td>{_cell_list(dep["packages_to_install"])}</td>',
            f'<td>{_cell_list(dep["packages_to_remove"])}</td>', f'<td>{escape(dep["comment"])}</td>')))
    out.append("</tbody></table></section>")
    return out


def _hosts_section(hosts, records):
    """The hosts' last sync table."""
    columns = ("host", "status", "time", "plan day", "deployments", "installed", "upgraded", "removed", "message")
    out = [_table_head("hosts", "Hosts (last sync)", columns)]
    for host in sorted(hosts):
        record = records.get(host) if isinstance(records.get(host), dict) else None
        if record is None:
            out.append(_row({"host": host, "status": "never"}, (
                f'<td>{escape(host)}</td>', '<td class="never">never</td>',
                '<td colspan="7" class="muted">no sync record</td>')))
            continue
        status = "ok" if record.get("status") == "ok" else "error"
        cells = [f'<td>{escape(host)}</td>', f'<td class="{status}">{status}</td>']
        cells += [f'<td>{escape(str(record.get(key, "")))}</td>' for key in ("time", "date")]
        cells += [f'<td>{_cell_list(_list(record.get(key)))}</td>'
                  for key in ("deployments", "installed", "upgraded", "removed")]
        out.append(_row({"host": host, "status": status}, cells + [f'<td>{escape(str(record.get("message", "")))}</td>']))
    out.append("</tbody></table></section>")
    return out


def _packages_sections(packages, orphans):
    """The stores and packages table and the orphans list, and the end of the page."""
    out = []
    out.append('<section id="packages"><h2>Stores and packages</h2>')
    if packages:
        out.append('<table class="grid"><thead><tr><th>store</th><th>file</th><th>package</th><th>version</th>'
                   "<th>arch</th><th>deployments</th></tr></thead><tbody>")
        for pkg in sorted(packages, key=lambda p: str(p.get("path", ""))):
            path = str(pkg.get("path", ""))
            store, _sep, rel = path.partition("/")
            deps = _list(pkg.get("deployments"))
            out.append(f'<tr data-package="{escape(str(pkg.get("name", "")))}" data-path="{escape(path)}" '
                       f'data-orphan="{"yes" if path in orphans else "no"}"><td>{escape(store)}</td>'
                       f'<td>{escape(rel)}</td><td>{escape(str(pkg.get("name", "?")))}</td>'
                       f'<td>{escape(str(pkg.get("version", "")))}</td>'
                       f'<td>{escape(str(pkg.get("architecture", "")))}</td><td>{_cell_list(deps)}</td></tr>')
        out.append("</tbody></table>")
    else:
        out.append('<p class="muted">No package report (the repository server was not reached).</p>')
    out.append("</section>")
    out.append('<section id="orphans"><h2>Orphan packages</h2>')
    if orphans:
        out.append("<ul>" + "".join(f'<li data-orphan="{escape(o)}">{escape(o)}</li>' for o in sorted(orphans))
                   + "</ul>")
    else:
        out.append('<p class="muted" id="no-orphans">No orphan package.</p>')
    out.append("</section></body></html>")
    return out


def build_site(catalog, hosts, records, halted, repo, start, end, generated, today=None):
    """The files of the status site as {name: text}."""
    halted, records, repo = _checked_inputs(halted, records, repo)
    engine = ReleaseEngine(catalog, halted=halted, already={
        h: _list((r or {}).get("deployments")) for h, r in records.items() if isinstance(r, dict)})
    start = to_date(start, "start")
    end = to_date(end, "end")
    today = to_date(today, "today") if today else start
    timeline = engine.timeline(hosts, start, end)
    plan_today = engine.plan(hosts, today)
    project = (engine.catalog["project"] or {}).get("name", "default")
    holidays = engine.catalog["holidays"]
    counts = summarize({h: records.get(h) for h in hosts})

    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>mo.fleet status: {escape(project)}</title>",
           f"<style>{SITE_CSS}</style></head><body>",
           f'<h1>mo.fleet status: <span id="project">{escape(project)}</span></h1>',
           f'<p class="muted">Generated {escape(generated)}; plan day <span id="today">{today.isoformat()}</span>; '
           f'{len(hosts)} host(s): <span class="ok" id="hosts-ok">{counts["ok"]} ok</span>, '
           f'<span class="error" id="hosts-error">{counts["error"]} error</span>, '
           f'<span class="never" id="hosts-never">{counts["never"]} never synced</span>.</p>',
           '<nav><a href="#halted">Halted</a><a href="#deployments">Deployments</a>'
           '<a href="#timeline">Timeline</a><a href="#hosts">Hosts</a><a href="#packages">Packages</a>'
           '<a href="#orphans">Orphans</a></nav>']

    out += _halted_section(halted)
    out += _deployments_section(engine, halted, plan_today)
    out.append('<section id="timeline">')
    out.append(timeline_section(timeline, holidays=holidays,
                                heading=f"Timeline {start.isoformat()} to {end.isoformat()} (hosts having each deployment)"))
    out.append("</section>")

    out += _hosts_section(hosts, records)
    packages = [p for p in _list(repo.get("packages")) if isinstance(p, dict)]
    orphans = [str(o) for o in _list(repo.get("orphans"))]
    out += _packages_sections(packages, orphans)

    data = {
        "project": project, "generated": generated, "today": today.isoformat(),
        "range": [start.isoformat(), end.isoformat()], "halted": halted,
        "plan": plan_today, "hosts": {h: records.get(h) for h in sorted(hosts)}, "summary": counts,
        "orphans": orphans, "packages": packages,
        "timeline": {name: {day: len(hosts_) for day, hosts_ in row.items()} for name, row in timeline.items()},
    }
    return {"index.html": "\n".join(out) + "\n",
            "status.json": json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"}


def default_range(today, days_before=7, days_after=14):
    """(start, end) around TODAY for the timeline."""
    day = to_date(today, "today")
    return (day - datetime.timedelta(days=days_before)).isoformat(), \
        (day + datetime.timedelta(days=days_after)).isoformat()
