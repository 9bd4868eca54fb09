"""Budgets: reading them (marker, pyproject), checking them against units, the results
file's ``details["budget"]``, the summary's note and --perf-fail-over-budget."""

from __future__ import annotations

import json
from typing import Any

import pytest
from plugin_support import FAST_SETTINGS

from pytest_perfgate.history.budgets import (
    BudgetError,
    budget_for,
    budget_notes,
    parse_budget,
    parse_budget_table,
    parse_marker_budget,
    with_budget,
)
from pytest_perfgate.model import Comparison, Direction, Measurement, Summary, Verdict
from pytest_perfgate.settings import PerfSpec, Settings, SettingsError


@pytest.mark.parametrize(
    ("text", "unit", "expected"),
    [
        ("5 ms", "s", 0.005),
        ("5ms", "ms", 5.0),
        ("250 us", "s", 250e-6),
        ("250 µs", "s", 250e-6),
        ("2 min", "s", 120.0),
        ("2 GB/s", "B/s", 2e9),
        ("2 GB/s", "MiB/s", 2e9 / 2**20),
        ("512 MiB/s", "MiB/s", 512.0),
        ("64 MiB", "B", 64 * 2**20),
        ("1.5 kB", "B", 1500.0),
        ("20000 IO/s", "IO/s", 20000.0),
        ("3e9 instructions", "instructions", 3e9),
        (0.004, "s", 0.004),
        (120, "rows/s", 120.0),
        ("7", "", 7.0),
    ],
)
def test_a_budget_converts_into_its_measurements_unit(
    text: str | float, unit: str, expected: float
) -> None:
    assert parse_budget(text).in_unit(unit) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("fast", "budget 'fast' is not a number with a unit"),
        ("-5 ms", "budget '-5 ms' is not a number with a unit"),
        ("0 ms", "budget '0 ms' must be a positive number"),
        ("1e999 s", "must be a positive number"),
        (True, "budget True is not a number"),
        (["5 ms"], "budget ['5 ms'] is not a number"),
    ],
)
def test_a_bad_budget_is_refused_with_its_value(value: Any, message: str) -> None:
    with pytest.raises(BudgetError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_budget(value)


@pytest.mark.parametrize(
    ("text", "unit", "message"),
    [
        ("5 ms", "MiB/s", "budget '5 ms' is a time, but the measurement is in 'MiB/s'"),
        ("2 GB/s", "s", "budget '2 GB/s' is a rate, but the measurement is in 's'"),
        ("64 MiB", "MiB/s", "budget '64 MiB' is a size, but the measurement is in 'MiB/s'"),
        ("5 req/s", "IO/s", "budget '5 req/s' is in 'req/s', but the measurement is in 'IO/s'"),
        ("5 ms", "", "budget '5 ms' is a time, but the measurement is without a unit"),
    ],
)
def test_a_budget_of_another_kind_than_its_measurement_is_an_error(
    text: str, unit: str, message: str
) -> None:
    with pytest.raises(BudgetError, match=message):
        parse_budget(text).in_unit(unit)


def test_the_error_names_the_test_and_the_measurement() -> None:
    where = "tests/test_io.py::test_write measurement 'write.throughput'"
    with pytest.raises(BudgetError) as caught:
        with_budget({}, parse_budget("5 ms"), "MiB/s", where)
    assert str(caught.value).startswith(f"{where}: budget '5 ms' is a time")
    assert with_budget({"timer": "x"}, parse_budget("1 GB/s"), "B/s", where) == {
        "timer": "x",
        "budget": 1e9,
    }


def test_the_marker_wins_then_the_most_specific_pyproject_key() -> None:
    table = parse_budget_table(
        {
            "t.py::test_a": "5 ms",
            "t.py::test_a::write": "2 GB/s",
            "t.py::test_b[big]": "9 ms",
        },
        "pyproject",
    )
    assert budget_for("t.py::test_a", "time", None, table) == parse_budget("5 ms")
    assert budget_for("t.py::test_a[x]", "time", None, table) == parse_budget("5 ms")
    assert budget_for("t.py::test_a", "write", None, table) == parse_budget("2 GB/s")
    assert budget_for("t.py::test_b[big]", "time", None, table) == parse_budget("9 ms")
    assert budget_for("t.py::test_b[small]", "time", None, table) is None
    marker = parse_marker_budget("1 ms")
    assert budget_for("t.py::test_a", "write", marker, table) == parse_budget("1 ms")
    per_name = parse_marker_budget({"write": "1 GB/s"})
    assert budget_for("t.py::test_a", "write", per_name, table) == parse_budget("1 GB/s")
    assert budget_for("t.py::test_a", "time", per_name, table) == parse_budget("5 ms")


def test_pyproject_budgets_are_read_and_checked_by_settings() -> None:
    settings = Settings.resolve({"threshold": 0.05, "budgets": {"t.py::test_a": "5 ms"}})
    assert settings.budgets == (("t.py::test_a", parse_budget("5 ms")),)
    with pytest.raises(SettingsError, match=r"budgets: 't.py::test_a': budget 'five ms'"):
        Settings.resolve({"budgets": {"t.py::test_a": "five ms"}})
    with pytest.raises(SettingsError, match="'test_a' is not a test id"):
        Settings.resolve({"budgets": {"test_a": "5 ms"}})
    with pytest.raises(SettingsError, match="budgets must be a table"):
        Settings.resolve({"budgets": "5 ms"})


def test_a_bad_marker_budget_is_a_settings_error_naming_it() -> None:
    assert PerfSpec.from_marker((), {"budget": "5 ms"}).budget == parse_budget("5 ms")
    with pytest.raises(SettingsError, match="budget 'soon' is not a number with a unit"):
        PerfSpec.from_marker((), {"budget": "soon"})
    with pytest.raises(SettingsError, match=r"budget '-1 s' .* \(for measurement 'write'\)"):
        PerfSpec.from_marker((), {"budget": {"write": "-1 s"}})


def _pair(
    level: float, budget: float | None, direction: Direction
) -> tuple[Measurement, Comparison]:
    details = {} if budget is None else {"budget": budget}
    measurement = Measurement("time", "s", direction, (level,), details=details)
    summary = Summary(1, level, level, 0.0, level, level, level, level, level, level)
    comparison = Comparison(
        test_id="t.py::test_a",
        name="time",
        verdict=Verdict.NEW,
        unit="s",
        direction=direction,
        current=summary,
    )
    return measurement, comparison


def test_notes_name_what_is_past_its_budget_and_by_how_much() -> None:
    lower = Direction.LOWER_IS_BETTER
    higher = Direction.HIGHER_IS_BETTER
    notes = budget_notes(
        [
            _pair(0.0054, 0.005, lower),
            _pair(0.0049, 0.005, lower),
            _pair(0.0060, None, lower),
            _pair(90.0, 100.0, higher),
            _pair(110.0, 100.0, higher),
        ]
    )
    assert notes == [
        "t.py::test_a: median 5.4 ms is over its budget of 5 ms (8.0% past it)",
        "t.py::test_a: median 90 s is under its budget of 100 s (10.0% past it)",
    ]


SUITE = """
import pytest

@pytest.mark.perf(budget={budget!r})
def test_latency(perf):
    perf.record("latency", [0.005] * 10, unit="s")
"""


def _run(pytester: pytest.Pytester, budget: Any, *args: str, table: str = "") -> Any:
    settings = "".join(f"{key} = {json.dumps(value)}\n" for key, value in FAST_SETTINGS.items())
    pytester.makepyprojecttoml("[tool.perfgate]\n" + settings + table)
    pytester.makepyfile(test_m=SUITE.format(budget=budget))
    return pytester.runpytest("--perf-json=results.json", *args)


def _budget_in_results(pytester: pytest.Pytester) -> Any:
    data = json.loads((pytester.path / "results.json").read_text())
    (test,) = data["tests"]
    (measurement,) = test["measurements"]
    return measurement["measurement"]["details"].get("budget")


def test_a_budget_goes_into_the_results_file_and_an_overrun_is_noted(
    pytester: pytest.Pytester,
) -> None:
    result = _run(pytester, "4 ms")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*perfgate: note: test_m.py::test_latency [[]latency]: median 5 ms is over its budget "
            "of 4 ms (25.0% past it)*"
        ]
    )
    assert _budget_in_results(pytester) == pytest.approx(0.004)


