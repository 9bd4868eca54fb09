"""Each report shows the minimum detectable change, and the summaries say how many
measurements cannot see a 5% slowdown and what would help."""

from __future__ import annotations

import json

from pytest_perfgate.model import Comparison, Direction, Environment, Measurement, Verdict
from pytest_perfgate.report.hints import blind_spot_hint
from pytest_perfgate.report.html import render_html
from pytest_perfgate.report.junit import junit_properties
from pytest_perfgate.report.markdown import render_markdown
from pytest_perfgate.results import RunResults, TestResults, results_json
from pytest_perfgate.stats import summarize

SAMPLES = (1e-3, 1.01e-3, 0.99e-3)


def _run(detectable: dict[str, float | None]) -> RunResults:
    tests = []
    for name, change in detectable.items():
        comparison = Comparison(
            f"t.py::{name}",
            "time",
            Verdict.UNCHANGED,
            "s",
            Direction.LOWER_IS_BETTER,
            summarize(SAMPLES),
            summarize(SAMPLES),
            ratio=1.01,
            ci_low=0.95,
            ci_high=1.07,
            p_value=0.6,
            q_value=1.0,
            threshold=0.02,
            detectable_change=change,
        )
        measurement = Measurement("time", "s", Direction.LOWER_IS_BETTER, SAMPLES)
        tests.append(
            TestResults(f"t.py::{name}", "t.py", name, "passed", ((measurement, comparison),))
        )
    return RunResults(Environment({"cpu": "x"}), tuple(tests), {"alpha": 0.05, "mode": "gate"})


RUN = _run({"test_blind": 0.123, "test_sharp": 0.031, "test_counted": None})


def test_markdown_shows_each_detectable_change_and_the_blind_spots() -> None:
    text = render_markdown(RUN)
    assert "| &gt;=12% |" in text  # ">=12%" once rendered
    assert "| &gt;=3.1% |" in text
    assert "1 of 2 judged measurements cannot see a 5% slowdown (they detect 12%..12%)" in text


def test_html_shows_each_detectable_change_and_the_blind_spots() -> None:
    page = render_html(RUN)
    assert "<th>detects</th>" in page
    assert '<td class="num">&gt;=12%</td>' in page
    assert '<td class="num">&gt;=3.1%</td>' in page
    assert "1 of 2 judged measurements cannot see a 5% slowdown" in page


def test_the_results_file_keeps_the_detectable_change() -> None:
    document = json.loads(results_json(RUN))
    found = {
        t["test"]: t["measurements"][0]["comparison"]["detectable_change"]
        for t in document["tests"]
    }
    assert found == {"test_blind": 0.123, "test_sharp": 0.031, "test_counted": None}
    again = RunResults.from_dict(document)
    assert [c.detectable_change for c in again.comparisons] == [0.123, 0.031, None]


def test_no_blind_spot_no_line() -> None:
    assert blind_spot_hint([0.03, None, 0.049]) == ""
    assert blind_spot_hint([]) == ""
    hint = blind_spot_hint([0.2, 0.06, 0.01])
    assert hint.startswith(
        "2 of 3 judged measurements cannot see a 5% slowdown (they detect 6%..20%)"
    )
    assert "perfgate calibrate" in hint
    assert "perfgate ab" in hint
    assert "instructions" in hint
    assert "max_time" in hint


def test_junit_properties_carry_the_detectable_change() -> None:
    pairs = dict(junit_properties(RUN.comparisons))
    assert pairs["perfgate.time.detectable_change"] in ("0.123", "0.031")
    counted = junit_properties([c for c in RUN.comparisons if c.detectable_change is None])
    assert "perfgate.time.detectable_change" not in dict(counted)
