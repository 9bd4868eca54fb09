"""CI outputs of a pytest run: --perf-markdown, the GitHub job summary and annotations, and
the figures as properties in --junitxml (also under pytest-xdist)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from plugin_support import SLOWDOWN, WORK_SUITE, record_baselines, write_settings

from pytest_perfgate.report.markdown import MARKER

NASTY_SUITE = """
import pytest


@pytest.mark.perf
@pytest.mark.parametrize("n", [100], ids=["a|b<script>alert(1)</script>"])
def test_nasty(perf, n):
    perf(sum, range(n))
"""


@pytest.fixture(autouse=True)
def outside_github(monkeypatch: pytest.MonkeyPatch) -> None:
    """These runs must not write into a real job summary when the suite runs in Actions."""
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)


def junit_properties(path: Path) -> dict[str, dict[str, str]]:
    """Test case name -> its properties."""
    root = ET.parse(path).getroot()
    return {
        case.get("name", ""): {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        for case in root.iter("testcase")
    }


def test_a_regression_in_the_markdown_report_job_summary_annotations_and_junit(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(pytester)
    module = pytester.makepyfile(test_work=WORK_SUITE)
    # pytest's location of a decorated test is its first decorator's line: the one above.
    line = module.read_text().splitlines().index("def test_slow(perf):")
    monkeypatch.setenv("WORK", "1")
    record_baselines(pytester)
    summary = pytester.path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("WORK", SLOWDOWN)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path.parent))

    result = pytester.runpytest("--perf-markdown=out/perf.md", "--junitxml=junit.xml")
    result.assert_outcomes(failed=1, passed=1)

    report = (pytester.path / "out" / "perf.md").read_text(encoding="utf-8")
    assert report.startswith(f"{MARKER}\n### perfgate: ❌ fail: 1 regression")
    regressed = report.index("#### Regressed")
    assert regressed < report.index("test\\_work.py::test\\_slow |") < report.index("<details>")
    assert summary.read_text(encoding="utf-8") == "earlier step\n" + report
    result.stdout.fnmatch_lines(
        [
            "perfgate: Markdown report written to *out/perf.md",
            f"perfgate: Markdown report appended to {summary}",
        ]
    )
    # The path is relative to the checkout ($GITHUB_WORKSPACE), the line 1-based.
    annotations = [x for x in result.stdout.lines if x.startswith("::")]
    assert len(annotations) == 1
    assert annotations[0].startswith(
        f"::error file={pytester.path.name}/test_work.py,line={line},"
        "title=performance regression in test_work.py%3A%3Atest_slow::median "
    )

    properties = junit_properties(pytester.path / "junit.xml")
    slow, steady = properties["test_slow"], properties["test_steady"]
    assert slow["perfgate.time.verdict"] == "REGRESSED"
    assert slow["perfgate.time.unit"] == "s"
    assert float(slow["perfgate.time.change"]) > 1.0  # six times the work
    assert float(slow["perfgate.time.ci_low"]) <= float(slow["perfgate.time.change"])
    assert float(slow["perfgate.time.median"]) > float(slow["perfgate.time.baseline"]) > 0
    assert {"perfgate.time.ci_high", "perfgate.time.q"} <= set(slow)
    assert steady["perfgate.time.verdict"] != "REGRESSED"


def test_a_regression_that_does_not_fail_is_a_warning_annotation(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(pytester)
    pytester.makepyfile(test_work=WORK_SUITE)
    monkeypatch.setenv("WORK", "1")
    record_baselines(pytester)
    monkeypatch.setenv("WORK", SLOWDOWN)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = pytester.runpytest("--perf-mode=warn")
    result.assert_outcomes(passed=2)
    annotations = [x for x in result.stdout.lines if x.startswith("::")]
    assert len(annotations) == 1
    assert annotations[0].startswith("::warning file=test_work.py,line=")


def test_outside_github_actions_there_are_no_annotations_nor_summary(
    pytester: pytest.Pytester,
) -> None:
    write_settings(pytester)
    pytester.makepyfile(test_work=WORK_SUITE)
    result = pytester.runpytest("--perf-markdown=perf.md")
    result.assert_outcomes(passed=2)
    assert not [x for x in result.stdout.lines if x.startswith("::")]
    result.stdout.no_fnmatch_line("*appended to*")
    assert "2 new" in (pytester.path / "perf.md").read_text(encoding="utf-8")


def test_an_unwritable_markdown_path_is_reported_not_a_crash(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(test_work=WORK_SUITE)
    (pytester.path / "blocked").write_text("a file, not a directory")
    result = pytester.runpytest("--perf-markdown=blocked/perf.md")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["perfgate: cannot write the Markdown report to *blocked/perf.md*"])


def test_junit_properties_and_the_report_under_xdist(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    write_settings(pytester)
    pytester.makepyfile(test_work=WORK_SUITE, test_nasty=NASTY_SUITE)
    result = pytester.runpytest_subprocess(
        "-n", "2", "--junitxml=junit.xml", "--perf-markdown=perf.md", timeout=120
    )
    result.assert_outcomes(passed=3)
    properties = junit_properties(pytester.path / "junit.xml")
    nasty = "test_nasty[a|b<script>alert(1)</script>]"
    assert set(properties) == {"test_slow", "test_steady", nasty}
    for figures in properties.values():
        assert figures["perfgate.time.verdict"] == "NEW"
        assert float(figures["perfgate.time.median"]) > 0
    # Written once, by the controller, with the parametrization id escaped.
    assert result.stdout.str().count("perfgate: Markdown report written to") == 1
    report = (pytester.path / "perf.md").read_text(encoding="utf-8")
    assert "3 new" in report
    assert "<script>" not in report
    assert "a\\|b&lt;script&gt;alert(1)&lt;/script&gt;" in report
