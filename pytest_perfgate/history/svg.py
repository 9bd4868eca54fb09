"""Trend plots as inline SVG, drawn in Python: the dashboard opens from file:// with no
script library, and a page of a thousand points stays a few kilobytes.

Every text that reaches the drawing (labels, commit ranges, units) goes through
``report.html.escape``. Points are drawn as zero-length segments of one path per machine
class (round caps make them dots), so the size of a plot grows by a dozen bytes a point,
not by an element each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import final

from ..model import format_quantity
from ..report.html import escape

#: One colour per machine class, in order of first appearance (a colour-blind-safe set).
LINE_COLORS = ("#1f77b4", "#d95f02", "#7570b3", "#1b9e77", "#e7298a", "#66a61e", "#a6761d")
CHANGE_COLOR = "#c62828"
#: Room a change point's label takes ("+20.1% 1a2b3c4d..5e6f7a8b" at 11 px), in pixels.
LABEL_WIDTH = 160
BUDGET_COLOR = "#b26a00"
BAND_COLOR = "#93c5fd"


@final
@dataclass(frozen=True, slots=True)
class PlottedLine:
    """The points of one machine class."""

    label: str  #: the machine class
    times: tuple[float, ...]  #: each run's start, seconds since the epoch, oldest first
    values: tuple[float, ...]  #: the measurement at each of those runs


@final
@dataclass(frozen=True, slots=True)
class PlottedChange:
    """A change point: a vertical mark between two runs, with its size and commit range."""

    at: datetime  #: the first run after the change
    label: str  #: "+20.1% (a1b2c3d..e4f5a6b)": what the mark's tooltip and caption say
    worse: bool  #: drawn red when worse, green when better


@final
@dataclass(frozen=True, slots=True)
class PlottedBand:
    """A forecast: a central line and a prediction band, at future times."""

    at: tuple[datetime, ...]
    low: tuple[float, ...]
    middle: tuple[float, ...]
    high: tuple[float, ...]
    label: str = "forecast"  #: "80% prediction band" or what the model says it is


@final
@dataclass(frozen=True, slots=True)
class TrendPlot:
    """Everything one trend plot shows."""

    title: str
    unit: str
    lines: tuple[PlottedLine, ...]
    changes: tuple[PlottedChange, ...] = ()
    budget: float | None = None
    bands: tuple[PlottedBand, ...] = ()  #: one per machine class that has a forecast
    width: int = 760
    height: int = 300


@final
@dataclass(frozen=True, slots=True)
class _Frame:
    """Data space to pixels: time on x (seconds since the epoch), the unit on y."""

    left: float
    right: float
    top: float
    bottom: float
    t0: float
    t1: float
    y0: float
    y1: float

    def x(self, at: datetime) -> float:
        return self.left + (at.timestamp() - self.t0) / (self.t1 - self.t0) * (
            self.right - self.left
        )

    def y(self, value: float) -> float:
        return self.bottom - (value - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)


def render_trend_svg(plot: TrendPlot) -> str:
    """The plot as one ``<svg>`` element (no XML prolog: it goes inline into HTML)."""
    frame = _frame(plot)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="trend" role="img" '
        f'width="{plot.width}" height="{plot.height}" viewBox="0 0 {plot.width} {plot.height}" '
        f'font-family="system-ui, sans-serif" font-size="11">',
        f"<title>{escape(plot.title)}</title>",
    ]
    if frame is None:
        parts.append(f'<text x="10" y="{plot.height / 2}">no points</text></svg>')
        return "".join(parts)
    parts += _axes(frame, plot.unit)
    parts.append(
        f'<clipPath id="plot-area"><rect x="{_r(frame.left)}" y="{_r(frame.top)}" '
        f'width="{_r(frame.right - frame.left)}" height="{_r(frame.bottom - frame.top)}"/>'
        "</clipPath>"
    )
    for band in plot.bands:
        parts += _band(frame, band)
    if plot.budget is not None:
        y = _r(frame.y(plot.budget))
        parts.append(
            f'<line class="budget" x1="{_r(frame.left)}" x2="{_r(frame.right)}" y1="{y}" '
            f'y2="{y}" stroke="{BUDGET_COLOR}" stroke-width="1.5" stroke-dasharray="6 4">'
            f"<title>budget {escape(format_quantity(plot.budget, plot.unit))}</title></line>"
        )
    row_ends = [-1e9, -1e9]  # where the last label of each row ends, in pixels
    for change in sorted(plot.changes, key=lambda c: c.at):
        x = frame.x(change.at)
        row = 0 if x - LABEL_WIDTH / 2 > row_ends[0] else 1
        row_ends[row] = x + LABEL_WIDTH / 2
        parts.append(_change_mark(frame, change, row))
    for index, line in enumerate(plot.lines):
        parts.append(_dots(frame, line, LINE_COLORS[index % len(LINE_COLORS)]))
    parts.append(_legend(plot, frame))
    parts.append("</svg>")
    return "".join(parts)


def _frame(plot: TrendPlot) -> _Frame | None:
    times = [
        t
        for line in plot.lines
        for t in (min(line.times, default=0), max(line.times, default=0))
        if line.times
    ]
    values = [
        v
        for line in plot.lines
        for v in (min(line.values, default=0), max(line.values, default=0))
        if line.values
    ]
    if not times:
        return None
    for band in plot.bands:
        # The band's middle sets the scale; its edges, which can open wide a year out,
        # are clipped to the frame rather than squash the runs into a line.
        times += [at.timestamp() for at in band.at]
        values += list(band.middle)
    if plot.budget is not None:
        values.append(plot.budget)
    t0, t1 = min(times), max(times)
    if t1 - t0 < 1.0:  # one run: give the axis a day around it
        t0, t1 = t0 - 43_200, t1 + 43_200
    room = (t1 - t0) * 0.02  # dots at the ends stay clear of the frame
    t0, t1 = t0 - room, t1 + room
    low, high = min(values), max(values)
    y0, y1 = _nice_range(low, high)
    return _Frame(
        left=70.0,
        right=plot.width - 12.0,
        top=32.0,
        bottom=plot.height - 26.0,
        t0=t0,
        t1=t1,
        y0=y0,
        y1=y1,
    )


def _nice_range(low: float, high: float) -> tuple[float, float]:
    """A y range with a little room around the data, starting at zero when the data is
    close to it (a trend plot that hides zero exaggerates changes less when it cannot)."""
    if high <= low:
        spread = abs(high) * 0.1 or 1.0
        return low - spread, high + spread
    pad = (high - low) * 0.08
    y0 = 0.0 if low >= 0 and low - pad < (high - low) * 0.5 else low - pad
    return y0, high + pad


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``[low, high]``: steps of 1, 2 or 5 times a power of ten."""
    if not high > low:
        return [low]
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _time_ticks(t0: float, t1: float) -> list[datetime]:
    """About six date ticks at whole days (or hours, for a history shorter than two days)."""
    span = t1 - t0
    unit = 86_400 if span >= 2 * 86_400 else 3_600
    step = max(1, round(span / unit / 6)) * unit
    first = math.ceil(t0 / step) * step
    return [
        datetime.fromtimestamp(t, tz=timezone.utc)
        for t in range(int(first), int(t1) + 1, int(step))
    ]


