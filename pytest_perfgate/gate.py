"""The gate: from one measurement and its baseline to a Comparison with a verdict.

This is where the rules around the statistics live: when a baseline may not be compared
at all (INCOMPARABLE), the per-decision false-alarm level (alpha / number of gated
measurements), and
the second look: a first look that is inconclusive, or that claims a regression, samples
again; the level is split between the looks, and a regression must show in the fresh
samples too. Sampling is done by a callback, so this module stays pure.

``judge`` runs the stages in order: ``refusal_of`` (may it be compared at all?),
``basis_of`` (the baseline in this machine's terms), ``look`` (the decision, and the
second look), ``review`` (GPU clocks and contention), then builds the Comparison.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
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
)
from .noise import run_noise_prior
from .stats import (
    Decision,
    bonferroni,
    compare,
    compare_counts,
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
    #: Decisions the suite's level is split over (Bonferroni): the gated measurements of
    #: the session's perf tests, as counted at collection (plugin/session.py).
    tests: int = 1
    max_looks: int = 2  #: sampling rounds at most
    on_mismatch: OnMismatch = OnMismatch.INCOMPARABLE
    normalize_margin: float = 0.5  #: added to the threshold when comparing across machines
    #: Run-to-run noise of timings (relative sd) assumed a priori for every kind of
    #: measurement; None for each kind's own prior (noise.RUN_NOISE_PRIORS).
    run_noise: float | None = None
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
    if baseline is None:
        return _unjudged(test_id, measurement, None, policy, Refusal(Verdict.NEW, NO_BASELINE))
    refusal = refusal_of(measurement, baseline, environment, policy, code_hash)
    if refusal is not None:
        return _unjudged(test_id, measurement, baseline, policy, refusal)
    basis = basis_of(measurement, baseline, environment, policy)
    looked = look(basis, measurement, resample, policy.max_looks)
    decision, notes = review(looked.decision, looked.measurement, baseline, basis)
    comparison = _comparison(
        test_id,
        looked.measurement,
        baseline,
        decision.verdict,
        basis.threshold,
        (*basis.notes, *notes),
        decision=decision,
        looks=looked.looks,
        tests=policy.tests,
    )
    return Judgement(comparison, looked.measurement)


#: The unit of a deterministic metric, judged by :func:`stats.compare_counts`.
COUNTED_UNIT = "instructions"


# -- stage 1: may the baseline be compared at all? -------------------------------------------

NO_BASELINE = "no baseline yet: record one with --perf-update-baselines"


@final
@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a measurement is not compared with its baseline."""

    verdict: Verdict  #: NEW or INCOMPARABLE
    note: str  #: what the user can do about it


def refusal_of(
    measurement: Measurement,
    baseline: BaselineEntry,
    environment: Environment,
    policy: GatePolicy,
    code_hash: str | None,
) -> Refusal | None:
    """Why ``measurement`` cannot be compared with ``baseline`` (other unit, statistic,
    machine class or test code), or None when it can."""
    if baseline.unit != measurement.unit or baseline.direction is not measurement.direction:
        return Refusal(
            Verdict.INCOMPARABLE,
            f"baseline is in {baseline.unit!r} ({baseline.direction.value} is better), "
            f"now {measurement.unit!r} ({measurement.direction.value} is better)",
        )
    if baseline.statistic != measurement.statistic:
        return Refusal(
            Verdict.INCOMPARABLE,
            f"the baseline gates its {baseline.statistic}, this measurement its "
            f"{measurement.statistic}: refresh it with --perf-update-baselines",
        )
    mismatches = baseline.environment.mismatches(environment)
    if mismatches and _normalization_factor(baseline, measurement, environment, policy) is None:
        return Refusal(
            Verdict.INCOMPARABLE,
            "baseline recorded on another machine class ("
            + "; ".join(mismatches)
            + "): "
            + INCOMPARABLE_HINT,
        )
    if code_hash is not None and baseline.code_hash not in (None, code_hash):
        return Refusal(
            Verdict.INCOMPARABLE,
            "the test's code changed since its baseline was recorded; "
            "refresh it with --perf-update-baselines",
        )
    return None


# -- stage 2: what the measurement is compared with ------------------------------------------


@final
@dataclass(frozen=True, slots=True)
class Basis:
    """The baseline's side of the comparison once normalised, and the rules that apply."""

    samples: tuple[float, ...]  #: the baseline's samples, in this machine's terms
    history: tuple[float, ...]  #: its run-level values, in the same terms
    #: Both sides ran the speed reference after each sample: compare speed-adjusted times.
    adjusted: bool
    threshold: float  #: practical threshold, widened across machine classes
    alpha: float  #: level of this one decision (the suite's, over the number of decisions)
    run_noise: float  #: run-to-run noise assumed a priori, its kind's (0 for untimed metrics)
    current_runs: int  #: runs pooled in the measurement (A/B mode)
    statistic: str  #: "median" or a tail quantile ("p99")
    direction: Direction
    notes: tuple[str, ...]  #: how the baseline was brought into this machine's terms


