"""Hostile baselines in a pytest run (issue 14): the gate never passes what it could not
judge, the session still writes its reports, and a refresh still writes healthy modules."""

from __future__ import annotations

import json

import pytest
from plugin_support import (
    SLOWDOWN,
    WORK_SUITE,
    baseline_path,
    load_baseline,
    record_baselines,
    write_settings,
)

from pytest_perfgate.baseline import samples_path


@pytest.fixture
def two_modules(pytester: pytest.Pytester) -> pytest.Pytester:
    write_settings(pytester)
    pytester.makepyfile(test_one=WORK_SUITE, test_two=WORK_SUITE)
    record_baselines(pytester)
    return pytester


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e400"])
def test_a_non_finite_history_fails_its_tests_and_the_reports_are_written(
    two_modules: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    path = baseline_path(two_modules, "test_one")
    text = path.read_text(encoding="utf-8")
    history = json.loads(text)["tests"]["test_slow"]["time"]["history"]
    path.write_text(text.replace(f'"history": {json.dumps(history)}', f'"history": [{value}]'))
    monkeypatch.setenv("WORK", SLOWDOWN)  # a real regression: it must never pass
    result = two_modules.runpytest("--perf-json=run.json", "--perf-markdown=run.md")
    # test_two's slowed test fails as a regression; test_one's cannot be judged: errors.
    result.assert_outcomes(failed=1, passed=1, errors=2)
    result.stdout.fnmatch_lines([f"test_one.py::test_slow: {path}: *"])
    assert (two_modules.path / "run.json").is_file()
    assert (two_modules.path / "run.md").is_file()


def test_a_refresh_meeting_a_damaged_sidecar_writes_every_healthy_module(
    two_modules: pytest.Pytester,
) -> None:
    sidecar = samples_path(baseline_path(two_modules, "test_one"))
    damaged = sidecar.read_text(encoding="utf-8").replace('"samples": [', '"samples": [NaN, ', 1)
    sidecar.write_text(damaged, encoding="utf-8")
    before = load_baseline(two_modules, "test_two")
    result = two_modules.runpytest("--perf-update-baselines", "--perf-json=run.json")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines([f"*{sidecar}:1: malformed samples line*"])
    assert sidecar.read_text(encoding="utf-8") == damaged  # never overwritten
    after = load_baseline(two_modules, "test_two")
    assert len(after["tests"]["test_slow"]["time"]["history"]) == 2
    assert after != before
    assert (two_modules.path / "run.json").is_file()


def test_a_newline_in_a_measurement_name_starts_no_workflow_command(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_names="""
        import os
        import pytest

        NAME = "rows\\n::error file=owned.py::injected \\u202e"

        @pytest.mark.perf
        def test_rows(perf):
            value = 1.0 * int(os.environ.get("WORK", "1"))
            perf.record(NAME, [value * (1 + i / 1000) for i in range(30)], unit="rows")
        """
    )
    record_baselines(pytester)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("WORK", "50")
    result = pytester.runpytest("--perf-markdown=run.md")
    result.assert_outcomes(failed=1)
    output = result.stdout.lines + result.stderr.lines
    assert not [line for line in output if line.lstrip().startswith("::error file=owned")]
    assert not [line for line in output if "\u202e" in line]
    result.stdout.fnmatch_lines(
        ["*performance regression in test_names.py::test_rows [[]rows\\n::error*"]
    )
    markdown = (pytester.path / "run.md").read_text(encoding="utf-8")
    assert "\u202e" not in markdown
    assert "\n::error" not in markdown
