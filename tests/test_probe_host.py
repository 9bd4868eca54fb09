"""The host every probe meets the fixture through, and the pause before the gate's
second look of a storage or network measurement."""

from __future__ import annotations

from dataclasses import replace

from pytest_perfgate.model import BaselineEntry, Direction, Environment, Measurement
from pytest_perfgate.probes.host import SETTLE_SECONDS, ProbeHost, after_a_pause
from pytest_perfgate.sampling import SamplingPlan
from pytest_perfgate.stats import summarize


def test_the_second_look_waits_then_measures() -> None:
    events: list[str] = []
    fresh = Measurement("x", "MiB/s", Direction.HIGHER_IS_BETTER, (1.0,))

    def resample() -> Measurement:
        events.append("measure")
        return fresh

    paused = after_a_pause(resample, sleep=lambda s: events.append(f"sleep {s}"))
    assert events == []  # nothing happens until the gate asks
    assert paused() is fresh
    assert events == [f"sleep {SETTLE_SECONDS}", "measure"]


def entry(loops: int | None = 8, code_hash: str | None = "abc", **machine: str) -> BaselineEntry:
    values = (1e-3, 1.1e-3, 0.9e-3)
    return BaselineEntry(
        unit="s",
        direction=Direction.LOWER_IS_BETTER,
        samples=values,
        summary=summarize(values),
        history=(),
        environment=Environment({"cpu": "x86", **machine}),
        loops=loops,
        code_hash=code_hash,
    )


def host(**fields: object) -> ProbeHost:
    defaults: dict[str, object] = {
        "environment": Environment({"cpu": "x86"}),
        "code_hash": "abc",
    }
    return replace(ProbeHost.keeping(SamplingPlan(), []), **{**defaults, **fields})


def test_loops_are_reused_only_from_a_comparable_baseline() -> None:
    assert host().reusable_loops(entry()) == 8
    assert host().reusable_loops(entry(code_hash=None)) == 8  # recorded before code hashes
    assert host().reusable_loops(None) is None
    assert host().reusable_loops(entry(loops=None)) is None
    assert host().reusable_loops(entry(code_hash="changed")) is None
    assert host().reusable_loops(entry(cpu="arm")) is None  # another machine class
    assert host(environment=None).reusable_loops(entry()) is None  # nothing to match with


def test_a_keeping_host_keeps_what_it_is_handed() -> None:
    taken: list[Measurement] = []
    keeping = ProbeHost.keeping(SamplingPlan(max_time=1.0), taken)
    first = Measurement("a", "s", Direction.LOWER_IS_BETTER, (1.0,))
    second = Measurement("b", "s", Direction.LOWER_IS_BETTER, (2.0,))
    keeping.claim("a")
    keeping.judge(first, None)
    keeping.judge_at_finish(second)
    assert taken == [first, second]
    assert keeping.measuring
    assert keeping.plan.max_time == 1.0
