"""The transient progress text: shown, then erased without moving pytest's cursor."""

from __future__ import annotations

import io

import pytest
from plugin_support import write_settings

from pytest_perfgate.plugin.progress import ProgressLine


def rendered(raw: str) -> str:
    """What a terminal shows after ``raw``: backspace moves left, characters overwrite."""
    screen: list[str] = []
    cursor = 0
    for char in raw:
        if char == "\b":
            cursor = max(cursor - 1, 0)
            continue
        if cursor == len(screen):
            screen.append(char)
        else:
            screen[cursor] = char
        cursor += 1
    return "".join(screen[:cursor]) + "|" + "".join(screen[cursor:])


def test_progress_is_shown_then_leaves_the_cursor_where_it_was() -> None:
    stream = io.StringIO()
    stream.write("tests/test_x.py ..")
    line = ProgressLine(stream)
    line.show(" measuring test_a: 40 samples")
    assert rendered(stream.getvalue()).startswith(
        "tests/test_x.py .. measuring test_a: 40 samples|"
    )
    line.show(" measuring test_a: 90 samples")
    assert "90 samples|" in rendered(stream.getvalue())
    line.clear()
    screen = rendered(stream.getvalue())
    assert screen.split("|")[0] == "tests/test_x.py .."  # cursor back after pytest's dots
    assert screen.split("|")[1].strip() == ""  # and the text is blanked out


def test_clear_all_erases_every_active_line() -> None:
    stream = io.StringIO()
    ProgressLine(stream).show("one")
    ProgressLine.clear_all()
    assert rendered(stream.getvalue()) == "|   "


CONFTEST_TERMINAL = """
def pytest_sessionstart(session):
    # The terminal reporter reads its output as a terminal, as it would in a shell.
    session.config.pluginmanager.get_plugin("terminalreporter").isatty = lambda: True
"""

LONG_MEASUREMENT = """
def test_long(perf):
    perf(sum, range(10))
"""


def test_a_long_measurement_shows_progress_under_default_capture(
    pytester: pytest.Pytester,
) -> None:
    """Issue 13: progress was only shown where sys.__stderr__ is a terminal, which
    pytest's capture hides; it is now written where the terminal reporter writes."""
    write_settings(pytester)
    pytester.makeconftest(CONFTEST_TERMINAL)
    pytester.makepyfile(test_long=LONG_MEASUREMENT)
    # About a second of 1 ms samples: progress is reported every half second.
    args = ("--perf-min-samples=900", "--perf-min-sample-time=0.001", "-p", "no:randomly")
    result = pytester.runpytest_inprocess(*args)
    assert result.ret == pytest.ExitCode.OK  # (its summary line is drawn for a terminal)
    raw = result.stdout.str()
    assert " measuring test_long.py::test_long: " in raw
    # Erased again: what remains on screen is pytest's own line.
    assert "measuring" not in rendered(raw)


def test_no_progress_where_the_output_is_not_a_terminal(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(test_long=LONG_MEASUREMENT)
    args = ("--perf-min-samples=900", "--perf-min-sample-time=0.001", "-p", "no:randomly")
    result = pytester.runpytest_inprocess(*args)
    result.assert_outcomes(passed=1)
    assert "measuring" not in result.stdout.str()
