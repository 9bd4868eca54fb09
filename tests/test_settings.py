"""Settings: precedence, validation with the source named, pyproject reading, per-test specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_perfgate.sampling import SamplingPlan
from pytest_perfgate.settings import (
    OPTIONS,
    Mode,
    OnMismatch,
    PerfSpec,
    Settings,
    SettingsError,
    read_pyproject,
)

SOURCE = "[tool.perfgate] in pyproject.toml"


def test_defaults() -> None:
    settings = Settings.resolve()
    assert settings == Settings()
    assert settings.mode is Mode.GATE
    assert settings.threshold == 0.02


def test_pyproject_overrides_defaults_and_cli_overrides_pyproject() -> None:
    settings = Settings.resolve(
        {"threshold": 0.1, "max_time": 5, "mode": "warn"},
        {"threshold": "0.2", "mode": None, "max_time": None, "min_samples": "7"},
    )
    assert settings.threshold == 0.2  # cli wins
    assert settings.max_time == 5.0  # None on the cli leaves pyproject's value
    assert settings.mode is Mode.WARN
    assert settings.min_samples == 7
    assert settings.alpha == Settings().alpha  # untouched default


def test_pyproject_keys_may_use_dashes() -> None:
    assert Settings.resolve({"max-time": 1.5, "on-mismatch": "normalize"}) == Settings(
        max_time=1.5, on_mismatch=OnMismatch.NORMALIZE
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"mode": "OFF"}, {"mode": Mode.OFF}),
        ({"update_baselines": True}, {"update_baselines": True}),
        ({"disable_gc": "no"}, {"disable_gc": False}),
        ({"memory": "yes"}, {"memory": True}),
        ({"max_looks": "1"}, {"max_looks": 1}),
        ({"gpu_telemetry_hz": "0"}, {"gpu_telemetry_hz": 0.0}),
        ({"gpu_telemetry_hz": 20}, {"gpu_telemetry_hz": 20.0}),
        ({"history": 3.0}, {"history": 3}),
        ({"baseline_dir": "perf/baselines"}, {"baseline_dir": "perf/baselines"}),
        ({"threshold": "0"}, {"threshold": 0.0}),
        ({"min_sample_time": "0"}, {"min_sample_time": 0.0}),
    ],
)
def test_cli_strings_are_parsed(raw: dict[str, Any], expected: dict[str, Any]) -> None:
    assert Settings.resolve(cli=raw) == Settings(**expected)


BAD_VALUES = [
    ("mode", "fast", "must be one of gate, warn, off"),
    ("baseline_dir", "", "must be a non-empty string"),
    ("baseline_dir", 3, "must be a non-empty string"),
    ("threshold", 10, r"must be a relative change in \[0, 10\)"),
    ("threshold", "abc", "must be a number"),
    ("alpha", -0.1, "must be a fraction"),
    ("max_time", 0, "must be a positive number"),
    ("min_samples", 0, "must be at least 1"),
    ("gpu_telemetry_hz", -1, "must not be negative"),
    ("min_samples", 2.5, "must be a whole number"),
    ("min_samples", "many", "must be a whole number"),
    ("min_samples", True, "must be a whole number"),
    ("target_precision", 1, "must be a fraction"),
    ("min_sample_time", -1, "must not be negative"),
    ("warmup_time", False, "must be a number"),
    ("disable_gc", "maybe", "must be true or false"),
    ("memory", 2, "must be true or false"),
    ("run_noise", 1.0, "must be a fraction"),
    ("max_looks", 0, "must be at least 1"),
    ("history", -3, "must be at least 1"),
    ("max_stored_samples", None, "must be a whole number"),
    ("on_mismatch", "ignore", "must be one of incomparable, normalize"),
    ("normalize_margin", 5, "must be a fraction"),
]


@pytest.mark.parametrize(("key", "value", "problem"), BAD_VALUES)
def test_bad_pyproject_value_names_the_key_and_the_problem(
    key: str, value: Any, problem: str
) -> None:
    if value is None:
        value = []  # TOML has no null; a list is the closest wrong type
    with pytest.raises(SettingsError, match=problem) as raised:
        Settings.resolve({key: value})
    assert str(raised.value).startswith(f"{SOURCE}: {key} ")


@pytest.mark.parametrize(("key", "value", "problem"), BAD_VALUES)
def test_bad_cli_value_names_the_flag_and_the_problem(key: str, value: Any, problem: str) -> None:
    if value is None:
        value = "ten"
    with pytest.raises(SettingsError, match=problem) as raised:
        Settings.resolve(cli={key: value})
    flag = "--perf-" + key.replace("_", "-")
    assert str(raised.value).startswith(f"{flag} ")


def test_pyproject_source_is_used_in_messages() -> None:
    with pytest.raises(SettingsError, match=r"^\[tool.perfgate\] in /x/pyproject.toml: alpha "):
        Settings.resolve({"alpha": 2}, pyproject_source="[tool.perfgate] in /x/pyproject.toml")


@pytest.mark.parametrize("key", ["tresholds", "update_baselines"])
def test_unknown_pyproject_key_lists_the_known_keys(key: str) -> None:
    with pytest.raises(SettingsError, match=f"unknown key '{key}'") as raised:
        Settings.resolve({key: 1})
    message = str(raised.value)
    assert message.startswith(SOURCE)
    for option in OPTIONS:
        if option.name != "update_baselines":
            assert option.name in message
    assert "update_baselines" not in message.split("known:")[1]


def test_every_option_has_a_flag_and_a_settings_field() -> None:
    for option in OPTIONS:
        assert option.flag.startswith("--perf-")
        assert "_" not in option.flag
        assert hasattr(Settings(), option.name)


# --- pyproject.toml ------------------------------------------------------------------------


def test_read_pyproject_missing_file(tmp_path: Path) -> None:
    assert read_pyproject(tmp_path / "pyproject.toml") == {}


def test_read_pyproject_without_a_perfgate_table(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\n\n[tool.other]\na = 1\n')
    assert read_pyproject(path) == {}


def test_read_pyproject_returns_the_table(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.perfgate]\nthreshold = 0.05\nmode = "warn"\n')
    assert read_pyproject(path) == {"threshold": 0.05, "mode": "warn"}


def test_read_pyproject_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.perfgate\nthreshold = \n")
    with pytest.raises(SettingsError, match="not valid TOML") as raised:
        read_pyproject(path)
    assert str(path) in str(raised.value)


def test_read_pyproject_perfgate_must_be_a_table(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool]\nperfgate = 3\n")
    with pytest.raises(SettingsError, match=r"\[tool.perfgate\] must be a table"):
        read_pyproject(path)


# --- per-test specs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": "high"}, "threshold must be a number"),
        ({"max_time": -1}, "max_time must be a positive number"),
        ({"min_samples": 0}, "min_samples must be at least 1"),
        ({"rounds": 0}, "rounds must be at least 1"),
        ({"loops": 2.5}, "loops must be a whole number"),
        ({"warmup_time": -0.5}, "warmup_time must not be negative"),
        ({"memory": "perhaps"}, "memory must be true or false"),
    ],
)
def test_perf_spec_rejects_bad_values(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=f"^{message}"):
        PerfSpec(**kwargs)


def test_perf_spec_rejects_unknown_keywords() -> None:
    with pytest.raises(TypeError, match="treshold"):
        PerfSpec(treshold=0.1)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"treshold": 0.1}, "unknown keyword 'treshold' (did you mean 'threshold'?)"),
        ({"min_sample": 5}, "unknown keyword 'min_sample' (did you mean 'min_samples'?)"),
        ({"colour": "red"}, "unknown keyword 'colour'"),
    ],
)
def test_marker_keyword_typos_suggest_the_keyword_meant(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        PerfSpec.from_marker((), kwargs)
    assert str(raised.value) == message


def test_marker_arguments_build_the_spec() -> None:
    assert PerfSpec.from_marker((), {"threshold": 0.1, "rounds": 5}) == PerfSpec(
        threshold=0.1, rounds=5
    )
    # perf(5) once meant a 500% threshold: a value without its name is refused.
    with pytest.raises(SettingsError, match=r"keyword arguments only .*got 5 without a name"):
        PerfSpec.from_marker((5,), {})
    with pytest.raises(SettingsError, match="rounds must be a whole number"):
        PerfSpec.from_marker((), {"rounds": 1.5})


def test_unknown_pyproject_key_suggests_the_key_meant() -> None:
    with pytest.raises(
        SettingsError, match=r"unknown key 'treshold' \(did you mean 'threshold'\?\)"
    ):
        Settings.resolve({"treshold": 0.1})


@pytest.mark.parametrize("raw", [True, "true", "1"])
def test_boolean_options_take_toml_booleans_and_words(raw: Any) -> None:
    assert Settings.resolve({"memory": raw}).memory is True
    assert (
        Settings.resolve({"speed_reference": raw}, {"speed_reference": "false"}).speed_reference
        is False
    )


def test_a_path_taken_as_a_boolean_flag_value_is_explained() -> None:
    with pytest.raises(
        SettingsError, match=r"--perf-memory must be true or false, got 'tests'.*--perf-memory=true"
    ):
        Settings.resolve(cli={"memory": "tests"})


def test_every_true_or_false_setting_is_a_boolean_option() -> None:
    booleans = {option.name for option in OPTIONS if option.is_boolean}
    assert booleans == {"disable_gc", "fail_over_budget", "memory", "speed_reference"}
    assert all(option.metavar == "BOOL" for option in OPTIONS if option.is_boolean)


def test_perf_spec_normalizes_values() -> None:
    spec = PerfSpec(threshold="0.1", loops=5.0, disable_gc="false")  # type: ignore[arg-type]
    assert spec.threshold == 0.1
    assert spec.loops == 5
    assert isinstance(spec.loops, int)
    assert spec.disable_gc is False


def test_perf_spec_plan_uses_session_settings_where_the_marker_says_nothing() -> None:
    settings = Settings(max_time=3.0, min_samples=15, warmup_time=0.2, disable_gc=False)
    assert PerfSpec().plan(settings) == SamplingPlan(
        warmup_time=0.2,
        min_sample_time=settings.min_sample_time,
        target_precision=settings.target_precision,
        min_samples=15,
        max_time=3.0,
        max_samples=10_000,
        loops=None,
        disable_gc=False,
    )


def test_perf_spec_plan_prefers_marker_values() -> None:
    spec = PerfSpec(max_time=0.5, min_samples=40, loops=100, target_precision=0.1, disable_gc=True)
    plan = spec.plan(Settings(disable_gc=False))
    assert (plan.max_time, plan.min_samples, plan.loops) == (0.5, 40, 100)
    assert plan.target_precision == 0.1
    assert plan.disable_gc is True


def test_perf_spec_rounds_pins_the_number_of_samples() -> None:
    plan = PerfSpec(rounds=7, min_samples=3).plan(Settings())
    assert plan.min_samples == plan.max_samples == 7


def test_perf_spec_plan_raises_the_sample_cap_for_many_min_samples() -> None:
    plan = PerfSpec(min_samples=20_000).plan(Settings())
    assert plan.max_samples == 20_000


def test_perf_spec_threshold_and_memory_fall_back_to_settings() -> None:
    settings = Settings(threshold=0.07, memory=True)
    assert PerfSpec().threshold_for(settings) == 0.07
    assert PerfSpec(threshold=0.2).threshold_for(settings) == 0.2
    assert PerfSpec().memory_for(settings) is True
    assert PerfSpec(memory=False).memory_for(settings) is False


@pytest.mark.parametrize("key", ["alpha", "target_precision"])
def test_zero_is_not_a_usable_level_or_precision(key: str) -> None:
    with pytest.raises(
        SettingsError, match=rf"--perf-{key.replace('_', '-')} must be a fraction in \(0, 1\)"
    ):
        Settings.resolve(cli={key: "0"})
