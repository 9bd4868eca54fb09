"""JSON as perfgate reads it from files a person or another tool wrote: strict.

``json.loads`` accepts ``NaN`` and ``Infinity``, reads ``1e400`` as infinity, keeps the last
of two equal keys and recurses without bound. Each of those once let a damaged baseline
turn the gate off or crash a run; here each is an error that says what it found.
"""

from __future__ import annotations

import json
import math
from typing import Any


class StrictJSONError(ValueError):
    """The text is not JSON that perfgate accepts; the message says why."""


def loads_strict(text: str) -> Any:
    """Parse ``text``, refusing non-finite numbers, duplicate keys and deep nesting."""
    try:
        return json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        raise StrictJSONError("nested too deeply") from None
    except json.JSONDecodeError as error:
        raise StrictJSONError(str(error)) from None


def _refuse_constant(name: str) -> Any:
    raise StrictJSONError(f"non-finite number {name} (only finite numbers are accepted)")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise StrictJSONError(f"number {text} is out of range")
    return number


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) < len(pairs):  # rare: only then look for the key, in Python
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise StrictJSONError(f"duplicate key {key!r} (a later one would hide the first)")
            seen.add(key)
    return result
