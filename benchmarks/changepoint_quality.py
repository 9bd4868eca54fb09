"""How well change-point methods find planted level shifts in generated run histories.

Each history is a run-level measurement with 2% Gaussian noise (coefficient of variation)
around a level that steps up or down by a planted relative size (3%, 5% or 10%) at
random places, at least ``--spacing`` points apart and from the ends; lengths 60, 200 and
1,000 points, one planted shift per 60 points or so. Pure-noise histories are included:
whatever a method finds there is a false change point.

A detected change point matches a planted one within ``--tolerance`` points (each planted
one matched once). Per method, shift size and length it prints precision (matched /
detected), recall (matched / planted), the mean position error of the matches, and the
median time per history.

Methods: ``perfgate`` (pytest_perfgate.history.changepoints, the default settings), and
whichever of these import: ``otava`` (apache-otava's compute_change_points, t-test
E-divisive), ``spa`` (signal-processing-algorithms' e_divisive, MongoDB's permutation-test
E-divisive; 100 permutations, p <= 0.01 as MongoDB runs it; skipped on 1,000 points unless
``--slow``), ``ruptures`` (PELT, L2 cost, penalty 3 sigma^2 log n with sigma from the
median absolute first difference).

Usage:  python benchmarks/changepoint_quality.py [--histories 60] [--seed 1] [--slow]
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_perfgate.history.changepoints import change_indices

NOISE = 0.02
SIZES = (0.0, 0.03, 0.05, 0.10)
LENGTHS = (60, 200, 1000)

Detector = Callable[[np.ndarray], list[int]]


@dataclass
class Tally:
    planted: int = 0
    detected: int = 0
    matched: int = 0
    errors: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def precision(self) -> float:
        return self.matched / self.detected if self.detected else math.nan

    def recall(self) -> float:
        return self.matched / self.planted if self.planted else math.nan


def history(
    rng: np.random.Generator, length: int, size: float, spacing: int
) -> tuple[np.ndarray, list[int]]:
    """Values with 2% noise and planted steps of ``size`` (random sign); the steps' indices."""
    shifts = [] if size == 0.0 else _places(rng, length, max(1, length // 60), spacing)
    level = np.ones(length)
    for index in shifts:
        level[index:] *= 1.0 + size * rng.choice((-1.0, 1.0))
    return level * (1.0 + NOISE * rng.standard_normal(length)), shifts


def _places(rng: np.random.Generator, length: int, count: int, spacing: int) -> list[int]:
    while True:
        places = sorted(int(p) for p in rng.integers(spacing, length - spacing, count))
        if all(b - a >= spacing for a, b in itertools.pairwise(places)):
            return places


def match(planted: Sequence[int], detected: Sequence[int], tolerance: int) -> list[int]:
    """Position errors of detected points matched one-to-one to planted ones, nearest first."""
    free = list(detected)
    errors = []
    for index in planted:
        if not free:
            break
        nearest = min(free, key=lambda found: abs(found - index))
        if abs(nearest - index) <= tolerance:
            errors.append(abs(nearest - index))
            free.remove(nearest)
    return errors


def perfgate(values: np.ndarray) -> list[int]:
    return change_indices(values)


def otava(values: np.ndarray) -> list[int]:
    from otava.analysis import compute_change_points

    found, _ = compute_change_points(list(values))
    return [int(point.index) for point in found]


def spa(values: np.ndarray) -> list[int]:
    from signal_processing_algorithms.energy_statistics import energy_statistics

    return [int(i) for i in energy_statistics.e_divisive(values, pvalue=0.01, permutations=100)]


def ruptures(values: np.ndarray) -> list[int]:
    import ruptures as rpt

    sigma = float(np.median(np.abs(np.diff(values)))) / (0.6745 * math.sqrt(2.0))
    penalty = 3.0 * sigma**2 * math.log(len(values))
    ends = rpt.Pelt(model="l2", min_size=5).fit(values).predict(pen=penalty)
    return [int(end) for end in ends[:-1]]


def available() -> dict[str, Detector]:
    methods: dict[str, Detector] = {"perfgate": perfgate}
    for name, module, method in (
        ("otava", "otava.analysis", otava),
        ("spa", "signal_processing_algorithms", spa),
        ("ruptures", "ruptures", ruptures),
    ):
        try:
            __import__(module)
        except Exception as error:  # a package missing or broken: say so, go on
            print(f"({name} skipped: {type(error).__name__}: {error})")
        else:
            methods[name] = method
    return methods


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--histories", type=int, default=60, help="per length and size")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tolerance", type=int, default=5)
    parser.add_argument("--spacing", type=int, default=20)
    parser.add_argument("--methods", default="", help="comma-separated; all available by default")
    parser.add_argument("--slow", action="store_true", help="run spa on 1,000 points too")
    parser.add_argument(
        "--scale", type=int, default=0, metavar="N", help="only time N series of 1,000 runs"
    )
    args = parser.parse_args()
    if args.scale:
        scale(args.scale, args.seed)
        return
    methods = available()
    if args.methods:
        methods = {k: v for k, v in methods.items() if k in args.methods.split(",")}
    tallies: dict[tuple[str, float, int], Tally] = {}
    for length in LENGTHS:
        for size in SIZES:
            rng = np.random.default_rng([args.seed, length, int(size * 1000)])
            cases = [history(rng, length, size, args.spacing) for _ in range(args.histories)]
            for name, method in methods.items():
                if name == "spa" and length >= 1000 and not args.slow:
                    continue
                tally = tallies.setdefault((name, size, length), Tally())
                for values, planted in cases:
                    started = time.perf_counter()
                    found = method(values)
                    tally.seconds.append(time.perf_counter() - started)
                    errors = match(planted, found, args.tolerance)
                    tally.planted += len(planted)
                    tally.detected += len(found)
                    tally.matched += len(errors)
                    tally.errors += errors
    report(tallies)


def scale(count: int, seed: int) -> None:
    """The whole analysis of ``count`` series of 1,000 runs (a step in one in three, a
    budget on each): change points, the trend, the budget outlook, as the dashboard asks."""
    from datetime import datetime, timedelta, timezone

    from pytest_perfgate.history.changepoints import change_points
    from pytest_perfgate.history.forecast import budget_outlook, trend
    from pytest_perfgate.history.model import Point, Series

    rng = np.random.default_rng(seed)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    times = [start + timedelta(hours=12 * i) for i in range(1000)]
    everything = []
    for n in range(count):
        values, _ = history(rng, 1000, 0.05 if n % 3 == 0 else 0.0, 20)
        points = tuple(
            Point(at, f"c{i}", float(v))
            for i, (at, v) in enumerate(zip(times, values, strict=True))
        )
        everything.append(Series(f"t.py::test_{n}", "time", "s", True, "median", "m", points, 1.2))
    started, cpu = time.perf_counter(), time.process_time()
    for series in everything:
        changes = change_points(series)
        line = trend(series, changes=changes)
        budget_outlook(series, line=line)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"{count} series x 1,000 runs: {seconds:.2f} s wall, {cpu:.2f} s CPU "
        f"({cpu / count * 1e3:.2f} ms CPU a series)"
    )


