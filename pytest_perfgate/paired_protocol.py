"""The paired A/B protocol's names, shared by the coordinator (paired.py, in the ``perfgate
ab`` process) and the workers (plugin/paired_worker.py, in every pytest process the
plugin loads into): kept apart so that an ordinary run imports only these few lines, not
the coordinator and its statistics."""

from __future__ import annotations

import json
from typing import Any

#: Where a worker finds the coordinator's socket; unset means an ordinary run.
SOCKET_VARIABLE = "PERFGATE_PAIRED_SOCKET"
#: Which side a worker measures: "base" or "candidate".
SIDE_VARIABLE = "PERFGATE_PAIRED_SIDE"
SIDES = ("base", "candidate")
#: Seconds of samples per turn, as the workers read it (plugin/paired_worker.py).
BATCH_TIME_VARIABLE = "PERFGATE_PAIRED_BATCH_TIME"
#: Which round (pair of processes) a worker belongs to: 0, 1, ...
ROUND_VARIABLE = "PERFGATE_PAIRED_ROUND"
#: The CPU a worker moves to once it has collected (every worker the same one).
CPU_VARIABLE = "PERFGATE_PAIRED_CPU"


def encode(message: dict[str, Any]) -> bytes:
    """One protocol line."""
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()


def decode(line: bytes) -> dict[str, Any]:
    """One protocol line back; a malformed line is a ValueError."""
    message = json.loads(line)
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ValueError(f"not a perfgate paired message: {line[:80]!r}")
    return message
