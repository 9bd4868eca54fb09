"""The gate's rules around the statistics: comparability, normalization, the second look, q."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from pytest_perfgate.gate import INCOMPARABLE_HINT, GatePolicy, Judgement, judge
from pytest_perfgate.model import (
    BaselineEntry,
    Direction,
    Environment,
    Measurement,
    OnMismatch,
    Verdict,
)
from pytest_perfgate.stats import summarize

HERE = Environment({"cpu": "CPU A", "cpus": "2"}, calibration_ns=1000.0)
ELSEWHERE = Environment({"cpu": "CPU B", "cpus": "2"}, calibration_ns=500.0)
LOWER = Direction.LOWER_IS_BETTER


def samples(
    seed: int, centre: float = 1e-3, n: int = 200, sigma: float = 0.02
) -> tuple[float, ...]:
    rng = np.random.default_rng(seed)
    return tuple(rng.lognormal(math.log(centre), sigma, n).tolist())


def measurement(values: tuple[float, ...], unit: str = "s") -> Measurement:
    cpu = tuple(v / 2 for v in values)
    return Measurement("time", unit, LOWER, values, loops=10, cpu_samples=cpu)


def baseline(
    values: tuple[float, ...],
    *,
    unit: str = "s",
    environment: Environment = HERE,
    code_hash: str | None = "hash1",
    direction: Direction = LOWER,
) -> BaselineEntry:
    return BaselineEntry(
        unit=unit,
        direction=direction,
        samples=values,
        summary=summarize(values),
        history=(),
        environment=environment,
        loops=10,
        code_hash=code_hash,
    )


class Resampler:
    """Hands out scripted fresh sample sets and counts how often it was asked."""

    def __init__(self, *fresh: tuple[float, ...]) -> None:
        self._fresh = list(fresh)
        self.calls = 0

    def __call__(self) -> Measurement:
        self.calls += 1
        return measurement(self._fresh.pop(0))


def run(
    current: Measurement,
    entry: BaselineEntry | None,
    policy: GatePolicy | None = None,
    *,
    environment: Environment = HERE,
    code_hash: str | None = "hash1",
    resample: Callable[[], Measurement] | None = None,
) -> Judgement:
    return judge(
        "tests/test_x.py::test_a",
        current,
        entry,
        policy or GatePolicy(),
        environment=environment,
        code_hash=code_hash,
        resample=resample,
    )


# --- when there is nothing to compare ------------------------------------------------------


def test_no_baseline_is_new() -> None:
    comparison = run(measurement(samples(1)), None).comparison
    assert comparison.verdict is Verdict.NEW
    assert comparison.baseline is None
    assert comparison.ratio is None
    assert "--perf-update-baselines" in comparison.notes[0]


@pytest.mark.parametrize(
    "entry",
    [baseline(samples(2), unit="B"), baseline(samples(2), direction=Direction.HIGHER_IS_BETTER)],
)
def test_other_unit_or_direction_is_incomparable(entry: BaselineEntry) -> None:
    comparison = run(measurement(samples(1)), entry).comparison
    assert comparison.verdict is Verdict.INCOMPARABLE
    assert "baseline is in" in comparison.notes[0]


def test_changed_test_code_is_incomparable() -> None:
    comparison = run(measurement(samples(1)), baseline(samples(2)), code_hash="hash2").comparison
    assert comparison.verdict is Verdict.INCOMPARABLE
    assert "code changed" in comparison.notes[0]


@pytest.mark.parametrize(("stored", "now"), [(None, "hash2"), ("hash1", None)])
def test_a_missing_code_hash_does_not_block_the_comparison(
    stored: str | None, now: str | None
) -> None:
    comparison = run(
        measurement(samples(1)), baseline(samples(2), code_hash=stored), code_hash=now
    ).comparison
    assert comparison.verdict is not Verdict.INCOMPARABLE


def test_other_machine_class_is_incomparable_with_a_hint() -> None:
    entry = baseline(samples(2), environment=ELSEWHERE)
    comparison = run(measurement(samples(1)), entry).comparison
    assert comparison.verdict is Verdict.INCOMPARABLE
    assert "cpu: 'CPU B' vs 'CPU A'" in comparison.notes[0]
    assert INCOMPARABLE_HINT in comparison.notes[0]
    assert "--perf-update-baselines" in comparison.notes[0]


# --- normalizing across machines -----------------------------------------------------------


NORMALIZE = GatePolicy(on_mismatch=OnMismatch.NORMALIZE, threshold=0.03, normalize_margin=0.25)


def test_normalize_scales_the_baseline_by_machine_speed_and_widens_the_threshold() -> None:
    # The baseline machine is twice as fast: its 1 ms stands for 2 ms here.
    entry = baseline(samples(2, centre=1e-3), environment=ELSEWHERE)
    comparison = run(measurement(samples(1, centre=2e-3)), entry, NORMALIZE).comparison
    assert comparison.verdict is Verdict.UNCHANGED
    assert comparison.ratio == pytest.approx(1.0, abs=0.02)
    assert comparison.threshold == pytest.approx(1.03 * 1.25 - 1)
    assert any("through the calibration score" in note for note in comparison.notes)
    assert any("threshold widened to 28.8%" in note for note in comparison.notes)


def test_normalize_without_calibration_data_stays_incomparable() -> None:
    uncalibrated = Environment(ELSEWHERE.machine, calibration_ns=None)
    entry = baseline(samples(2), environment=uncalibrated)
    comparison = run(measurement(samples(1)), entry, NORMALIZE).comparison
    assert comparison.verdict is Verdict.INCOMPARABLE
    assert INCOMPARABLE_HINT in comparison.notes[0]


def test_normalize_compares_bytes_unscaled() -> None:
    entry = baseline((1000.0,) * 3, unit="B", environment=ELSEWHERE)
    comparison = run(measurement((1000.0,) * 3, unit="B"), entry, NORMALIZE).comparison
    assert comparison.verdict is Verdict.UNCHANGED
    assert comparison.ratio == 1.0


def test_run_noise_prior_applies_to_timings_only() -> None:
    # 4% more bytes, every time: no run-to-run noise to allow for, a clear regression.
    entry = baseline((1000.0,) * 3, unit="B")
    comparison = run(measurement((1040.0,) * 3, unit="B"), entry).comparison
    assert comparison.verdict is Verdict.REGRESSED
    timed = run(measurement((1.04e-3,) * 3), baseline((1e-3,) * 3)).comparison
    assert timed.verdict is Verdict.INCONCLUSIVE


# --- the second look -----------------------------------------------------------------------


def test_unchanged_first_look_does_not_resample() -> None:
    resampler = Resampler(samples(9))
    policy = GatePolicy(run_noise=0.0)
    judgement = run(measurement(samples(1)), baseline(samples(2)), policy, resample=resampler)
    assert judgement.comparison.verdict is Verdict.UNCHANGED
    assert resampler.calls == 0
    assert judgement.comparison.looks == 1


def test_improved_first_look_does_not_resample() -> None:
    resampler = Resampler(samples(9))
    current = measurement(samples(1, centre=0.7e-3))
    judgement = run(current, baseline(samples(2)), resample=resampler)
    assert judgement.comparison.verdict is Verdict.IMPROVED
    assert resampler.calls == 0


def test_reproduced_regression_pools_the_samples_of_both_looks() -> None:
    first, fresh = samples(1, centre=1.3e-3), samples(3, centre=1.3e-3, n=100)
    resampler = Resampler(fresh)
    judgement = run(measurement(first), baseline(samples(2)), resample=resampler)
    assert resampler.calls == 1
    assert judgement.comparison.verdict is Verdict.REGRESSED
    assert judgement.comparison.looks == 2
    assert judgement.measurement.samples == first + fresh
    assert judgement.measurement.cpu_samples == tuple(v / 2 for v in first + fresh)
    assert judgement.comparison.current.n == 300


def test_regression_that_does_not_reproduce_is_inconclusive() -> None:
    # Few fresh samples back at the baseline's level: the pooled median still looks
    # regressed, but the fresh samples alone do not.
    first, fresh = samples(1, centre=1.3e-3), samples(3, centre=1e-3, n=60)
    resampler = Resampler(fresh)
    comparison = run(measurement(first), baseline(samples(2)), resample=resampler).comparison
    assert resampler.calls == 1
    assert comparison.verdict is Verdict.INCONCLUSIVE
    assert "did not reproduce" in "; ".join(comparison.notes)


def test_inconclusive_first_look_resamples_up_to_max_looks() -> None:
    at_threshold = [samples(seed, centre=1.03e-3) for seed in (1, 3, 4, 5)]
    resampler = Resampler(*at_threshold[1:])
    policy = GatePolicy(max_looks=3)
    comparison = run(
        measurement(at_threshold[0]), baseline(samples(2)), policy, resample=resampler
    ).comparison
    assert comparison.verdict is Verdict.INCONCLUSIVE
    assert resampler.calls == 2
    assert comparison.looks == 3
    assert "beyond the threshold, but within the noise" in comparison.notes[-1]


def test_one_look_allowed_never_resamples() -> None:
    resampler = Resampler(samples(3))
    policy = GatePolicy(max_looks=1)
    current = measurement(samples(1, centre=1.3e-3))
    comparison = run(current, baseline(samples(2)), policy, resample=resampler).comparison
    assert comparison.verdict is Verdict.REGRESSED
    assert resampler.calls == 0


@pytest.mark.parametrize("centre", [1.04e-3, 1.06e-3, 1.3e-3])
@pytest.mark.parametrize("with_resample", [True, False])
def test_q_value_is_p_times_tests_capped_at_one(centre: float, with_resample: bool) -> None:
    policy = GatePolicy(tests=10, max_looks=2, run_noise=0.005)
    resampler = Resampler(samples(3, centre=centre)) if with_resample else None
    comparison = run(
        measurement(samples(1, centre=centre)), baseline(samples(2)), policy, resample=resampler
    ).comparison
    assert comparison.p_value is not None
    assert comparison.q_value is not None
    # Not times the looks: a regression is only declared on the final, pooled look.
    assert comparison.q_value == pytest.approx(min(1.0, comparison.p_value * 10))
    assert 0.0 <= comparison.q_value <= 1.0


@pytest.mark.parametrize(("reference", "said"), [(1.1e-3, "10.0% longer"), (0.9e-3, "10.0% less")])
def test_the_speed_note_says_whether_the_machine_ran_faster_or_slower(
    reference: float, said: str
) -> None:
    """Issue 13: "ran the speed reference +3.1%" left the reader to guess the direction."""
    values = samples(40)
    stored = replace(baseline(values), reference=(1e-3,) * len(values))
    current = replace(measurement(values), reference=(reference,) * len(values))
    note = next(n for n in run(current, stored).comparison.notes if "speed" in n)
    ran = "slower" if reference > 1e-3 else "faster"
    assert f"the speed reference took {said}" in note
    assert note.endswith(f"(this machine ran {ran})")
