"""The results file (--perf-json): its schema, round trip, errors, and the plugin writing it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from plugin_support import SLOWDOWN, WORK_SUITE, record_baselines, write_settings

from pytest_perfgate.model import (
    Comparison,
    Direction,
    Environment,
    Measurement,
    Verdict,
)
from pytest_perfgate.results import (
    SCHEMA_VERSION,
    ResultsError,
    RunResults,
    TestResults,
    read_results,
    write_results,
)
from pytest_perfgate.stats import summarize

SCHEMA: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "docs" / "reference" / "results-schema.json").read_text()
)


def validate(document: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(document)


def run_results() -> RunResults:
    samples = (1e-3, 1.1e-3, 0.9e-3)
    measurement = Measurement(
        "gpu",
        "s",
        Direction.LOWER_IS_BETTER,
        samples,
        loops=4,
        machine={"gpu.name": "NVIDIA H100 80GB HBM3"},
        details={"gpu": {"mode": "cold", "telemetry": None}},
    )
    comparison = Comparison(
        "tests/test_k.py::test_k",
        "gpu",
        Verdict.REGRESSED,
        "s",
        Direction.LOWER_IS_BETTER,
        summarize(samples),
        summarize((0.5e-3, 0.5e-3)),
        ratio=2.0,
        ci_low=1.8,
        ci_high=2.2,
        p_value=1e-9,
        q_value=2e-9,
        threshold=0.02,
        notes=("a note",),
    )
    new = Comparison(
        "tests/test_k.py::test_new",
        "time",
        Verdict.NEW,
        "s",
        Direction.LOWER_IS_BETTER,
        summarize(samples),
    )
    return RunResults(
        environment=Environment({"cpu": "Example CPU"}, {"host": "ci-1"}, calibration_ns=1e5),
        tests=(
            TestResults(
                "tests/test_k.py::test_k",
                "tests/test_k.py",
                "test_k",
                "failed",
                ((measurement, comparison),),
                location=("tests/test_k.py", 12),
            ),
            TestResults(
                "tests/test_k.py::test_new",
                "tests/test_k.py",
                "test_new",
                "passed",
                ((Measurement("time", "s", Direction.LOWER_IS_BETTER, samples), new),),
            ),
        ),
        settings={
            "mode": "gate",
            "threshold": 0.02,
            "alpha": 0.05,
            "max_looks": 2,
            "run_noise": 0.02,
            "on_mismatch": "incomparable",
        },
        commit="c0ffee",
        created_at="2026-11-24T00:00:00Z",
    )


def test_a_results_document_matches_the_schema_and_round_trips(tmp_path: Path) -> None:
    results = run_results()
    path = tmp_path / "out" / "results.json"
    write_results(path, results)
    document = json.loads(path.read_text())
    validate(document)
    assert document["schema_version"] == SCHEMA_VERSION
    assert document["counts"]["REGRESSED"] == 1
    assert document["counts"]["NEW"] == 1
    assert read_results(path) == results
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no temporary left


def test_the_schema_rejects_what_a_reader_would_misread() -> None:
    document = run_results().to_dict()
    document["tests"][0]["measurements"][0]["comparison"]["verdict"] = "SLOWER"
    with pytest.raises(jsonschema.ValidationError):
        validate(document)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ('{"schema": "other"}', "not a pytest-perfgate results file"),
        ('{"schema": "pytest-perfgate-results", "schema_version": 99}', "version 99"),
        ('{"schema": "pytest-perfgate-results", "schema_version": 1}', "malformed results"),
    ],
)
def test_unreadable_results_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "results.json"
    path.write_text(text)
    with pytest.raises(ResultsError, match=message) as raised:
        read_results(path)
    assert str(path) in str(raised.value)


def test_a_missing_results_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="cannot read"):
        read_results(tmp_path / "nope.json")


def test_the_plugin_writes_a_valid_results_file(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(pytester)
    pytester.makepyfile(test_work=WORK_SUITE)
    monkeypatch.setenv("WORK", "1")
    record_baselines(pytester)
    monkeypatch.setenv("WORK", SLOWDOWN)
    result = pytester.runpytest("--perf-json=out/results.json")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["perfgate: results written to *results.json"])
    path = pytester.path / "out" / "results.json"
    document = json.loads(path.read_text())
    validate(document)
    by_test = {t["test"]: t for t in document["tests"]}
    assert by_test["test_slow"]["outcome"] == "failed"
    assert by_test["test_steady"]["outcome"] == "passed"
    verdict = by_test["test_slow"]["measurements"][0]["comparison"]["verdict"]
    assert verdict == "REGRESSED"
    assert by_test["test_slow"]["location"]["file"] == "test_work.py"
    assert document["settings"]["threshold"] == 0.5


def test_an_unwritable_results_path_is_reported_not_a_crash(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(test_work=WORK_SUITE)
    (pytester.path / "blocked").write_text("a file, not a directory")
    result = pytester.runpytest("--perf-json=blocked/results.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["perfgate: cannot write the results to *blocked/results.json*"])
