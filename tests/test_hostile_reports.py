"""Hostile test ids and measurement names in every report (issue 14 items 8 and 9): what a
test id can hold reaches no reader as markup, a link, a mention, a reversed text or a
GitHub Actions workflow command."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from pytest_perfgate.model import (
    Comparison,
    Direction,
    Environment,
    Measurement,
    Verdict,
    explain,
)
from pytest_perfgate.report import github
from pytest_perfgate.report.html import render_html
from pytest_perfgate.report.markdown import render_markdown
from pytest_perfgate.report.summary import look_texts
from pytest_perfgate.report.terminal import render_table
from pytest_perfgate.results import RunResults, TestResults
from pytest_perfgate.stats import summarize

FUZZ = settings(deadline=None, database=None, max_examples=60, derandomize=True)
SAMPLES = (1e-3, 1.01e-3, 0.99e-3)
#: What must never come out of a test id as it was: controls and bidirectional marks.
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: What GitHub links or notifies in a comment, with nothing in between.
LINKING = re.compile(r"@\w|#\w|\bGH-\d|https?://|www\.", re.IGNORECASE)
#: Pieces a hostile id is built from, beside any text.
PIECES = st.sampled_from(
    [
        "@alice",
        "#1",
        "GH-7",
        "https://evil.example/x",
        "(https://e.example)",
        "www.e.example",
        "\u202e",
        "\u2066",
        "\n::error file=x::owned\n",
        "\r\n::set-output name=a::b",
        "\x1b[31m",
        "<script>",
        "|",
        "`",
    ]
)
HOSTILE = st.lists(PIECES | st.text(max_size=6), min_size=1, max_size=6).map("".join)


def run_of(test_id: str, name: str) -> RunResults:
    regressed = Comparison(
        test_id,
        name,
        Verdict.REGRESSED,
        "s",
        Direction.LOWER_IS_BETTER,
        summarize(tuple(2 * x for x in SAMPLES)),
        baseline=summarize(SAMPLES),
        ratio=2.0,
        ci_low=1.9,
        ci_high=2.1,
        q_value=0.001,
        threshold=0.02,
        notes=(f"note about {name}",),
    )
    measurement = Measurement(name, "s", Direction.LOWER_IS_BETTER, SAMPLES)
    test = TestResults(
        test_id, "t.py", "test_x", "passed", ((measurement, regressed),), ("t.py", 3)
    )
    return RunResults(Environment({"cpu": "x"}), (test,), {"mode": "gate"})


def text_nodes(html: str) -> str:
    """The text a reader sees in rendered HTML (tags dropped)."""
    return re.sub(r"<[^>]*>", " ", html)


@FUZZ
@given(test=HOSTILE, name=HOSTILE)
@example(test="@alice", name="@alicewww.e.example")  # "www." inside a word, found by the fuzz
def test_markdown_links_and_notifies_nothing_from_a_test_id(test: str, name: str) -> None:
    run = run_of(f"t.py::test_x[{test}]", name)
    text = render_markdown(run)
    assert not UNSAFE.search(text)
    rendered = MarkdownIt("commonmark", {"html": True}).enable(["table"]).render(text)
    assert "<script>" not in rendered
    for tag in ("<a ", "<code>"):
        assert tag not in rendered[rendered.index("<table>") :]
    for line in text.splitlines():
        if "test\\_x" in line:  # a row from the test: nothing GitHub would link
            assert not LINKING.search(line.replace("\\", "")), line


@FUZZ
@given(test=HOSTILE, name=HOSTILE)
def test_terminal_and_ci_log_lines_carry_no_control_characters(test: str, name: str) -> None:
    run = run_of(f"t.py::test_x[{test}]", name)
    comparisons = run.comparisons
    lines = [
        *render_table(comparisons, width=100).splitlines(),
        *look_texts(comparisons, "pytest --perf-update-baselines"),
        explain(comparisons[0]),
        f"performance regression in {comparisons[0].label}",
    ]
    for line in lines:
        assert not UNSAFE.search(line)
        assert "\n" not in line
        assert not line.lstrip().startswith("::")
    for command in github.workflow_commands(run):
        assert "\n" not in command
        assert "\r" not in command
        assert command.startswith("::error ")


@settings(deadline=None, database=None, max_examples=15, derandomize=True)
@given(test=HOSTILE, name=HOSTILE)
def test_html_shows_a_test_id_as_text_and_never_reversed(test: str, name: str) -> None:
    html = render_html(run_of(f"t.py::test_x[{test}]", name))
    body = html[html.index("<body") :]
    assert not UNSAFE.search(text_nodes(body.split("<script", 1)[0]))
    assert "\u202e" not in html
    assert "<script>" not in text_nodes(body)


def test_a_bidi_override_is_shown_as_its_escape() -> None:
    run = run_of("t.py::test_x[abc\u202edef]", "time")
    assert "abc\\\\u202edef" in render_markdown(run)
    assert "abc\\u202edef" in render_html(run)
    assert "abc\\u202edef" in render_table(run.comparisons)


def test_a_newline_in_a_measurement_name_cannot_start_a_workflow_command() -> None:
    run = run_of("t.py::test_x", "rows\n::error file=a.py::owned")
    message = f"performance regression in {run.comparisons[0].label}: {explain(run.comparisons[0])}"
    assert "\n" not in message
    assert "rows\\n::error" in message
