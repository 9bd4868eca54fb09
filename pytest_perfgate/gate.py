"""The gate: from one measurement and its baseline to a Comparison with a verdict.

This is where the rules around the statistics live: when a baseline may not be compared
at all (INCOMPARABLE), the per-test false-alarm level (alpha / number of perf tests), and
the second look: a first look that is inconclusive, or that claims a regression, samples
again; the level is split between the looks, and a regression must show in the fresh
samples too. Sampling is done by a callback, so this module stays pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import final

from . import contention, gate_gpu
from .model import (
    BaselineEntry,
    Comparison,
    Direction,
    Environment,
    Measurement,
    OnMismatch,
    Verdict,
    format_change,
)
from .stats import (
    Decision,
    bonferroni,
    compare,
    compare_quantile,
    quantile_of,
    sample_quantile,
    speed_adjusted,
    summarize,
)

#: Takes fresh samples of the same measurement (same loops), for a second look.
Resample = Callable[[], Measurement]

INCOMPARABLE_HINT = (
    "record baselines for this machine with `pytest --perf-update-baselines`, or compare "
    "through the machine-speed calibration with `--perf-on-mismatch=normalize`"
)


@final
@dataclass(frozen=True, slots=True)
class GatePolicy:
    """The decision rules for one session."""

    threshold: float = 0.02  #: practical threshold (relative)
    alpha: float = 0.05  #: false-alarm level for the whole suite
    tests: int = 1  #: number of perf tests in the session (Bonferroni)
    max_looks: int = 2  #: sampling rounds at most
    on_mismatch: OnMismatch = OnMismatch.INCOMPARABLE
    normalize_margin: float = 0.5  #: added to the threshold when comparing across machines
    run_noise: float = 0.02  #: run-to-run noise of timings (relative sd) assumed a priori
    #: Runs pooled in each measurement (A/B mode pools several; the gate's own runs, one).
    current_runs: int = 1


@final
@dataclass(frozen=True, slots=True)
class Judgement:
    comparison: Comparison
    measurement: Measurement  #: all samples taken, every look pooled


def judge(
    test_id: str,
    measurement: Measurement,
    baseline: BaselineEntry | None,
    policy: GatePolicy,
    *,
    environment: Environment,
    code_hash: str | None = None,
    resample: Resample | None = None,
) -> Judgement:
    """Compare ``measurement`` with ``baseline`` under ``policy``."""
    environment = environment.extended(measurement.machine)
    current = summarize(measurement.samples)

    def verdict_only(verdict: Verdict, *notes: str) -> Judgement:
        comparison = Comparison(
            test_id=test_id,
            name=measurement.name,
            verdict=verdict,
            unit=measurement.unit,
            direction=measurement.direction,
            current=current,
            baseline=None if baseline is None else baseline.summary,
            threshold=policy.threshold,
            notes=notes,
            statistic=measurement.statistic,
            value=_statistic_value(measurement),
        )
        return Judgement(comparison, measurement)

    if baseline is None:
        return verdict_only(Verdict.NEW, "no baseline yet: record one with --perf-update-baselines")
    if baseline.unit != measurement.unit or baseline.direction is not measurement.direction:
        return verdict_only(
            Verdict.INCOMPARABLE,
            f"baseline is in {baseline.unit!r} ({baseline.direction.value} is better), "
            f"now {measurement.unit!r} ({measurement.direction.value} is better)",
        )
    if baseline.statistic != measurement.statistic:
        return verdict_only(
            Verdict.INCOMPARABLE,
            f"the baseline gates its {baseline.statistic}, this measurement its "
            f"{measurement.statistic}: refresh it with --perf-update-baselines",
        )

    threshold = policy.threshold
    scale = 1.0
    notes: list[str] = []
    # Speed-adjusted comparison when both sides ran the speed reference after each sample.
    adjusted = bool(baseline.reference) and bool(measurement.reference)
    mismatches = baseline.environment.mismatches(environment)
    if mismatches:
        factor = _normalization_factor(baseline, measurement, environment, policy)
        if factor is None:
            return verdict_only(
                Verdict.INCOMPARABLE,
                "baseline recorded on another machine class ("
                + "; ".join(mismatches)
                + "): "
                + INCOMPARABLE_HINT,
            )
        scale = factor
        threshold = (1.0 + threshold) * (1.0 + policy.normalize_margin) - 1.0
        how = (
            "through the per-sample speed reference"
            if adjusted
            else f"through the calibration score (this machine {1 / factor:.2f}x as fast)"
        )
        notes.append(
            f"baseline from another machine class, compared {how}; "
            f"threshold widened to {threshold * 100:.3g}%"
        )

    if code_hash is not None and baseline.code_hash not in (None, code_hash):
        return verdict_only(
            Verdict.INCOMPARABLE,
            "the test's code changed since its baseline was recorded; "
            "refresh it with --perf-update-baselines",
        )

    if baseline.summary_only:
        notes.append(
            "the baseline was imported without raw samples (pytest-benchmark run saved "
            "without --benchmark-save-data): its spread is unknown, so only run-to-run "
            "noise is allowed for"
        )
    if adjusted:
        base_samples = speed_adjusted(baseline.samples, baseline.reference)
        history = baseline.history
        speed = _median(measurement.reference) / _median(baseline.reference)
        if abs(speed - 1.0) > 0.03:
            notes.append(
                f"speed-adjusted: this machine ran the speed reference {format_change(speed)} "
                "compared with when the baseline was recorded"
            )
    else:
        base_samples = tuple(x * scale for x in baseline.samples)
        # A speed-adjusted history is in other units than raw samples.
        history = () if baseline.reference else tuple(x * scale for x in baseline.history)
    looks_allowed = policy.max_looks if resample is not None else 1
    # One level for the whole decision, not split between looks: a regression is only
    # ever declared on the final, pooled look (an earlier look merely decides to sample
    # more), so "the pooled test rejects" bounds the false-alarm probability by itself.
    alpha_test = policy.alpha / max(policy.tests, 1)

    # Timings, and rates (MiB/s, IO/s: timings turned over), wander between runs; other
    # metrics carry their own noise in their samples (and in the history, once there is one).
    timed = measurement.unit == "s" or measurement.unit.endswith("/s")
    run_noise = policy.run_noise if timed else 0.0

    def decide(current: Measurement) -> Decision:
        if measurement.statistic != "median":
            return compare_quantile(
                base_samples,
                current.samples,
                quantile=quantile_of(measurement.statistic),
                direction=measurement.direction,
                threshold=threshold,
                alpha=alpha_test,
                history=history,
                run_noise=run_noise,
                current_runs=policy.current_runs,
            )
        return compare(
            base_samples,
            speed_adjusted(current.samples, current.reference) if adjusted else current.samples,
            direction=measurement.direction,
            threshold=threshold,
            alpha=alpha_test,
            history=history,
            run_noise=run_noise,
            current_runs=policy.current_runs,
        )

    decision = decide(measurement)
    looks = 1
    while (
        decision.verdict in (Verdict.REGRESSED, Verdict.INCONCLUSIVE)
        and resample is not None
        and looks < looks_allowed
    ):
        fresh = resample()
        looks += 1
        measurement = replace(
            measurement,
            samples=measurement.samples + fresh.samples,
            cpu_samples=measurement.cpu_samples + fresh.cpu_samples,
            reference=measurement.reference + fresh.reference,
            details=contention.pooled(
                gate_gpu.pooled_details(measurement.details, fresh.details), fresh.details
            ),
        )
        decision = decide(measurement)
        if decision.verdict is Verdict.REGRESSED and not _worse_than(
            decide(fresh).ratio, measurement.direction, threshold
        ):
            decision = replace(
                decision,
                verdict=Verdict.INCONCLUSIVE,
                note="a regression in the first samples did not reproduce in fresh ones",
            )

    pooled = measurement

    def in_cycles(clock_before: float, clock_now: float) -> Decision:
        return compare(
            tuple(x * clock_before for x in base_samples),
            tuple(x * clock_now for x in pooled.samples),
            direction=pooled.direction,
            threshold=threshold,
            alpha=alpha_test,
            history=tuple(x * clock_before for x in history),
            run_noise=run_noise,
        )

    time_verdict = decision.verdict
    decision, gpu_notes = gate_gpu.review(decision, measurement, baseline, in_cycles, threshold)
    decision, contention_notes = contention.review(decision, measurement, baseline)
    if decision.note and decision.verdict is time_verdict:
        notes.append(decision.note)
    elif decision.verdict is Verdict.INCONCLUSIVE and time_verdict is Verdict.INCONCLUSIVE:
        notes.append("the estimate is beyond the threshold, but within the noise")
    notes.extend(gpu_notes)
    notes.extend(contention_notes)
    comparison = Comparison(
        test_id=test_id,
        name=measurement.name,
        verdict=decision.verdict,
        unit=measurement.unit,
        direction=measurement.direction,
        current=summarize(measurement.samples),
        baseline=baseline.summary,
        ratio=decision.ratio,
        ci_low=decision.ci_low,
        ci_high=decision.ci_high,
        p_value=decision.p_worse,
        q_value=bonferroni(decision.p_worse, max(policy.tests, 1)),
        threshold=threshold,
        looks=looks,
        notes=tuple(notes),
        statistic=measurement.statistic,
        value=_statistic_value(measurement),
    )
    return Judgement(comparison, measurement)


def _normalization_factor(
    baseline: BaselineEntry,
    measurement: Measurement,
    environment: Environment,
    policy: GatePolicy,
) -> float | None:
    """How much to scale the baseline's values to stand for this machine, or None."""
    if policy.on_mismatch is not OnMismatch.NORMALIZE:
        return None
    if baseline.reference and measurement.reference:
        return 1.0  # the interleaved speed reference already normalizes
    if measurement.unit == "B":
        return 1.0  # bytes allocated do not depend on machine speed
    if measurement.unit != "s":
        return None
    before, now = baseline.environment.calibration_ns, environment.calibration_ns
    if not before or not now:
        return None
    return now / before


def _statistic_value(measurement: Measurement) -> float | None:
    """The current value of a tail statistic (the p99); None for the median."""
    if measurement.statistic == "median":
        return None
    return sample_quantile(measurement.samples, quantile_of(measurement.statistic))


def _median(values: tuple[float, ...]) -> float:
    return summarize(values).median


def _worse_than(ratio: float, direction: Direction, threshold: float) -> bool:
    if direction is Direction.HIGHER_IS_BETTER:
        ratio = 1.0 / ratio
    return ratio > 1.0 + threshold
