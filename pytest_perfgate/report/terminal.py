"""The end-of-run table, rendered with rich into text that pytest's terminal writer prints."""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..model import (
    Comparison,
    Measurement,
    Verdict,
    format_change,
    format_detectable,
    format_quantity,
)

VERDICT_STYLE = {
    Verdict.REGRESSED: "bold red",
    Verdict.IMPROVED: "green",
    Verdict.UNCHANGED: "dim",
    Verdict.INCONCLUSIVE: "yellow",
    Verdict.NEW: "cyan",
    Verdict.INCOMPARABLE: "magenta",
}

#: Regressions first: the table is read from the top.
VERDICT_ORDER = [
    Verdict.REGRESSED,
    Verdict.INCONCLUSIVE,
    Verdict.INCOMPARABLE,
    Verdict.NEW,
    Verdict.IMPROVED,
    Verdict.UNCHANGED,
]


#: Rows the table lists at most: the first in table order (regressions first), the rest
#: counted by verdict in one line below it. Nobody reads ten thousand rows, and rendering
#: them took longer than a test; the results file (``--perf-json``) has every one.
MAX_TABLE_ROWS = 200

#: Each measurement's own 95% interval (the verdict's level is corrected for the number of
#: perf tests; the header says which level this is).
CI_HEADER = "95% CI"
#: The minimum detectable change: the smallest worsening this measurement would be flagged for.
DETECTS_HEADER = "detects"
_FIGURES = ("verdict", "baseline", "now", "change")
#: The optional columns, dropped from the left of this list while the table is too wide.
_OPTIONAL = ((CI_HEADER, DETECTS_HEADER), (DETECTS_HEADER,), ())


def render_table(
    comparisons: Sequence[Comparison], *, width: int = 120, color: bool = False
) -> str:
    """A table of every measurement: verdict, baseline, now, change, its CI and the
    smallest change it could detect.

    Never wider than ``width``, and never cutting a verdict or a figure: where the table
    does not fit, the CI column goes first, then the detectable change, then each test id
    moves onto its own line above its figures (folded only where the id alone is wider
    than the line). Beyond ``MAX_TABLE_ROWS`` rows, the rest are counted, not listed."""
    ordered = sorted(comparisons, key=lambda c: (VERDICT_ORDER.index(c.verdict), c.label))
    ordered, left_out = ordered[:MAX_TABLE_ROWS], ordered[MAX_TABLE_ROWS:]
    more = (
        f"... and {len(left_out)} more not listed: {verdict_counts(left_out)}\n" if left_out else ""
    )
    all_headers = _headers(_OPTIONAL[0])
    full_rows = [_cells(c) for c in ordered]
    # A table of NEW and INCOMPARABLE rows alone has no detectable change to show.
    sized = any(c.detectable_change is not None for c in ordered)
    choices = _OPTIONAL if sized else tuple((CI_HEADER,)[: len(o)] for o in _OPTIONAL[1:])
    label_width = max([len("test"), *(len(c.label) for c in ordered)])
    widths = dict(zip(all_headers, _widths(full_rows, all_headers), strict=True))
    for optional in choices:
        headers = _headers(optional)
        natural = label_width + sum(widths[h] + 2 for h in headers)  # two spaces between
        if natural <= width:
            rows = [_select(row, all_headers, headers) for row in full_rows]
            return _rich_table(ordered, rows, headers, width, color) + more
    return _folded_table(ordered, full_rows, width, color) + more


def _select(row: tuple[str, ...], headers: Sequence[str], shown: Sequence[str]) -> tuple[str, ...]:
    return tuple(cell for cell, header in zip(row, headers, strict=True) if header in shown)


def _widths(rows: Sequence[tuple[str, ...]], headers: Sequence[str]) -> list[int]:
    return [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]


def _headers(optional: Sequence[str]) -> tuple[str, ...]:
    return (*_FIGURES, *optional)


def _cells(c: Comparison) -> tuple[str, ...]:
    """verdict, baseline, now, change, CI, detectable change: one row's figures, as text."""
    reference = c.reference_median
    interval = (
        "-"
        if c.ci_low is None or c.ci_high is None
        else f"{format_change(c.ci_low)}..{format_change(c.ci_high)}"
    )
    return (
        c.verdict.value,
        "-" if reference is None else format_quantity(reference, c.unit),
        format_quantity(c.now, c.unit),
        "-" if c.ratio is None else format_change(c.ratio),
        interval,
        format_detectable(c.detectable_change),
    )