def _axes(frame: _Frame, unit: str) -> list[str]:
    parts = [
        f'<rect x="{_r(frame.left)}" y="{_r(frame.top)}" width="{_r(frame.right - frame.left)}" '
        f'height="{_r(frame.bottom - frame.top)}" fill="none" stroke="#d1d5db"/>'
    ]
    for value in nice_ticks(frame.y0, frame.y1):
        y = _r(frame.y(value))
        parts.append(
            f'<line x1="{_r(frame.left)}" x2="{_r(frame.right)}" y1="{y}" y2="{y}" '
            f'stroke="#f3f4f6"/><text x="{_r(frame.left - 4)}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle" fill="#6b7280">'
            f"{escape(format_quantity(value, unit)) if value else '0'}</text>"
        )
    span = frame.t1 - frame.t0
    label = "%Y-%m-%d" if span >= 2 * 86_400 else "%m-%d %H:%M"
    for at in _time_ticks(frame.t0, frame.t1):
        x = frame.x(at)
        if x > frame.right - 30:  # a label there would run off the drawing
            continue
        parts.append(
            f'<text x="{_r(x)}" y="{_r(frame.bottom + 15)}" text-anchor="middle" '
            f'fill="#6b7280">{at.strftime(label)}</text>'
        )
    return parts


