"""``perfgate compare`` and ``perfgate report``: two results files judged like the gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from plugin_support import SLOWDOWN, WORK_SUITE, write_settings

from pytest_perfgate import cli
from pytest_perfgate.model import Comparison, Direction, Environment, Measurement, Verdict
from pytest_perfgate.report.markdown import MARKER
from pytest_perfgate.results import RunResults, TestResults, read_results, write_results
from pytest_perfgate.stats import summarize


@pytest.fixture(autouse=True)
def outside_github(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)


def samples(level: float, n: int = 40) -> tuple[float, ...]:
    """Deterministic samples around ``level`` with a 1% spread."""
    return tuple(level * (1 + 0.01 * ((i * 7) % 11 - 5) / 5) for i in range(n))


def run_file(
    path: Path,
    levels: dict[str, float],
    *,
    threshold: float = 0.05,
    machine: str = "cpu-a",
) -> Path:
    """A results file with one "time" measurement per test at the given level."""
    tests = []
    for test, level in levels.items():
        test_id = f"test_m.py::{test}"
        measurement = Measurement("time", "s", Direction.LOWER_IS_BETTER, samples(level))
        recorded = Comparison(
            test_id,
            "time",
            Verdict.NEW,
            "s",
            Direction.LOWER_IS_BETTER,
            summarize(measurement.samples),
            threshold=threshold,
        )
        tests.append(
            TestResults(test_id, "test_m.py", test, "passed", ((measurement, recorded),), None)
        )
    write_results(
        path,
        RunResults(
            environment=Environment({"cpu": machine}),
            tests=tuple(tests),
            settings={"mode": "gate", "threshold": 0.02, "alpha": 0.05, "run_noise": 0.02},
        ),
    )
    return path


def verdicts(path: Path) -> dict[str, str]:
    return {c.label: c.verdict.value for c in read_results(path).comparisons}


def test_a_slowdown_between_real_runs_is_regressed_and_identical_files_are_not(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_settings(pytester)
    pytester.makepyfile(test_work=WORK_SUITE)
    monkeypatch.setenv("WORK", "1")
    pytester.runpytest("--perf-json=base.json").assert_outcomes(passed=2)
    monkeypatch.setenv("WORK", SLOWDOWN)
    pytester.runpytest("--perf-json=slow.json").assert_outcomes(passed=2)  # no baselines
    base, slow = pytester.path / "base.json", pytester.path / "slow.json"
    capsys.readouterr()

    judged = pytester.path / "judged.json"
    assert cli.main(["compare", str(base), str(slow), "--json", str(judged)]) == 1
    out = capsys.readouterr().out
    assert "perfgate compare: 1 REGRESSED" in out
    assert "  REGRESSED test_work.py::test_slow: median " in out
    assert verdicts(judged)["test_work.py::test_slow"] == "REGRESSED"
    assert verdicts(judged)["test_work.py::test_steady"] != "REGRESSED"

    assert cli.main(["compare", str(base), str(base)]) == 0
    assert "2 UNCHANGED" in capsys.readouterr().out
    assert cli.main(["compare", str(slow), str(base)]) == 0  # the way back is an improvement
    assert "IMPROVED" in capsys.readouterr().out

    report = pytester.path / "report.md"
    assert cli.main(["report", str(judged), "--markdown", str(report)]) == 0
    text = report.read_text(encoding="utf-8")
    assert text.startswith(f"{MARKER}\n### perfgate: ❌ fail: 1 regression")


def test_the_threshold_is_each_measurement_s_own_unless_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = run_file(tmp_path / "a.json", {"test_x": 1e-3})
    loose = run_file(tmp_path / "b.json", {"test_x": 1.2e-3}, threshold=0.5)
    assert cli.main(["compare", str(base), str(loose)]) == 0  # +20% is inside its 50%
    capsys.readouterr()
    assert cli.main(["compare", str(base), str(loose), "--threshold", "0.05"]) == 1
    assert "threshold 5%" in capsys.readouterr().out


def test_tests_on_one_side_only_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = run_file(tmp_path / "a.json", {"test_x": 1e-3, "test_gone": 1e-3})
    candidate = run_file(tmp_path / "b.json", {"test_x": 1e-3, "test_added": 1e-3})
    judged = tmp_path / "judged.json"
    assert cli.main(["compare", str(base), str(candidate), "--json", str(judged)]) == 0
    out = capsys.readouterr().out
    assert f"  only in {base}: test_m.py::test_gone" in out
    (added,) = [c for c in read_results(judged).comparisons if c.label.endswith("test_added")]
    assert added.verdict is Verdict.NEW
    assert added.notes == (f"not in {base}",)


def test_another_machine_class_is_incomparable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = run_file(tmp_path / "a.json", {"test_x": 1e-3})
    candidate = run_file(tmp_path / "b.json", {"test_x": 5e-3}, machine="cpu-b")
    assert cli.main(["compare", str(base), str(candidate)]) == 0
    assert "INCOMPARABLE test_m.py::test_x" in capsys.readouterr().out
    # A reason every measurement shares is said once, with the count.
    levels = {"test_x": 1e-3, "test_y": 1e-3, "test_z": 1e-3}
    base = run_file(tmp_path / "a.json", levels)
    candidate = run_file(tmp_path / "b.json", levels, machine="cpu-b")
    assert cli.main(["compare", str(base), str(candidate)]) == 0
    out = capsys.readouterr().out
    assert out.count("cpu-a") == 1
    assert "  3 INCOMPARABLE: " in out


def test_github_annotations_for_compare(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = run_file(tmp_path / "a.json", {"test_x": 1e-3})
    candidate = run_file(tmp_path / "b.json", {"test_x": 3e-3})
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert cli.main(["compare", str(base), str(candidate)]) == 1
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("::error")]
    assert len(lines) == 1
    assert lines[0].startswith("::error title=performance regression in test_m.py%3A%3Atest_x::")


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read"), ("{", "not valid JSON"), ('{"schema": "x"}', "not a pytest-perfgate")],
)
def test_bad_input_exits_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    good = run_file(tmp_path / "good.json", {"test_x": 1e-3})
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    assert cli.main(["compare", str(good), str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err
    assert message in err
    assert cli.main(["report", str(bad)]) == 2


def test_a_bad_option_value_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = run_file(tmp_path / "good.json", {"test_x": 1e-3})
    with pytest.raises(SystemExit) as exited:
        cli.main(["compare", str(good), str(good), "--threshold", "12"])
    assert exited.value.code == 2
    assert "--threshold: must be a relative change in [0, 10)" in capsys.readouterr().err


def test_an_unwritable_output_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = run_file(tmp_path / "good.json", {"test_x": 1e-3})
    (tmp_path / "blocked").write_text("a file")
    out = tmp_path / "blocked" / "r.md"
    assert cli.main(["compare", str(good), str(good), "--markdown", str(out)]) == 2
    assert cli.main(["report", str(good), "--markdown", str(out)]) == 2
    assert f"cannot write {out}" in capsys.readouterr().err


def test_report_prints_markdown_without_an_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = run_file(tmp_path / "good.json", {"test_x": 1e-3, "test_y": 1e-3})
    assert cli.main(["report", str(good)]) == 0
    assert capsys.readouterr().out.startswith(f"{MARKER}\n### perfgate: ✅ pass: 2 new")


def test_compare_markdown_goes_to_the_job_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = run_file(tmp_path / "a.json", {"test_x": 1e-3})
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out = tmp_path / "r.md"
    assert cli.main(["compare", str(base), str(base), "--markdown", str(out)]) == 0
    assert summary.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")
    assert "1 unchanged" in out.read_text(encoding="utf-8")


def test_report_html(tmp_path: Path) -> None:
    pytest.importorskip("pytest_perfgate.report.html")
    good = run_file(tmp_path / "good.json", {"test_x": 1e-3})
    out = tmp_path / "r.html"
    assert cli.main(["report", str(good), "--html", str(out)]) == 0
    assert "test_x" in out.read_text(encoding="utf-8")


def test_the_results_file_settings_are_used(tmp_path: Path) -> None:
    """A bad setting recorded in the candidate is an input error, not a crash."""
    good = run_file(tmp_path / "good.json", {"test_x": 1e-3})
    document = json.loads(good.read_text())
    document["settings"]["alpha"] = 7
    good.write_text(json.dumps(document))
    assert cli.main(["compare", str(good), str(good)]) == 2
