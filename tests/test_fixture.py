"""The ``perf`` object driven directly, without the pytest plugin, on fake clocks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pytest_perfgate.fixture import PerfFixture
from pytest_perfgate.fixture import TestContext as Context  # not collected as a test class
from pytest_perfgate.gate import GatePolicy
from pytest_perfgate.model import BaselineEntry, Direction, Environment, Verdict
from pytest_perfgate.settings import Mode, PerfSpec, Settings
from pytest_perfgate.stats import summarize

ENV = Environment({"cpu": "Fake CPU"})
TICK = 1000  # ns every clock read


class TickingClock:
    """Moves ``TICK`` ns on every read, plus whatever the measured code adds."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        self.now += TICK
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns


def make_perf(
    clock: TickingClock,
    baselines: dict[str, BaselineEntry] | None = None,
    **settings: Any,
) -> PerfFixture:
    tiny = {"warmup_time": 0.0, "min_sample_time": 0.0, "max_time": 0.01, "min_samples": 10}
    context = Context(
        test_id="tests/test_x.py::test_a",
        settings=Settings(**{**tiny, **settings}),
        spec=PerfSpec(),
        policy=GatePolicy(),
        environment=ENV,
        baselines=(baselines or {}).get,
        clock=clock,
        cpu_clock=TickingClock(),
    )
    return PerfFixture(context)


def entry(values: tuple[float, ...], unit: str = "s", **overrides: Any) -> BaselineEntry:
    fields: dict[str, Any] = {
        "unit": unit,
        "direction": Direction.LOWER_IS_BETTER,
        "samples": values,
        "summary": summarize(values),
        "history": (),
        "environment": ENV,
        "loops": 1,
    }
    return BaselineEntry(**{**fields, **overrides})


def test_perf_returns_the_result_and_measures_on_the_context_clock() -> None:
    clock = TickingClock()
    perf = make_perf(clock)

    def work(x: int, *, y: int) -> int:
        clock.advance(1000)
        return x + y

    assert perf(work, 2, y=3) == 5
    (result,) = perf.results
    assert result.comparison.verdict is Verdict.NEW
    assert result.measurement.name == "time"
    assert result.measurement.stop_reason == "precision"
    assert len(result.measurement.samples) == 10
    assert set(result.measurement.samples) == {(1000 + TICK) / 1e9}


def test_duplicate_measurement_names_raise() -> None:
    perf = make_perf(TickingClock())
    perf(lambda: None)
    with pytest.raises(ValueError, match=r"'time' is already taken in tests/test_x\.py::test_a"):
        perf(lambda: None)
    perf.record("rows", [1.0])
    with pytest.raises(ValueError, match="'rows' is already taken"):
        perf.call(lambda: None, name="rows")


def test_baseline_loops_are_reused() -> None:
    clock = TickingClock()
    perf = make_perf(clock, {"time": entry((1e-6,) * 10, loops=3)})
    perf(lambda: None)
    assert perf.results[0].measurement.loops == 3


def test_measure_takes_one_sample_per_entry_judged_at_finish() -> None:
    clock = TickingClock()
    perf = make_perf(clock)
    for extra in (5000, 6000, 7000):
        with perf.measure("block"):
            clock.advance(extra)
    assert perf.results == ()
    (result,) = perf.finish()
    assert result.measurement.samples == (6e-6, 7e-6, 8e-6)
    assert result.measurement.stop_reason == "block entries"
    assert result.comparison.verdict is Verdict.NEW
    assert perf.finish() == (result,)  # judged once


@pytest.mark.parametrize("values", [[], [0.0], [1.0, -2.0], [float("nan")], [float("inf")]])
def test_record_rejects_values_that_cannot_be_compared(values: list[float]) -> None:
    perf = make_perf(TickingClock())
    with pytest.raises(ValueError, match=r"perf.record\('throughput'\)"):
        perf.record("throughput", values)


@pytest.mark.parametrize(
    ("centre", "verdict"), [(50.0, Verdict.REGRESSED), (150.0, Verdict.IMPROVED)]
)
def test_record_respects_higher_is_better(centre: float, verdict: Verdict) -> None:
    rng = np.random.default_rng(7)
    stored = tuple(rng.normal(100.0, 1.0, 30).tolist())
    baseline = entry(stored, unit="ops/s", direction=Direction.HIGHER_IS_BETTER)
    perf = make_perf(TickingClock(), {"throughput": baseline})
    perf.record("throughput", rng.normal(centre, 1.0, 30), unit="ops/s", higher_is_better=True)
    (result,) = perf.finish()
    assert result.measurement.direction is Direction.HIGHER_IS_BETTER
    assert result.comparison.verdict is verdict


def test_mode_off_calls_once_and_records_nothing() -> None:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        return "done"

    perf = make_perf(TickingClock(), mode=Mode.OFF)
    assert perf(fn) == "done"
    with perf.measure("block"):
        pass
    perf.record("rows", [3.0])
    assert calls == [1]
    assert perf.finish() == ()


@pytest.mark.parametrize("via_settings", [True, False])
def test_memory_adds_a_peak_memory_measurement(via_settings: bool) -> None:
    perf = make_perf(TickingClock(), memory=via_settings)
    perf.call(lambda: bytearray(2**20), memory=None if via_settings else True)
    time, memory = perf.results
    assert time.measurement.name == "time"
    assert memory.measurement.name == "time.peak_memory"
    assert memory.measurement.unit == "B"
    assert min(memory.measurement.samples) >= 2**20


@pytest.mark.parametrize(("update", "looks"), [(False, 2), (True, 1)])
def test_second_look_only_when_gating(update: bool, looks: int) -> None:
    # Twice as slow as the baseline: the first look says REGRESSED, which a gate re-checks
    # with fresh samples and a refresh does not.
    clock = TickingClock()
    perf = make_perf(clock, {"time": entry((1e-6,) * 10)}, update_baselines=update)
    perf(lambda: clock.advance(1000))
    comparison = perf.results[0].comparison
    assert comparison.verdict is Verdict.REGRESSED
    assert comparison.looks == looks
    assert len(perf.results[0].measurement.samples) == 10 * looks


def test_baseline_loops_are_not_reused_from_another_machine_class() -> None:
    other = Environment({**ENV.machine, "cpu": "another CPU"})
    perf = make_perf(TickingClock(), {"time": entry((1e-6,) * 10, loops=3, environment=other)})
    perf(lambda: None)
    assert perf.results[0].measurement.loops == 1  # calibrated afresh


def test_loops_cannot_be_combined_with_setup() -> None:
    perf = make_perf(TickingClock())
    with pytest.raises(ValueError, match="loops= cannot be combined with setup="):
        perf.call(len, setup=lambda: (([1],), {}), loops=5)