def report(tallies: dict[tuple[str, float, int], Tally]) -> None:
    print(
        f"{'method':10} {'shift':>5} {'points':>6} {'planted':>7} {'found':>6} "
        f"{'precision':>9} {'recall':>6} {'pos.err':>7} {'ms/hist':>8}"
    )
    for (name, size, length), tally in sorted(tallies.items()):
        error = statistics.mean(tally.errors) if tally.errors else math.nan
        print(
            f"{name:10} {size:5.0%} {length:6} {tally.planted:7} {tally.detected:6} "
            f"{tally.precision():9.1%} {tally.recall():6.1%} {error:7.2f} "
            f"{statistics.median(tally.seconds) * 1e3:8.2f}"
        )
    print("\nall shifts, all lengths (pure noise counted in precision):")
    for name in sorted({key[0] for key in tallies}):
        for size in SIZES[1:]:
            parts = [t for (n, s, _), t in tallies.items() if n == name and s in (0.0, size)]
            planted = sum(t.planted for t in parts)
            detected = sum(t.detected for t in parts)
            matched = sum(t.matched for t in parts)
            print(
                f"  {name:10} {size:4.0%}: precision {matched / max(detected, 1):6.1%} "
                f"recall {matched / max(planted, 1):6.1%}"
            )


if __name__ == "__main__":
    main()
