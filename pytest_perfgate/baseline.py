"""Baseline files: one JSON file per test module, versioned, deterministic, written atomically.

Layout: ``<baseline_dir>/<test module path>.json``, e.g. ``baselines/example_suite/test_text.json``
for ``example_suite/test_text.py``, so a pull request that touches one module's tests diffs one
baseline file. Inside, tests and measurements are sorted by name and number lists stay on one
line, so a refresh shows as a few changed lines per measurement.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, final

from .model import BaselineEntry, Environment, Measurement
from .stats import NOISE_RUNS, quantile_of, sample_quantile, speed_adjusted, summarize, thin

# Baseline format history (bump on any change a reader of the old version would misread):
# 1 - first version: per test, per measurement: unit, direction, samples, summary,
#     run-level median history (speed-adjusted when there are reference times),
#     environment, loops, cpu samples, speed-reference times, code hash, commit, date,
#     and summary_only (only when true) for entries imported without raw samples.
# 2 - optional "details" per entry (how a probe measured: GPU timer and telemetry, cache
#     mode...), and probe-specific machine-class fields in the entry's environment
#     (gpu.*, fs.*, storage.cache); "statistic" per entry (only when not "median",
#     e.g. "p99": the history then holds run-level p99s). Version 1 files are read as
#     version 2 files without them.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)

LOCK_NAME = ".perfgate.lock"

#: A refresh restarts the history for a run this many standard deviations of the
#: history away from its mean (see refreshed_entry).
RESTART_SPREADS = 5.0
#: A tail statistic keeps enough raw samples that 20 lie beyond it (2000 for the p99),
#: at most this many.
TAIL_STORED_SAMPLES = 5000


class BaselineError(Exception):
    """A baseline file cannot be used; the message names the file and what is wrong."""


@final
@dataclass(slots=True)
class BaselineFile:
    """The baselines of one test module: test name -> measurement name -> entry."""

    path: Path
    tests: dict[str, dict[str, BaselineEntry]] = field(default_factory=dict)

    def get(self, test: str, measurement: str) -> BaselineEntry | None:
        return self.tests.get(test, {}).get(measurement)


def parse_document(text: str, path: Path) -> dict[str, dict[str, BaselineEntry]]:
    """Parse a baseline file's text; every problem becomes a BaselineError naming ``path``."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise BaselineError(
            f"{path}: not valid JSON ({error}); the file was left as it is"
        ) from None
    if not isinstance(document, dict) or "format_version" not in document:
        raise BaselineError(f"{path}: not a perfgate baseline file (no format_version)")
    version = document["format_version"]
    if version not in READABLE_VERSIONS:
        raise BaselineError(
            f"{path}: baseline format version {version!r} is not supported by this "
            f"pytest-perfgate (it reads versions {', '.join(map(str, READABLE_VERSIONS))}); "
            "upgrade pytest-perfgate "
            "or delete the file and re-record with --perf-update-baselines (a refresh "
            "never overwrites a file it cannot read)"
        )
    tests: dict[str, dict[str, BaselineEntry]] = {}
    try:
        for test, measurements in document["tests"].items():
            tests[test] = {
                name: BaselineEntry.from_dict(data) for name, data in measurements.items()
            }
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise BaselineError(
            f"{path}: malformed baseline entry ({type(error).__name__}: {error})"
        ) from None
    return tests


def render_document(tests: Mapping[str, Mapping[str, BaselineEntry]], generator: str) -> str:
    """Deterministic text of a baseline file."""
    document = {
        "format_version": FORMAT_VERSION,
        "generator": generator,
        "tests": {
            test: {name: entry.to_dict() for name, entry in sorted(measurements.items())}
            for test, measurements in sorted(tests.items())
        },
    }
    return _dump(document, 0) + "\n"