def _band(frame: _Frame, band: PlottedBand) -> list[str]:
    def xy(at: datetime, value: float) -> str:
        return f"{_r(frame.x(at))},{_r(frame.y(value))}"

    upper = " ".join(map(xy, band.at, band.high))
    lower = " ".join(reversed(list(map(xy, band.at, band.low))))
    middle = " ".join(map(xy, band.at, band.middle))
    return [
        f'<polygon class="band" clip-path="url(#plot-area)" points="{upper} {lower}" '
        f'fill="{BAND_COLOR}" '
        f'fill-opacity="0.45" stroke="none"><title>{escape(band.label)}</title></polygon>',
        f'<polyline clip-path="url(#plot-area)" points="{middle}" fill="none" stroke="#2563eb" '
        'stroke-dasharray="3 3"/>',
    ]


def _change_mark(frame: _Frame, change: PlottedChange, row: int) -> str:
    """A change's line and label; labels that would overlap go on a second row above."""
    x = _r(frame.x(change.at))
    color = CHANGE_COLOR if change.worse else "#2e7d32"
    return (
        f'<g class="change"><line x1="{x}" x2="{x}" y1="{_r(frame.top - 11 * row)}" '
        f'y2="{_r(frame.bottom)}" stroke="{color}" stroke-width="1.5" stroke-dasharray="2 2"/>'
        f'<text x="{x}" y="{_r(frame.top - 5 - 11 * row)}" text-anchor="middle" '
        f'fill="{color}">{escape(change.label)}</text><title>{escape(change.label)}</title></g>'
    )


def _dots(frame: _Frame, line: PlottedLine, color: str) -> str:
    """One path of dots, in tenths of a pixel as integers (scaled back by the path's
    transform): a thousand points cost a few milliseconds, not a float format each."""
    import numpy as np  # the analyses that come before any plot have imported it already

    times = np.asarray(line.times, dtype=np.float64)
    values = np.asarray(line.values, dtype=np.float64)
    xs = np.rint(
        (frame.left + (times - frame.t0) / (frame.t1 - frame.t0) * (frame.right - frame.left)) * 10
    ).astype(np.int64)
    ys = np.rint(
        (frame.bottom - (values - frame.y0) / (frame.y1 - frame.y0) * (frame.bottom - frame.top))
        * 10
    ).astype(np.int64)
    path = "".join([f"M{x} {y}h0" for x, y in zip(xs.tolist(), ys.tolist(), strict=True)])
    return (
        f'<path class="points" d="{path}" transform="scale(0.1)" stroke="{color}" '
        f'stroke-width="40" stroke-linecap="round" fill="none"><title>{escape(line.label)}: '
        f"{len(line.times)} runs</title></path>"
    )


def _legend(plot: TrendPlot, frame: _Frame) -> str:
    items = [(LINE_COLORS[i % len(LINE_COLORS)], line.label) for i, line in enumerate(plot.lines)]
    if plot.budget is not None:
        items.append((BUDGET_COLOR, "budget"))
    if plot.bands:
        items.append(("#2563eb", plot.bands[0].label))
    parts = ['<g class="legend">']
    x = frame.left + 6
    for color, label in items:
        parts.append(
            f'<rect x="{_r(x)}" y="{_r(frame.top + 6)}" width="10" height="10" fill="{color}"/>'
            f'<text x="{_r(x + 14)}" y="{_r(frame.top + 15)}">{escape(label)}</text>'
        )
        x += 24 + 6.5 * len(label)
    parts.append("</g>")
    return "".join(parts)


def _r(value: float) -> str:
    """A coordinate with one decimal: enough for a screen, short in the file."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


__all__: Sequence[str] = (
    "PlottedBand",
    "PlottedChange",
    "PlottedLine",
    "TrendPlot",
    "nice_ticks",
    "render_trend_svg",
)
