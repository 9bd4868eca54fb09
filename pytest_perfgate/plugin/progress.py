"""A transient progress text for long measurements, on a terminal only.

It is written where pytest's terminal reporter writes (``sys.stdout`` while pytest's
capture is suspended), then erased with backspaces, so the cursor ends where pytest left
it and pytest's own progress output (dots, percentages) stays aligned. It goes around
pytest's terminal writer, not through it: the writer measures its current line to place
the percentage, and would count the backspaces.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, ClassVar, TextIO


class ProgressLine:
    _active: ClassVar[list[ProgressLine]] = []

    def __init__(self, stream: TextIO | None = None, capture: Any = None) -> None:
        """``stream`` None: the ``sys.stdout`` of the moment, outside capture."""
        self._stream = stream
        self._capture = capture
        self._shown = 0

    def show(self, text: str) -> None:
        with self._uncaptured():
            stream = self._stream or sys.stdout
            stream.write(self._erasure() + text)
            stream.flush()
        self._shown = len(text)
        if self not in ProgressLine._active:
            ProgressLine._active.append(self)

    def clear(self) -> None:
        if self._shown:
            with self._uncaptured():
                stream = self._stream or sys.stdout
                stream.write(self._erasure())
                stream.flush()
            self._shown = 0

    @classmethod
    def clear_all(cls) -> None:
        while cls._active:
            cls._active.pop().clear()

    def _erasure(self) -> str:
        n = self._shown
        return "\b" * n + " " * n + "\b" * n if n else ""

    def _uncaptured(self) -> contextlib.AbstractContextManager[None]:
        if self._capture is None:
            return contextlib.nullcontext()
        return self._capture.global_and_fixture_disabled()  # type: ignore[no-any-return]
