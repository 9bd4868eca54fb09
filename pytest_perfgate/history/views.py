"""What the renderers show of one series: its change points, trend, forecast and budget.

The dashboard and the brief read the same analyses, so they are computed once per series
here, and both renderers describe changes in the same words (``describe_change``).
"""

from __future__ import annotations

import functools
import os
import re
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar, final

from ..model import format_quantity
from .changepoints import ChangePoint, change_points
from .forecast import BudgetOutlook, Prediction, Trend, budget_outlook, trend
from .model import Point, RecordedRun, Series

T = TypeVar("T")
R = TypeVar("R")

#: Quarters the forecast band and the budget outlook look ahead.
QUARTERS_AHEAD = 4
#: Points a trend needs before it is drawn forward: fewer say nothing about a slope.
MIN_TREND_POINTS = 5
#: The "change vs N days ago" column of the dashboard's index.
LOOKBACK = timedelta(days=30)
#: Runs whose median is a level for that column: a busy machine's single slow run is not.
LEVEL_RUNS = 5
#: Coverage of the drawn forecast band.
BAND_COVERAGE = 0.8


@final
@dataclass(frozen=True, slots=True)
class SeriesView:
    """One series with what the analyses found in it."""

    series: Series
    changes: tuple[ChangePoint, ...]  #: change points, oldest first
    forecast: tuple[Prediction, ...]  #: from the last point to the end of the horizon
    outlook: BudgetOutlook | None  #: None without a budget
    change_since: float | None  #: level now / level LOOKBACK before - 1 (``_change_since``)

    @property
    def latest(self) -> Point:
        return self.series.points[-1]

    @property
    def label(self) -> str:
        """``test_id`` and, when it is not the default "time", the measurement's name."""
        series = self.series
        return series.test_id if series.name == "time" else f"{series.test_id} [{series.name}]"


def view_of(series: Series, *, now: datetime) -> SeriesView:
    """Analyse ``series`` (which has at least one point) for the renderers: its change
    points once, the trend from them, the forecast and budget outlook from the trend."""
    changes = tuple(change_points(series)) if len(series.points) >= 2 else ()
    line = trend(series, changes=changes) if len(series.points) >= MIN_TREND_POINTS else None
    outlook = None
    if series.budget is not None and line is not None:
        outlook = budget_outlook(series, QUARTERS_AHEAD, now=now, line=line)
    return SeriesView(
        series=series,
        changes=changes,
        forecast=_forecast(series, line, now),
        outlook=outlook,
        change_since=_change_since(series.points),
    )


#: Below this many items, worker processes cost more than they save.
PARALLEL_FROM = 64

#: What forked workers work on: inherited through fork, never pickled.
_FORKED: tuple[Callable[[Any], Any], Sequence[Any]] | None = None


def forked_map(
    function: Callable[[T], R], items: Sequence[T], *, workers: int | None = None
) -> list[R]:
    """``[function(item) for item in items]``, on Linux spread over ``workers`` forked
    processes (default: the CPUs this process may use). The items reach the workers
    through fork, not pickling (a series of a thousand points pickles slower than it is
    analysed); only the results travel back, so keep them small."""
    global _FORKED
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    if workers < 2 or len(items) < PARALLEL_FROM or sys.platform != "linux":
        return [function(item) for item in items]
    import multiprocessing

    _FORKED = (function, items)
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            return pool.map(_forked_call, range(len(items)), chunksize=16)
    finally:
        _FORKED = None


def _forked_call(index: int) -> Any:
    assert _FORKED is not None
    function, items = _FORKED
    return function(items[index])


def views_of(
    series: Sequence[Series], *, now: datetime, workers: int | None = None
) -> list[SeriesView]:
    """``view_of`` of each series that has points, in order (see ``forked_map``)."""
    series = [s for s in series if s.points]
    found = forked_map(functools.partial(_analysed, now=now), series, workers=workers)
    return [SeriesView(s, *parts) for s, parts in zip(series, found, strict=True)]


def _analysed(series: Series, *, now: datetime) -> tuple[Any, ...]:
    """The analyses of one series, without the series (the caller has it)."""
    view = view_of(series, now=now)
    return view.changes, view.forecast, view.outlook, view.change_since


def _forecast(series: Series, line: Trend | None, now: datetime) -> tuple[Prediction, ...]:
    """The trend read forward from the last point to the end of the QUARTERS_AHEAD-th
    quarter after ``now``, at the last point and at each quarter's end."""
    if line is None or line.points < MIN_TREND_POINTS:  # a change point just before the end
        return ()
    last = series.points[-1].at
    times = [last, *(end for end in quarter_ends(now, QUARTERS_AHEAD) if end > last)]
    # Times, sizes, rates and counts are never negative: a band of a noisy line that
    # reaches below zero is drawn to zero.
    return tuple(
        replace(prediction, low=max(prediction.low, 0.0))
        for prediction in (line.predict(at, BAND_COVERAGE) for at in times)
    )


