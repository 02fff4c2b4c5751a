# -*- coding: utf-8 -*-
# Copyright: mo.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render a release timeline (module_utils/_release/release.py) as text lines or a static HTML page.

The page has no scripts, no external stylesheets and makes no network request: an inline SVG
step chart (hosts having each deployment per day, weekends and holidays shaded), a table of
counts whose cells carry ``data-deployment``, ``data-day`` and ``data-count`` attributes (for
tests and scrapers), and per deployment the hosts that get (or lose) it each day, as list items
with ``data-day``, ``data-count``, ``data-added`` and ``data-removed`` (space-separated hosts);
the page grows with the changes, not with hosts x days.

API (also used by ``playbooks/report.yml`` for the status site)::

    timeline_text(timeline, show_hosts=True) -> [str]
    timeline_section(timeline, holidays=(), heading=None) -> str   # an HTML <section> fragment
    timeline_html(timeline, title='...', holidays=(), subtitle='') -> str  # a whole document
    PAGE_CSS                                                          # the inline stylesheet

TIMELINE is ``{deployment: {'YYYY-MM-DD': [hosts]}}`` (``detail='hosts'``) or
``{deployment: {'YYYY-MM-DD': count}}`` (``detail='count'``; the page then lists no hosts).
"""

from __future__ import annotations

import datetime
from html import escape

__all__ = ["timeline_text", "timeline_section", "timeline_html", "PAGE_CSS", "PALETTE"]

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#7f7f7f", "#bcbd22")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

PAGE_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem}
table.timeline{border-collapse:collapse;font-size:.8rem;margin:.5rem 0}
table.timeline th,table.timeline td{border:1px solid #ccc;padding:2px 5px;text-align:right}
table.timeline th.dep,table.timeline td.dep{text-align:left;white-space:nowrap}
table.timeline .off{background:#f1f1f1}
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.3em;vertical-align:middle}
details{margin:.2rem 0}summary{cursor:pointer}
ul.days{margin:.2rem 0 .6rem 1rem;padding:0;list-style:none;font-size:.85rem}
svg.chart{max-width:100%;height:auto;border:1px solid #ddd;background:#fff}
.muted{color:#666}
"""


def _day(iso):
    return datetime.date.fromisoformat(iso)


def _count(value):
    return value if isinstance(value, int) else len(value)


def timeline_text(timeline, show_hosts=True):
    """One line per deployment and day: 'NAME YYYY-MM-DD Dow: N host(s)[: a, b]'."""
    lines = []
    for name in sorted(timeline):
        for iso, value in timeline[name].items():
            count = _count(value)
            line = f"{name} {iso} {WEEKDAYS[_day(iso).weekday()]}: {count} host(s)"
            if show_hosts and not isinstance(value, int) and value:
                line += ": " + ", ".join(value)
            lines.append(line)
    return lines


