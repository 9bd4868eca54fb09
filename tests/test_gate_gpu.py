"""The gate's GPU rules: SM clock (cycles), throttled samples, drivers, pooled looks;
unit-level on gate_gpu.review with a scripted cycles comparison, then through gate.judge."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from pytest_perfgate.gate import GatePolicy, judge
from pytest_perfgate.gate_gpu import CLOCK_TOLERANCE, pooled_details, review
from pytest_perfgate.model import BaselineEntry, Direction, Environment, Measurement, Verdict
from pytest_perfgate.stats import Decision, summarize

LOWER = Direction.LOWER_IS_BETTER
THRESHOLD = 0.02
H100 = "NVIDIA H100 80GB HBM3"
GPU_MACHINE = {"gpu.name": H100, "gpu.timer": "cuda-event", "gpu.mode": "cold"}
HERE = Environment({"cpu": "CPU A", "cpus": "2"}, calibration_ns=1000.0)


def decision(verdict: Verdict, ratio: float = 1.0, p_worse: float = 0.5) -> Decision:
    return Decision(
        verdict=verdict,
        ratio=ratio,
        ci_low=ratio - 0.01,
        ci_high=ratio + 0.01,
        p_worse=p_worse,
        p_better=0.5,
        noise=0.02,
    )


def gpu(
    clock: float | None = 1400.0,
    *,
    samples: int = 40,
    slowed: int = 0,
    reasons: dict[str, int] | None = None,
    driver: str | None = "580.159.04",
) -> dict[str, Any]:
    details: dict[str, Any] = {
        "samples": samples,
        "slowed_samples": slowed,
        "slowdown_reasons": reasons or {},
        "identity": {"name": H100, "driver": driver},
    }
    if clock is not None:
        details["sm_clock_mhz"] = clock
    return {"gpu": details}


def measurement(details: dict[str, Any], values: tuple[float, ...] = (1e-3,) * 5) -> Measurement:
    return Measurement("gpu", "s", LOWER, values, loops=1, machine=GPU_MACHINE, details=details)


def baseline(details: dict[str, Any], values: tuple[float, ...] = (1e-3,) * 5) -> BaselineEntry:
    return BaselineEntry(
        unit="s",
        direction=LOWER,
        samples=values,
        summary=summarize(values),
        history=(),
        environment=HERE.extended(GPU_MACHINE),
        loops=1,
        details=details,
    )


class Cycles:
    """A scripted comparison in cycles; records the clocks it was asked with."""

    def __init__(self, answer: Decision) -> None:
        self.answer = answer
        self.calls: list[tuple[float, float]] = []

    def __call__(self, clock_before: float, clock_now: float) -> Decision:
        self.calls.append((clock_before, clock_now))
        return self.answer


def never(clock_before: float, clock_now: float) -> Decision:
    raise AssertionError("the cycles comparison was made, though the clocks agree")


# -- review --------------------------------------------------------------------------------------


def test_slower_in_time_but_not_in_cycles_is_inconclusive() -> None:
    cycles = Cycles(decision(Verdict.UNCHANGED, ratio=0.995))
    result, notes = review(
        decision(Verdict.REGRESSED, ratio=1.12, p_worse=1e-6),
        measurement(gpu(1300.0)),
        baseline(gpu(1480.0)),
        cycles,
        THRESHOLD,
    )
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.ratio == 1.12  # the time figures stay; only the verdict changes
    assert cycles.calls == [(1480.0, 1300.0)]  # (baseline's clock, current clock)
    [note] = notes
    assert note.startswith("SM clock 1300 MHz vs 1480 MHz in the baseline; ")
    assert "in cycles (time x SM clock) -0.5% (95% CI -1.5%..+0.5%)" in note
    assert note.endswith("slower in time but not in cycles, so the clock may explain it")


def test_slower_in_time_and_in_cycles_stays_regressed() -> None:
    cycles = Cycles(decision(Verdict.REGRESSED, ratio=1.08, p_worse=1e-4))
    result, notes = review(
        decision(Verdict.REGRESSED, ratio=1.12, p_worse=1e-6),
        measurement(gpu(1300.0)),
        baseline(gpu(1480.0)),
        cycles,
        THRESHOLD,
    )
    assert result.verdict is Verdict.REGRESSED
    assert result.p_worse == 1e-6
    [note] = notes
    assert "in cycles (time x SM clock) +8.0%" in note
    assert "may explain" not in note
    assert "significantly" not in note


def test_worse_in_time_within_noise_and_significantly_worse_in_cycles_is_regressed() -> None:
    cycles = Cycles(decision(Verdict.REGRESSED, ratio=1.09, p_worse=1e-5))
    result, notes = review(
        decision(Verdict.INCONCLUSIVE, ratio=1.05, p_worse=0.2),
        measurement(gpu(1500.0)),
        baseline(gpu(1400.0)),
        cycles,
        THRESHOLD,
    )
    assert result.verdict is Verdict.REGRESSED
    assert result.p_worse == 1e-5  # the cycles comparison's evidence
    assert result.ratio == 1.05
    [note] = notes
    assert note.startswith("SM clock 1500 MHz vs 1400 MHz in the baseline")
    assert note.endswith("slower in time, and significantly so in cycles")


def test_inconclusive_within_the_threshold_is_not_promoted_by_cycles() -> None:
    cycles = Cycles(decision(Verdict.REGRESSED, ratio=1.09, p_worse=1e-5))
    before = decision(Verdict.INCONCLUSIVE, ratio=1.0 + THRESHOLD / 2, p_worse=0.2)
    result, notes = review(
        before, measurement(gpu(1500.0)), baseline(gpu(1400.0)), cycles, THRESHOLD
    )
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.p_worse == 0.2
    assert len(notes) == 1
    assert "significantly" not in notes[0]


@pytest.mark.parametrize("verdict", [Verdict.UNCHANGED, Verdict.IMPROVED])
def test_a_clock_change_on_a_passing_comparison_is_noted_not_changed(verdict: Verdict) -> None:
    cycles = Cycles(decision(Verdict.REGRESSED, ratio=1.2))
    start = decision(verdict, ratio=0.99)
    result, notes = review(start, measurement(gpu(1200.0)), baseline(gpu(1480.0)), cycles, 0.02)
    assert result == start
    [note] = notes
    assert note.startswith("SM clock 1200 MHz vs 1480 MHz")


@pytest.mark.parametrize(
    ("now", "before"),
    [
        (1440.0, 1420.0),
        (1400.0, 1400.0),
        (1400.0 * (1 + CLOCK_TOLERANCE * 0.99), 1400.0),
        (1400.0 * (1 - CLOCK_TOLERANCE * 0.99), 1400.0),
        (None, 1400.0),  # no telemetry on either side: nothing to compare in cycles
        (1400.0, None),
        (0.0, 1400.0),
    ],
)
def test_clocks_within_tolerance_or_unknown_make_no_cycles_comparison(
    now: float | None, before: float | None
) -> None:
    start = decision(Verdict.REGRESSED, ratio=1.12, p_worse=1e-6)
    result, notes = review(start, measurement(gpu(now)), baseline(gpu(before)), never, 0.02)
    assert result is start
    assert not any(note.startswith("SM clock") for note in notes)


def test_just_beyond_the_tolerance_compares_in_cycles() -> None:
    cycles = Cycles(decision(Verdict.UNCHANGED))
    now = 1400.0 * (1 + CLOCK_TOLERANCE * 1.01)
    review(decision(Verdict.UNCHANGED), measurement(gpu(now)), baseline(gpu(1400.0)), cycles, 0.02)
    assert len(cycles.calls) == 1


SLOWED = {"slowed": 12, "reasons": {"SW power cap": 12, "HW slowdown": 2}}


@pytest.mark.parametrize("verdict", [Verdict.REGRESSED, Verdict.INCONCLUSIVE])
def test_slowed_samples_are_named_for_a_failing_or_unclear_verdict(verdict: Verdict) -> None:
    result, notes = review(
        decision(verdict, ratio=1.1),
        measurement(gpu(1400.0, **SLOWED)),  # type: ignore[arg-type]
        baseline(gpu(1400.0, samples=30, slowed=5)),
        never,
        THRESHOLD,
    )
    assert result.verdict is verdict
    assert notes == [
        "12 of 40 samples ran while the GPU reported a slowdown: "
        "HW slowdown (2), SW power cap (12) (baseline: 5 of 30)"
    ]


@pytest.mark.parametrize("verdict", [Verdict.UNCHANGED, Verdict.IMPROVED])
def test_slowed_samples_are_not_mentioned_when_the_test_passes(verdict: Verdict) -> None:
    _, notes = review(
        decision(verdict),
        measurement(gpu(1400.0, **SLOWED)),  # type: ignore[arg-type]
        baseline(gpu(1400.0, samples=30, slowed=5)),
        never,
        THRESHOLD,
    )
    assert notes == []


def test_no_slowed_samples_no_note_and_a_baseline_without_telemetry_has_no_share() -> None:
    _, notes = review(
        decision(Verdict.REGRESSED, ratio=1.1),
        measurement(gpu(1400.0)),
        baseline(gpu(1400.0, samples=30, slowed=5)),
        never,
        THRESHOLD,
    )
    assert notes == []
    bare = {"gpu": {"identity": {"driver": "580.159.04"}}}
    _, notes = review(
        decision(Verdict.REGRESSED, ratio=1.1),
        measurement(gpu(1400.0, slowed=3, reasons={"HW power brake": 3})),
        baseline(bare),
        never,
        THRESHOLD,
    )
    assert notes == ["3 of 40 samples ran while the GPU reported a slowdown: HW power brake (3)"]


def test_a_driver_change_is_noted_whatever_the_verdict() -> None:
    for verdict in (Verdict.UNCHANGED, Verdict.REGRESSED):
        result, notes = review(
            decision(verdict, ratio=1.1),
            measurement(gpu(1400.0, driver="580.159.04")),
            baseline(gpu(1400.0, driver="570.86.10")),
            never,
            THRESHOLD,
        )
        assert result.verdict is verdict
        assert notes == ["GPU driver 570.86.10 in the baseline, 580.159.04 now"]
    for now, before in [("580.1", "580.1"), ("580.1", None), (None, "580.1")]:
        _, notes = review(
            decision(Verdict.UNCHANGED),
            measurement(gpu(1400.0, driver=now)),
            baseline(gpu(1400.0, driver=before)),
            never,
            THRESHOLD,
        )
        assert notes == []


def test_all_notes_together_in_order() -> None:
    cycles = Cycles(decision(Verdict.UNCHANGED, ratio=1.0))
    result, notes = review(
        decision(Verdict.REGRESSED, ratio=1.12),
        measurement(gpu(1300.0, slowed=4, reasons={"SW power cap": 4}, driver="b")),
        baseline(gpu(1480.0, samples=20, slowed=0, driver="a")),
        cycles,
        THRESHOLD,
    )
    assert result.verdict is Verdict.INCONCLUSIVE
    assert [note.split(" ")[0] for note in notes] == ["SM", "4", "GPU"]
    assert notes[1].endswith("(baseline: 0 of 20)")


def test_a_measurement_without_gpu_details_is_untouched() -> None:
    start = decision(Verdict.REGRESSED, ratio=1.5, p_worse=1e-9)
    cpu = Measurement("time", "s", LOWER, (1e-3,) * 5, loops=10)
    for details in ({}, {"gpu": "not a mapping"}, {"storage": {"sm_clock_mhz": 1}}):
        result, notes = review(
            start, replace(cpu, details=details), baseline(gpu(1480.0)), never, THRESHOLD
        )
        assert result is start
        assert notes == []


def test_a_gpu_measurement_against_a_baseline_without_gpu_details() -> None:
    start = decision(Verdict.REGRESSED, ratio=1.12)
    result, notes = review(start, measurement(gpu(1300.0)), baseline({}), never, THRESHOLD)
    assert result is start
    assert notes == []


# -- pooled details ------------------------------------------------------------------------------


def test_pooled_details_add_counts_and_average_the_clock() -> None:
    first = {
        "other": "kept",
        **gpu(1400.0, samples=30, slowed=3, reasons={"SW power cap": 3}),
    }
    fresh = gpu(1500.0, samples=10, slowed=4, reasons={"SW power cap": 2, "HW slowdown": 2})
    pooled = pooled_details(first, fresh)
    assert pooled["other"] == "kept"
    assert pooled["gpu"]["samples"] == 40
    assert pooled["gpu"]["slowed_samples"] == 7
    assert pooled["gpu"]["slowdown_reasons"] == {"SW power cap": 5, "HW slowdown": 2}
    assert pooled["gpu"]["sm_clock_mhz"] == pytest.approx((1400 * 30 + 1500 * 10) / 40)
    assert pooled["gpu"]["identity"] == first["gpu"]["identity"]
    # The inputs are left as they were.
    assert first["gpu"]["samples"] == 30
    assert first["gpu"]["slowdown_reasons"] == {"SW power cap": 3}


def test_pooled_details_without_a_clock_on_one_side_keep_the_first() -> None:
    pooled = pooled_details(gpu(1400.0, samples=5), gpu(None, samples=5))
    assert pooled["gpu"]["sm_clock_mhz"] == 1400.0
    pooled = pooled_details(gpu(None, samples=5), gpu(1500.0, samples=5))
    assert "sm_clock_mhz" not in pooled["gpu"]


def test_pooled_details_of_non_gpu_measurements_are_the_first() -> None:
    assert pooled_details({"a": 1}, {"b": 2}) == {"a": 1}
    assert pooled_details(gpu(1400.0), {}) == gpu(1400.0)
    assert pooled_details({}, gpu(1400.0)) == {}


# -- through the gate ------------------------------------------------------------------------------


def lognormal(seed: int, centre: float, n: int = 200, sigma: float = 0.02) -> tuple[float, ...]:
    rng = np.random.default_rng(seed)
    return tuple(rng.lognormal(math.log(centre), sigma, n).tolist())


def run(current: Measurement, entry: BaselineEntry, **kwargs: Any) -> Any:
    return judge(
        "tests/test_x.py::test_gpu",
        current,
        entry,
        GatePolicy(),
        environment=HERE,
        code_hash="hash1",
        **kwargs,
    )


BASE_CLOCK = 1480.0
SLOW_CLOCK = BASE_CLOCK / 1.12  # 12% fewer cycles a second: 12% more time, same cycles


def test_slower_only_because_the_sm_clock_dropped_is_inconclusive() -> None:
    entry = baseline(gpu(BASE_CLOCK, samples=200), lognormal(1, 1e-3))
    slower = measurement(gpu(SLOW_CLOCK, samples=200), lognormal(2, 1.12e-3))
    comparison = run(slower, entry).comparison
    assert comparison.verdict is Verdict.INCONCLUSIVE
    assert comparison.ratio == pytest.approx(1.12, abs=0.02)
    [clock_note] = [n for n in comparison.notes if n.startswith("SM clock")]
    assert clock_note.startswith("SM clock 1321 MHz vs 1480 MHz in the baseline")
    assert clock_note.endswith("slower in time but not in cycles, so the clock may explain it")
    assert not comparison.verdict.fails


def test_the_same_slowdown_at_the_same_clock_is_a_regression() -> None:
    entry = baseline(gpu(BASE_CLOCK, samples=200), lognormal(1, 1e-3))
    slower = measurement(gpu(BASE_CLOCK, samples=200), lognormal(2, 1.12e-3))
    comparison = run(slower, entry).comparison
    assert comparison.verdict is Verdict.REGRESSED
    assert not any(n.startswith("SM clock") for n in comparison.notes)


def test_a_slowdown_in_cycles_despite_a_faster_clock_is_a_regression() -> None:
    entry = baseline(gpu(BASE_CLOCK, samples=200), lognormal(1, 1e-3))
    # 12% slower in time although the clock rose 10%: 23% more cycles.
    slower = measurement(gpu(BASE_CLOCK * 1.1, samples=200), lognormal(2, 1.12e-3))
    comparison = run(slower, entry).comparison
    assert comparison.verdict is Verdict.REGRESSED
    [note] = [n for n in comparison.notes if n.startswith("SM clock")]
    assert "in cycles (time x SM clock) +2" in note


def test_the_second_look_pools_gpu_details_before_the_review() -> None:
    entry = baseline(gpu(BASE_CLOCK, samples=200), lognormal(1, 1e-3))
    first = measurement(gpu(SLOW_CLOCK, samples=200, slowed=10, reasons={"SW power cap": 10}),
                        lognormal(2, 1.12e-3))  # fmt: skip
    fresh = measurement(gpu(SLOW_CLOCK, samples=200, slowed=30, reasons={"SW power cap": 30}),
                        lognormal(3, 1.12e-3))  # fmt: skip
    asked: list[int] = []

    def resample() -> Measurement:
        asked.append(1)
        return fresh

    judgement = run(first, entry, resample=resample)
    assert asked == [1]
    assert judgement.comparison.looks == 2
    assert judgement.comparison.verdict is Verdict.INCONCLUSIVE
    pooled = judgement.measurement.details["gpu"]
    assert pooled["samples"] == 400
    assert pooled["slowed_samples"] == 40
    assert pooled["sm_clock_mhz"] == pytest.approx(SLOW_CLOCK)
    assert any(
        n.startswith("40 of 400 samples ran while the GPU reported a slowdown: SW power cap (40)")
        for n in judgement.comparison.notes
    )


def test_another_gpu_model_is_incomparable() -> None:
    entry = baseline(gpu(BASE_CLOCK), lognormal(1, 1e-3))
    elsewhere = replace(
        measurement(gpu(BASE_CLOCK), lognormal(2, 1e-3)),
        machine={**GPU_MACHINE, "gpu.name": "NVIDIA H200"},
    )
    comparison = run(elsewhere, entry).comparison
    assert comparison.verdict is Verdict.INCOMPARABLE
    [note] = comparison.notes
    assert f"gpu.name: '{H100}' vs 'NVIDIA H200'" in note
    assert "another machine class" in note


def test_a_baseline_recorded_without_gpu_fields_is_incomparable() -> None:
    entry = replace(baseline(gpu(BASE_CLOCK), lognormal(1, 1e-3)), environment=HERE)
    comparison = run(measurement(gpu(BASE_CLOCK), lognormal(2, 1e-3)), entry).comparison
    assert comparison.verdict is Verdict.INCOMPARABLE
    assert f"gpu.name: '-' vs '{H100}'" in comparison.notes[0]


def test_another_timing_mode_is_incomparable() -> None:
    entry = baseline(gpu(BASE_CLOCK), lognormal(1, 1e-3))
    batch = replace(
        measurement(gpu(BASE_CLOCK), lognormal(2, 1e-3)),
        machine={**GPU_MACHINE, "gpu.mode": "batch"},
    )
    comparison = run(batch, entry).comparison
    assert comparison.verdict is Verdict.INCOMPARABLE
    assert "gpu.mode: 'cold' vs 'batch'" in comparison.notes[0]
