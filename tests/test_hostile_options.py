"""Hostile option values (issue 14 item 3): NaN, infinity and absurd magnitudes are refused
on the command line, in [tool.perfgate] and in the marker, with the source named."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_perfgate.settings import (
    MAX_SECONDS,
    OPTIONS_BY_NAME,
    PerfSpec,
    Settings,
    SettingsError,
)

FUZZ = settings(deadline=None, database=None, max_examples=100, derandomize=True)
NUMERIC = [
    "threshold",
    "alpha",
    "max_time",
    "min_samples",
    "target_precision",
    "min_sample_time",
    "warmup_time",
    "run_noise",
    "max_looks",
    "gpu_telemetry_hz",
    "history",
    "max_stored_samples",
    "normalize_margin",
]
TIMES = ["max_time", "min_sample_time", "warmup_time"]


@pytest.mark.parametrize("name", [*TIMES, "gpu_telemetry_hz", "threshold", "alpha"])
@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "NaN", "1e400"])
def test_non_finite_values_are_refused_on_the_command_line(name: str, text: str) -> None:
    flag = OPTIONS_BY_NAME[name].flag
    with pytest.raises(SettingsError, match=rf"{flag} must be a finite number"):
        Settings.resolve(cli={name: text})


@pytest.mark.parametrize("name", TIMES)
@pytest.mark.parametrize("value", [math.nan, math.inf, 1e9])
def test_hostile_times_are_refused_in_pyproject_and_in_the_marker(name: str, value: float) -> None:
    with pytest.raises(SettingsError, match=rf"\[tool.perfgate\] in pyproject.toml: {name} must"):
        Settings.resolve({name: value})
    with pytest.raises(SettingsError, match=rf"{name} must"):
        PerfSpec.from_marker((), {name: value})


@pytest.mark.parametrize("value", [0, 10**12, 1.5, math.inf, True])
def test_marker_loops_are_bounded(value: Any) -> None:
    with pytest.raises(SettingsError, match="loops must"):
        PerfSpec.from_marker((), {"loops": value})


def test_a_value_without_its_keyword_is_refused() -> None:
    # @pytest.mark.perf(5) was read as threshold=5: a 500% threshold.
    with pytest.raises(SettingsError, match="keyword arguments only"):
        PerfSpec.from_marker((5,), {})


hostile = (
    st.floats()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.sampled_from(["nan", "inf", "-inf", "1e400", "", "0x10", "1_0", " 5 ", "true"])
    | st.booleans()
    | st.none()
)


@FUZZ
@given(name=st.sampled_from(NUMERIC), value=hostile)
def test_any_numeric_option_value_is_refused_or_finite_and_bounded(name: str, value: Any) -> None:
    for source in ("pyproject", "cli"):
        raw = value if source == "pyproject" else (None if value is None else str(value))
        try:
            if source == "pyproject":
                resolved = Settings.resolve({name: raw})
            else:
                resolved = Settings.resolve(cli={name: raw})
        except SettingsError as error:
            message = str(error)
        else:
            message = ""
        if message:
            assert name in message or OPTIONS_BY_NAME[name].flag in message
            continue
        number = getattr(resolved, name)
        if number is None and getattr(Settings(), name) is None:
            continue  # unset on the command line: the default, "not given" (run_noise)
        assert math.isfinite(number)
        if name in TIMES:
            assert 0 <= number <= MAX_SECONDS
        assert number >= 0


@FUZZ
@given(
    name=st.sampled_from([f.name for f in PerfSpec.__dataclass_fields__.values()]), value=hostile
)
def test_any_marker_value_is_refused_or_usable(name: str, value: Any) -> None:
    try:
        spec = PerfSpec.from_marker((), {name: value})
    except SettingsError as error:
        message = str(error)
    else:
        message = ""
    if message:
        assert name in message
        return
    chosen = getattr(spec, name)
    if isinstance(chosen, float):
        assert math.isfinite(chosen)
