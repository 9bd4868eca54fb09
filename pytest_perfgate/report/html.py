"""The HTML report (``--perf-html``): one self-contained page with plots.

It is rendered from a RunResults, so the plugin at the end of a session and the CLI from a
results file make the same page. Everything is inline (the vendored Chart.js and its box
plot plugin, the styles, the data): the page makes no network request, so a CI artifact
opens offline, years later, behind any firewall.

Text from the run (test ids, notes, environment values) reaches the page two ways, and
both are escaped: as HTML text through ``html.escape``, and as JSON inside a
``<script type="application/json">`` block with ``<``, ``>`` and ``&`` written as
``\\u003c``..., so no value can close the block. The page's script only ever puts text
into the document through ``textContent`` and the charts, which draw on a canvas. Behind
that, the page's Content-Security-Policy runs only its own scripts (by hash) and loads
nothing, so markup that ever got past the escaping could neither run nor call out.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any, final

from ..model import (
    Comparison,
    Direction,
    Measurement,
    Summary,
    Verdict,
    explain,
    format_change,
    format_detectable,
    format_quantity,
    printable,
)
from ..results import RunResults, TestResults
from .hints import GENERIC_REFRESH, blind_spot_hint, with_command
from .summary import extra_info_text, shared_reasons
from .terminal import VERDICT_ORDER, verdict_counts

#: The vendored scripts, in load order (provenance in vendor/README.md).
VENDORED_SCRIPTS = ("chart.umd.min.js", "chartjs-chart-boxplot.umd.min.js")

#: One colour per verdict, shared by the table and the plots.
VERDICT_COLOR = {
    Verdict.REGRESSED: "#c62828",
    Verdict.INCONCLUSIVE: "#b26a00",
    Verdict.INCOMPARABLE: "#8e24aa",
    Verdict.NEW: "#00838f",
    Verdict.IMPROVED: "#2e7d32",
    Verdict.UNCHANGED: "#6b7280",
}

#: Samples drawn as dots per measurement; more are thinned evenly (the box is of all).
MAX_DOTS = 1000

_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.MULTILINE)


def escape(text: str) -> str:
    """HTML text of ``text``: control and bidirectional characters made visible first
    (U+202E would show a test id reversed), then ``<``, ``>``, ``&`` and quotes escaped."""
    return html.escape(printable(text))


@final
@dataclass(frozen=True, slots=True)
class _Entry:
    """One measurement of one test, in report order."""

    test: TestResults
    measurement: Measurement
    comparison: Comparison


def render_html(run: RunResults, *, refresh_command: str = GENERIC_REFRESH) -> str:
    """The whole report as one HTML document; ``refresh_command`` is the run's own command
    turned into a refresh, for the hints (hints.py)."""
    entries = _entries(run)
    comparisons = [e.comparison for e in entries]
    counts = verdict_counts(comparisons) or "no measurements"
    data = {
        "colors": {v.value: c for v, c in VERDICT_COLOR.items()},
        "measurements": [_finite(_chart_data(entry)) for entry in entries],
    }
    body_scripts = [*(f"\n{_vendored(name)}\n" for name in VENDORED_SCRIPTS), f"\n{_SCRIPT}\n"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        _content_security_policy([_WATCHDOG, *body_scripts]),
        f"<script>{_WATCHDOG}</script>",
        f"<title>pytest-perfgate report: {escape(counts)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        "<header>",
        "<h1>pytest-perfgate report</h1>",
        _run_line(run),
        f'<p class="counts">{_counts_badges(comparisons)}</p>',
        *_blind_spot(comparisons),
        "</header>",
        "<main>",
    ]
    if not entries:
        parts.append('<p class="empty">No perf measurements in this run.</p>')
    else:
        shared = shared_reasons(comparisons)
        parts += _overview(entries)
        parts += _shared(shared, refresh_command)
        parts += _table(entries, shared)
        parts += _details(entries, shared)
    parts += _environment(run)
    parts += [
        "</main>",
        "<footer>Made by pytest-perfgate with Chart.js and chartjs-chart-boxplot "
        "(MIT licences; their notices are kept in the scripts below).</footer>",
        '<script type="application/json" id="perfgate-data">',
        script_json(data),
        "</script>",
    ]
    parts += [f"<script>{script}</script>" for script in body_scripts]
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _blind_spot(comparisons: Sequence[Comparison]) -> list[str]:
    """The measurements that cannot see a 5% slowdown, and what would help (hints.py)."""
    hint = blind_spot_hint([c.detectable_change for c in comparisons])
    return [f'<p class="blind">{escape(hint[0].upper() + hint[1:])}.</p>'] if hint else []


def _content_security_policy(scripts: Sequence[str]) -> str:
    """Nothing loads from anywhere (no network, even through a library bug), and only our
    own scripts run, named by their hashes: markup that slipped past the escaping still
    could not run a script or an event handler."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in scripts
    )
    policy = f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src data:"
    return f'<meta http-equiv="Content-Security-Policy" content="{policy}">'