SUMMARY_ONLY_NOTE = (
    "the baseline was imported without raw samples (pytest-benchmark run saved "
    "without --benchmark-save-data): its spread is unknown, so only run-to-run "
    "noise is allowed for"
)


def basis_of(
    measurement: Measurement,
    baseline: BaselineEntry,
    environment: Environment,
    policy: GatePolicy,
) -> Basis:
    """The baseline in this machine's terms: speed-adjusted where both sides carry the
    speed reference, scaled by the calibration score across machine classes."""
    threshold, scale, notes = policy.threshold, 1.0, []
    adjusted = bool(baseline.reference) and bool(measurement.reference)
    if baseline.environment.mismatches(environment):
        factor = _normalization_factor(baseline, measurement, environment, policy)
        if factor is None:
            raise ValueError("baseline from another machine class: refusal_of refuses it")
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
    if baseline.summary_only:
        notes.append(SUMMARY_ONLY_NOTE)
    if measurement.unit == COUNTED_UNIT and measurement.details.get("note"):
        notes.append(str(measurement.details["note"]))  # e.g. threads counted too
    if adjusted:
        samples = speed_adjusted(baseline.samples, baseline.reference)
        history = baseline.history
        notes.extend(_speed_note(measurement, baseline))
    else:
        samples = tuple(x * scale for x in baseline.samples)
        # A speed-adjusted history is in other units than raw samples.
        history = () if baseline.reference else tuple(x * scale for x in baseline.history)
    return Basis(
        samples=samples,
        history=history,
        adjusted=adjusted,
        threshold=threshold,
        # One level for the whole decision, not split between looks: a regression is only
        # ever declared on the final, pooled look (an earlier look merely decides to sample
        # more), so "the pooled test rejects" bounds the false-alarm probability by itself.
        alpha=policy.alpha / max(policy.tests, 1),
        # Timings and rates wander between runs, each kind by its own amount; other metrics
        # carry their noise in their samples (and in the history, once there is one).
        run_noise=run_noise_prior(measurement, policy.run_noise),
        current_runs=policy.current_runs,
        statistic=measurement.statistic,
        direction=measurement.direction,
        notes=tuple(notes),
    )


def _speed_note(measurement: Measurement, baseline: BaselineEntry) -> list[str]:
    """A note when the speed reference ran at another speed than in the baseline."""
    speed = _median(measurement.reference) / _median(baseline.reference)
    if abs(speed - 1.0) > 0.03:
        took, ran = ("longer", "slower") if speed > 1.0 else ("less time", "faster")
        return [
            f"speed-adjusted: the speed reference took {abs(speed - 1.0) * 100:.1f}% {took} "
            f"than when the baseline was recorded (this machine ran {ran})"
        ]
    return []


# -- stage 3: the decision, and the second look ----------------------------------------------


def decide(basis: Basis, current: Measurement) -> Decision:
    """The statistics' verdict on ``current`` against the basis."""
    samples = current.samples
    if current.unit == COUNTED_UNIT:
        # Deterministic: its measured spread, not a noise model (stats.compare_counts).
        return compare_counts(
            basis.samples,
            samples,
            direction=basis.direction,
            threshold=basis.threshold,
            history=basis.history,
        )
    if basis.statistic != "median":
        compare_statistic = partial(compare_quantile, quantile=quantile_of(basis.statistic))
    else:
        if basis.adjusted:
            samples = speed_adjusted(current.samples, current.reference)
        compare_statistic = partial(compare)  # a partial too, so both branches type alike
    return compare_statistic(
        basis.samples,
        samples,
        direction=basis.direction,
        threshold=basis.threshold,
        alpha=basis.alpha,
        history=basis.history,
        run_noise=basis.run_noise,
        current_runs=basis.current_runs,
    )


@final
@dataclass(frozen=True, slots=True)
class Looks:
    """The decision after every sampling round."""

    decision: Decision
    measurement: Measurement  #: every look's samples pooled
    looks: int  #: sampling rounds taken


def look(
    basis: Basis, measurement: Measurement, resample: Resample | None, max_looks: int
) -> Looks:
    """Decide; while the verdict is REGRESSED or INCONCLUSIVE and looks are left, sample
    again and decide on the pooled samples."""
    decision = decide(basis, measurement)
    looks = 1
    while (
        decision.verdict in (Verdict.REGRESSED, Verdict.INCONCLUSIVE)
        and resample is not None
        and looks < max_looks
    ):
        fresh = resample()
        looks += 1
        measurement = pooled_looks(measurement, fresh)
        decision = confirmed(basis, decide(basis, measurement), fresh)
    return Looks(decision, measurement, looks)


