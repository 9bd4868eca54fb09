"""Turning pytest-benchmark's saved runs (``.benchmarks/**/*.json``) into baselines.

A saved run holds, per benchmark, its summary statistics, and its raw per-call times only
when it was saved with ``--benchmark-save-data``. With raw data the baseline keeps the
samples, like one recorded by perfgate; without, it keeps the median alone and is marked
``summary_only``: the gate then knows the level but not the spread of that run.

Several saved runs of the same benchmark become its history of run-level medians (oldest
first), so a project with a few saved runs starts with a gate that knows its run-to-run
noise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, final

from .baseline import BaselineError, BaselineStore, refreshed_entry
from .model import MAX_LOOPS, STORED_RANGE, BaselineEntry, Direction, Environment, Measurement


class SavedRunError(ValueError):
    """A saved run cannot be imported; the message names the file and the problem."""


@final
@dataclass(frozen=True, slots=True)
class SavedBenchmark:
    """One benchmark of one saved pytest-benchmark run."""

    module: str  #: test module path, as in the node id
    test: str  #: test name with its parametrization, e.g. ``test_x[10]``
    samples: tuple[float, ...]  #: per-call seconds; the median alone when summary-only
    summary_only: bool
    iterations: int
    environment: Environment
    saved_at: str  #: the run's datetime, ISO 8601
    commit: str | None


@dataclass(slots=True)
class ImportReport:
    imported: list[str] = field(default_factory=list)
    summary_only: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def saved_runs(paths: Iterable[Path]) -> list[Path]:
    """The JSON files named, or found under the directories named, sorted."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(p for p in path.rglob("*.json") if p.is_file())
        elif path.is_file():
            found.add(path)
        else:
            raise SavedRunError(f"{path}: no such file or directory")
    return sorted(found)


def read_saved_run(path: Path) -> list[SavedBenchmark]:
    """Parse one pytest-benchmark JSON file."""
    try:
        # Plain json.loads: pytest-benchmark itself writes Infinity for a zero-time
        # benchmark's ops; the figures used below are checked one by one.
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SavedRunError(f"{path}: cannot read it as JSON ({error})") from None
    except RecursionError:
        raise SavedRunError(f"{path}: cannot read it as JSON (nested too deeply)") from None
    if not isinstance(document, dict) or not isinstance(document.get("benchmarks"), list):
        raise SavedRunError(f"{path}: not a pytest-benchmark saved run (no 'benchmarks' list)")
    info = document.get("machine_info")
    environment = _environment(info if isinstance(info, dict) else {})
    saved_at = str(document.get("datetime", ""))
    commit_info = document.get("commit_info") or {}
    commit = commit_info.get("id") if commit_info.get("id") not in (None, "unversioned") else None
    benchmarks = []
    for index, bench in enumerate(document["benchmarks"]):
        try:
            module, test = _test_of(bench["fullname"])
            stats: Mapping[str, Any] = bench["stats"]
            data = [_timing(x, "data") for x in stats.get("data") or ()]
            median = _timing(stats["median"], "median")
            iterations = _iterations(stats.get("iterations", 1))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise SavedRunError(
                f"{path}: benchmark #{index} is malformed ({type(error).__name__}: {error})"
            ) from None
        low, high = STORED_RANGE
        usable = [x for x in data if low <= x <= high]
        if not usable and not low <= median <= high:
            raise SavedRunError(f"{path}: {bench['fullname']} has no positive timing")
        benchmarks.append(
            SavedBenchmark(
                module=module,
                test=test,
                samples=tuple(usable) if usable else (median,),
                summary_only=not usable,
                iterations=iterations,
                environment=environment,
                saved_at=saved_at,
                commit=commit,
            )
        )
    return benchmarks


def _test_of(fullname: Any) -> tuple[str, str]:
    """``"tests/test_x.py::test_y[1]"`` -> module and test, both needed to name a file."""
    if not isinstance(fullname, str):
        raise TypeError(f"fullname must be a string, got {type(fullname).__name__}")
    module, _, test = fullname.partition("::")
    if not module or not test:
        raise ValueError(f"fullname {fullname!r} is not 'module::test'")
    if any(ord(c) < 32 or ord(c) == 127 for c in fullname):
        raise ValueError(f"fullname {fullname!r} holds a control character")
    return module, test


def _timing(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number!r}")
    return number


def _iterations(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"iterations must be a whole number, got {value!r}")
    if not 1 <= value <= MAX_LOOPS:
        raise ValueError(f"iterations must be from 1 to {MAX_LOOPS}, got {value}")
    return value


def _environment(info: Mapping[str, Any]) -> Environment:
    """pytest-benchmark's machine_info in perfgate's machine-class fields."""
    cpu_info = info.get("cpu")
    cpu: Mapping[str, Any] = cpu_info if isinstance(cpu_info, dict) else {}
    version = str(info.get("python_version", ""))
    minor = ".".join(version.split(".")[:2])
    machine = {
        "arch": str(info.get("machine", "")),
        "cpu": str(cpu.get("brand_raw") or info.get("processor") or "unknown"),
        "cpus": str(cpu.get("count", "")),
        "os": str(info.get("system", "")),
        "python": f"{info.get('python_implementation', '')} {minor}".strip(),
    }
    extra = {
        "host": str(info.get("node", "")),
        "kernel": str(info.get("release", "")),
        "python_full": version,
        "imported_from": "pytest-benchmark",
    }
    return Environment(machine, extra)


def import_saved_runs(
    paths: Sequence[Path],
    store: BaselineStore,
    *,
    history: int = 10,
    max_samples: int = 400,
) -> ImportReport:
    """Write baselines for every benchmark in the saved runs; the newest run of each
    benchmark gives the samples, all runs (oldest first) give the history."""
    report = ImportReport(files=saved_runs(paths))
    runs: dict[tuple[str, str], list[SavedBenchmark]] = {}
    for path in report.files:
        for bench in read_saved_run(path):
            runs.setdefault((bench.module, bench.test), []).append(bench)
    by_module: dict[str, dict[str, dict[str, BaselineEntry]]] = {}
    for (module, test), saved in sorted(runs.items()):
        saved.sort(key=lambda b: b.saved_at)
        entry: BaselineEntry | None = None
        for bench in saved:
            measurement = Measurement(
                "time", "s", Direction.LOWER_IS_BETTER, bench.samples, loops=bench.iterations
            )
            entry = refreshed_entry(
                measurement,
                entry,
                environment=bench.environment,
                code_hash=None,
                commit=bench.commit,
                recorded_at=bench.saved_at,
                history=history,
                max_samples=max_samples,
                summary_only=bench.summary_only,
            )
        assert entry is not None
        by_module.setdefault(module, {}).setdefault(test, {})["time"] = entry
        label = f"{module}::{test}"
        report.imported.append(label)
        if entry.summary_only:
            report.summary_only.append(label)
    for module, entries in sorted(by_module.items()):
        try:
            store.update(module, entries)
        except BaselineError as error:
            raise SavedRunError(str(error)) from None
        except OSError as error:
            path = store.path_for(module)
            raise SavedRunError(f"{path}: cannot write ({error.strerror or error})") from None
    return report
