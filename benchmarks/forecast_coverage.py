"""Do the trend's prediction intervals hold? Coverage of 80% and 95% intervals, measured.

Each case is a generated history of run-level values: a level of 10 ms drifting by a set
slope per quarter, with 2% noise (Gaussian, or Student's t with 4 degrees of freedom scaled
to the same spread: the heavy tails of real runs), runs every 1 to 5 days, optionally a
step of +10% (a change point) at 60% of the history. ``trend`` is fitted as the forecasts
fit it (since the last change point that is a step); then a new run is drawn from the true
process 1, 2 and 4 quarters after the last point, and the test is whether it falls inside
the 80% and 95% prediction intervals. Breach probabilities are checked the same way: for a
budget 5% above the level, the predicted chance of a breach against the observed rate, in
bins of predicted chance.

Usage:  python benchmarks/forecast_coverage.py [--cases 400] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_perfgate.history.forecast import QUARTER_DAYS, trend
from pytest_perfgate.history.model import Point, Series

LEVEL = 0.010
NOISE = 0.02
HORIZONS = (1, 2, 4)  #: quarters after the last point
START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def noise(rng: np.random.Generator, tails: str, size: int | None = None) -> np.ndarray:
    if tails == "gaussian":
        return NOISE * rng.standard_normal(size)
    # Student's t with 4 degrees of freedom has variance 2: scaled to the same spread.
    return NOISE * rng.standard_t(4, size) / np.sqrt(2.0)


def truth(days: np.ndarray, slope: float, step: bool, step_day: float) -> np.ndarray:
    """The true level at ``days`` after the start: the drift, and the step after it."""
    level = LEVEL * (1.0 + slope * days / QUARTER_DAYS)
    return level * np.where(step & (days >= step_day), 1.10, 1.0)


def case(
    rng: np.random.Generator, points: int, slope: float, step: bool, tails: str
) -> tuple[Series, float, float]:
    days = np.cumsum(rng.uniform(1.0, 5.0, points))
    step_day = float(days[int(points * 0.6)])
    values = truth(days, slope, step, step_day) * (1.0 + noise(rng, tails, points))
    series = Series(
        test_id="bench.py::test_case",
        name="time",
        unit="s",
        lower_is_better=True,
        statistic="median",
        machine_class="generated",
        points=tuple(
            Point(at=START + timedelta(days=float(day)), commit=f"c{i}", value=float(value))
            for i, (day, value) in enumerate(zip(days, values, strict=True))
        ),
    )
    return series, float(days[-1]), step_day


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", type=int, default=400, help="per scenario")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(
        f"{'noise':8} {'pts':>4} {'slope/q':>7} {'step':>4} {'horizon':>7} "
        f"{'cover80':>7} {'cover95':>7}"
    )
    calibration = np.zeros((5, 3))  # per band of predicted chance: runs, breaches, chances
    for tails in ("gaussian", "student4"):
        for points in (30, 120):
            for slope in (0.0, 0.03):
                for step in (False, True):
                    rng = np.random.default_rng(
                        [args.seed, len(tails), points, int(slope * 100), step]
                    )
                    inside = np.zeros((len(HORIZONS), 2))
                    for _ in range(args.cases):
                        series, last_day, step_day = case(rng, points, slope, step, tails)
                        line = trend(series)
                        for h, quarters in enumerate(HORIZONS):
                            day = last_day + quarters * QUARTER_DAYS
                            at = START + timedelta(days=day)
                            true = truth(np.array([day]), slope, step, step_day)[0]
                            new = true * (1.0 + noise(rng, tails))
                            for c, coverage in enumerate((0.8, 0.95)):
                                band = line.predict(at, coverage)
                                inside[h, c] += band.low <= new <= band.high
                            budget = line.level * 1.05
                            chance = line.probability_above(at, budget)
                            calibration[min(int(chance * 5), 4)] += (1, new > budget, chance)
                    for h, quarters in enumerate(HORIZONS):
                        print(
                            f"{tails:8} {points:4} {slope:7.0%} {'yes' if step else 'no':>4} "
                            f"{quarters:6}q {inside[h, 0] / args.cases:7.1%} "
                            f"{inside[h, 1] / args.cases:7.1%}"
                        )
    print("\nbreach chance (budget 5% above the fitted level), predicted vs observed:")
    for b in range(5):
        count, breached, chances = calibration[b]
        if count:
            print(
                f"  predicted {b * 20:3}-{b * 20 + 20:3}% (mean {chances / count:5.1%}): "
                f"observed {breached / count:6.1%} of {int(count)}"
            )


if __name__ == "__main__":
    main()
