"""The dashboard (``perfgate dashboard``): a static site of the history, like ``asv publish``.

``index.html`` lists every series (a measurement on a machine class): its latest value,
its change over the last 30 days, its change points and its budget status, in a table a
small inline script sorts and filters. Each measurement has a page under ``m/`` with its
trend plot (inline SVG from ``svg.py``: points per machine class, change points with their
commit ranges, the budget line, the forecast band of the next quarters) and the tables
behind it.

The site makes no network request and runs only its own inline script, named by its hash
in each page's Content-Security-Policy (as the HTML report does, report/html.py); text
from the history (test ids, commits, machine classes) is escaped with the report's
``escape``. Page names are hashes of the measurement's key, so no test id reaches a path.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import final

from ..model import format_quantity
from ..report.html import _WATCHDOG, _content_security_policy, escape
from .forecast import BudgetOutlook
from .svg import PlottedBand, PlottedChange, PlottedLine, TrendPlot, render_trend_svg
from .views import (
    BAND_COVERAGE,
    LOOKBACK,
    SeriesView,
    budget_status,
    commit_range,
    describe_change,
    forked_map,
    short_commit,
)

#: Runs listed under a measurement's plot (all of them are in the plot).
RECENT_RUNS = 20


@final
@dataclass(frozen=True, slots=True)
class Dashboard:
    """What ``write_dashboard`` wrote."""

    index: Path  #: the page to open
    pages: int  #: measurement pages written
    series: int  #: rows of the index


def write_dashboard(
    views: Sequence[SeriesView],
    out: Path,
    *,
    generated_at: datetime,
    source: str,
    workers: int | None = None,
) -> Dashboard:
    """Write the site into ``out`` (created if missing; pages there are replaced), the
    measurement pages spread over ``workers`` processes (``views.forked_map``)."""
    pages_dir = out / "m"
    pages_dir.mkdir(parents=True, exist_ok=True)
    groups = list(_by_measurement(views).values())
    write = functools.partial(_write_page, pages_dir=pages_dir, generated_at=generated_at)
    forked_map(write, groups, workers=workers)
    index = out / "index.html"
    index.write_text(
        render_index(views, generated_at=generated_at, source=source), encoding="utf-8"
    )
    return Dashboard(index=index, pages=len(groups), series=len(views))


def _write_page(group: Sequence[SeriesView], *, pages_dir: Path, generated_at: datetime) -> None:
    page = render_measurement_page(group, generated_at=generated_at)
    (pages_dir / page_name(group[0].series.key)).write_text(page, encoding="utf-8")


def page_name(key: tuple[str, str]) -> str:
    """The file of a measurement's page: a hash of its key, safe in any filesystem."""
    digest = hashlib.sha256("\0".join(key).encode("utf-8", "surrogatepass")).hexdigest()
    return f"{digest[:16]}.html"


def _by_measurement(views: Iterable[SeriesView]) -> dict[tuple[str, str], list[SeriesView]]:
    grouped: dict[tuple[str, str], list[SeriesView]] = {}
    for view in views:
        grouped.setdefault(view.series.key, []).append(view)
    return grouped


# -- the index ----------------------------------------------------------------------------


def render_index(views: Sequence[SeriesView], *, generated_at: datetime, source: str) -> str:
    rows = [_index_row(view) for view in sorted(views, key=_index_order)]
    regressions = sum(1 for v in views if v.changes and v.changes[-1].regression)
    at_risk = sum(1 for v in views if _at_risk(v.outlook))
    body = [
        "<header><h1>Performance history</h1>",
        f'<p class="run">{len(views)} series from {escape(source)}; generated '
        f"{generated_at:%Y-%m-%d %H:%M} UTC. {regressions} whose last change point is a "
        f"regression, {at_risk} with a budget at risk.</p></header>",
        '<p class="controls"><label>Filter <input id="filter" type="search" '
        'placeholder="test, machine, status"></label> <label><input id="only-bad" '
        'type="checkbox"> only regressions and budgets at risk</label> '
        '<span id="shown"></span></p>',
        '<table class="results" id="series"><thead><tr>',
        '<th data-type="text">measurement</th><th data-type="text">machine class</th>',
        '<th data-type="num">latest</th><th data-type="text">at</th>',
        f'<th data-type="num">change vs {LOOKBACK.days} days</th>',
        '<th data-type="num">change points</th><th data-type="text">last change</th>',
        '<th data-type="text">budget</th>',
        "</tr></thead><tbody>",
        *rows,
        "</tbody></table>",
    ]
    if not views:
        body.append('<p class="empty">The history holds no measurements.</p>')
    return _page("Performance history", body, script=_INDEX_SCRIPT)