def pooled_looks(measurement: Measurement, fresh: Measurement) -> Measurement:
    """One measurement of two looks: samples appended, details pooled."""
    return replace(
        measurement,
        samples=measurement.samples + fresh.samples,
        cpu_samples=measurement.cpu_samples + fresh.cpu_samples,
        reference=measurement.reference + fresh.reference,
        details=contention.pooled(
            gate_gpu.pooled_details(measurement.details, fresh.details), fresh.details
        ),
    )


def confirmed(basis: Basis, pooled: Decision, fresh: Measurement) -> Decision:
    """A regression on the pooled samples stands only if the fresh samples alone are
    worse than the threshold too."""
    if pooled.verdict is Verdict.REGRESSED and not _worse_than(
        decide(basis, fresh).ratio, basis.direction, basis.threshold
    ):
        return replace(
            pooled,
            verdict=Verdict.INCONCLUSIVE,
            note="a regression in the first samples did not reproduce in fresh ones",
        )
    return pooled


# -- stage 4: what the machine says about the decision ---------------------------------------


def review(
    decision: Decision, measurement: Measurement, baseline: BaselineEntry, basis: Basis
) -> tuple[Decision, list[str]]:
    """The decision after the GPU clock and contention reviews, and the notes that
    explain it."""
    time_verdict = decision.verdict
    decision, gpu_notes = gate_gpu.review(
        decision,
        measurement,
        baseline,
        partial(_in_cycles, basis, measurement),
        basis.threshold,
    )
    decision, contention_notes = contention.review(decision, measurement, baseline)
    notes: list[str] = []
    if decision.note and decision.verdict is time_verdict:
        notes.append(decision.note)
    elif decision.verdict is Verdict.INCONCLUSIVE and time_verdict is Verdict.INCONCLUSIVE:
        notes.append("the estimate is beyond the threshold, but within the noise")
    return decision, [*notes, *gpu_notes, *contention_notes]


def _in_cycles(
    basis: Basis, measurement: Measurement, clock_before: float, clock_now: float
) -> Decision:
    """The median comparison again with each side's times multiplied by its SM clock."""
    return compare(
        tuple(x * clock_before for x in basis.samples),
        tuple(x * clock_now for x in measurement.samples),
        direction=measurement.direction,
        threshold=basis.threshold,
        alpha=basis.alpha,
        history=tuple(x * clock_before for x in basis.history),
        run_noise=basis.run_noise,
    )


# -- the result ------------------------------------------------------------------------------


def _unjudged(
    test_id: str,
    measurement: Measurement,
    baseline: BaselineEntry | None,
    policy: GatePolicy,
    refusal: Refusal,
) -> Judgement:
    comparison = _comparison(
        test_id, measurement, baseline, refusal.verdict, policy.threshold, (refusal.note,)
    )
    return Judgement(comparison, measurement)


def _comparison(
    test_id: str,
    measurement: Measurement,
    baseline: BaselineEntry | None,
    verdict: Verdict,
    threshold: float,
    notes: tuple[str, ...],
    *,
    decision: Decision | None = None,
    looks: int = 1,
    tests: int = 1,
) -> Comparison:
    # A deterministic decision has no p-value, and its spread is no confidence interval.
    tested = decision is not None and not math.isnan(decision.p_worse)
    return Comparison(
        test_id=test_id,
        name=measurement.name,
        verdict=verdict,
        unit=measurement.unit,
        direction=measurement.direction,
        current=summarize(measurement.samples),
        baseline=None if baseline is None else baseline.summary,
        ratio=None if decision is None else decision.ratio,
        ci_low=decision.ci_low if decision is not None and tested else None,
        ci_high=decision.ci_high if decision is not None and tested else None,
        p_value=decision.p_worse if decision is not None and tested else None,
        q_value=(
            bonferroni(decision.p_worse, max(tests, 1)) if decision is not None and tested else None
        ),
        threshold=threshold,
        looks=looks,
        notes=notes,
        statistic=measurement.statistic,
        value=_statistic_value(measurement),
        baseline_value=None if baseline is None else baseline_figure(baseline),
        detectable_change=(
            decision.detectable_change
            if decision is not None and tested and math.isfinite(decision.detectable_change)
            else None
        ),
    )


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


def baseline_figure(baseline: BaselineEntry) -> float:
    """The baseline's figure of the statistic it gates: its median, or e.g. its p99."""
    if baseline.statistic == "median" or not baseline.samples:
        return baseline.summary.median
    return sample_quantile(baseline.samples, quantile_of(baseline.statistic))


def _median(values: tuple[float, ...]) -> float:
    return summarize(values).median


def _worse_than(ratio: float, direction: Direction, threshold: float) -> bool:
    if direction is Direction.HIGHER_IS_BETTER:
        ratio = 1.0 / ratio
    return ratio > 1.0 + threshold
