"""The end-of-run table, as plain text with ANSI colours where the terminal takes them.

Written out here rather than with rich: importing rich and laying out its Table cost
about 20 ms and 0.3 ms a row, the largest part of what a 100-test gated run added to
plain pytest (docs/performance.md). Columns are sized to their widest cell, in terminal
cells (a CJK character takes two), and the caller's width is honoured by dropping
columns or folding the table (``render_table``), so nothing here ever wraps.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from ..model import (
    Comparison,
    Measurement,
    Verdict,
    format_change,
    format_detectable,
    format_quantity,
)

#: SGR codes of each verdict's colour (bold red, green, dim, yellow, cyan, magenta).
VERDICT_STYLE = {
    Verdict.REGRESSED: "1;31",
    Verdict.IMPROVED: "32",
    Verdict.UNCHANGED: "2",
    Verdict.INCONCLUSIVE: "33",
    Verdict.NEW: "36",
    Verdict.INCOMPARABLE: "35",
}
BOLD = "1"

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
    label_width = max([len("test"), *(cell_width(c.label) for c in ordered)])
    widths = dict(zip(all_headers, _widths(full_rows, all_headers), strict=True))
    for optional in choices:
        headers = _headers(optional)
        natural = label_width + sum(widths[h] + 2 for h in headers)  # two spaces between
        if natural <= width:
            rows = [_select(row, all_headers, headers) for row in full_rows]
            return _aligned_table(ordered, rows, headers, label_width, color) + more
    return _folded_table(ordered, full_rows, width, color) + more


def _select(row: tuple[str, ...], headers: Sequence[str], shown: Sequence[str]) -> tuple[str, ...]:
    return tuple(cell for cell, header in zip(row, headers, strict=True) if header in shown)


def _widths(rows: Sequence[tuple[str, ...]], headers: Sequence[str]) -> list[int]:
    return [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]


def cell_width(text: str) -> int:
    """Terminal cells ``text`` takes: two for a wide (CJK) character, none for a
    combining mark. ASCII, nearly every test id, is its length."""
    if text.isascii():
        return len(text)
    return sum(_char_width(char) for char in text)


def _char_width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def _pad(text: str, width: int, *, right: bool = False) -> str:
    fill = " " * max(width - cell_width(text), 0)
    return fill + text if right else text + fill


def _styled(text: str, code: str | None, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color and code else text


def _fold(text: str, width: int) -> list[str]:
    """``text`` cut into lines of at most ``width`` cells (a test id longer than the line)."""
    lines, line, used = [], "", 0
    for char in text:
        size = _char_width(char)
        if used + size > width and line:
            lines.append(line)
            line, used = "", 0
        line += char
        used += size
    return [*lines, line]


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


def _aligned_table(
    ordered: Sequence[Comparison],
    rows: Sequence[tuple[str, ...]],
    headers: Sequence[str],
    label_width: int,
    color: bool,
) -> str:
    """One line per row: the test id, then the figures, two spaces apart; the verdict
    left-aligned, the figures right-aligned, the header bold."""
    widths = _widths(rows, headers)

    def line(label: str, cells: Sequence[str], style: str | None) -> str:
        parts = [_pad(label, label_width)]
        for index, (cell, size) in enumerate(zip(cells, widths, strict=True)):
            text = _pad(cell, size, right=index > 0)
            parts.append(_styled(text, style, color) if index == 0 else text)
        return "  ".join(parts).rstrip()

    pairs = enumerate(zip(headers, widths, strict=True))
    titles = [_pad(title, size, right=index > 0) for index, (title, size) in pairs]
    header = _styled("  ".join([_pad("test", label_width), *titles]).rstrip(), BOLD, color)
    lines = [header]
    lines.extend(
        line(c.label, cells, VERDICT_STYLE[c.verdict])
        for c, cells in zip(ordered, rows, strict=True)
    )
    return "\n".join(lines) + "\n"


def _folded_table(
    ordered: Sequence[Comparison], rows: Sequence[tuple[str, ...]], width: int, color: bool
) -> str:
    """Each test id on its own line (folded where longer than the line), its figures
    indented below it."""
    widths = _widths(rows, _FIGURES)
    width = max(width, 1)

    def figures(cells: Sequence[str], style: str | None) -> list[str]:
        """The figures on as few lines as fit, a cell never cut where it fits a line."""
        verdict = cells[0].ljust(widths[0])
        lines = _fold("  " + verdict, width)
        if len(lines) == 1:  # the verdict whole on its line: colour it
            lines[0] = "  " + _styled(verdict, style, color)
        used = cell_width("  " + verdict)
        for cell, size in zip(cells[1:], widths[1:], strict=True):
            text = "  " + cell.rjust(size)
            if used + cell_width(text) <= width:
                lines[-1] += text
                used += cell_width(text)
            else:
                lines.extend(_fold(cell, width))
                used = cell_width(lines[-1])
        return lines

    lines = [_styled("test", BOLD, color), *figures(_FIGURES, BOLD)]
    for c, cells in zip(ordered, rows, strict=True):
        lines.extend(_fold(c.label, width))
        lines.extend(figures(cells[: len(_FIGURES)], VERDICT_STYLE[c.verdict]))
    return "\n".join(lines) + "\n"


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
