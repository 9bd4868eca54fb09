"""The end-of-run table, rendered with rich into text that pytest's terminal writer prints."""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..model import Comparison, Measurement, Verdict, format_change, format_quantity

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


def render_table(
    comparisons: Sequence[Comparison], *, width: int = 120, color: bool = False
) -> str:
    """A table of every measurement: verdict, baseline, now, change and its CI."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("test", no_wrap=True)
    table.add_column("verdict")
    table.add_column("baseline", justify="right")
    table.add_column("now", justify="right")
    table.add_column("change", justify="right")
    table.add_column("95% CI", justify="right")
    ordered = sorted(comparisons, key=lambda c: (VERDICT_ORDER.index(c.verdict), c.label))
    for c in ordered:
        reference = c.reference_median
        baseline = "-" if reference is None else format_quantity(reference, c.unit)
        change = "-" if c.ratio is None else format_change(c.ratio)
        interval = (
            "-"
            if c.ci_low is None or c.ci_high is None
            else f"{format_change(c.ci_low)}..{format_change(c.ci_high)}"
        )
        table.add_row(
            Text(c.label),  # plain text: "[a]" in a test id or "[rows]" is not rich markup
            Text(c.verdict.value, style=VERDICT_STYLE[c.verdict]),
            baseline,
            format_quantity(c.now, c.unit),
            change,
            interval,
        )
    # Never wrap a row: logs have no width limit, and a folded test id cannot be searched.
    widest = max((len(c.label) for c in comparisons), default=0) + 60
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=max(width, widest),
        force_terminal=color,
        color_system="standard" if color else None,
        no_color=not color,
        highlight=False,
        soft_wrap=False,
    )
    console.print(table)
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
