"""Trends, prediction intervals, budget outlooks and capacity projections, on seeded
generated histories (no real clock is read: every time is given)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from pytest_perfgate import cli
from pytest_perfgate.history.forecast import (
    QUARTER_DAYS,
    Quarter,
    budget_outlook,
    capacity_outlook,
    trend,
)
from pytest_perfgate.history.model import Point, Series

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def history(
    values: list[float] | np.ndarray,
    *,
    every_days: float = 3.0,
    budget: float | None = None,
    lower_is_better: bool = True,
) -> Series:
    return Series(
        test_id="tests/test_x.py::test_parse",
        name="time",
        unit="s",
        lower_is_better=lower_is_better,
        statistic="median",
        machine_class="m",
        points=tuple(
            Point(at=START + timedelta(days=every_days * i), commit=f"c{i}", value=float(v))
            for i, v in enumerate(values)
        ),
        budget=budget,
    )


def drifting(seed: int, points: int, per_quarter: float, noise: float = 0.02) -> np.ndarray:
    """10 ms growing by ``per_quarter`` of it each quarter (a run every 3 days), with noise."""
    rng = np.random.default_rng(seed)
    days = 3.0 * np.arange(points)
    level = 0.010 * (1.0 + per_quarter * days / QUARTER_DAYS)
    return level * (1.0 + noise * rng.standard_normal(points))


def test_quarters_are_calendar_quarters() -> None:
    quarter = Quarter.of(datetime(2026, 11, 28, 10, 45, tzinfo=timezone.utc))
    assert (quarter.label, quarter.start) == ("2026 Q4", datetime(2026, 10, 1, tzinfo=timezone.utc))
    assert quarter.end == datetime(2027, 1, 1, tzinfo=timezone.utc)
    assert quarter.following() == Quarter(2027, 1)
    assert Quarter.of(datetime(2027, 4, 1)) == Quarter(2027, 2)  # naive times read as UTC


def test_a_noiseless_growth_is_fitted_exactly() -> None:
    line = trend(history([0.010 * 1.01**i for i in range(10)]))  # +1% a run, a run in 3 days
    assert line.level == pytest.approx(0.010 * 1.01**9)
    assert line.log_slope_per_day == pytest.approx(math.log(1.01) / 3)
    assert line.log_residual_scale == pytest.approx(0.0, abs=1e-12)
    at = START + timedelta(days=57)
    compounding, straight = line.centres(at)
    assert compounding == pytest.approx(0.010 * 1.01**19)
    assert straight < compounding  # the straight line through a compounding growth
    band = line.predict(at, 0.95)
    assert straight <= band.low <= band.expected <= band.high <= compounding
    flat = trend(history([0.010] * 10))
    assert flat.centres(at) == pytest.approx((0.010, 0.010))
    assert flat.predict(at).low == pytest.approx(flat.predict(at).high)
    assert line.change_per_quarter == pytest.approx(1.01 ** (QUARTER_DAYS / 3) - 1)


def test_the_interval_is_relative_to_the_level() -> None:
    noise = np.random.default_rng(8).standard_normal(40)
    low = trend(history(0.010 * (1 + 0.02 * noise)), since_index=0)
    high = trend(history(1.0 * (1 + 0.02 * noise)), since_index=0)
    at = START + timedelta(days=200)
    assert high.predict(at).high / high.predict(at).expected == pytest.approx(
        low.predict(at).high / low.predict(at).expected
    )
    with pytest.raises(ValueError, match="a trend needs positive values"):
        trend(history([1.0, 0.0, 1.0]))
    assert budget_outlook(history([1.0, 0.0, 1.0, 1.0], budget=2.0)) is None


def test_the_trend_restarts_after_a_step_but_not_inside_a_drift() -> None:
    rng = np.random.default_rng(5)
    stepped = 0.010 * np.where(np.arange(100) >= 70, 1.10, 1.0)
    stepped *= 1.0 + 0.02 * rng.standard_normal(100)
    line = trend(history(stepped))
    assert abs(line.since_index - 70) <= 2
    assert line.level == pytest.approx(0.011, rel=0.02)
    # 10% a quarter over 300 days: the change-point detector cuts it into steps, the
    # trend keeps it whole.
    assert trend(history(drifting(5, 100, 0.10))).since_index == 0
    # From 1.0 to 1.33 in 3.25 quarters: a steady growth of 9% a quarter.
    growth = 1.33 ** (QUARTER_DAYS / 297) - 1
    assert trend(history(drifting(5, 100, 0.10))).change_per_quarter == pytest.approx(
        growth, rel=0.15
    )


def test_too_few_points_make_no_trend_and_no_outlook() -> None:
    with pytest.raises(ValueError, match="a trend needs 3 points, has 2"):
        trend(history([1.0, 1.1]))
    assert budget_outlook(history([1.0, 1.1], budget=2.0)) is None
    assert budget_outlook(history([1.0, 1.1, 1.0])) is None  # no budget
    assert capacity_outlook(history([1.0, 1.1]), 0.1, 10.0, load=1.0) is None


@pytest.mark.parametrize("per_quarter", [0.0, 0.05])
def test_prediction_intervals_hold_on_seeded_histories(per_quarter: float) -> None:
    """80% and 95% intervals one and four quarters ahead, 400 seeded histories each; the
    tolerance is about three binomial standard errors."""
    rng = np.random.default_rng(99)
    inside = np.zeros((2, 2))
    for seed in range(400):
        values = drifting(seed, 40, per_quarter)
        line = trend(history(values), since_index=0)
        for h, quarters in enumerate((1, 4)):
            day = 3.0 * 39 + quarters * QUARTER_DAYS
            new = (
                0.010 * (1 + per_quarter * day / QUARTER_DAYS) * (1 + 0.02 * rng.standard_normal())
            )
            for c, coverage in enumerate((0.8, 0.95)):
                band = line.predict(START + timedelta(days=day), coverage)
                inside[h, c] += band.low <= new <= band.high
    share = inside / 400
    assert np.all(np.abs(share[:, 0] - 0.80) <= 0.06), share
    assert np.all(np.abs(share[:, 1] - 0.95) <= 0.035), share


def test_a_budget_outlook_reads_the_trend_forward_by_quarter() -> None:
    values = drifting(1, 60, 0.05)  # 10 ms growing 5% a quarter, now about 11 ms
    series = history(values, budget=0.0125)
    outlook = budget_outlook(series, now=datetime(2026, 7, 20, tzinfo=timezone.utc))
    assert outlook is not None
    assert [q.quarter.label for q in outlook.quarters] == [
        "2026 Q3",
        "2026 Q4",
        "2027 Q1",
        "2027 Q2",
    ]
    chances = [q.breach_probability for q in outlook.quarters]
    assert chances == sorted(chances)
    assert chances[0] < 0.01
    assert outlook.first_breach is not None
    first = outlook.quarters[[q.quarter for q in outlook.quarters].index(outlook.first_breach)]
    assert first.expected >= 0.0125 * 0.99
    assert 0.05 < outlook.headroom < 0.25
    assert not outlook.over_budget


def test_already_over_and_far_under_budget() -> None:
    flat = drifting(2, 30, 0.0)
    over = budget_outlook(history(flat, budget=0.009))
    assert over is not None
    assert over.over_budget
    assert over.headroom < 0
    assert over.first_breach == over.quarters[0].quarter
    safe = budget_outlook(history(flat, budget=0.02))
    assert safe is not None
    assert safe.first_breach is None
    assert max(q.breach_probability for q in safe.quarters) < 1e-6


def test_a_rate_breaches_its_budget_by_falling_below_it() -> None:
    rates = 1000.0 * (1.0 - 0.10 * 3.0 * np.arange(60) / QUARTER_DAYS)  # 10% a quarter down
    outlook = budget_outlook(history(rates * 1.0, budget=700.0, lower_is_better=False))
    assert outlook is not None
    assert outlook.first_breach is not None
    falling = [q.breach_probability for q in outlook.quarters]
    assert falling == sorted(falling)
    assert outlook.headroom == pytest.approx((outlook.current - 700.0) / 700.0)


def test_capacity_runs_out_when_the_grown_load_needs_more_than_there_is() -> None:
    flat = history([0.010] * 5 + [0.0100001] * 5)  # 10 ms a request, flat
    # 500 requests/s x 10 ms = 5 busy cores of 10: half used; 15% a quarter doubles the
    # load in log(2)/log(1.15) = 4.96 quarters.
    now = datetime(2026, 2, 15, tzinfo=timezone.utc)
    outlook = capacity_outlook(flat, 0.15, 10.0, load=500.0, now=now)
    assert outlook is not None
    assert outlook.utilisation_now == pytest.approx(0.5, rel=1e-4)
    full = now + timedelta(days=QUARTER_DAYS * math.log(2) / math.log(1.15))
    assert outlook.runs_out == Quarter.of(full)
    for quarter in outlook.quarters:
        assert quarter.utilisation == pytest.approx(0.5 * quarter.load, rel=1e-3)
    # A throughput: 100 requests/s per instance, 4 instances, 300 requests/s now.
    rate = history([100.0] * 10, lower_is_better=False)
    served = capacity_outlook(rate, 0.15, 4.0, load=300.0, now=now)
    assert served is not None
    assert served.utilisation_now == pytest.approx(0.75)
    full = now + timedelta(days=QUARTER_DAYS * math.log(4 / 3) / math.log(1.15))
    assert served.runs_out == Quarter.of(full)
    with pytest.raises(ValueError, match="capacity and load must be positive"):
        capacity_outlook(rate, 0.15, 0.0, load=300.0)


def test_history_forecast_prints_budget_outlooks_and_capacity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_history_changepoints import recorded_history

    where = recorded_history(
        tmp_path / "h.sqlite", drifting(3, 90, 0.05, noise=0.01), budget=0.0125
    )
    command = ["history", "forecast", "--history", where]
    assert cli.main([*command, "--growth", "0.15", "--load", "500", "--capacity", "10"]) == 0
    out = capsys.readouterr().out
    assert "tests/test_x.py::test_parse (m)" in out
    assert "budget 12.5 ms: level 11." in out
    assert "chance of a breach: " in out
    assert "; expected breach: " in out
    assert "capacity at 15% more load a quarter: " in out
    assert "1 of 1 series have a budget" in out
    assert cli.main([*command, "--growth", "0.15"]) == 2
    assert "--growth, --load and --capacity go together" in capsys.readouterr().out
    assert cli.main([*command, "--test", "nothing-like-it"]) == 0
    assert "0 of 0 series have a budget" in capsys.readouterr().out


def test_a_spike_does_not_bend_the_trend() -> None:
    values = drifting(4, 40, 0.0)
    clean = trend(history(values))
    values[35] *= 15.0
    spiked = trend(history(values))
    assert spiked.change_per_quarter == pytest.approx(clean.change_per_quarter, abs=0.01)
    assert spiked.log_residual_scale < 1.5 * clean.log_residual_scale
