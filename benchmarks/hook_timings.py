"""Where a perf test's cost to the plugin goes: real time per call of the plugin's steps.

A pytest plugin, loaded before perfgate's own modules are used::

    PYTHONPATH=benchmarks python -m pytest -p hook_timings SUITE

At exit it prints, to stderr, for each wrapped function its calls, total milliseconds and
microseconds a call, largest total first. It wraps module attributes, so a function that
another module imported by name before this plugin loaded is timed only where it is
looked up through its module (most of the plugin imports lazily, inside functions).
Real time, no profiler: a profiler's cost per call is larger than most of these steps and
slows the measured samples enough to change the verdicts. Nested steps are counted in
their callers too; the figures are not to be summed.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import inspect
import sys
import time
from collections.abc import Callable, Generator
from typing import Any

#: (module, attribute path) of each step timed.
STEPS = [
    ("pytest_perfgate.plugin.session", "PerfSession.pytest_collection_finish"),
    ("pytest_perfgate.plugin.session", "PerfSession._count_decisions"),
    ("pytest_perfgate.plugin.session", "PerfSession._freeze_heap"),
    ("pytest_perfgate.plugin.session", "PerfSession.fixture_for"),
    ("pytest_perfgate.plugin.session", "PerfSession.pytest_runtest_call"),
    ("pytest_perfgate.plugin.session", "PerfSession.pytest_runtest_makereport"),
    ("pytest_perfgate.plugin.session", "PerfSession.pytest_terminal_summary"),
    ("pytest_perfgate.plugin.session", "PerfSession.pytest_sessionfinish"),
    ("pytest_perfgate.code_hash", "identify"),
    ("pytest_perfgate.code_hash", "_hash_module"),
    ("pytest_perfgate.baseline", "BaselineStore.load"),
    ("pytest_perfgate.baseline", "BaselineStore._stage_module"),
    ("pytest_perfgate.model", "BaselineEntry.from_dict"),
    ("pytest_perfgate.fixture", "PerfFixture.call"),
    ("pytest_perfgate.fixture", "PerfFixture._judge"),
    ("pytest_perfgate.fixture", "judge"),
    ("pytest_perfgate.gate", "look"),
    ("pytest_perfgate.gate", "decide"),
    ("pytest_perfgate.gate", "_comparison"),
    ("pytest_perfgate.sampling", "Sampler.run"),
    ("pytest_perfgate.refresh", "refresh_baselines"),
    ("pytest_perfgate.environment", "calibrate_machine"),
]

_totals: dict[str, list[float]] = {}  #: step -> [calls, seconds]


def _timed(label: str, function: Callable[..., Any]) -> Callable[..., Any]:
    total = _totals.setdefault(label, [0, 0.0])
    if inspect.isgeneratorfunction(function):  # a hook wrapper: time both of its halves

        @functools.wraps(function)
        def wrapper_of_generator(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            start = time.perf_counter()
            inner = function(*args, **kwargs)
            try:
                sent = yield next(inner)
            finally:
                total[1] += time.perf_counter() - start
            start = time.perf_counter()
            try:
                inner.send(sent)
            except StopIteration as stop:
                return stop.value
            finally:
                total[0] += 1
                total[1] += time.perf_counter() - start
            raise RuntimeError(f"{label}: a hook wrapper yielded twice")

        return wrapper_of_generator

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            total[0] += 1
            total[1] += time.perf_counter() - start

    return wrapper


def _wrap(module_name: str, path: str) -> None:
    owner: Any = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)
    setattr(owner, name, _timed(path, getattr(owner, name)))


def _report() -> None:
    rows = sorted(_totals.items(), key=lambda item: -item[1][1])
    for label, (calls, seconds) in rows:
        if calls:
            print(
                f"{label:<45} {calls:>7.0f} calls {seconds * 1e3:>9.1f} ms "
                f"{seconds / calls * 1e6:>9.1f} us/call",
                file=sys.stderr,
            )


for _module, _path in STEPS:
    _wrap(_module, _path)
atexit.register(_report)