def _console(buffer: io.StringIO, width: int, color: bool) -> Console:
    return Console(
        file=buffer,
        width=width,
        force_terminal=color,
        color_system="standard" if color else None,
        no_color=not color,
        highlight=False,
        soft_wrap=False,
    )


def _rich_table(
    ordered: Sequence[Comparison],
    rows: Sequence[tuple[str, ...]],
    headers: Sequence[str],
    width: int,
    color: bool,
) -> str:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("test", no_wrap=True)
    for header in headers:
        table.add_column(header, justify="left" if header == "verdict" else "right", no_wrap=True)
    for c, cells in zip(ordered, rows, strict=True):
        table.add_row(
            Text(c.label),  # plain text: "[a]" in a test id or "[rows]" is not rich markup
            Text(cells[0], style=VERDICT_STYLE[c.verdict]),
            *cells[1:],
        )
    buffer = io.StringIO()
    _console(buffer, width, color).print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().split("\n"))


def _folded_table(
    ordered: Sequence[Comparison], rows: Sequence[tuple[str, ...]], width: int, color: bool
) -> str:
    """Each test id on its own line, its figures indented below it."""
    widths = _widths(rows, _FIGURES)
    buffer = io.StringIO()
    console = _console(buffer, max(width, 1), color)

    def figures(cells: Sequence[str], style: str | None) -> Text:
        line = Text("  ")
        line.append(cells[0].ljust(widths[0]), style=style)
        for cell, size in zip(cells[1:], widths[1:], strict=True):
            line.append("  " + cell.rjust(size))
        return line

    console.print(Text("test", style="bold"), overflow="fold")
    console.print(figures(_FIGURES, "bold"), overflow="fold")
    for c, cells in zip(ordered, rows, strict=True):
        console.print(Text(c.label), overflow="fold")
        console.print(figures(cells[: len(_FIGURES)], VERDICT_STYLE[c.verdict]), overflow="fold")
    return buffer.getvalue()


def verdict_counts(comparisons: Sequence[Comparison]) -> str:
    """``"2 REGRESSED, 18 UNCHANGED"``, in table order."""
    counts = {v: 0 for v in VERDICT_ORDER}
    for c in comparisons:
        counts[c.verdict] += 1
    return ", ".join(f"{n} {v.value}" for v, n in counts.items() if n)


def gpu_lines(measurements: Sequence[tuple[str, Measurement]]) -> list[str]:
    """One line per GPU measurement: how it was timed, its rate against the peak, and
    what the GPU did meanwhile. ``measurements`` pairs a label with its measurement."""
    lines = []
    for label, measurement in measurements:
        gpu = measurement.details.get("gpu")
        if not isinstance(gpu, dict):
            continue
        parts = [f"{gpu.get('mode')}, {gpu.get('timer')}"]
        rate = gpu.get("throughput", {})
        for key, unit, scale in (("bandwidth", "GB/s", 1e9), ("compute", "TFLOP/s", 1e12)):
            value = rate.get("bytes_per_s" if key == "bandwidth" else "flops_per_s")
            if value is None:
                continue
            text = f"{value / scale:.4g} {unit}"
            percent = rate.get(f"{key}_percent_of_peak")
            if percent is not None:
                text += f" = {percent:.1f}% of peak ({rate.get(f'{key}_peak_source')})"
            if rate.get(f"{key}_above_peak"):
                text += f": {rate[f'{key}_above_peak']}"
            parts.append(text)
        telemetry = gpu.get("telemetry")
        if telemetry:
            state = []
            for field, unit in (("sm_clock_mhz", "MHz"), ("power_w", "W"), ("temperature_c", "C")):
                if telemetry.get(field):
                    state.append(f"{telemetry[field]['median']:.0f} {unit}")
            if state:
                parts.append("SM " + ", ".join(state))
            if gpu.get("slowed_samples"):
                reasons = ", ".join(sorted(gpu.get("slowdown_reasons", {})))
                parts.append(f"slowed {gpu['slowed_samples']}/{gpu.get('samples')} ({reasons})")
        else:
            parts.append(f"no telemetry: {gpu.get('telemetry_missing')}")
        lines.append(f"{label}: " + "; ".join(parts))
    return lines