def test_within_budget_says_nothing(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "6 ms")
    result.assert_outcomes(passed=1)
    assert "its budget" not in result.stdout.str()
    assert _budget_in_results(pytester) == pytest.approx(0.006)


def test_fail_over_budget_fails_the_test(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "4 ms", "--perf-fail-over-budget")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*over budget: test_m.py::test_latency [[]latency]: median 5 ms*"])


def test_pyproject_budget_by_test_and_measurement(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        "[tool.perfgate]\nmax_time = 0.1\n[tool.perfgate.budgets]\n"
        '"test_m.py::test_latency::latency" = "4.5 ms"\n'
    )
    pytester.makepyfile(
        test_m="""
        def test_latency(perf):
            perf.record("latency", [0.005] * 10, unit="s")
        """
    )
    result = pytester.runpytest("--perf-json=results.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*perfgate: note: *over its budget of 4.5 ms*"])
    assert _budget_in_results(pytester) == pytest.approx(0.0045)


def test_a_budget_in_the_wrong_unit_fails_naming_the_test(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "2 GB/s")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_m.py::test_latency measurement 'latency': budget '2 GB/s' is a rate, but the "
            "measurement is in 's'*"
        ]
    )


def test_an_unknown_budget_unit_in_the_marker_errors_at_setup(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "soon")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.perf on test_m.py::test_latency: budget 'soon' is not a number*"]
    )


def test_the_history_records_the_budget_the_run_declared(pytester: pytest.Pytester) -> None:
    from pytest_perfgate.history.model import RunKind
    from pytest_perfgate.history.record import recorded_from
    from pytest_perfgate.results import read_results

    _run(pytester, {"latency": "4 ms"}).assert_outcomes(passed=1)
    _, measurements = recorded_from(read_results(pytester.path / "results.json"), RunKind.GATE)
    assert [(m.name, m.budget) for m in measurements] == [("latency", pytest.approx(0.004))]
