"""The pause before the gate's second look of a storage or network measurement."""

from __future__ import annotations

from pytest_perfgate.model import Direction, Measurement
from pytest_perfgate.probes.host import SETTLE_SECONDS, after_a_pause


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
