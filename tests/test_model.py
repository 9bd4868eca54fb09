"""Value types: dict round trips, environment matching, and the text people read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_perfgate.model import (
    BaselineEntry,
    Comparison,
    Direction,
    Environment,
    Measurement,
    Summary,
    Verdict,
    explain,
    format_change,
    format_quantity,
)

SUMMARY = Summary(
    n=30,
    median=0.0123,
    mean=0.0124,
    stdev=0.0004,
    min=0.0118,
    max=0.0135,
    q1=0.0121,
    q3=0.0126,
    median_ci_low=0.0122,
    median_ci_high=0.0125,
)
ENV = Environment({"cpu": "Example CPU", "os": "Linux"}, {"host": "ci-7"}, calibration_ns=123.5)


def through_json(data: dict[str, object]) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(json.dumps(data))
    return loaded


def comparison(**overrides: object) -> Comparison:
    fields: dict[str, object] = {
        "test_id": "tests/test_x.py::test_parse",
        "name": "time",
        "verdict": Verdict.REGRESSED,
        "unit": "s",
        "direction": Direction.LOWER_IS_BETTER,
        "current": SUMMARY,
        "baseline": SUMMARY,
        "ratio": 1.218,
        "ci_low": 1.18,
        "ci_high": 1.251,
        "p_value": 0.0001,
        "q_value": 0.001,
        "threshold": 0.05,
        "looks": 2,
        "notes": ("a note",),
    }
    return Comparison(**{**fields, **overrides})  # type: ignore[arg-type]


# --- round trips ---------------------------------------------------------------------------


def test_summary_round_trip() -> None:
    assert Summary.from_dict(through_json(SUMMARY.to_dict())) == SUMMARY


@pytest.mark.parametrize("environment", [ENV, Environment({"cpu": "x"})])
def test_environment_round_trip(environment: Environment) -> None:
    data = environment.to_dict()
    assert Environment.from_dict(through_json(data)) == environment
    assert ("calibration_ns" in data) == (environment.calibration_ns is not None)


@pytest.mark.parametrize(
    "measurement",
    [
        Measurement(
            "time",
            "s",
            Direction.LOWER_IS_BETTER,
            (1e-3, 2e-3),
            loops=100,
            cpu_samples=(0.9e-3, 1.9e-3),
            stop_reason="precision",
        ),
        Measurement("throughput", "ops/s", Direction.HIGHER_IS_BETTER, (5.0,)),
        Measurement(
            "kernel",
            "s",
            Direction.LOWER_IS_BETTER,
            (2e-5,),
            machine={"gpu.name": "NVIDIA H100 80GB HBM3"},
            details={"gpu": {"timer": "cuda-event", "sm_clock_mhz": 1980.0}},
        ),
    ],
)
def test_measurement_round_trip(measurement: Measurement) -> None:
    assert Measurement.from_dict(through_json(measurement.to_dict())) == measurement


@pytest.mark.parametrize(("loops", "details"), [(None, {}), (1000, {"gpu": {"mode": "cold"}})])
def test_baseline_entry_round_trip(loops: int | None, details: dict[str, Any]) -> None:
    entry = BaselineEntry(
        unit="s",
        direction=Direction.LOWER_IS_BETTER,
        samples=(1e-3, 1.1e-3),
        summary=SUMMARY,
        history=(1e-3, 1.05e-3),
        environment=ENV,
        loops=loops,
        cpu_samples=(0.9e-3,),
        code_hash="abc",
        commit=None,
        recorded_at="2024-01-01T00:00:00Z",
        details=details,
    )
    assert BaselineEntry.from_dict(through_json(entry.to_dict())) == entry
    assert ("details" in entry.to_dict()) == bool(details)  # omitted when empty


@pytest.mark.parametrize(
    "value", [comparison(), comparison(baseline=None, ratio=None, ci_low=None, q_value=None)]
)
def test_comparison_round_trip(value: Comparison) -> None:
    assert Comparison.from_dict(through_json(value.to_dict())) == value


# --- environments and verdicts -------------------------------------------------------------


def test_environment_mismatches_compare_machine_fields_only() -> None:
    same_class = Environment(dict(ENV.machine), {"host": "other"}, calibration_ns=999.0)
    assert ENV.mismatches(same_class) == []
    other = Environment({"cpu": "Other CPU", "arch": "arm64"})
    assert ENV.mismatches(other) == [
        "arch: '-' vs 'arm64'",
        "cpu: 'Example CPU' vs 'Other CPU'",
        "os: 'Linux' vs '-'",
    ]


def test_extended_environment_gates_on_the_added_fields() -> None:
    gpu = ENV.extended({"gpu.name": "NVIDIA H100 80GB HBM3"})
    assert gpu.extended({}) is gpu
    assert gpu.info == ENV.info
    assert ENV.extended({}) is ENV
    assert gpu.mismatches(ENV.extended({"gpu.name": "NVIDIA A100"})) == [
        "gpu.name: 'NVIDIA H100 80GB HBM3' vs 'NVIDIA A100'"
    ]


def test_only_regressions_fail() -> None:
    assert [v for v in Verdict if v.fails] == [Verdict.REGRESSED]


def test_direction_from_flag() -> None:
    assert Direction.from_flag(True) is Direction.HIGHER_IS_BETTER
    assert Direction.from_flag(False) is Direction.LOWER_IS_BETTER


def test_label_names_the_measurement_unless_it_is_the_default() -> None:
    assert comparison().label == "tests/test_x.py::test_parse"
    assert comparison(name="rss").label == "tests/test_x.py::test_parse [rss]"


# --- text ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (2.5, "s", "2.5 s"),
        (0.0123, "s", "12.3 ms"),
        (4.56e-5, "s", "45.6 us"),
        (7.8e-8, "s", "78 ns"),
        (0.0, "s", "0 ns"),
        (0.0009996, "s", "1000 us"),  # just below a unit: no exponent notation
        (1023.0, "B", "1023 B"),
        (100.0, "B", "100 B"),
        (1536.0, "B", "1.5 KiB"),
        (10 * 2**20, "B", "10 MiB"),
        (3 * 2**30, "B", "3 GiB"),
        (1234.5678, "ops/s", "1235 ops/s"),
        (17860.0, "IO/s", "17.9k IO/s"),
        (2.5e6, "items/s", "2.5M items/s"),
        (-3.2e9, "flop", "-3.2G flop"),
        (0.5, "", "0.5"),
    ],
)
def test_format_quantity(value: float, unit: str, text: str) -> None:
    assert format_quantity(value, unit) == text


def test_format_change() -> None:
    assert format_change(1.218) == "+21.8%"
    assert format_change(0.9) == "-10.0%"


def test_explain_a_regression() -> None:
    assert explain(comparison(notes=())) == (
        "median 12.3 ms vs baseline 10.1 ms (+21.8%, 95% CI +18.0%..+25.1%), q=0.001, threshold 5%"
    )


def test_explain_appends_direction_and_notes() -> None:
    text = explain(comparison(direction=Direction.HIGHER_IS_BETTER, notes=("one", "two")))
    assert text.endswith("threshold 5% (higher is better); one; two")


def test_explain_without_a_baseline() -> None:
    text = explain(comparison(verdict=Verdict.NEW, baseline=None, ratio=None, notes=("new",)))
    assert text == "median 12.3 ms (NEW); new"