def _index_order(view: SeriesView) -> tuple[str, str, str]:
    return view.series.test_id, view.series.name, view.series.machine_class


def _index_row(view: SeriesView) -> str:
    series, latest = view.series, view.latest
    last = view.changes[-1] if view.changes else None
    bad = (last is not None and last.regression) or _at_risk(view.outlook)
    change = view.change_since
    return "".join(
        [
            f'<tr class="{"bad" if bad else ""}">',
            f'<td class="test"><a href="m/{page_name(series.key)}">{escape(view.label)}</a></td>',
            f"<td>{escape(series.machine_class)}</td>",
            f'<td class="num" data-v="{latest.value!r}">'
            f"{escape(format_quantity(latest.value, series.unit))}</td>",
            f"<td>{latest.at:%Y-%m-%d} {escape(short_commit(latest.commit))}</td>",
            f'<td class="num {_worse_class(change, series.lower_is_better)}" '
            f'data-v="{_sort_value(change)}">{_percent(change)}</td>',
            f'<td class="num" data-v="{len(view.changes)}">{len(view.changes)}</td>',
            "<td>-</td>"
            if last is None
            else f'<td class="{"worse" if last.regression else "better"}">'
            f"{last.change * 100:+.1f}% at {last.at:%Y-%m-%d} "
            f"({escape(commit_range(last))})</td>",
            f"<td>{escape(budget_status(view.outlook))}</td>",
            "</tr>",
        ]
    )


def _at_risk(outlook: BudgetOutlook | None) -> bool:
    return outlook is not None and (outlook.over_budget or outlook.first_breach is not None)


def _worse_class(change: float | None, lower_is_better: bool) -> str:
    if change is None or change == 0:
        return ""
    return "worse" if (change > 0) == lower_is_better else "better"


def _sort_value(change: float | None) -> str:
    return "" if change is None else repr(change)


def _percent(change: float | None) -> str:
    return "-" if change is None else f"{change * 100:+.1f}%"


# -- a measurement's page -----------------------------------------------------------------


def render_measurement_page(views: Sequence[SeriesView], *, generated_at: datetime) -> str:
    """The page of one measurement (``views`` share its key, one per machine class)."""
    first = views[0]
    body = [
        '<p class="nav"><a href="../index.html">&larr; all measurements</a></p>',
        f"<header><h1>{escape(first.label)}</h1>",
        f'<p class="run">{escape(first.series.statistic)} in {escape(first.series.unit)}, '
        f"{'lower' if first.series.lower_is_better else 'higher'} is better; generated "
        f"{generated_at:%Y-%m-%d %H:%M} UTC.</p></header>",
        f'<figure class="plot">{render_trend_svg(trend_plot(views))}</figure>',
    ]
    for view in views:
        body += _series_section(view)
    return _page(f"{first.label}: performance history", body, script=None)


def trend_plot(views: Sequence[SeriesView]) -> TrendPlot:
    """The plot of one measurement: every machine class's points, change points, the
    budget and each class's forecast band."""
    first = views[0]
    several = len(views) > 1
    return TrendPlot(
        title=first.label,
        unit=first.series.unit,
        lines=tuple(
            PlottedLine(
                label=view.series.machine_class,
                times=tuple([p.at.timestamp() for p in view.series.points]),
                values=view.series.values,
            )
            for view in views
        ),
        changes=tuple(
            PlottedChange(
                at=change.at,
                label=f"{change.change * 100:+.1f}% {commit_range(change)}"
                + (f" on {view.series.machine_class}" if several else ""),
                worse=change.regression,
            )
            for view in views
            for change in view.changes
        ),
        budget=next((v.series.budget for v in views if v.series.budget is not None), None),
        bands=tuple(
            PlottedBand(
                at=tuple(p.at for p in view.forecast),
                low=tuple(p.low for p in view.forecast),
                middle=tuple(p.expected for p in view.forecast),
                high=tuple(p.high for p in view.forecast),
                label=f"forecast, {BAND_COVERAGE:.0%} band",
            )
            for view in views
            if view.forecast
        ),
    )


