"""A transient progress text for long measurements, on a terminal only.

It is written to the real stderr while pytest's capture is suspended, then erased with
backspaces, so the cursor ends where pytest left it and pytest's own progress output
(dots, percentages) stays aligned.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar, TextIO


class ProgressLine:
    _active: ClassVar[list[ProgressLine]] = []

    def __init__(self, stream: TextIO, capture: Any = None) -> None:
        self._stream = stream
        self._capture = capture
        self._shown = 0

    def show(self, text: str) -> None:
        with self._uncaptured():
            self._stream.write(self._erasure() + text)
            self._stream.flush()
        self._shown = len(text)
        if self not in ProgressLine._active:
            ProgressLine._active.append(self)

    def clear(self) -> None:
        if self._shown:
            with self._uncaptured():
                self._stream.write(self._erasure())
                self._stream.flush()
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