def _dump(value: Any, depth: int) -> str:
    """JSON with sorted keys, two-space indent, and lists of numbers kept on one line."""
    pad = "  " * (depth + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad}{json.dumps(str(k))}: {_dump(value[k], depth + 1)}" for k in sorted(value)]
        return "{\n" + ",\n".join(items) + "\n" + "  " * depth + "}"
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        items = [pad + _dump(v, depth + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + "  " * depth + "]"
    for number in value if isinstance(value, list) else [value]:
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError(f"cannot store non-finite number {number!r} in a baseline")
    return json.dumps(value, allow_nan=False)


class BaselineStore:
    """Reads and writes the baseline files under one directory."""

    def __init__(self, root: Path, generator: str = "pytest-perfgate") -> None:
        self.root = root
        self.generator = generator

    def path_for(self, module: str) -> Path:
        """The file for a test module given relative to the rootdir, e.g. ``tests/test_x.py``."""
        relative = Path(module)
        if relative.is_absolute() or ".." in relative.parts:
            relative = Path(relative.name)
        return self.root / relative.with_suffix(".json")

    def load(self, module: str) -> BaselineFile:
        """The baselines of a module; an empty file object when none were recorded yet."""
        path = self.path_for(module)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return BaselineFile(path)
        except OSError as error:
            raise BaselineError(f"{path}: cannot read ({error.strerror})") from None
        return BaselineFile(path, parse_document(text, path))

    def files(self) -> list[Path]:
        """Every baseline file under the root, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.rglob("*.json") if p.is_file())

    def check_writable(self) -> None:
        """Fail early, before any test runs, when refreshed baselines could not be written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".perfgate-probe-"):
                pass
        except OSError as error:
            raise BaselineError(
                f"{self.root}: cannot write baselines there ({error.strerror or error})"
            ) from None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory's lock: several processes may refresh baselines at once."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / LOCK_NAME).open("a+b") as lock:
            _lock_file(lock.fileno())
            try:
                yield
            finally:
                _unlock_file(lock.fileno())

    def update(
        self,
        module: str,
        entries: Mapping[str, Mapping[str, BaselineEntry]],
        remove: Mapping[str, set[str] | None] | None = None,
    ) -> Path:
        """Merge ``entries`` into a module's file under the lock, then replace it atomically.

        ``remove`` maps test names to measurement names to drop (None: the whole test).
        The file is re-read under the lock, so entries other processes wrote meanwhile are
        kept. A corrupt existing file raises BaselineError and is left untouched.
        """
        with self.locked():
            current = self.load(module)
            tests = {test: dict(ms) for test, ms in current.tests.items()}
            for test, names in (remove or {}).items():
                if names is None:
                    tests.pop(test, None)
                else:
                    for name in names:
                        tests.get(test, {}).pop(name, None)
                    if not tests.get(test, True):
                        tests.pop(test)
            for test, measurements in entries.items():
                tests.setdefault(test, {}).update(measurements)
            text = render_document(tests, self.generator)
            write_atomically(current.path, text)
            return current.path


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock_file(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)

    def _unlock_file(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file in the same directory, fsync it, then rename over ``path``.

    A reader sees the old file or the new one, never half of one, even if the process
    is killed mid-write.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file owner-only; give it the mode a plain open() would (or
        # keep the replaced file's), so reports can be served and baselines shared.
        os.chmod(temp, _file_mode(path))
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def _file_mode(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def refreshed_entry(
    measurement: Measurement,
    previous: BaselineEntry | None,
    *,
    environment: Environment,
    code_hash: str | None,
    commit: str | None,
    recorded_at: str,
    history: int,
    max_samples: int,
    changed: bool = False,
    summary_only: bool = False,
) -> BaselineEntry:
    """The entry that replaces ``previous`` after a refresh from ``measurement``.

    The run-level median joins the history of earlier refreshes, unless the earlier ones
    measured something else (other machine class, test code or unit), or the refresh
    accepts a change (``changed``: the gate called it REGRESSED or IMPROVED) that stands
    out from the history itself: then it starts over, since medians from before and
    after a change would look like run-to-run noise and loosen the gate.

    "Stands out" means at least NOISE_RUNS runs of history, and the new median more than
    RESTART_SPREADS of their standard deviations (in logs) from their mean. The gate's
    verdict alone is too quick to call a change: with a young history it judges against
    the assumed noise, which a noisy metric beats in most runs, and an estimate from
    three runs is often too small. A restart taken on such a verdict left one arbitrary
    run as the baseline, judged with the assumed noise from then on: refreshing a 2-rank
    gloo all_reduce 4 times restarted its 64 KiB history at the 4th (-11.7%, well
    inside what those ranks move between runs). A restart missed is the cheaper error:
    the gate is looser until the old runs leave the history.
    """
    environment = environment.extended(measurement.machine)
    summary = summarize(measurement.samples)
    # The history holds what the gate compares: speed-adjusted medians when there is a
    # speed reference, raw medians otherwise.
    if measurement.statistic != "median":
        quantile = quantile_of(measurement.statistic)
        level = sample_quantile(measurement.samples, quantile)
        # A tail quantile rests on few samples: keep enough for the baseline's tail.
        max_samples = max(max_samples, min(TAIL_STORED_SAMPLES, math.ceil(20 / (1 - quantile))))
    elif measurement.reference:
        level = summarize(speed_adjusted(measurement.samples, measurement.reference)).median
    else:
        level = summary.median
    earlier: tuple[float, ...] = ()
    if (
        previous is not None
        and not (changed and _stands_out(level, previous.history))
        and previous.statistic == measurement.statistic
        and previous.unit == measurement.unit
        and previous.code_hash == code_hash
        and bool(previous.reference) == bool(measurement.reference)
        and not previous.environment.mismatches(environment)
    ):
        earlier = previous.history
    return BaselineEntry(
        unit=measurement.unit,
        direction=measurement.direction,
        samples=_stored(thin(measurement.samples, max_samples)),
        summary=summary,
        history=(*earlier, _round(level))[-history:],
        environment=environment,
        details=measurement.details,
        loops=measurement.loops,
        cpu_samples=_stored(thin(measurement.cpu_samples, max_samples)),
        reference=_stored(thin(measurement.reference, max_samples)),
        summary_only=summary_only,
        statistic=measurement.statistic,
        code_hash=code_hash,
        commit=commit,
        recorded_at=recorded_at,
    )


def _stands_out(level: float, history: tuple[float, ...]) -> bool:
    """Whether ``level`` lies more than RESTART_SPREADS standard deviations of a history
    of at least NOISE_RUNS runs from its mean (in logs)."""
    if len(history) < NOISE_RUNS or level <= 0 or min(history) <= 0:
        return False
    logs = [math.log(h) for h in history]
    spread = statistics.stdev(logs)
    return abs(math.log(level) - statistics.fmean(logs)) > RESTART_SPREADS * spread


def _round(value: float) -> float:
    """Six significant digits: far below any noise, and it keeps files small."""
    return float(f"{value:.6g}")


def _stored(values: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(_round(v) for v in values)
