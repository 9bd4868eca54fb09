"""The end-of-run table in a narrow, non-TTY CI log (issue 13, item 4)."""

from __future__ import annotations

import re

import pytest

from pytest_perfgate.model import Comparison, Direction, Verdict
from pytest_perfgate.report.terminal import (
    CI_HEADER,
    DETECTS_HEADER,
    MAX_TABLE_ROWS,
    cell_width,
    render_table,
)
from pytest_perfgate.stats import summarize


def comparison(
    test_id: str,
    verdict: Verdict,
    unit: str = "s",
    value: float = 1e-3,
    detectable: float | None = 0.081,
) -> Comparison:
    samples = (value, value * 1.01, value * 0.99)
    return Comparison(
        test_id,
        "time",
        verdict,
        unit,
        Direction.LOWER_IS_BETTER,
        summarize(samples),
        summarize(samples),
        ratio=1.04,
        ci_low=0.99,
        ci_high=1.09,
        detectable_change=detectable,
    )


LONG = [
    comparison(
        "example_suite/test_network.py::test_latency_under_load[load.p50]", Verdict.INCONCLUSIVE
    ),
    comparison(
        "example_suite/test_storage.py::test_random_read[randread.iops]",
        Verdict.INCOMPARABLE,
        "IO/s",
        17860.0,
    ),
    comparison("t.py::" + "x" * 120, Verdict.REGRESSED),
]


@pytest.mark.parametrize("width", [80, 100, 60])
def test_at_a_ci_logs_width_no_line_is_wider_and_no_verdict_is_cut(width: int) -> None:
    text = render_table(LONG, width=width)
    lines = text.splitlines()
    assert max(map(len, lines)) <= width
    for c in LONG:
        assert any(c.verdict.value in line.split() for line in lines), c.verdict
    # A unit stays with its number.
    assert any("17.9k IO/s" in line for line in lines)
    # A test id that fits the line is whole on one line: it can be searched.
    assert any(LONG[0].test_id in line for line in lines) == (len(LONG[0].test_id) <= width)


def test_a_table_that_fits_keeps_every_column_with_a_header_that_says_what_the_ci_is() -> None:
    text = render_table([comparison("t.py::test_a", Verdict.INCONCLUSIVE)], width=80)
    header, row = text.splitlines()[:2]
    assert header.split()[:5] == ["test", "verdict", "baseline", "now", "change"]
    assert header.split()[5:] == [*CI_HEADER.split(), DETECTS_HEADER]
    assert row.split() == [
        "t.py::test_a",
        "INCONCLUSIVE",
        "962",
        "us",
        "1",
        "ms",
        "+4.0%",
        "-1.0%..+9.0%",
        ">=8.1%",
    ]


def test_a_measurement_without_a_detectable_change_shows_a_dash() -> None:
    rows = [
        comparison("t.py::test_a", Verdict.NEW, detectable=None),
        comparison("t.py::test_b", Verdict.UNCHANGED),
    ]
    text = render_table(rows, width=100)
    assert text.splitlines()[0].split()[-1] == DETECTS_HEADER
    assert [line.split()[-1] for line in text.splitlines()[1:3]] == ["-", ">=8.1%"]
    alone = render_table([rows[0]], width=100)
    assert DETECTS_HEADER not in alone  # nothing judged, nothing to say what it could see
    text = render_table([comparison("t.py::test_a", Verdict.UNCHANGED, detectable=0.25)])
    assert text.splitlines()[1].split()[-1] == ">=25%"


def test_the_detectable_change_stays_when_the_ci_goes() -> None:
    test_id = "suite/test_module.py::test_" + "y" * 12
    text = render_table([comparison(test_id, Verdict.INCONCLUSIVE)], width=90)
    assert CI_HEADER not in text
    assert text.splitlines()[0].split()[-1] == DETECTS_HEADER
    assert text.splitlines()[1].split()[-1] == ">=8.1%"


def test_the_ci_column_goes_before_the_test_id_is_moved() -> None:
    test_id = "suite/test_module.py::test_" + "y" * 12
    text = render_table([comparison(test_id, Verdict.INCONCLUSIVE)], width=80)
    assert CI_HEADER not in text
    assert text.splitlines()[1].startswith(test_id + " ")


def test_an_empty_run_is_a_header_alone() -> None:
    assert render_table([], width=80).split() == [
        "test",
        "verdict",
        "baseline",
        "now",
        "change",
        "95%",
        "CI",
    ]


def test_a_long_table_lists_the_rows_that_matter_and_counts_the_rest() -> None:
    unchanged = [
        comparison(f"t.py::test_{i:05d}", Verdict.UNCHANGED) for i in range(MAX_TABLE_ROWS)
    ]
    regressed = [comparison("t.py::test_slow", Verdict.REGRESSED)]
    text = render_table([*unchanged, comparison("t.py::test_new", Verdict.NEW), *regressed])
    lines = text.splitlines()
    assert len(lines) == 1 + MAX_TABLE_ROWS + 1  # header, the rows, the count of the rest
    assert lines[1].split()[:2] == ["t.py::test_slow", "REGRESSED"]  # never left out first
    assert lines[2].split()[:2] == ["t.py::test_new", "NEW"]
    assert lines[-1] == "... and 2 more not listed: 2 UNCHANGED"
    assert "t.py::test_00197" in text
    assert "t.py::test_00198" not in text


def test_wide_characters_count_as_two_cells_so_columns_stay_aligned() -> None:
    rows = [
        comparison("t.py::test_[日本]", Verdict.UNCHANGED),
        comparison("t.py::test_ab", Verdict.NEW),
    ]
    lines = render_table(rows, width=120).splitlines()
    found = zip(lines[1:], ("NEW", "UNCH"), strict=True)
    starts = [cell_width(line[: line.index(verdict)]) for line, verdict in found]
    assert starts[0] == starts[1]  # both verdicts start in the same column
    assert cell_width("日本") == 4
    assert cell_width("e\u0301") == 1


@pytest.mark.parametrize("width", [30, 60])
def test_a_folded_table_fits_the_line_even_with_wide_characters(width: int) -> None:
    rows = [comparison("t.py::" + "日" * 70, Verdict.REGRESSED), *LONG]
    for line in render_table(rows, width=width).splitlines():
        assert cell_width(line) <= width, line


def test_colour_only_wraps_the_verdict_and_the_header() -> None:
    rows = [
        comparison("t.py::test_a", Verdict.REGRESSED),
        comparison("t.py::test_b", Verdict.UNCHANGED),
    ]
    plain, coloured = render_table(rows), render_table(rows, color=True)
    assert "\x1b" not in plain
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain
    header, regressed, unchanged = coloured.splitlines()
    assert header.startswith("\x1b[1m")
    assert header.endswith("\x1b[0m")
    assert "\x1b[1;31mREGRESSED" in regressed
    assert "\x1b[2mUNCHANGED" in unchanged
