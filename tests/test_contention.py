"""CPU contention: reading pressure stall information, and a regression measured while
other processes took the CPUs becoming INCONCLUSIVE (never hiding one a calm look shows)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pytest_perfgate.contention import (
    cpu_stall_us,
    device_bytes,
    explainable_slowdown,
    others_share,
    pooled,
    pressure_between,
)
from pytest_perfgate.gate import GatePolicy, judge
from pytest_perfgate.model import BaselineEntry, Direction, Environment, Measurement, Verdict
from pytest_perfgate.stats import summarize

HERE = Environment({"cpu": "A"})


def test_cpu_stall_us_reads_the_some_line(tmp_path: Path) -> None:
    psi = tmp_path / "cpu"
    psi.write_text(
        "some avg10=1.00 avg60=2.00 avg300=3.00 total=123456\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    )
    assert cpu_stall_us(psi) == 123456
    assert cpu_stall_us(tmp_path / "missing") is None
    psi.write_text("garbage\n")
    assert cpu_stall_us(psi) is None


def test_pressure_is_a_share_of_the_wall_time() -> None:
    assert pressure_between(1_000, 251_000, 1_000_000_000) == pytest.approx(0.25)
    assert pressure_between(None, 5, 10) is None
    assert pressure_between(0, 10**9, 1) == 1.0  # clipped


def test_pooled_looks_keep_the_calmer_pressure() -> None:
    assert pooled({"cpu_pressure": 0.4, "x": 1}, {"cpu_pressure": 0.01}) == {
        "cpu_pressure": 0.01,
        "x": 1,
    }
    assert pooled({"cpu_pressure": 0.4}, {}) == {}


def throughput(centre: float, pressure: float | None, seed: int) -> Measurement:
    rng = np.random.default_rng(seed)
    details = {} if pressure is None else {"cpu_pressure": pressure}
    return Measurement(
        "stream.throughput",
        "MiB/s",
        Direction.HIGHER_IS_BETTER,
        tuple(rng.normal(centre, centre * 0.01, 20).tolist()),
        details=details,
    )


def entry(measurement: Measurement) -> BaselineEntry:
    return BaselineEntry(
        unit=measurement.unit,
        direction=measurement.direction,
        samples=measurement.samples,
        summary=summarize(measurement.samples),
        history=(),
        environment=HERE,
        details=measurement.details,
    )


def verdict(now: Measurement, before: Measurement, fresh: Measurement | None = None) -> tuple:
    comparison = judge(
        "t.py::test_stream",
        now,
        entry(before),
        GatePolicy(threshold=0.1),
        environment=HERE,
        resample=None if fresh is None else (lambda: fresh),
    ).comparison
    return comparison.verdict, comparison.notes


def test_a_regression_under_contention_is_inconclusive_with_the_reason() -> None:
    # Waiting 55% of the time can stretch a run 2.2x: a halving is within that.
    result, notes = verdict(throughput(500, 0.55, 1), throughput(1000, 0.01, 2))
    assert result is Verdict.INCONCLUSIVE
    assert "other processes competed for the CPUs" in notes[-1]
    assert "CPU pressure 55%, 1% when the baseline was recorded" in notes[-1]


def test_a_slowdown_larger_than_contention_can_cause_still_regresses() -> None:
    # 45% waiting stretches a run by at most 1.8x (from 1% in the baseline); 10x is not that.
    result, notes = verdict(throughput(100, 0.45, 12), throughput(1000, 0.01, 13))
    assert result is Verdict.REGRESSED
    assert "which explains at most 1.80x: the slowdown is larger than that" in notes[-1]


def test_the_explainable_slowdown_is_one_over_the_time_left() -> None:
    assert explainable_slowdown(0.5, 0.0) == pytest.approx(2.0)
    assert explainable_slowdown(0.5, 0.2) == pytest.approx(1.6)
    assert explainable_slowdown(1.0, 0.0) == math.inf


def test_a_calm_run_still_regresses() -> None:
    result, _ = verdict(throughput(500, 0.02, 3), throughput(1000, 0.01, 4))
    assert result is Verdict.REGRESSED


def test_a_baseline_recorded_under_the_same_contention_still_gates() -> None:
    result, _ = verdict(throughput(500, 0.45, 5), throughput(1000, 0.42, 6))
    assert result is Verdict.REGRESSED


def test_a_calm_second_look_that_confirms_the_regression_keeps_it() -> None:
    first = throughput(500, 0.45, 7)
    fresh = throughput(500, 0.0, 8)
    result, _ = verdict(first, throughput(1000, 0.01, 9), fresh)
    assert result is Verdict.REGRESSED


def test_without_pressure_figures_nothing_changes() -> None:
    result, _ = verdict(throughput(500, None, 10), throughput(1000, None, 11))
    assert result is Verdict.REGRESSED


def test_device_bytes_reads_diskstats(tmp_path: Path) -> None:
    diskstats = tmp_path / "diskstats"
    diskstats.write_text(
        " 254       0 vda 100 0 2000 50 300 0 4000 60 0 0 0 0 0 0 0 0 0\n"
        " 254       1 vda1 1 0 8 1 1 0 8 1 0 0 0 0 0 0 0 0 0\n"
    )
    assert device_bytes("/dev/vda", diskstats) == (2000 + 4000) * 512
    assert device_bytes("overlay", diskstats) is None
    assert device_bytes("/dev/vda", tmp_path / "missing") is None


def test_others_share_is_the_traffic_that_was_not_ours() -> None:
    assert others_share(1000, 5000, 3000) == pytest.approx(0.25)
    assert others_share(1000, 5000, 9000) == 0.0  # readahead, rounding: never negative
    assert others_share(None, 5000, 10) is None
    assert others_share(5000, 5000, 0) is None


def test_a_regression_while_others_used_the_disk_is_inconclusive() -> None:
    def run(centre: float, others: float, seed: int) -> Measurement:
        rng = np.random.default_rng(seed)
        return Measurement(
            "read.throughput",
            "MiB/s",
            Direction.HIGHER_IS_BETTER,
            tuple(rng.normal(centre, centre * 0.01, 20).tolist()),
            details={"io_others": others, "cpu_pressure": 0.0},
        )

    result, notes = verdict(run(500, 0.6, 1), run(1000, 0.0, 2))
    assert result is Verdict.INCONCLUSIVE
    assert "other processes used the same device during the run" in notes[-1]
    assert verdict(run(500, 0.01, 3), run(1000, 0.0, 4))[0] is Verdict.REGRESSED