def _series_section(view: SeriesView) -> list[str]:
    series = view.series
    parts = [
        f"<section><h2>On {escape(series.machine_class)}</h2>",
        f'<p class="facts">{len(series.points)} runs from {series.points[0].at:%Y-%m-%d} '
        f"to {series.points[-1].at:%Y-%m-%d}; latest "
        f"{escape(format_quantity(view.latest.value, series.unit))}.</p>",
    ]
    parts += _changes_table(view)
    parts += _outlook_table(view)
    parts += _recent_runs(view)
    parts.append("</section>")
    return parts


def _changes_table(view: SeriesView) -> list[str]:
    if not view.changes:
        return ['<p class="facts">No change points.</p>']
    rows = "".join(
        f'<tr class="{"worse" if c.regression else "better"}"><td>{c.at:%Y-%m-%d %H:%M}</td>'
        f"<td>{escape(commit_range(c))}</td>"
        f"<td>{escape(describe_change(c, view.series.unit))}</td><td>{c.p_value:.2g}</td></tr>"
        for c in view.changes
    )
    return [
        '<table class="results changes"><caption>Change points</caption><thead><tr>'
        "<th>first run after</th><th>commits</th><th>change</th><th>p</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    ]


def _outlook_table(view: SeriesView) -> list[str]:
    unit = view.series.unit
    outlook = view.outlook
    if outlook is None:
        if not view.forecast:
            return []
        rows = "".join(
            f"<tr><td>{p.at:%Y-%m-%d}</td><td>{escape(format_quantity(p.expected, unit))}</td>"
            f"<td>{escape(format_quantity(p.low, unit))}..{escape(format_quantity(p.high, unit))}"
            "</td></tr>"
            for p in view.forecast
        )
        return [
            '<table class="results forecast"><caption>Forecast</caption><thead><tr><th>at</th>'
            f"<th>expected</th><th>{BAND_COVERAGE:.0%} of runs within</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        ]
    rows = "".join(
        f"<tr><td>{escape(q.quarter.label)}</td>"
        f"<td>{escape(format_quantity(q.expected, unit))}</td>"
        f"<td>{q.breach_probability:.0%}</td></tr>"
        for q in outlook.quarters
    )
    return [
        f'<p class="facts">Budget {escape(format_quantity(outlook.budget, unit))}: '
        f"{escape(budget_status(outlook))}; headroom {outlook.headroom:.0%}.</p>",
        '<table class="results outlook"><caption>Budget outlook</caption><thead><tr>'
        "<th>quarter</th><th>expected at its end</th><th>chance of a breach</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>",
    ]


def _recent_runs(view: SeriesView) -> list[str]:
    unit = view.series.unit
    rows = "".join(
        f"<tr><td>{p.at:%Y-%m-%d %H:%M}</td><td>{escape(short_commit(p.commit))}</td>"
        f'<td class="num">{escape(format_quantity(p.value, unit))}</td>'
        f"<td>{escape(p.verdict or '-')}</td></tr>"
        for p in reversed(view.series.points[-RECENT_RUNS:])
    )
    return [
        f"<details><summary>Last {min(RECENT_RUNS, len(view.series.points))} runs</summary>"
        '<table class="results runs"><thead><tr><th>at</th><th>commit</th><th>value</th>'
        f"<th>verdict</th></tr></thead><tbody>{rows}</tbody></table></details>"
    ]


# -- the page frame -----------------------------------------------------------------------


def _page(title: str, body: Sequence[str], *, script: str | None) -> str:
    scripts = [_WATCHDOG] if script is None else [_WATCHDOG, script]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        _content_security_policy(scripts),
        f"<script>{_WATCHDOG}</script>",
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        *body,
        "<footer>Made by pytest-perfgate (perfgate dashboard).</footer>",
    ]
    if script is not None:
        parts.append(f"<script>{script}</script>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


STYLE = """
:root { color-scheme: light; --muted: #6b7280; --line: #e5e7eb; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  margin: 0 auto; max-width: 1200px; padding: 1em 1.5em 3em; color: #111827; }
h1 { margin: 0.2em 0; font-size: 1.5em; word-break: break-all; }
h2 { margin-top: 1.5em; border-bottom: 1px solid var(--line); padding-bottom: 0.2em;
  font-size: 1.15em; }
.run, .facts, footer, .nav { color: var(--muted); }
table { border-collapse: collapse; }
table.results { width: 100%; font-size: 0.92em; margin: 0.6em 0; }
table.results caption { text-align: left; font-weight: 600; }
table.results th, table.results td { padding: 0.25em 0.5em; border-bottom: 1px solid var(--line);
  text-align: left; vertical-align: top; }
table#series th { cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
td.test { word-break: break-all; font-family: ui-monospace, monospace; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.worse { color: #c62828; }
.better { color: #2e7d32; }
tr.bad td:first-child { border-left: 3px solid #c62828; }
figure.plot { margin: 1em 0; overflow-x: auto; }
footer { margin-top: 3em; font-size: 0.85em; }
"""

# Sorts the index on a header click and filters it as the user types. It never writes
# HTML (only textContent and attributes) and marks the root element when done: the
# browser test reads that.
_INDEX_SCRIPT = r"""
(function () {
  "use strict";
  var root = document.documentElement;
  window.addEventListener("error", function (e) {
    root.setAttribute("data-perfgate-errors", (root.getAttribute("data-perfgate-errors") || "")
      + e.message + "; ");
  });
  var table = document.getElementById("series");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var filter = document.getElementById("filter");
  var onlyBad = document.getElementById("only-bad");
  var shown = document.getElementById("shown");
  function key(row, column, numeric) {
    var cell = row.cells[column];
    if (!numeric) { return cell.textContent.toLowerCase(); }
    var v = cell.getAttribute("data-v");
    return v === null || v === "" ? NaN : parseFloat(v);
  }
  function sortBy(th, column) {
    var numeric = th.getAttribute("data-type") === "num";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) {
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    rows.sort(function (a, b) {
      var x = key(a, column, numeric), y = key(b, column, numeric);
      if (numeric) {  // rows without a figure go last either way
        if (isNaN(x) || isNaN(y)) { return isNaN(x) - isNaN(y); }
        return ascending ? x - y : y - x;
      }
      return ascending ? (x < y ? -1 : x > y ? 1 : 0) : (x < y ? 1 : x > y ? -1 : 0);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  function apply() {
    var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    var count = 0;
    rows.forEach(function (row) {
      var text = row.textContent.toLowerCase();
      var ok = words.every(function (w) { return text.indexOf(w) >= 0; })
        && (!onlyBad.checked || row.classList.contains("bad"));
      row.hidden = !ok;
      if (ok) { count += 1; }
    });
    shown.textContent = count + " of " + rows.length + " shown";
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
    th.addEventListener("click", function () { sortBy(th, column); });
  });
  filter.addEventListener("input", apply);
  onlyBad.addEventListener("change", apply);
  // A link can carry a view: #filter=words&sort=3 (a column, from 0; -3 sorts descending).
  var wanted = new URLSearchParams(location.hash.slice(1));
  if (wanted.has("filter")) { filter.value = wanted.get("filter"); }
  if (wanted.has("bad")) { onlyBad.checked = true; }
  if (wanted.has("sort")) {
    var column = parseInt(wanted.get("sort"), 10);
    var th = table.tHead.rows[0].cells[Math.abs(column)];
    if (th) {
      sortBy(th, Math.abs(column));
      if (wanted.get("sort").charAt(0) === "-") { sortBy(th, Math.abs(column)); }
    }
  }
  apply();
  root.setAttribute("data-perfgate-rows", String(rows.length));
})();
"""


__all__: Sequence[str] = (
    "Dashboard",
    "page_name",
    "render_index",
    "render_measurement_page",
    "trend_plot",
    "write_dashboard",
)
