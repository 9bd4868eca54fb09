"""The Markdown report, GitHub workflow commands and JUnit properties, from RunResults."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from pytest_perfgate.model import Comparison, Direction, Environment, Measurement, Verdict
from pytest_perfgate.report import github
from pytest_perfgate.report.junit import junit_properties
from pytest_perfgate.report.markdown import MARKER, MAX_CHARS, escape, render_markdown
from pytest_perfgate.results import RunResults, TestResults
from pytest_perfgate.stats import summarize

NASTY = "test_p[a|b<script>alert(1)</script>`x`*y*_z_ & [l](http://e) $m$ ~~s~~\\]"

SAMPLES = (1e-3, 1.01e-3, 0.99e-3)


def comparison(
    test_id: str, verdict: Verdict, ratio: float | None = 1.0, **kw: object
) -> Comparison:
    judged = ratio is not None and verdict not in (Verdict.NEW, Verdict.INCOMPARABLE)
    values: dict[str, object] = {
        "baseline": summarize(SAMPLES) if verdict is not Verdict.NEW else None,
        "ratio": ratio if judged else None,
        "ci_low": ratio * 0.95 if judged and ratio else None,
        "ci_high": ratio * 1.05 if judged and ratio else None,
        "p_value": 0.001 if judged else None,
        "q_value": 0.002 if judged else None,
        "threshold": 0.02,
    } | kw
    return Comparison(
        test_id,
        str(values.pop("name", "time")),
        verdict,
        "s",
        Direction.LOWER_IS_BETTER,
        summarize(tuple(x * (ratio or 1.0) for x in SAMPLES)),
        **values,  # type: ignore[arg-type]
    )


def run_of(*comparisons: Comparison) -> RunResults:
    tests = []
    for i, c in enumerate(comparisons):
        module, _, test = c.test_id.partition("::")
        measurement = Measurement(c.name, "s", Direction.LOWER_IS_BETTER, SAMPLES)
        tests.append(
            TestResults(c.test_id, module, test, "passed", ((measurement, c),), (module, 10 + i))
        )
    return RunResults(
        environment=Environment({"cpu": "x"}),
        tests=tuple(tests),
        settings={"mode": "gate", "threshold": 0.02, "alpha": 0.05},
        commit="0123456789abcdef0123",
    )


def rendered_html(markdown: str) -> str:
    """Rendered as GitHub would: CommonMark with tables, raw HTML allowed."""
    parser = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    return str(parser.render(markdown))


def section_order(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(("####", "<summary>"))]


def test_regressions_come_first_and_unchanged_are_folded() -> None:
    run = run_of(
        comparison("t.py::test_same_1", Verdict.UNCHANGED, 1.01),
        comparison("t.py::test_better", Verdict.IMPROVED, 0.5),
        comparison("t.py::test_new", Verdict.NEW, None),
        comparison("t.py::test_slow", Verdict.REGRESSED, 1.5, notes=("a note",)),
        comparison("t.py::test_maybe", Verdict.INCONCLUSIVE, 1.04),
        comparison("t.py::test_moved", Verdict.INCOMPARABLE, None, notes=("other machine",)),
        comparison("t.py::test_same_2", Verdict.UNCHANGED, 0.99),
    )
    text = render_markdown(run)
    lines = text.splitlines()
    assert lines[0] == MARKER
    assert lines[1] == (
        "### perfgate: ❌ fail: 1 regression, 1 inconclusive, 1 improvement, 1 incomparable, "
        "1 new, 2 unchanged"
    )
    assert lines[3] == "To accept this change: `pytest --perf-update-baselines`"
    assert "threshold 2%" in lines[5]
    assert "commit 0123456789ab" in lines[5]
    assert section_order(text) == [
        "#### Regressed",
        "#### Inconclusive",
        "#### Improved",
        "#### Incomparable or new",
        "<summary>2 unchanged</summary>",
    ]
    regressed = next(line for line in lines if "test\\_slow" in line)
    assert regressed.split(" | ")[1:7] == [
        "1 ms",
        "1.5 ms",
        "+50.0%",
        "+42.5% .. +57.5%",
        "-",
        "0.002",
    ]
    assert "a note |" in regressed
    details = text[text.index("<details>") :]
    assert "test\\_same\\_1" in details
    assert "test\\_same\\_2" in details
    assert "test\\_same" not in text[: text.index("<details>")]
    html = rendered_html(text)
    assert "<details>" in html
    assert html.count("<table>") == 5


def test_plural_counts() -> None:
    run = run_of(
        comparison("t.py::a", Verdict.REGRESSED, 2.0),
        comparison("t.py::b", Verdict.REGRESSED, 2.0),
        comparison("t.py::c", Verdict.IMPROVED, 0.5),
        comparison("t.py::d", Verdict.IMPROVED, 0.5),
    )
    assert render_markdown(run).splitlines()[1] == (
        "### perfgate: ❌ fail: 2 regressions, 2 improvements"
    )


def test_a_nasty_test_id_shows_as_text() -> None:
    run = run_of(
        comparison(f"t.py::{NASTY}", Verdict.REGRESSED, 1.5, notes=("<b>note</b> | x",)),
        comparison(f"t.py::{NASTY}2", Verdict.UNCHANGED, 1.0),
        comparison(f"t.py::{NASTY}3", Verdict.NEW, None),
    )
    text = render_markdown(run)
    for dangerous in ("<script>", "<b>", "</script>"):
        assert dangerous not in text
    html = rendered_html(text)
    tables = html[html.index("<h4>") :]
    for tag in ("<script>", "<b>", "<a ", "<code>", "<em>", "<strong>", "<s>"):
        assert tag not in tables
    # The id reads exactly as it is (a zero-width space unlinks the URL), and each row
    # keeps its cells.
    assert "a|b&lt;script&gt;alert(1)&lt;/script&gt;`x`*y*_z_ &amp; [l](http:\u200b//e) $m$" in html
    rows = [line for line in text.splitlines() if "alert(1)" in line]
    assert len(rows) == 3
    for row in rows:
        body = row.replace("\\|", "")
        # No q column on the unchanged row: there it means nothing (q=0.002 marks the other).
        assert body.count("|") == (5 if "NEW" in row else 9 if "| 0.002 |" in row else 8)


def test_a_huge_run_stays_within_a_comment_s_size_leaving_out_unchanged_first() -> None:
    same = comparison("t.py::test_u", Verdict.UNCHANGED, 1.0)
    unchanged = [replace(same, test_id=f"t.py::test_u[{i:05}]") for i in range(3000)]
    run = run_of(comparison("t.py::test_slow", Verdict.REGRESSED, 1.5), *unchanged)
    text = render_markdown(run)
    assert len(text) <= MAX_CHARS
    assert "| t.py::test\\_slow |" in text
    assert "### perfgate: ❌ fail: 1 regression, 3000 unchanged" in text
    kept = text.count("t.py::test\\_u")
    assert 0 < kept < 3000
    assert f"_{3000 - kept} more left out to keep the report within" in text
    assert text.rstrip().endswith("</details>")
    tiny = render_markdown(run, max_chars=100)
    assert "| t.py::test\\_slow |" not in tiny
    assert "_1 more left out" in tiny
    assert "_3000 more left out" in tiny
    assert "| test [measurement] |" not in tiny  # no empty tables


def test_control_characters_cannot_end_a_row() -> None:
    assert escape("a\nb\r\tc") == "a\\\\nb\\\\r\\\\tc"
    assert "\n" not in escape("x\ny")


def test_an_empty_run() -> None:
    text = render_markdown(run_of())
    assert text == f"{MARKER}\n### perfgate: no perf measurements in this run\n"


def test_higher_is_better_and_tail_statistics_are_said() -> None:
    rate = replace(
        comparison("t.py::test_rate", Verdict.IMPROVED, 1.5, name="rows"),
        direction=Direction.HIGHER_IS_BETTER,
    )
    tail = replace(
        comparison("t.py::test_rtt", Verdict.REGRESSED, 1.5), statistic="p99", value=2e-3
    )
    text = render_markdown(run_of(rate, tail))
    assert "test\\_rate \\[rows\\]" in text
    assert "higher is better" in text
    assert "p99 2 ms" in text


# -- GitHub -------------------------------------------------------------------------------


def test_workflow_commands_escape_per_the_actions_toolkit() -> None:
    assert github.escape_data("50%\r\nx: a, b") == "50%25%0D%0Ax: a, b"
    assert github.escape_property("50%\r\nx: a, b") == "50%25%0D%0Ax%3A a%2C b"


def test_one_error_per_regressed_measurement_at_its_test() -> None:
    run = run_of(
        comparison("dir/t.py::test_ok", Verdict.UNCHANGED, 1.0),
        comparison("dir/t.py::test_slow[a,b:c]", Verdict.REGRESSED, 1.5),
    )
    (line,) = github.workflow_commands(run)
    assert line.startswith(
        "::error file=dir/t.py,line=11,title=performance regression in "
        "dir/t.py%3A%3Atest_slow[a%2Cb%3Ac]::median 1.5 ms vs baseline 1 ms (+50.0%"
    )
    (warning,) = github.workflow_commands(run, level="warning")
    assert warning.startswith("::warning file=")


def test_annotation_paths_are_relative_to_the_checkout(tmp_path: Path) -> None:
    root = tmp_path / "repo" / "python"
    root.mkdir(parents=True)
    assert github.annotation_file("t.py", root, str(tmp_path / "repo")) == "python/t.py"
    assert github.annotation_file("t.py", root, str(tmp_path / "elsewhere")) == "t.py"
    assert github.annotation_file("t.py", root, None) == "t.py"


def test_the_step_summary_is_appended_to(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    assert github.append_step_summary("report", {"GITHUB_STEP_SUMMARY": str(summary)}) == summary
    assert summary.read_text() == "earlier step\nreport\n"
    assert github.append_step_summary("report", {}) is None


# -- JUnit --------------------------------------------------------------------------------


def test_junit_properties_name_each_figure() -> None:
    pairs = junit_properties([comparison("t.py::test_x", Verdict.REGRESSED, 1.5)])
    assert dict(pairs) == {
        "perfgate.time.verdict": "REGRESSED",
        "perfgate.time.unit": "s",
        "perfgate.time.median": "0.0015",
        "perfgate.time.baseline": "0.001",
        "perfgate.time.change": "0.5",
        "perfgate.time.ci_low": "0.425",
        "perfgate.time.ci_high": "0.575",
        "perfgate.time.q": "0.002",
    }
    new = dict(junit_properties([comparison("t.py::test_y", Verdict.NEW, None)]))
    assert set(new) == {"perfgate.time.verdict", "perfgate.time.unit", "perfgate.time.median"}


@pytest.mark.parametrize("verdict", list(Verdict))
def test_every_verdict_is_shown(verdict: Verdict) -> None:
    text = render_markdown(run_of(comparison("t.py::test_x", verdict, 1.0)))
    assert text.splitlines()[1].startswith("### perfgate: ")
    assert ": 1 " in text.splitlines()[1]
    assert sum("| t.py::test\\_x |" in line for line in text.splitlines()) == 1


# -- what a reviewer reads first (issue 13, items 3 and 6) --------------------------------

MACHINE = "baseline recorded on another machine class (cpu: 'A' vs 'B'): record baselines "
MACHINE += "for this machine with `pytest --perf-update-baselines`"


def test_a_reason_many_measurements_share_is_said_once_with_a_count() -> None:
    moved = [
        comparison(f"t.py::test_{i}", Verdict.INCOMPARABLE, None, notes=(MACHINE,))
        for i in range(19)
    ]
    odd = comparison("t.py::test_odd", Verdict.INCOMPARABLE, None, notes=("other unit",))
    text = render_markdown(
        run_of(*moved, odd), refresh_command="pytest suite -k fast --perf-update-baselines"
    )
    assert text.count("another machine class") == 1
    assert "**19 incomparable**: baseline recorded on another machine class" in text
    assert "pytest suite -k fast --perf-update-baselines" in text
    assert sum("| t.py::test\\_" in line for line in text.splitlines()) == 20
    assert "| t.py::test\\_odd | INCOMPARABLE | 1 ms | other unit |" in text


def test_the_comment_opens_with_pass_or_fail_and_how_to_accept() -> None:
    slow = comparison("t.py::test_slow", Verdict.REGRESSED, 1.5)
    same = comparison("t.py::test_same", Verdict.UNCHANGED, 1.0)
    failing = render_markdown(
        run_of(slow, same), refresh_command="pytest t.py --perf-update-baselines"
    )
    assert failing.splitlines()[1].startswith("### perfgate: ❌ fail: 1 regression")
    assert failing.splitlines()[3] == "To accept this change: `pytest t.py --perf-update-baselines`"
    passing = render_markdown(run_of(same)).splitlines()
    assert passing[1] == "### perfgate: ✅ pass: 1 unchanged"
    assert not any(line.startswith("To accept") for line in passing)
    warned = replace(run_of(slow), settings={"mode": "warn", "threshold": 0.02})
    assert "pass (mode warn" in render_markdown(warned).splitlines()[1]


def test_a_row_with_its_own_threshold_says_it_and_q_only_where_it_means_something() -> None:
    own = comparison("t.py::test_own", Verdict.REGRESSED, 1.5, threshold=0.1)
    usual = comparison("t.py::test_usual", Verdict.REGRESSED, 1.5)
    better = comparison("t.py::test_better", Verdict.IMPROVED, 0.5)
    text = render_markdown(run_of(own, usual, better))
    row = next(line for line in text.splitlines() if "test\\_own" in line)
    assert row.endswith("| threshold 10% |")
    assert "threshold" not in next(line for line in text.splitlines() if "test\\_usual" in line)
    improved = text[text.index("#### Improved") :].splitlines()
    assert (
        improved[2] == "| test [measurement] | baseline | now | change | 95% CI | detects | notes |"
    )
    assert "0.002" not in improved[4]
