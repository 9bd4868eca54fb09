"""The gate with a tail statistic (p99), rates, and probe fields: routing, never
comparing a p99 with a median, what is stored, and what the message says."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pytest_perfgate.baseline import TAIL_STORED_SAMPLES, refreshed_entry
from pytest_perfgate.gate import GatePolicy, judge
from pytest_perfgate.model import (
    BaselineEntry,
    Comparison,
    Direction,
    Environment,
    Measurement,
    Verdict,
    explain,
)
from pytest_perfgate.stats import sample_quantile, summarize

HERE = Environment({"cpu": "CPU A"})
LOWER = Direction.LOWER_IS_BETTER


def latencies(seed: int, n: int = 3000, tail: float = 1.0) -> tuple[float, ...]:
    rng = np.random.default_rng(seed)
    body = rng.lognormal(math.log(1e-4), 0.1, n)
    slow = rng.random(n) < 0.05
    body[slow] *= 1.0 + tail * (rng.pareto(3.0, slow.sum()) + 1.0)
    return tuple(body.tolist())


def rtt(values: tuple[float, ...], statistic: str = "p99", **fields: object) -> Measurement:
    return Measurement("rtt.p99", "s", LOWER, values, statistic=statistic, **fields)  # type: ignore[arg-type]


def entry_from(measurement: Measurement, previous: BaselineEntry | None = None) -> BaselineEntry:
    return refreshed_entry(
        measurement,
        previous,
        environment=HERE,
        code_hash="h",
        commit=None,
        recorded_at="",
        history=10,
        max_samples=400,
    )


def decide(current: Measurement, baseline: BaselineEntry, threshold: float = 0.1) -> Comparison:
    policy = GatePolicy(threshold=threshold, alpha=0.05)
    return judge(
        "t.py::test_rpc", current, baseline, policy, environment=HERE, code_hash="h"
    ).comparison


def test_a_heavier_tail_regresses_the_p99_with_the_median_unmoved() -> None:
    base = entry_from(rtt(latencies(1)))
    comparison = decide(rtt(latencies(2, tail=3.0)), base)
    assert comparison.verdict is Verdict.REGRESSED
    assert comparison.statistic == "p99"
    assert comparison.value == sample_quantile(latencies(2, tail=3.0), 0.99)
    median_view = decide(
        rtt(latencies(2, tail=3.0), "median"), entry_from(rtt(latencies(1), "median"))
    )
    assert median_view.verdict is not Verdict.REGRESSED


def test_an_unchanged_tail_is_not_a_regression() -> None:
    comparison = decide(rtt(latencies(4)), entry_from(rtt(latencies(3))))
    assert comparison.verdict is Verdict.UNCHANGED


@pytest.mark.parametrize(("stored", "now"), [("median", "p99"), ("p99", "median"), ("p90", "p99")])
def test_a_p99_baseline_is_never_compared_with_a_median(stored: str, now: str) -> None:
    comparison = decide(rtt(latencies(6), now), entry_from(rtt(latencies(5), stored)))
    assert comparison.verdict is Verdict.INCOMPARABLE
    assert f"the baseline gates its {stored}, this measurement its {now}" in comparison.notes[0]


def test_another_cache_mode_is_incomparable() -> None:
    def throughput(cache: str) -> Measurement:
        return Measurement(
            "read.throughput",
            "MiB/s",
            Direction.HIGHER_IS_BETTER,
            (100.0, 101.0, 99.0),
            machine={"fs.type": "ext4", "storage.cache": cache},
        )

    comparison = decide(throughput("cached"), entry_from(throughput("direct")))
    assert comparison.verdict is Verdict.INCOMPARABLE
    assert "storage.cache: 'direct' vs 'cached'" in comparison.notes[0]


def test_rates_get_the_run_noise_of_timings() -> None:
    """A rate is a timing turned over: a 3% drop inside the samples' own tiny noise is
    not a regression at a 2% threshold once run-to-run noise is allowed for."""
    rng = np.random.default_rng(8)
    stored = tuple(rng.normal(1000.0, 1.0, 30).tolist())
    now = tuple(rng.normal(970.0, 1.0, 30).tolist())

    def rate(values: tuple[float, ...], unit: str) -> Measurement:
        return Measurement("x", unit, Direction.HIGHER_IS_BETTER, values)

    assert decide(rate(now, "MiB/s"), entry_from(rate(stored, "MiB/s")), 0.02).verdict in (
        Verdict.INCONCLUSIVE,
        Verdict.UNCHANGED,
    )
    counted = decide(rate(now, "rows"), entry_from(rate(stored, "rows")), 0.02)
    assert counted.verdict is Verdict.REGRESSED  # counts carry their noise in the samples


def test_refresh_stores_the_statistic_its_history_and_enough_tail() -> None:
    values = latencies(9)
    first = entry_from(rtt(values))
    assert first.statistic == "p99"
    assert first.history == (pytest.approx(sample_quantile(values, 0.99), rel=1e-5),)
    assert len(first.samples) == min(len(values), TAIL_STORED_SAMPLES, 2000)
    again = entry_from(rtt(latencies(10)), first)
    assert len(again.history) == 2
    # A median measurement does not continue a p99 history.
    switched = entry_from(rtt(latencies(11), "median"), again)
    assert len(switched.history) == 1
    assert switched.statistic == "median"


def test_the_statistic_round_trips_and_is_omitted_when_median() -> None:
    tail = entry_from(rtt(latencies(12)))
    data = json.loads(json.dumps(tail.to_dict()))
    assert data["statistic"] == "p99"
    assert BaselineEntry.from_dict(data) == tail
    median = entry_from(rtt(latencies(12), "median"))
    assert "statistic" not in median.to_dict()
    measurement = rtt(latencies(13)[:10])
    assert Measurement.from_dict(json.loads(json.dumps(measurement.to_dict()))) == measurement


def test_comparison_round_trips_with_its_statistic() -> None:
    comparison = decide(rtt(latencies(15)), entry_from(rtt(latencies(14))))
    data = json.loads(json.dumps(comparison.to_dict()))
    assert Comparison.from_dict(data) == comparison
    plain = Comparison("t", "time", Verdict.NEW, "s", LOWER, summarize([1.0, 2.0]))
    assert "statistic" not in plain.to_dict()


def test_the_message_names_the_statistic() -> None:
    comparison = decide(rtt(latencies(17, tail=3.0)), entry_from(rtt(latencies(16))))
    text = explain(comparison)
    assert text.startswith("p99 ")
    assert " vs baseline " in text
    assert comparison.reference_median == pytest.approx(comparison.now / comparison.ratio)
    new = judge("t", rtt(latencies(18)), None, GatePolicy(), environment=HERE).comparison
    assert explain(new).startswith("p99 ")


def test_a_tail_statistic_is_judged_with_the_runs_pooled_in_it() -> None:
    """A/B mode sets current_runs: a p99 of four pooled runs is less exposed to the
    run-to-run noise than one run's, as a median of four runs is."""
    base = entry_from(rtt(latencies(30)))
    current = rtt(latencies(31))

    def width(runs: int) -> float:
        policy = GatePolicy(threshold=0.1, alpha=0.05, run_noise=0.05, current_runs=runs)
        comparison = judge(
            "t.py::test_rpc", current, base, policy, environment=HERE, code_hash="h"
        ).comparison
        assert comparison.ci_low is not None
        assert comparison.ci_high is not None
        return comparison.ci_high / comparison.ci_low

    assert width(4) < width(1)


def test_an_incomparable_p99_row_shows_the_baselines_p99_not_its_median() -> None:
    """Issue 13: on another machine class the table printed the baseline's median
    beside the current p99."""
    base = entry_from(rtt(latencies(13)))
    elsewhere = Environment({"cpu": "CPU B"})
    comparison = judge(
        "t.py::test_rpc",
        rtt(latencies(14)),
        base,
        GatePolicy(threshold=0.1),
        environment=elsewhere,
        code_hash="h",
    ).comparison
    assert comparison.verdict is Verdict.INCOMPARABLE
    assert comparison.reference_median == sample_quantile(base.samples, 0.99)
    assert comparison.reference_median != base.summary.median
    again = Comparison.from_dict(json.loads(json.dumps(comparison.to_dict())))
    assert again.reference_median == comparison.reference_median