def _chart(timeline, names, days, off_days):
    width, height = 960, 340
    left, right, top, bottom = 56, 16, 16, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([_count(v) for n in names for v in timeline[n].values()] + [1])
    step = plot_w / max(len(days), 1)

    def x(i):
        return left + i * step

    def y(count):
        return top + plot_h - (count / peak) * plot_h

    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="hosts per deployment and day">']
    for i, iso in enumerate(days):
        if iso in off_days:
            parts.append(f'<rect class="off" x="{x(i):.1f}" y="{top}" width="{step:.1f}" height="{plot_h}" '
                         f'fill="#f0f0f0"><title>{escape(iso)} not a working day</title></rect>')
    ticks = sorted({0, peak, peak // 2, peak // 4, 3 * peak // 4})
    for tick in ticks:
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                     f'stroke="#e0e0e0"/><text x="{left - 6}" y="{y(tick) + 4:.1f}" font-size="11" '
                     f'text-anchor="end">{tick}</text>')
    label_every = max(1, len(days) // 16)
    for i, iso in enumerate(days):
        if i % label_every == 0:
            cx = x(i) + step / 2
            parts.append(f'<text x="{cx:.1f}" y="{top + plot_h + 14}" font-size="10" text-anchor="end" '
                         f'transform="rotate(-45 {cx:.1f} {top + plot_h + 14})">{escape(iso)}</text>')
    parts.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="#888"/>'
                 f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#888"/>')
    for k, name in enumerate(names):
        color = PALETTE[k % len(PALETTE)]
        points = []
        for i, iso in enumerate(days):
            count = _count(timeline[name][iso])
            points.append(f"{x(i):.1f},{y(count):.1f}")
            points.append(f"{x(i + 1):.1f},{y(count):.1f}")
        parts.append(f'<polyline class="series" data-deployment="{escape(name)}" fill="none" stroke="{color}" '
                     f'stroke-width="2" points="{" ".join(points)}"><title>{escape(name)}</title></polyline>')
        for i, iso in enumerate(days):
            count = _count(timeline[name][iso])
            parts.append(f'<circle cx="{x(i) + step / 2:.1f}" cy="{y(count):.1f}" r="2.5" fill="{color}">'
                         f'<title>{escape(name)} {escape(iso)}: {count} host(s)</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def timeline_section(timeline, holidays=(), heading=None):
    """An HTML <section> with the chart, the table of counts and the hosts per day."""
    names = sorted(timeline)
    days = sorted({iso for name in names for iso in timeline[name]})
    holidays = {str(h) for h in holidays}
    off_days = {iso for iso in days if _day(iso).weekday() >= 5 or iso in holidays}
    out = ['<section class="release-timeline">']
    if heading:
        out.append(f"<h2>{escape(heading)}</h2>")
    if not names or not days:
        out.append('<p class="muted">No deployments in the catalog.</p></section>')
        return "\n".join(out)
    out.append(_chart(timeline, names, days, off_days))
    out.append('<p class="legend">' + " ".join(
        f'<span><span class="swatch" style="background:{PALETTE[k % len(PALETTE)]}"></span>{escape(n)}</span>'
        for k, n in enumerate(names)) + "</p>")
    out.append('<table class="timeline"><thead><tr><th class="dep">deployment</th>')
    for iso in days:
        css = ' class="off"' if iso in off_days else ""
        out.append(f'<th{css} title="{escape(iso)}">{escape(iso[5:])}<br>{WEEKDAYS[_day(iso).weekday()]}</th>')
    out.append("</tr></thead><tbody>")
    for name in names:
        out.append(f'<tr><td class="dep">{escape(name)}</td>')
        for iso in days:
            count = _count(timeline[name][iso])
            css = ' class="off"' if iso in off_days else ""
            out.append(f'<td{css} data-deployment="{escape(name)}" data-day="{escape(iso)}" '
                       f'data-count="{count}">{count}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    if any(not isinstance(v, int) for name in names for v in timeline[name].values()):
        for name in names:
            row = timeline[name]
            last = _count(row[days[-1]])
            out.append(f'<details class="hosts" data-deployment="{escape(name)}"><summary>{escape(name)}: '
                       f'{last} host(s) on {escape(days[-1])}</summary><ul class="days">')
            previous = set()
            for iso in days:
                current = set(row[iso])
                added = sorted(current - previous)
                removed = sorted(previous - current)
                previous = current
                if not added and not removed:
                    continue
                text = ""
                if added:
                    text += f"+{len(added)}: " + ", ".join(escape(h) for h in added)
                if removed:
                    text += ("; " if text else "") + f"-{len(removed)}: " + ", ".join(escape(h) for h in removed)
                out.append(f'<li data-day="{escape(iso)}" data-count="{len(current)}" '
                           f'data-added="{escape(" ".join(added))}" data-removed="{escape(" ".join(removed))}">'
                           f"{escape(iso)} ({len(current)}) {text}</li>")
            out.append("</ul></details>")
    out.append("</section>")
    return "\n".join(out)


def timeline_html(timeline, title="mo.fleet release plan", holidays=(), subtitle=""):
    """A complete, self-contained HTML document for TIMELINE."""
    body = timeline_section(timeline, holidays=holidays)
    sub = f'<p class="muted">{escape(subtitle)}</p>' if subtitle else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{PAGE_CSS}</style></head>\n"
            f"<body><h1>{escape(title)}</h1>{sub}\n{body}\n</body></html>\n")
