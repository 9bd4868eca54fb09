"""Histories for the dashboard and brief tests: series built point by point, and the
analysis results the renderers draw, as plain values."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pytest_perfgate.history.changepoints import ChangePoint
from pytest_perfgate.history.forecast import (
    BudgetOutlook,
    Prediction,
    Quarter,
    QuarterOutlook,
    Trend,
)
from pytest_perfgate.history.model import Point, Series
from pytest_perfgate.history.views import SeriesView

START = datetime(2026, 6, 1, tzinfo=timezone.utc)
NOW = datetime(2026, 11, 28, tzinfo=timezone.utc)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs a real headless browser: Debian's chromium (apt-get install chromium)",
)


def series(
    test_id: str = "tests/test_parse.py::test_parse",
    *,
    levels: tuple[float, ...] = (1e-3,) * 40,
    machine_class: str = "x86_64-4c-linux",
    budget: float | None = None,
    run_ids: int = 1,
    every: timedelta = timedelta(days=4),
    verdicts: dict[int, str] | None = None,
) -> Series:
    """A series with one point per level, ``every`` apart from START, commit c<i>."""
    verdicts = verdicts or {}
    return Series(
        test_id=test_id,
        name="time",
        unit="s",
        lower_is_better=True,
        statistic="median",
        machine_class=machine_class,
        points=tuple(
            Point(
                at=START + i * every,
                commit=f"c{i:07d}",
                value=v,
                verdict=verdicts.get(i, "UNCHANGED"),
                run_id=run_ids + i,
            )
            for i, v in enumerate(levels)
        ),
        budget=budget,
    )


def change_at(s: Series, index: int, change: float) -> ChangePoint:
    before, after = s.points[index - 1], s.points[index]
    return ChangePoint(
        index=index,
        at=after.at,
        commit_before=before.commit,
        commit_after=after.commit,
        before=before.value,
        after=after.value,
        change=change,
        change_low=change - 0.01,
        change_high=change + 0.01,
        p_value=0.001,
        regression=change > 0,
    )


def a_trend(s: Series) -> Trend:
    return Trend(
        since_index=0,
        since=s.points[0].at,
        origin=s.points[-1].at,
        level=s.points[-1].value,
        log_slope_per_day=0.0,
        log_residual_scale=0.02,
        linear_level=s.points[-1].value,
        linear_slope_per_day=0.0,
        points=len(s.points),
        mean_days=-10.0,
        spread_days=100.0,
    )


def forecast_of(s: Series, growth: float = 0.0) -> tuple[Prediction, ...]:
    last = s.points[-1]
    return tuple(
        Prediction(
            at=last.at + timedelta(days=91 * k),
            expected=last.value * (1 + growth * k),
            low=last.value * (1 + growth * k) * 0.95,
            high=last.value * (1 + growth * k) * 1.05,
            coverage=0.8,
        )
        for k in range(5)
    )


def outlook_of(s: Series, *, breach_in: int | None, over: bool = False) -> BudgetOutlook:
    assert s.budget is not None
    quarters = tuple(
        QuarterOutlook(
            quarter=Quarter(2026 + (3 + k) // 4, (3 + k) % 4 + 1),
            expected=s.points[-1].value,
            breach_probability=0.7 if breach_in is not None and k >= breach_in else 0.1,
        )
        for k in range(4)
    )
    return BudgetOutlook(
        budget=s.budget,
        current=s.points[-1].value,
        headroom=1 - s.points[-1].value / s.budget,
        over_budget=over,
        quarters=quarters,
        first_breach=None if breach_in is None else quarters[breach_in].quarter,
        trend=a_trend(s),
    )


def stepped_view() -> SeriesView:
    """A series that got 20% slower at point 25, with a budget breached in a quarter."""
    s = series(levels=(1e-3,) * 25 + (1.2e-3,) * 15, budget=1.3e-3)
    return SeriesView(
        series=s,
        changes=(change_at(s, 25, 0.2),),
        forecast=forecast_of(s, 0.05),
        outlook=outlook_of(s, breach_in=1),
        change_since=0.2,
    )


def flat_view(test_id: str, machine_class: str = "x86_64-4c-linux") -> SeriesView:
    s = series(test_id, machine_class=machine_class)
    return SeriesView(series=s, changes=(), forecast=forecast_of(s), outlook=None, change_since=0.0)


class Page(HTMLParser):
    """The parts of a dumped DOM the tests look at."""

    def __init__(self) -> None:
        super().__init__()
        self.root: dict[str, str | None] = {}
        self.tags: list[str] = []
        self.classes: list[str] = []
        self.title = ""
        self.rows: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self._in_title = False
        self.dom = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        attributes = dict(attrs)
        self.classes += (attributes.get("class") or "").split()
        if tag == "html":
            self.root = attributes
        elif tag == "title" and not self.title:
            self._in_title = True
        elif tag == "tr":
            self.rows.append(attributes)
        elif tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def browse(url: str, tmp_path: Path) -> Page:
    """Open ``url`` in headless chromium and parse the DOM after its scripts ran."""
    assert CHROMIUM is not None
    completed = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",  # tests run as root in containers
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    page = Page()
    page.dom = completed.stdout
    page.feed(completed.stdout)
    return page


def record_stepped_history(path: Path, *, runs: int = 40, step_at: int = 25) -> datetime:
    """A real SQLite history: ``runs`` gated runs a day apart ending now, of one
    measurement that gets 20% slower at run ``step_at`` (where the gate said REGRESSED),
    with a budget. Returns the first run's time."""
    import random

    from pytest_perfgate.history.model import RecordedMeasurement, RecordedRun, RunKind
    from pytest_perfgate.history.store import open_history

    rng = random.Random(5)
    first = datetime.now(timezone.utc) - timedelta(days=runs)
    with open_history(path) as history:
        for i in range(runs):
            level = 1e-3 * (1.2 if i >= step_at else 1.0)
            history.record(
                RecordedRun(
                    kind=RunKind.GATE,
                    started_at=first + timedelta(days=i),
                    commit=f"{i:02d}" + "ab" * 19,
                    branch="main",
                    machine_class="x86_64-4c-linux",
                    wall_seconds=900.0,
                    source="test",
                ),
                [
                    RecordedMeasurement(
                        test_id="tests/test_parse.py::test_parse",
                        name="time",
                        unit="s",
                        lower_is_better=True,
                        statistic="median",
                        value=level * (1 + 0.01 * rng.gauss(0, 1)),
                        samples=20,
                        verdict="REGRESSED" if i == step_at else "UNCHANGED",
                        budget=1.5e-3,
                    )
                ],
            )
    return first
