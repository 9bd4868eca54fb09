"""The worker side of paired A/B: this pytest process takes turns with the other side's.

Registered by ``pytest_configure`` only when
:data:`~pytest_perfgate.paired_protocol.SOCKET_VARIABLE` is set (``perfgate ab`` sets it
for the two processes it starts); an ordinary run imports this module and the protocol's
names, not the coordinator. It says which perf tests it collected and when each
test ends, and gives every ``perf(...)`` measurement a :class:`MeasurementTurns`, which
the sampler asks before each batch. The coordinator (paired.py) answers.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from ..paired_protocol import (
    BATCH_TIME_VARIABLE,
    CPU_VARIABLE,
    ROUND_VARIABLE,
    SIDE_VARIABLE,
    SIDES,
    SOCKET_VARIABLE,
    decode,
    encode,
)
from .session import session_key

PLUGIN_NAME = "perfgate-paired"

paired_key = pytest.StashKey["PairedWorker"]()


def register_if_paired(config: pytest.Config) -> None:
    """Connect to the coordinator when ``perfgate ab`` started this run paired."""
    path = os.environ.get(SOCKET_VARIABLE)
    if not path or hasattr(config, "workerinput"):
        return
    side = os.environ.get(SIDE_VARIABLE, "")
    if side not in SIDES:
        raise pytest.UsageError(
            f"perfgate: {SIDE_VARIABLE} must be base or candidate, not {side!r}"
        )
    try:
        batch_time = float(os.environ.get(BATCH_TIME_VARIABLE, "0.02"))
        round_index = int(os.environ.get(ROUND_VARIABLE, "0"))
        cpu = os.environ.get(CPU_VARIABLE)
        worker = PairedWorker(Path(path), side, batch_time, round_index)
        worker.cpu = None if cpu is None else int(cpu)
    except (OSError, ValueError) as error:
        raise pytest.UsageError(
            f"perfgate: cannot reach the paired A/B coordinator at {path}: {error}"
        ) from None
    config.stash[paired_key] = worker
    config.pluginmanager.register(worker, PLUGIN_NAME)


def pairing_of(
    config: pytest.Config,
) -> Callable[[str, float, str], MeasurementTurns | None] | None:
    """What the fixture pairs its measurements with, or None in an ordinary run."""
    worker = config.stash.get(paired_key, None)
    return None if worker is None else worker.turns_for


class PairedWorker:
    """One connection to the coordinator, for the whole run."""

    def __init__(self, path: Path, side: str, batch_time: float, round_index: int = 0) -> None:
        self.side = side
        self.batch_time = batch_time
        self.round = round_index
        self.cpu: int | None = None  #: move to this CPU once collected (all workers alike)
        self._socket: socket.socket | None = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.connect(str(path))
        self._lines = self._socket.makefile("rb")

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        perf = session.config.stash[session_key]
        tests = [item.nodeid for item in session.items if perf.is_perf_item(item)]
        if self.cpu is not None and hasattr(os, "sched_setaffinity"):
            # After collection: start-up runs on every core, measuring on the shared one.
            os.sched_setaffinity(0, {self.cpu})
        self.tell({"op": "hello", "side": self.side, "round": self.round, "tests": tests})

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.tell({"op": "finished", "test": nodeid})

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._socket is not None:
            self._lines.close()
            self._socket.close()
            self._socket = None

    def turns_for(self, test_id: str, threshold: float, name: str) -> MeasurementTurns | None:
        if self._socket is None:
            return None
        return MeasurementTurns(self, test_id, name, threshold)

    def tell(self, message: dict[str, Any]) -> None:
        if self._socket is None:
            return
        try:
            self._socket.sendall(encode(message))
        except OSError:
            self._socket = None  # the coordinator is gone: measure alone from now on

    def ask(self, message: dict[str, Any]) -> str:
        """Send ``message`` and wait for the coordinator's answer (its "op")."""
        self.tell(message)
        if self._socket is None:
            return "solo"
        try:
            line = self._lines.readline()
            return str(decode(line)["op"]) if line else self._lost()
        except (OSError, ValueError):
            return self._lost()

    def _lost(self) -> str:
        self._socket = None
        return "solo"


class MeasurementTurns:
    """The sampler's turns for one measurement (sampling.Turns)."""

    def __init__(self, worker: PairedWorker, test_id: str, name: str, threshold: float) -> None:
        self._worker = worker
        self._arrival = {"op": "arrive", "test": test_id, "name": name, "threshold": threshold}

    @property
    def batch_time(self) -> float:
        return self._worker.batch_time

    def start(self) -> bool:
        return self._worker.ask(self._arrival) == "go"

    def next(self, wall: Sequence[float]) -> bool:
        """Hand in the turn's level: its fastest sample. A neighbour's burst only adds
        time, and on a busy machine it can slow every sample but one of a turn."""
        level = min(wall)
        return self._worker.ask({"op": "level", "value": level}) == "go"
