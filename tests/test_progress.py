"""The transient progress text: shown, then erased without moving pytest's cursor."""

from __future__ import annotations

import io

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