def script_json(data: Any) -> str:
    """JSON that is safe inside a ``<script>`` element: ``</script>`` or ``<!--`` in a
    value cannot end or change the block, because ``<``, ``>`` and ``&`` never appear."""
    text = json.dumps(data, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@functools.cache
def _vendored(name: str) -> str:
    text = (resources.files("pytest_perfgate.report") / "vendor" / name).read_text("utf-8")
    # The source-map comment would make developer tools fetch a file that is not there.
    text = _SOURCE_MAP.sub("", text)
    if "</script" in text.lower():  # cannot happen with the vendored versions; guard updates
        raise ValueError(f"vendored script {name} contains '</script'")
    return text


# -- data for the plots ---------------------------------------------------------------


def _entries(run: RunResults) -> list[_Entry]:
    """Regressions first (the page is read from the top), the worst change first."""
    entries = [_Entry(t, m, c) for t in run.tests for m, c in t.results]
    return sorted(
        entries,
        key=lambda e: (
            VERDICT_ORDER.index(e.comparison.verdict),
            -_badness(e.comparison),
            e.comparison.label,
        ),
    )


def _badness(c: Comparison) -> float:
    """How much worse, on a log scale (negative for better); 0 without a ratio."""
    if not c.ratio or c.ratio <= 0:
        return 0.0
    worse = math.log(c.ratio)
    return -worse if c.direction is Direction.HIGHER_IS_BETTER else worse


def _has_change(c: Comparison) -> bool:
    """A change to plot: a ratio the log axis can hold."""
    return c.ratio is not None and c.ratio > 0 and math.isfinite(c.ratio)


def _display_unit(unit: str, magnitude: float) -> tuple[float, str]:
    """The scale and unit the plots use, like format_quantity: seconds in ms/us/ns..."""
    scales: Sequence[tuple[float, str]] = ()
    if unit == "s":
        scales = ((1.0, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns"))
    elif unit == "B":
        scales = ((2.0**30, "GiB"), (2.0**20, "MiB"), (2.0**10, "KiB"), (1.0, "B"))
    for scale, suffix in scales:
        if abs(magnitude) >= scale or scale == scales[-1][0]:
            return scale, suffix
    return 1.0, unit


def _finite(value: Any) -> Any:
    """JSON has no inf or NaN: such a figure (a zero baseline) is plotted as missing."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _box(summary: Summary, scale: float) -> dict[str, float]:
    return {
        key: getattr(summary, key) / scale for key in ("min", "q1", "median", "q3", "max", "mean")
    }


def _chart_data(entry: _Entry) -> dict[str, Any]:
    m, c = entry.measurement, entry.comparison
    magnitude = max(abs(c.current.median), abs(c.baseline.median) if c.baseline else 0.0)
    scale, unit = _display_unit(c.unit, magnitude)
    positions = list(range(len(m.samples)))
    if len(positions) > MAX_DOTS:
        step = (len(positions) - 1) / (MAX_DOTS - 1)
        positions = [round(i * step) for i in range(MAX_DOTS)]
    samples = [m.samples[i] for i in positions]
    change = None
    if _has_change(c):
        change = {"ratio": c.ratio, "low": c.ci_low, "high": c.ci_high}
    return {
        "label": c.label,
        "verdict": c.verdict.value,
        "threshold": c.threshold,
        "higher_is_better": c.direction is Direction.HIGHER_IS_BETTER,
        "unit": unit,
        "change": change,
        "baseline": None if c.baseline is None else _box(c.baseline, scale),
        # Six digits are more than a plot can show, and half the size of a float's repr.
        "current": _box(c.current, scale) | {"items": [float(f"{x / scale:.6g}") for x in samples]},
        "samples": len(m.samples),
        # Sample numbers (from 1) of the dots, for the plot in time order; omitted when all.
        "positions": None if len(positions) == len(m.samples) else [i + 1 for i in positions],
        "reference": None if c.reference_median is None else c.reference_median / scale,
    }


# -- HTML ------------------------------------------------------------------------------


def _run_line(run: RunResults) -> str:
    facts = [f"created {run.created_at or 'at an unknown time'}"]
    if run.commit:
        facts.append(f"commit {run.commit}")
    if run.generator:
        facts.append(f"by {run.generator}")
    return f'<p class="run">{escape(", ".join(facts))}</p>'


def _counts_badges(comparisons: Sequence[Comparison]) -> str:
    counts = {v: 0 for v in VERDICT_ORDER}
    for c in comparisons:
        counts[c.verdict] += 1
    return " ".join(
        f'<span class="badge v-{v.value}">{n} {v.value}</span>' for v, n in counts.items() if n
    )


def _overview(entries: Sequence[_Entry]) -> list[str]:
    with_change = sum(1 for e in entries if _has_change(e.comparison))
    without = [e.comparison for e in entries if not _has_change(e.comparison)]
    parts = ['<section id="overview">', "<h2>Overview: change of every measurement</h2>"]
    if with_change:
        # Fixed height per row: a canvas in a sized box (Chart.js sizes to its parent).
        height = 60 + 26 * with_change
        parts += [
            '<p class="help">The dot is the change of the compared statistic (the median, or '
            "the tail quantile the test gates) against the baseline; the whisker its 95% "
            "confidence interval; the grey band the practical threshold, inside which a "
            "change never counts. Log scale; regressions first; colour is the verdict.</p>",
            f'<div class="chart" style="height:{height}px">'
            '<canvas data-chart="overview" role="img" '
            'aria-label="change of every measurement with its 95% CI"></canvas></div>',
        ]
    if without:
        names = ", ".join(f"{escape(c.label)} ({c.verdict.value})" for c in without)
        parts.append(f'<p class="help">Without a change to show: {names}.</p>')
    parts.append("</section>")
    return parts


def _shared(
    shared: Mapping[tuple[Verdict, tuple[str, ...]], list[Comparison]], command: str
) -> list[str]:
    """Reasons that several measurements share, once each with a count."""
    if not shared:
        return []
    items = [
        f'<li><span class="badge v-{verdict.value}">{verdict.value}</span> '
        f"{len(group)} measurements: "
        f"{escape(with_command('; '.join(notes) or 'no baseline', command))}</li>"
        for (verdict, notes), group in shared.items()
    ]
    return [
        '<section id="reasons">',
        "<h2>Shared reasons</h2>",
        "<ul>",
        *items,
        "</ul>",
        "</section>",
    ]


def _own_notes(c: Comparison, shared: Mapping[tuple[Verdict, tuple[str, ...]], object]) -> str:
    """A measurement's notes, or a pointer where its reason is said once for several."""
    if (c.verdict, c.notes) in shared:
        return "shared reason (see above)"
    return "; ".join(c.notes)


def _table(
    entries: Sequence[_Entry], shared: Mapping[tuple[Verdict, tuple[str, ...]], object]
) -> list[str]:
    head = (
        "<tr><th>test</th><th>verdict</th><th>outcome</th><th>baseline</th><th>now</th>"
        "<th>change</th><th>95% CI</th><th>detects</th><th>q</th><th>notes</th></tr>"
    )
    rows = []
    for index, entry in enumerate(entries):
        c = entry.comparison
        reference = c.reference_median
        rows.append(
            f'<tr class="v-{c.verdict.value}">'
            f'<td class="test"><a href="#m-{index}">{escape(c.label)}</a></td>'
            f'<td><span class="badge v-{c.verdict.value}">{c.verdict.value}</span></td>'
            f"<td>{escape(entry.test.outcome)}</td>"
            f'<td class="num">{_quantity(reference, c.unit)}</td>'
            f'<td class="num">{_quantity(c.now, c.unit)}</td>'
            f'<td class="num">{"-" if c.ratio is None else format_change(c.ratio)}</td>'
            f'<td class="num">{_interval(c)}</td>'
            f'<td class="num">{escape(format_detectable(c.detectable_change))}</td>'
            f'<td class="num">{_q(c.q_value)}</td>'
            f"<td>{escape(_own_notes(c, shared))}</td>"
            "</tr>"
        )
    return [
        '<section id="measurements">',
        "<h2>All measurements</h2>",
        '<table class="results">',
        f"<thead>{head}</thead>",
        "<tbody>",
        *rows,
        "</tbody>",
        "</table>",
        "</section>",
    ]


def _details(
    entries: Sequence[_Entry], shared: Mapping[tuple[Verdict, tuple[str, ...]], object]
) -> list[str]:
    parts = [
        '<section id="details">',
        "<h2>Per measurement</h2>",
        '<p class="help">Left: the distributions. This run\'s box and dots are its own '
        "samples. The baseline's raw samples are not in the results file, so its box is "
        "drawn from its stored summary: quartiles, median, and whiskers from its minimum to "
        "its maximum (the same for this run's box). The change is measured against the "
        "baseline's centre (the mean of its run-level medians, speed-adjusted to this run "
        "where a speed reference was taken), which can differ from the median of its box. "
        "Middle: the change with its 95% confidence interval and the threshold band. "
        "Right: this run's samples in the order they were taken (drift, warm-up or a "
        "throttled stretch shows here), over the baseline's interquartile range (band) and "
        "the baseline figure the change was measured against (dashed).</p>",
    ]
    for index, entry in enumerate(entries):
        m, c = entry.measurement, entry.comparison
        facts = [f"{len(m.samples)} samples"]
        if m.loops is not None:
            facts.append(f"{m.loops} call{'' if m.loops == 1 else 's'} per sample")
        if m.stop_reason:
            facts.append(f"stopped on {m.stop_reason}")
        if c.looks > 1:
            facts.append(f"{c.looks} looks")
        facts.append(f"test {entry.test.outcome}")
        if entry.test.extra_info:
            facts.append(f"extra info: {extra_info_text(entry.test.extra_info)}")
        if entry.test.location is not None:
            facts.append(f"at {entry.test.location[0]}:{entry.test.location[1]}")
        parts += [
            f'<article class="measurement v-{c.verdict.value}" id="m-{index}">',
            f'<h3><span class="badge v-{c.verdict.value}">{c.verdict.value}</span> '
            f'<span class="name">{escape(c.label)}</span></h3>',
            f'<p class="explain">{escape(_explained(c, shared))}</p>',
            f'<p class="facts">{escape("; ".join(facts))}</p>',
            '<div class="pair">',
            f'<div class="chart small"><canvas data-chart="distribution" data-index="{index}" '
            'role="img" aria-label="baseline and current distributions"></canvas></div>',
            f'<div class="chart small"><canvas data-chart="change" data-index="{index}" '
            'role="img" aria-label="change with its 95% CI"></canvas></div>',
            f'<div class="chart small"><canvas data-chart="order" data-index="{index}" '
            'role="img" aria-label="samples in the order they were taken"></canvas></div>',
            "</div>",
            *_probe_details(m),
            "</article>",
        ]
    parts.append("</section>")
    return parts


def _explained(c: Comparison, shared: Mapping[tuple[Verdict, tuple[str, ...]], object]) -> str:
    if (c.verdict, c.notes) in shared:
        return f"{explain(replace(c, notes=()))}; {_own_notes(c, shared)}"
    return explain(c)


def _probe_details(m: Measurement) -> list[str]:
    """What the probe recorded (timer, mode, telemetry, throughput), folded away."""
    if not m.machine and not m.details:
        return []
    recorded = {"machine": dict(m.machine), "details": dict(m.details)}
    text = json.dumps(recorded, indent=1, sort_keys=True, default=str)
    return [
        "<details><summary>How it was measured</summary>",
        f"<pre>{escape(text)}</pre>",
        "</details>",
    ]


def _environment(run: RunResults) -> list[str]:
    env = run.environment
    parts = [
        '<section id="environment">',
        "<h2>Environment and settings</h2>",
        '<div class="pair">',
        _key_values("Machine class (compared with baselines)", env.machine),
        _key_values("Also recorded (not compared)", env.info),
        _key_values("Settings", run.settings),
        "</div>",
    ]
    if env.calibration_ns is not None:
        parts.append(f'<p class="help">Machine-speed calibration: {env.calibration_ns:.6g} ns.</p>')
    parts.append("</section>")
    return parts


def _key_values(title: str, values: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{escape(str(key))}</th><td>{escape(_plain(value))}</td></tr>"
        for key, value in sorted(values.items())
    )
    body = rows or '<tr><td colspan="2">(none)</td></tr>'
    return f'<table class="kv"><caption>{escape(title)}</caption>{body}</table>'


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _quantity(value: float | None, unit: str) -> str:
    return "-" if value is None else escape(format_quantity(value, unit))


def _interval(c: Comparison) -> str:
    if c.ci_low is None or c.ci_high is None:
        return "-"
    return f"{format_change(c.ci_low)}..{format_change(c.ci_high)}"


def _q(q: float | None) -> str:
    if q is None:
        return "-"
    return f"{q:.2g}" if q > 0 else "&lt;1e-300"  # as explain() prints it


_STYLE = """
:root { color-scheme: light; --muted: #6b7280; --line: #e5e7eb; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  margin: 0 auto; max-width: 1200px; padding: 1em 1.5em 3em; color: #111827; }
h1 { margin: 0.2em 0; font-size: 1.6em; }
h2 { margin-top: 1.8em; border-bottom: 1px solid var(--line); padding-bottom: 0.2em; }
h3 { font-size: 1.05em; margin: 0 0 0.3em; word-break: break-all; }
.run, .help, .facts, footer { color: var(--muted); }
.badge { display: inline-block; padding: 0 0.5em; border-radius: 0.8em; color: #fff;
  font-size: 0.85em; font-weight: 600; white-space: nowrap; }
.v-REGRESSED .badge, .badge.v-REGRESSED { background: #c62828; }
.badge.v-INCONCLUSIVE { background: #b26a00; }
.badge.v-INCOMPARABLE { background: #8e24aa; }
.badge.v-NEW { background: #00838f; }
.badge.v-IMPROVED { background: #2e7d32; }
.badge.v-UNCHANGED { background: #6b7280; }
.chart { position: relative; width: 100%; }
.chart.small { height: 180px; }
.pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr));
  gap: 1em; align-items: start; }
table { border-collapse: collapse; }
table.results { width: 100%; font-size: 0.93em; }
table.results th, table.results td { padding: 0.25em 0.5em; border-bottom: 1px solid var(--line);
  text-align: left; vertical-align: top; }
table.results td.test { word-break: break-all; font-family: ui-monospace, monospace; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.v-REGRESSED td { background: #fef2f2; }
table.kv { font-size: 0.9em; }
table.kv caption { text-align: left; font-weight: 600; padding-bottom: 0.3em; }
table.kv th, table.kv td { text-align: left; padding: 0.15em 0.6em 0.15em 0;
  border-bottom: 1px solid var(--line); word-break: break-all; vertical-align: top; }
article.measurement { border: 1px solid var(--line); border-left: 4px solid #6b7280;
  border-radius: 4px; padding: 0.8em 1em; margin: 1em 0; }
article.v-REGRESSED { border-left-color: #c62828; }
article.v-INCONCLUSIVE { border-left-color: #b26a00; }
article.v-INCOMPARABLE { border-left-color: #8e24aa; }
article.v-NEW { border-left-color: #00838f; }
article.v-IMPROVED { border-left-color: #2e7d32; }
.explain { font-family: ui-monospace, monospace; font-size: 0.9em; word-break: break-word; }
footer { margin-top: 3em; font-size: 0.85em; }
details pre { font-size: 0.85em; max-height: 24em; overflow: auto; background: #f9fafb;
  padding: 0.5em; }
"""

# First in the page, so that it sees everything the policy blocks (say, markup that got
# past the escaping) and leaves a trace on the root element for a person or a test.
_WATCHDOG = (
    'document.addEventListener("securitypolicyviolation", function (e) {'
    " var r = document.documentElement;"
    ' r.setAttribute("data-perfgate-blocked", (r.getAttribute("data-perfgate-blocked") || "")'
    ' + e.violatedDirective + " " + (e.blockedURI || "inline") + "; ");'
    " });"
)

# The page's own script. It reads the data block, never writes HTML (only textContent
# and canvases), and marks the root element when it is done: the browser test reads it.
_SCRIPT = r"""
(function () {
  "use strict";
  var root = document.documentElement;
  var data = JSON.parse(document.getElementById("perfgate-data").textContent);
  if (typeof Chart === "undefined") {
    root.setAttribute("data-perfgate-charts", "unavailable");
    return;
  }
  Chart.defaults.animation = false;  // a static page: draw once, screenshots are complete
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  var colors = data.colors;
  var rows = data.measurements;

  function change(ratio) {  // as format_change: 1.218 -> "+21.8%"
    var percent = (ratio - 1) * 100;
    return (percent >= 0 ? "+" : "") + percent.toFixed(1) + "%";
  }

  function fade(hex, alpha) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  function shorten(text, length) {  // keep the end: the test's own name and its parameters
    return text.length <= length ? text : "\u2026" + text.slice(text.length - length + 1);
  }

  // Ticks at round percentages on the log-ratio axis, spread out from 0.
  var UP = [0.5, 1, 2, 5, 10, 20, 30, 50, 100, 200, 500, 1000, 2000, 5000, 10000];
  var DOWN = [0.5, 1, 2, 5, 10, 20, 30, 50, 80, 90, 95, 99, 99.9];
  function niceTicks(min, max, width) {
    var gap = (max - min) / Math.max(3, Math.floor(width / 80)), ticks = [];
    if (min <= 0 && max >= 0) ticks.push({value: 0});
    [[UP, 1], [DOWN, -1]].forEach(function (side) {
      var last = 0;
      side[0].forEach(function (p) {
        var v = Math.log(1 + side[1] * p / 100);
        if (v >= min && v <= max && Math.abs(v - last) >= gap) {
          ticks.push({value: v});
          last = v;
        }
      });
    });
    return ticks.length >= 2 ? ticks.sort(function (a, b) { return a.value - b.value; }) : null;
  }

  // The practical threshold as a grey band on each row: |log ratio| < log(1 + threshold).
  var thresholdBand = {
    id: "perfgateThresholdBand",
    beforeDatasetsDraw: function (chart, args, options) {
      var x = chart.scales.x, y = chart.scales.y, ctx = chart.ctx;
      var thresholds = options.thresholds || [];
      var step = thresholds.length > 1
        ? Math.abs(y.getPixelForValue(1) - y.getPixelForValue(0))
        : y.bottom - y.top;
      ctx.save();
      ctx.fillStyle = "rgba(107,114,128,0.16)";
      thresholds.forEach(function (t, i) {
        var half = Math.log(1 + t);
        var left = Math.max(x.left, x.getPixelForValue(-half));
        var right = Math.min(x.right, x.getPixelForValue(half));
        var centre = y.getPixelForValue(i);
        if (right > left) ctx.fillRect(left, centre - step * 0.45, right - left, step * 0.9);
      });
      ctx.restore();
    }
  };

  function changeChart(canvas, items) {
    var low = 0, high = 0;
    items.forEach(function (m) {
      var c = m.change, t = Math.log(1 + m.threshold);
      [Math.log(c.low || c.ratio), Math.log(c.high || c.ratio), -t, t].forEach(function (v) {
        low = Math.min(low, v);
        high = Math.max(high, v);
      });
    });
    var pad = (high - low) * 0.06 || 0.01;
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: items.map(function (m) { return m.label; }),
        datasets: [{
          label: "95% CI",
          data: items.map(function (m) {
            var c = m.change;
            return c.low && c.high ? [Math.log(c.low), Math.log(c.high)] : null;
          }),
          backgroundColor: items.map(function (m) { return fade(colors[m.verdict], 0.55); }),
          barPercentage: 0.3,
          maxBarThickness: 12,
          categoryPercentage: 1,
          borderSkipped: false
        }, {
          type: "line",
          label: "change",
          data: items.map(function (m) { return Math.log(m.change.ratio); }),
          showLine: false,
          pointRadius: 5,
          pointHoverRadius: 7,
          pointBackgroundColor: items.map(function (m) { return colors[m.verdict]; }),
          pointBorderColor: "#fff"
        }]
      },
      options: {
        indexAxis: "y",
        maintainAspectRatio: false,
        scales: {
          x: {
            type: "linear",
            min: low - pad,
            max: high + pad,
            title: {display: true, text: "change against the baseline (log scale)"},
            afterBuildTicks: function (scale) {
              var ticks = niceTicks(scale.min, scale.max, scale.width || 400);
              if (ticks) scale.ticks = ticks;
            },
            ticks: {callback: function (v) { return change(Math.exp(v)); }},
            grid: {
              color: function (c) {
                return c.tick && Math.abs(c.tick.value) < 1e-12 ? "#374151" : "#e5e7eb";
              }
            }
          },
          y: {
            // One row (a measurement's own plot): its name is the heading above.
            display: items.length > 1,
            ticks: {callback: function (v) { return shorten(this.getLabelForValue(v), 60); }}
          }
        },
        plugins: {
          legend: {display: false},
          perfgateThresholdBand: {thresholds: items.map(function (m) { return m.threshold; })},
          tooltip: {
            callbacks: {
              title: function (ctx) { return items[ctx[0].dataIndex].label; },
              label: function (ctx) {
                var m = items[ctx.dataIndex], c = m.change;
                var text = m.verdict + " " + change(c.ratio);
                if (c.low && c.high) text += ", 95% CI " + change(c.low) + ".." + change(c.high);
                text += ", threshold " + (m.threshold * 100).toPrecision(3) * 1 + "%";
                return m.higher_is_better ? text + " (higher is better)" : text;
              }
            }
          }
        }
      },
      plugins: [thresholdBand]
    });
  }

  function distributionChart(canvas, m) {
    var labels = [], boxes = [], fills = [], lines = [];
    if (m.baseline) {
      labels.push("baseline (summary)");
      boxes.push(Object.assign({}, m.baseline, {
        whiskerMin: m.baseline.min, whiskerMax: m.baseline.max, items: [], outliers: []
      }));
      fills.push("rgba(107,114,128,0.25)");
      lines.push("#4b5563");
    }
    labels.push("now (" + m.samples + " samples)");
    boxes.push(Object.assign({}, m.current, {
      whiskerMin: m.current.min, whiskerMax: m.current.max, outliers: []
    }));
    fills.push(fade(colors[m.verdict], 0.25));
    lines.push(colors[m.verdict]);
    return new Chart(canvas, {
      type: "boxplot",
      data: {
        labels: labels,
        datasets: [{
          label: m.unit,
          data: boxes,
          backgroundColor: fills,
          borderColor: lines,
          borderWidth: 1.5,
          itemRadius: 2,
          itemStyle: "circle",
          itemBackgroundColor: fade(colors[m.verdict], 0.45),
          itemBorderColor: "rgba(0,0,0,0)",
          outlierRadius: 0,
          meanRadius: 0,
          randomSeed: 1
        }]
      },
      options: {
        indexAxis: "y",
        maintainAspectRatio: false,
        // Not from zero: two boxes 1% apart must not look the same.
        scales: {x: {beginAtZero: false, grace: "4%", title: {display: true, text: m.unit}}},
        plugins: {legend: {display: false}}
      }
    });
  }

  // The baseline's interquartile range as a band behind the samples, and the baseline
  // figure that the change was measured against as a dashed line.
  var baselineBand = {
    id: "perfgateBaselineBand",
    beforeDatasetsDraw: function (chart, args, options) {
      var b = options.baseline, x = chart.scales.x, y = chart.scales.y, ctx = chart.ctx;
      if (!b) return;
      var top = Math.max(y.top, y.getPixelForValue(b.q3));
      var bottom = Math.min(y.bottom, y.getPixelForValue(b.q1));
      ctx.save();
      ctx.fillStyle = "rgba(107,114,128,0.18)";
      if (bottom > top) ctx.fillRect(x.left, top, x.right - x.left, bottom - top);
      var middle = y.getPixelForValue(options.reference);
      if (middle >= y.top && middle <= y.bottom) {
        ctx.strokeStyle = "#4b5563";
        ctx.setLineDash([4, 3]);
        ctx.beginPath();
        ctx.moveTo(x.left, middle);
        ctx.lineTo(x.right, middle);
        ctx.stroke();
      }
      ctx.restore();
    }
  };

  function orderChart(canvas, m) {
    var b = m.baseline, reference = m.reference === null && b ? b.median : m.reference;
    var points = m.current.items.map(function (v, i) {
      return {x: m.positions ? m.positions[i] : i + 1, y: v};
    });
    return new Chart(canvas, {
      type: "line",
      data: {
        datasets: [{
          label: "now",
          data: points,
          borderColor: fade(colors[m.verdict], 0.6),
          backgroundColor: colors[m.verdict],
          borderWidth: 1,
          pointRadius: points.length > 200 ? 0 : 2
        }]
      },
      options: {
        maintainAspectRatio: false,
        scales: {
          x: {
            type: "linear",
            ticks: {precision: 0},
            title: {display: true, text: "sample, in the order taken"}
          },
          y: {
            beginAtZero: false,
            grace: "4%",
            // Keep the baseline's band in view, however far the samples moved from it.
            suggestedMin: b ? Math.min(b.q1, reference) : undefined,
            suggestedMax: b ? Math.max(b.q3, reference) : undefined,
            title: {display: true, text: m.unit}
          }
        },
        plugins: {
          legend: {display: false},
          perfgateBaselineBand: {baseline: b, reference: reference}
        }
      },
      plugins: [baselineBand]
    });
  }

  var made = 0, errors = [];
  function draw(canvas, build) {
    try {
      build(canvas);
      made += 1;
    } catch (error) {
      errors.push(String(error));
      var note = document.createElement("p");
      note.className = "help";
      note.textContent = "This plot could not be drawn: " + error;
      canvas.parentNode.appendChild(note);
    }
  }

  function drawOne(canvas) {
    var kind = canvas.getAttribute("data-chart");
    var m = rows[Number(canvas.getAttribute("data-index"))];
    if (kind === "overview") {
      var withChange = rows.filter(function (r) { return r.change; });
      draw(canvas, function (c) { changeChart(c, withChange); });
    } else if (kind === "distribution") {
      draw(canvas, function (c) { distributionChart(c, m); });
    } else if (kind === "order") {
      draw(canvas, function (c) { orderChart(c, m); });
    } else if (kind === "change") {
      if (m.change) {
        draw(canvas, function (c) { changeChart(c, [m]); });
      } else {
        var note = document.createElement("p");
        note.className = "help";
        note.textContent = "No change to plot: " + m.verdict + ".";
        canvas.parentNode.replaceChild(note, canvas);
      }
    }
  }

  // A few plots at a time, top first: a run of hundreds of measurements shows its
  // overview and table at once and stays scrollable while the rest are drawn.
  var pending = Array.prototype.slice.call(document.querySelectorAll("canvas[data-chart]"));
  function drawSome() {
    pending.splice(0, 24).forEach(drawOne);
    if (pending.length) {
      setTimeout(drawSome, 0);
      return;
    }
    root.setAttribute("data-perfgate-charts", String(made));
    if (errors.length) root.setAttribute("data-perfgate-errors", errors.join(" | "));
  }
  drawSome();
})();
"""

__all__: Sequence[str] = ("VENDORED_SCRIPTS", "render_html", "script_json")
