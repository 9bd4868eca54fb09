"""The run-noise model: intervals that cover on generated histories, a prior that fades,
priors per kind of measurement, and the minimum detectable change."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pytest_perfgate.gate import GatePolicy, basis_of
from pytest_perfgate.model import BaselineEntry, Direction, Environment, Measurement, Verdict
from pytest_perfgate.noise import (
    LARGE_NCCL_BYTES,
    LARGE_NCCL_PRIOR,
    RUN_NOISE_PRIORS,
    MeasurementKind,
    kind_of,
    run_noise_prior,
)
from pytest_perfgate.stats import (
    compare,
    detectable_change,
    prior_weight,
    run_noise_of,
    summarize,
)

LOWER = Direction.LOWER_IS_BETTER
HIGHER = Direction.HIGHER_IS_BETTER
#: A run whose samples all sit at its level: no within-run error, the run noise alone.
FLAT = 20


def _coverage_and_alarms(
    draw: np.random.Generator, noise: str, runs: int, trials: int = 2000
) -> tuple[float, float]:
    """Fraction of 95% CIs that hold the true ratio (1: nothing changed), and of
    REGRESSED verdicts at alpha 0.05 with no threshold, over generated histories."""
    sigma = 0.03
    covered = alarms = 0
    for _ in range(trials):
        if noise == "normal":
            levels = draw.normal(0.0, sigma, runs + 1)
        else:  # Student-t with 3 df, scaled to the same standard deviation
            levels = draw.standard_t(3, runs + 1) * sigma / math.sqrt(3.0)
        history, now = np.exp(levels[:runs]), math.exp(levels[runs])
        decision = compare(
            (1.0,) * FLAT,
            (now,) * FLAT,
            direction=LOWER,
            threshold=0.0,
            alpha=0.05,
            history=tuple(history.tolist()),
            run_noise=sigma,
        )
        covered += decision.ci_low <= 1.0 <= decision.ci_high
        alarms += decision.verdict is Verdict.REGRESSED
    return covered / trials, alarms / trials


@pytest.mark.parametrize("runs", [3, 5, 10])
def test_intervals_cover_as_stated_on_normal_run_noise(runs: int) -> None:
    coverage, alarms = _coverage_and_alarms(np.random.default_rng(runs), "normal", runs)
    # 2000 trials: the sd of a 95% coverage is 0.5%; the bounds are 5 sd away. Above 95%
    # is expected: the prior here is the true noise, and the Student-t does not know it.
    assert 0.925 <= coverage <= 0.99
    assert alarms <= 0.075


@pytest.mark.parametrize("runs", [3, 5, 10])
def test_intervals_still_cover_on_heavy_tailed_run_noise(runs: int) -> None:
    coverage, alarms = _coverage_and_alarms(np.random.default_rng(100 + runs), "t3", runs)
    assert coverage >= 0.925
    assert alarms <= 0.075


def test_a_normal_interval_on_a_short_history_would_not_cover() -> None:
    """Why the Student-t: a history of 3 with its estimated sd and a normal quantile
    covers well under 95% (the estimate is often small by chance)."""
    draw = np.random.default_rng(7)
    covered, trials = 0, 4000
    for _ in range(trials):
        levels = draw.normal(0.0, 0.03, 4)
        sd = float(np.std(levels[:3], ddof=1))
        half = 1.959963984540054 * sd * math.sqrt(1 + 1 / 3)
        covered += abs(levels[3] - levels[:3].mean()) <= half
    assert covered / trials < 0.90


def test_the_prior_fades_as_runs_accumulate() -> None:
    weights = [prior_weight(k) for k in range(3, 11)]
    assert weights == sorted(weights, reverse=True)
    assert weights[0] == 4
    assert weights[-1] < 1
    # Degrees of freedom never fall as runs are added.
    dfs = [prior_weight(k) + k - 1 for k in range(3, 11)]
    assert dfs == sorted(dfs)


def test_ten_quiet_runs_of_a_gpu_copy_give_an_interval_of_a_fraction_of_a_percent() -> None:
    """Issue 16: a 1 GiB copy that moves 0.03% between runs had a CI of +-3.2%."""
    draw = np.random.default_rng(3)
    history = tuple(np.exp(draw.normal(math.log(505e-6), 0.0003, 10)).tolist())
    noise = run_noise_of(history, RUN_NOISE_PRIORS[MeasurementKind.GPU])
    assert noise.sigma < 0.005
    decision = compare(
        (505e-6,) * FLAT,
        (505e-6,) * FLAT,
        direction=LOWER,
        threshold=0.02,
        alpha=0.05 / 3,
        history=history,
        run_noise=RUN_NOISE_PRIORS[MeasurementKind.GPU],
    )
    assert decision.ci_high < 1.01  # was +3.2%
    assert decision.ci_low > 0.99
    # And a 5% slowdown of it is caught.
    slower = compare(
        (505e-6,) * FLAT,
        (505e-6 * 1.05,) * FLAT,
        direction=LOWER,
        threshold=0.02,
        alpha=0.05 / 3,
        history=history,
        run_noise=RUN_NOISE_PRIORS[MeasurementKind.GPU],
    )
    assert slower.verdict is Verdict.REGRESSED


def test_under_three_runs_the_prior_stands_alone() -> None:
    noise = run_noise_of((1.0, 1.5), 0.025)
    assert (noise.sigma, noise.df, noise.runs) == (0.025, math.inf, 0)


def _measurement(unit: str, machine: dict[str, str]) -> Measurement:
    return Measurement("time", unit, LOWER, (1.0, 1.1), machine=machine)


@pytest.mark.parametrize(
    ("unit", "machine", "kind"),
    [
        ("s", {}, MeasurementKind.CPU),
        ("s", {"gpu.timer": "cuda-events", "gpu.name": "H200"}, MeasurementKind.GPU),
        ("MiB/s", {"fs.type": "ext4"}, MeasurementKind.STORAGE),
        ("s", {"net.target": "loopback", "cpu.idle": "held"}, MeasurementKind.NETWORK),
        ("s", {"collective.backend": "nccl", "gpu.name": "H200"}, MeasurementKind.COLLECTIVE),
        ("instructions", {"valgrind": "3.22"}, MeasurementKind.COUNTED),
        ("B", {}, MeasurementKind.UNTIMED),
    ],
)
def test_each_kind_of_measurement_has_its_own_prior(
    unit: str, machine: dict[str, str], kind: MeasurementKind
) -> None:
    measurement = _measurement(unit, machine)
    assert kind_of(unit, machine) is kind
    timed = kind not in (MeasurementKind.COUNTED, MeasurementKind.UNTIMED)
    assert run_noise_prior(measurement, None) == (RUN_NOISE_PRIORS[kind] if timed else 0.0)
    # --perf-run-noise replaces every timed kind's prior, and no untimed one.
    assert run_noise_prior(measurement, 0.07) == (0.07 if timed else 0.0)


@pytest.mark.parametrize(
    ("backend", "size", "prior"),
    [
        ("nccl", 2**20, RUN_NOISE_PRIORS[MeasurementKind.COLLECTIVE]),
        ("nccl", LARGE_NCCL_BYTES - 1, RUN_NOISE_PRIORS[MeasurementKind.COLLECTIVE]),
        ("nccl", LARGE_NCCL_BYTES, LARGE_NCCL_PRIOR),
        ("nccl", 2**30, LARGE_NCCL_PRIOR),
        ("gloo", 2**30, RUN_NOISE_PRIORS[MeasurementKind.COLLECTIVE]),  # CPUs: noisy
    ],
)
def test_a_large_nccl_message_gets_the_quieter_prior(backend: str, size: int, prior: float) -> None:
    machine = {"collective.backend": backend}
    measurement = Measurement(
        "all_reduce.x", "s", LOWER, (1e-3,) * 20, machine=machine,
        details={"probe": "collective", "backend": backend, "bytes": size},
    )  # fmt: skip
    assert run_noise_prior(measurement, None) == prior
    assert run_noise_prior(measurement, 0.07) == 0.07  # --perf-run-noise still wins


def test_the_gate_uses_the_gpu_prior_for_a_gpu_measurement() -> None:
    gpu = {"gpu.timer": "cuda-events"}
    measurement = Measurement("gpu", "s", LOWER, (1e-3,) * 20, machine=gpu)
    environment = Environment({"cpu": "x"}).extended(gpu)
    entry = BaselineEntry(
        unit="s",
        direction=LOWER,
        samples=(1e-3,) * 20,
        summary=summarize((1e-3,) * 20),
        history=(),
        environment=environment,
    )
    basis = basis_of(measurement, entry, environment, GatePolicy())
    assert basis.run_noise == RUN_NOISE_PRIORS[MeasurementKind.GPU]
    assert basis_of(measurement, entry, environment, GatePolicy(run_noise=0.03)).run_noise == 0.03


def test_the_detectable_change_follows_its_formula() -> None:
    # Normal: log(1 + tau) + (z_{1-alpha} + z_{0.8}) se.
    margin = math.log1p(0.02) + (2.5758293035489 + 0.8416212335729) * 0.01
    assert detectable_change(0.01, 0.02, 0.005, LOWER) == pytest.approx(math.expm1(margin))
    # A rate: the same distance on the log scale, stated as a drop.
    assert detectable_change(0.01, 0.02, 0.005, HIGHER) == pytest.approx(-math.expm1(-margin))
    # No noise: whatever is beyond the threshold.
    assert detectable_change(0.0, 0.02, 0.005, LOWER) == pytest.approx(0.02)
    # Fewer degrees of freedom, a larger change.
    assert detectable_change(0.01, 0.02, 0.005, LOWER, df=4) > math.expm1(margin)


def test_a_change_of_the_detectable_size_is_caught_four_times_in_five() -> None:
    """The power the figure promises, on generated runs (normal run noise, prior known)."""
    sigma, alpha, draw = 0.03, 0.002, np.random.default_rng(11)
    probe = compare(
        (1.0,) * FLAT, (1.0,) * FLAT, direction=LOWER, threshold=0.02, alpha=alpha, run_noise=sigma
    )
    change, trials, caught = probe.detectable_change, 2000, 0
    for _ in range(trials):
        before, after = draw.normal(0.0, sigma, 2)
        decision = compare(
            (math.exp(before),) * FLAT,
            (math.exp(after) * (1 + change),) * FLAT,
            direction=LOWER,
            threshold=0.02,
            alpha=alpha,
            run_noise=sigma,
        )
        caught += decision.verdict is Verdict.REGRESSED
    assert 0.76 <= caught / trials <= 0.84
