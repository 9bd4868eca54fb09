"""``perfgate calibrate``: run the suite several times on this runner and say, per
measurement, how much it moves between runs and what change the gate can see.

The runs are refreshes (``--perf-update-baselines``) into the baselines the gate reads: each
adds one run-level value to every entry's history, and the history is where the gate learns
each measurement's run-to-run noise (stats.run_noise_of). So calibrating stores the noise
where it is used, in files that are reviewed and committed like any refresh. The report
is computed from the refreshed entries with the gate's own decision (stats.compare of a
run like the stored one against the entry), so the figures it prints are the ones the next
gate run works with.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, final

from .baseline import BaselineError, BaselineStore
from .model import BaselineEntry, Measurement, format_detectable
from .noise import MeasurementKind, kind_of, prior_of
from .results import ResultsError, RunResults, read_results
from .stats import (
    Decision,
    compare,
    compare_quantile,
    log_median_se,
    quantile_of,
    sample_quantile,
    speed_adjusted,
    summarize,
)

#: The change a gate should be able to see; the report counts the measurements that cannot.
TARGET_CHANGE = 0.05
#: pytest's exit statuses for "tests ran" (0: passed, 1: some failed); others stop calibration.
_TESTS_RAN = (0, 1)


class CalibrationError(Exception):
    """The suite could not be calibrated; the message says why."""


@final
@dataclass(frozen=True, slots=True)
class MeasurementNoise:
    """What calibration found for one measurement."""

    label: str  #: test id, with the measurement's name unless "time"
    kind: MeasurementKind
    runs: int  #: run-level values in its history
    measured: float | None  #: relative sd of the history's run levels; None under 2 runs
    noise: float  #: the run noise the gate will use (history pooled with the kind's prior)
    df: float  #: degrees of freedom of that estimate (inf: the prior alone)
    within: float  #: standard error of one run's level from its own samples (log scale)
    threshold: float  #: the threshold it is gated at
    detectable: float | None  #: minimum detectable change at the suite's level
    #: A threshold that unchanged runs stay inside (97.5% of them), where the current one
    #: is tighter than that; None where the current one holds.
    suggested_threshold: float | None

    @property
    def remedy(self) -> str:
        """What would let it see a smaller change (the larger part of its noise first)."""
        if self.kind is MeasurementKind.COUNTED:
            return ""
        if self.within > self.noise:
            return "longer max_time (its own samples are noisy)"
        if self.runs < 10:
            return "more runs (perfgate calibrate --runs 10)"
        if self.kind is MeasurementKind.CPU:
            return "perfgate ab, or instruction counts for pure CPU code"
        return "perfgate ab (base and candidate in one job)"


@final
@dataclass(frozen=True, slots=True)
class Calibration:
    """The calibration of a suite."""

    measurements: tuple[MeasurementNoise, ...]
    alpha: float  #: the suite's false-alarm level
    runs: int  #: suite runs made
    failed_runs: int  #: runs in which some test failed (their failed tests did not refresh)

    @property
    def level(self) -> float:
        """The level of one decision: alpha over the gated measurements."""
        return self.alpha / max(len(self.measurements), 1)

    def blind_to(self, change: float = TARGET_CHANGE) -> list[MeasurementNoise]:
        """The measurements that cannot see ``change``."""
        return [m for m in self.measurements if m.detectable is not None and m.detectable > change]

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "level": self.level,
            "runs": self.runs,
            "failed_runs": self.failed_runs,
            "measurements": [
                {
                    "label": m.label,
                    "kind": m.kind.value,
                    "runs": m.runs,
                    "measured_noise": m.measured,
                    "noise": m.noise,
                    "df": None if math.isinf(m.df) else m.df,
                    "within_run_se": m.within,
                    "threshold": m.threshold,
                    "detectable_change": m.detectable,
                    "suggested_threshold": m.suggested_threshold,
                }
                for m in self.measurements
            ],
        }


Progress = Callable[[str], None]


def run_suite(
    command: Sequence[str], runs: int, scratch: Path, progress: Progress
) -> tuple[list[RunResults], int]:
    """Refresh the baselines ``runs`` times with ``command``; every run's results and how
    many runs had a failing test."""
    failed = 0
    every: list[RunResults] = []
    for run in range(1, runs + 1):
        progress(f"perfgate calibrate: run {run}/{runs}: {' '.join(command)}")
        results_path = scratch / f"results-{run}.json"
        done = subprocess.run(
            [*command, "--perf-update-baselines", f"--perf-json={results_path}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode not in _TESTS_RAN:
            raise CalibrationError(
                f"run {run} ended with exit status {done.returncode}:\n"
                + (done.stdout + done.stderr)[-3000:]
            )
        if done.returncode == 1:
            failed += 1
            progress(f"perfgate calibrate: run {run} had failing tests (they did not refresh)")
        try:
            every.append(read_results(results_path))
        except ResultsError as error:
            raise CalibrationError(f"run {run} wrote no results: {error}") from None
    return every, failed


def run_level(measurement: Measurement) -> float:
    """The run-level value a refresh adds to the history (baseline.refreshed_entry's rule:
    the gated quantile, else the speed-adjusted median, else the median)."""
    if measurement.statistic != "median":
        return sample_quantile(measurement.samples, quantile_of(measurement.statistic))
    if measurement.reference:
        return summarize(speed_adjusted(measurement.samples, measurement.reference)).median
    return summarize(measurement.samples).median


def keep_calibration_history(
    runs: Sequence[RunResults], store: BaselineStore, history: int
) -> list[str]:
    """Give each entry the run levels of all calibration runs where a refresh restarted its
    history on the way (a run that stood out, read as a change: during calibration nothing
    changed, so it was noise, the very thing being measured). The labels repaired."""
    levels: dict[tuple[str, str, str], list[float]] = {}
    for run in runs:
        for tested in run.tests:
            if tested.outcome != "passed":
                continue  # a failed test did not refresh
            for measurement, _ in tested.results:
                key = (tested.module, tested.test, measurement.name)
                levels.setdefault(key, []).append(float(f"{run_level(measurement):.6g}"))
    repaired: list[str] = []
    for (module, test, name), found in levels.items():
        try:
            entry = store.load(module).get(test, name)
        except BaselineError as error:
            raise CalibrationError(str(error)) from None
        wanted = min(len(found), history)
        if entry is None or len(entry.history) >= wanted:
            continue
        store.update(module, {test: {name: replace(entry, history=tuple(found[-wanted:]))}})
        repaired.append(f"{module}::{test}" + ("" if name == "time" else f" [{name}]"))
    return repaired


def calibration_of(
    results: RunResults,
    store: BaselineStore,
    *,
    alpha: float,
    run_noise: float | None,
    runs: int = 0,
    failed_runs: int = 0,
) -> Calibration:
    """Per measurement of ``results``, its noise and detectable change as the gate will
    see them with the entries in ``store``."""
    entries: list[tuple[str, BaselineEntry, float]] = []
    files: dict[str, Any] = {}
    for test in results.tests:
        if test.module not in files:
            try:
                files[test.module] = store.load(test.module)
            except BaselineError as error:
                raise CalibrationError(str(error)) from None
        for measurement, comparison in test.results:
            entry = files[test.module].get(test.test, measurement.name)
            if entry is not None:
                entries.append((comparison.label, entry, comparison.threshold))
    level = alpha / max(len(entries), 1)
    found = tuple(
        _noise_of(label, entry, threshold, level, run_noise) for label, entry, threshold in entries
    )
    return Calibration(found, alpha, runs, failed_runs)


def _noise_of(
    label: str, entry: BaselineEntry, threshold: float, level: float, run_noise: float | None
) -> MeasurementNoise:
    kind = kind_of(entry.unit, entry.environment.machine)
    history = entry.history
    logs = [math.log(h) for h in history]
    measured = _sd(logs) if len(logs) >= 2 else None
    samples = speed_adjusted(entry.samples, entry.reference) if entry.reference else entry.samples
    within = log_median_se(samples)
    if kind is MeasurementKind.COUNTED:
        return MeasurementNoise(
            label, kind, len(history), measured, 0.0, math.inf, within, threshold, None, None
        )
    decide = (
        partial(compare_quantile, quantile=quantile_of(entry.statistic))
        if entry.statistic != "median"
        else partial(compare)
    )
    # A run like the stored one, judged against the entry: the gate's own standard error.
    decision: Decision = decide(
        samples,
        samples,
        direction=entry.direction,
        threshold=threshold,
        alpha=level,
        history=history,
        run_noise=prior_of(kind, run_noise),
    )
    spread = math.log(decision.ci_high / decision.ratio)  # t_0.975 x the standard error
    suggested = _whole_percent(math.expm1(spread))
    detectable = decision.detectable_change
    return MeasurementNoise(
        label=label,
        kind=kind,
        runs=len(history),
        measured=measured,
        noise=decision.noise,
        df=decision.df,
        within=within,
        threshold=threshold,
        detectable=detectable if math.isfinite(detectable) else None,
        suggested_threshold=suggested if suggested > threshold else None,
    )


def _sd(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _whole_percent(change: float) -> float:
    """Rounded up to a whole percent: a threshold a person would write."""
    return math.ceil(change * 100 - 1e-9) / 100


def render_calibration(calibration: Calibration) -> str:
    """The calibration as a text table with a closing summary."""
    rows = [("measurement", "kind", "runs", "noise", "used", "detects", "suggest")]
    for m in calibration.measurements:
        rows.append(
            (
                m.label,
                m.kind.value,
                str(m.runs),
                "-" if m.measured is None else f"{m.measured * 100:.2g}%",
                f"{m.noise * 100:.2g}%" + ("" if math.isinf(m.df) else f" ({m.df:.0f} df)"),
                format_detectable(m.detectable),
                "-" if m.suggested_threshold is None else f"{m.suggested_threshold:g}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines += _summary_lines(calibration)
    return "\n".join(line.rstrip() for line in lines)


def _summary_lines(calibration: Calibration) -> list[str]:
    n = len(calibration.measurements)
    lines = [
        "",
        f"noise: relative sd of the run levels measured; used: pooled with the kind's prior, "
        f"as the gate will use it; detects: the smallest slowdown flagged with 80% power at "
        f"alpha {calibration.alpha:g} over {n} measurement{'' if n == 1 else 's'} "
        f"({calibration.level:.2g} each); suggest: a threshold that 97.5% of unchanged runs "
        "stay inside, where the current one is tighter (@pytest.mark.perf(threshold=...))",
    ]
    blind = calibration.blind_to()
    if blind:
        lines.append(
            f"{len(blind)} of {n} measurements cannot see a {TARGET_CHANGE:.0%} slowdown; "
            "what would help most:"
        )
        remedies: dict[str, int] = {}
        for m in blind:
            remedies[m.remedy] = remedies.get(m.remedy, 0) + 1
        lines += [f"  {count} x {remedy}" for remedy, count in remedies.items() if remedy]
    else:
        lines.append(f"every measurement can see a {TARGET_CHANGE:.0%} slowdown")
    if calibration.failed_runs:
        lines.append(
            f"{calibration.failed_runs} of {calibration.runs} runs had failing tests: those "
            "tests did not refresh and have fewer runs of history"
        )
    return lines


def calibrate(
    command: Sequence[str],
    runs: int,
    store: BaselineStore,
    *,
    alpha: float,
    run_noise: float | None,
    history: int,
    progress: Progress,
) -> Calibration:
    """Run the suite ``runs`` times into ``store`` and calibrate what it measured."""
    with tempfile.TemporaryDirectory(prefix="perfgate-calibrate-") as scratch:
        every, failed = run_suite(command, runs, Path(scratch), progress)
    for label in keep_calibration_history(every, store, history):
        progress(f"perfgate calibrate: {label}: a refresh restarted its history; all runs kept")
    return calibration_of(
        every[-1], store, alpha=alpha, run_noise=run_noise, runs=runs, failed_runs=failed
    )