def _change_since(points: Sequence[Point]) -> float | None:
    """The level of the last LEVEL_RUNS runs against that of the LEVEL_RUNS runs up to
    LOOKBACK before the last one, as medians: one run on a busy machine can be several
    times slower, and a ratio of two single runs would show that run, not the change."""
    cutoff = points[-1].at - LOOKBACK
    earlier = [p.value for p in points if p.at <= cutoff][-LEVEL_RUNS:]
    if not earlier:
        return None
    before = statistics.median(earlier)
    now = statistics.median(p.value for p in points[-LEVEL_RUNS:])
    return now / before - 1.0 if before else None


@final
@dataclass(frozen=True, slots=True)
class HistoryView:
    """A history as the renderers read it: every series analysed, and the runs."""

    views: tuple[SeriesView, ...]
    runs: tuple[RecordedRun, ...]  #: oldest first


def read_history(where: str | Path, *, since: datetime | None = None, now: datetime) -> HistoryView:
    """Read the history at ``where`` (a path, ``sqlite:///PATH`` or ``postgresql://...``)
    and analyse each series that has points since ``since`` (all of them without it)."""
    from .store import open_history  # the store pulls in a database driver: only when asked

    if isinstance(where, Path) or "://" not in where or where.startswith("sqlite:///"):
        path = Path(str(where).removeprefix("sqlite:///"))
        if not path.is_file():
            raise FileNotFoundError(f"no history at {path}")
    with open_history(where) as history:
        series = history.series(since)
        runs = history.runs(since)
    return HistoryView(views=tuple(views_of(series, now=now)), runs=tuple(runs))


_AGE = re.compile(r"^\s*(\d+)\s*([dwmy])\s*$")
_DAYS = {"d": 1, "w": 7, "m": 30, "y": 365}


def parse_since(text: str, *, now: datetime) -> datetime:
    """``90d``, ``12w``, ``6m`` (30 days each), ``1y`` before ``now``, or a date
    (``2026-09-01``, UTC) or an ISO time; ValueError with the forms otherwise."""
    match = _AGE.match(text)
    if match:
        return now - timedelta(days=int(match[1]) * _DAYS[match[2]])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not an age (90d, 12w, 6m, 1y) or a date (2026-09-01)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def quarter_ends(now: datetime, count: int) -> list[datetime]:
    """The ends of the quarter holding ``now`` and of the ``count - 1`` after it (UTC):
    the first instant of each following quarter."""
    month = (now.month - 1) // 3 * 3 + 1
    year = now.year
    ends = []
    for _ in range(count):
        month += 3
        if month > 12:
            month, year = month - 12, year + 1
        ends.append(datetime(year, month, 1, tzinfo=timezone.utc))
    return ends


def short_commit(commit: str | None) -> str:
    return "?" if not commit else commit[:8]


def commit_range(change: ChangePoint) -> str:
    """``a1b2c3d4..e5f6a7b8``: the last commit before the change and the first after."""
    return f"{short_commit(change.commit_before)}..{short_commit(change.commit_after)}"


def describe_change(change: ChangePoint, unit: str) -> str:
    """``+20.1% (95% CI +18.0..+22.3%), 1.20 ms → 1.44 ms``."""
    return (
        f"{change.change * 100:+.1f}% (95% CI {change.change_low * 100:+.1f}.."
        f"{change.change_high * 100:+.1f}%), {format_quantity(change.before, unit)} → "
        f"{format_quantity(change.after, unit)}"
    )


def budget_status(outlook: BudgetOutlook | None) -> str:
    """A few words on a budget: "over budget", "at risk: 2027 Q2 (64%)", "ok"."""
    if outlook is None:
        return "-"
    if outlook.over_budget:
        return "over budget"
    if outlook.first_breach is not None:
        probability = next(
            q.breach_probability for q in outlook.quarters if q.quarter == outlook.first_breach
        )
        return f"at risk: {outlook.first_breach.label} ({probability:.0%})"
    worst = max((q.breach_probability for q in outlook.quarters), default=0.0)
    return f"ok ({worst:.0%} risk in {len(outlook.quarters)} quarters)"


__all__: Sequence[str] = (
    "HistoryView",
    "SeriesView",
    "budget_status",
    "commit_range",
    "describe_change",
    "forked_map",
    "parse_since",
    "quarter_ends",
    "read_history",
    "short_commit",
    "view_of",
    "views_of",
)
