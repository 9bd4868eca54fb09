"""Baseline files: one JSON file per test module, versioned, deterministic, written atomically.

Layout: ``<baseline_dir>/<test module path>.json``, e.g. ``baselines/example_suite/test_text.json``
for ``example_suite/test_text.py``, so a pull request that touches one module's tests diffs one
baseline file. The raw samples the gate tests against live beside it, in
``test_text.samples.jsonl``: one line per measurement, a generated file that a reviewer can
skip. The ``.json`` file keeps what a reviewer reads: per measurement its summary (one line)
and run history (one line) first, then where and when it was recorded; a refresh shows as a
few changed lines per measurement.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, final

from .model import BaselineEntry, Environment, Measurement, Summary
from .stats import NOISE_RUNS, quantile_of, sample_quantile, speed_adjusted, summarize, thin
from .strict_json import StrictJSONError, loads_strict

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
# 3 - raw samples (samples, cpu_samples, reference) and "details" moved to a sidecar file
#     beside the baseline file, "<name>.samples.jsonl", one line per measurement: {"test",
#     "measurement", "details" (only when not empty), and the three lists}. In the .json
#     file, each entry's keys come in a fixed order (what a refresh moves first: summary,
#     history; then provenance and environment) and objects holding only numbers stay on
#     one line. Summaries and calibration scores are rounded to 6 significant digits
#     when recorded. Version 1 and 2 files (samples inline) are still read, and written
#     as version 3 by the next refresh (or BaselineStore.rewrite, which keeps every value).
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)

#: The sidecar of ``test_x.json`` is ``test_x.samples.jsonl`` (not ``*.json``: never taken
#: for a baseline file).
SAMPLES_SUFFIX = ".samples.jsonl"
#: Entry fields kept in the sidecar: long, and different in every refresh (``details``,
#: how the recording run measured, holds that run's own figures: IOPS, passes, latencies).
RAW_KEYS = ("details", "samples", "cpu_samples", "reference")
#: Order of an entry's keys in the .json file; keys not named here follow, sorted.
ENTRY_KEY_ORDER = (
    "unit",
    "direction",
    "statistic",
    "summary_only",
    "summary",
    "history",
    "loops",
    "code_hash",
    "source_digest",
    "commit",
    "recorded_at",
    "environment",
)

LOCK_NAME = ".perfgate.lock"
#: The name of every temporary file perfgate writes ends so: a refresh removes the ones a
#: killed process left.
TEMP_SUFFIX = ".perfgate-tmp"

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


def samples_path(path: Path) -> Path:
    """The sidecar holding the raw samples of baseline file ``path``."""
    return path.with_name(path.name.removesuffix(".json") + SAMPLES_SUFFIX)


def parse_document(
    text: str, path: Path, samples_text: str | None = None
) -> dict[str, dict[str, BaselineEntry]]:
    """Parse a baseline file's text and, from version 3 on, its sidecar's
    (``samples_text``, None when there is none); every problem becomes a BaselineError
    naming the file."""
    try:
        document = loads_strict(text)
    except StrictJSONError as error:
        raise BaselineError(
            f"{path}: not valid JSON ({error}); the file was left as it is"
        ) from None
    if not isinstance(document, dict) or "format_version" not in document:
        raise BaselineError(f"{path}: not a perfgate baseline file (no format_version)")
    version = document["format_version"]
    # type() and not isinstance(): true is an int to Python, and would read as version 1.
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise BaselineError(
            f"{path}: baseline format version {version!r} is not supported by this "
            f"pytest-perfgate (it reads versions {', '.join(map(str, READABLE_VERSIONS))}); "
            "upgrade pytest-perfgate "
            "or delete the file and re-record with --perf-update-baselines (a refresh "
            "never overwrites a file it cannot read)"
        )
    listed = document.get("tests")
    if not isinstance(listed, dict) or not all(isinstance(m, dict) for m in listed.values()):
        raise BaselineError(f"{path}: malformed: 'tests' must map test names to objects")
    raw: dict[tuple[str, str], dict[str, Any]] = {}
    if version >= 3 and listed:
        raw = _parse_samples(samples_text, samples_path(path))
    tests: dict[str, dict[str, BaselineEntry]] = {}
    for test, measurements in listed.items():
        tests[test] = {}
        for name, data in measurements.items():
            if version >= 3:
                if (test, name) not in raw:
                    raise BaselineError(
                        f"{samples_path(path)}: no samples for {test} [{name}]; restore "
                        "the file from version control, or delete both files and "
                        "re-record with --perf-update-baselines"
                    )
                if not isinstance(data, dict):
                    raise BaselineError(f"{path}: {test} [{name}]: malformed: not an object")
                data = {**data, **raw[test, name]}
            try:
                tests[test][name] = BaselineEntry.from_dict(data)
            except KeyError as error:
                raise BaselineError(
                    f"{path}: {test} [{name}]: malformed: missing field {error}"
                ) from None
            except (TypeError, ValueError, AttributeError) as error:
                raise BaselineError(f"{path}: {test} [{name}]: malformed: {error}") from None
    return tests


def _parse_samples(text: str | None, path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The sidecar's lines: (test, measurement) -> {samples, cpu_samples, reference}."""
    if text is None:
        raise BaselineError(
            f"{path}: missing; it holds the raw samples of the baseline file beside it "
            "(commit it with that file)"
        )
    lines = [line for line in text.splitlines() if line.strip()]
    raw: dict[tuple[str, str], dict[str, Any]] = {}
    try:  # all lines in one parse (a call per line was a tenth of reading a baseline)
        records = loads_strict("[" + ",".join(lines) + "]")
        if len(records) == len(lines):
            for record in records:
                _add_sample_record(raw, record)
            return raw
    except (ValueError, KeyError, TypeError):
        pass
    # Something is wrong (or lines ran into each other): line by line, to say where.
    raw = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            _add_sample_record(raw, loads_strict(line))
        except (ValueError, KeyError, TypeError) as error:
            raise BaselineError(
                f"{path}:{number}: malformed samples line ({type(error).__name__}: {error}); "
                "the file was left as it is"
            ) from None
    return raw


def _add_sample_record(raw: dict[tuple[str, str], dict[str, Any]], record: Any) -> None:
    """Add one sidecar line's record to ``raw``; raises on a malformed one."""
    key = (record["test"], record["measurement"])
    if not all(isinstance(part, str) for part in key):
        raise TypeError("test and measurement must be strings")
    if key in raw:
        raise ValueError(f"a second line for {key[0]} [{key[1]}]")
    raw[key] = {name: record[name] for name in RAW_KEYS if name in record}


def render_document(tests: Mapping[str, Mapping[str, BaselineEntry]], generator: str) -> str:
    """Deterministic text of a baseline file, without the raw samples (``render_samples``)."""
    return _document_text(_entry_data(tests), generator)


def render_samples(tests: Mapping[str, Mapping[str, BaselineEntry]]) -> str:
    """Deterministic text of a baseline file's sidecar: one line of raw samples per
    measurement, sorted like the baseline file."""
    return _samples_text(_entry_data(tests))


#: Each entry's ``to_dict()`` by test, then measurement, both sorted: taken once per write
#: and shared by the check, the file and its sidecar, instead of once for each.
EntryData = dict[str, dict[str, dict[str, Any]]]


def _entry_data(tests: Mapping[str, Mapping[str, BaselineEntry]]) -> EntryData:
    return {
        test: {name: entry.to_dict() for name, entry in sorted(measurements.items())}
        for test, measurements in sorted(tests.items())
    }


def _document_text(data: EntryData, generator: str) -> str:
    document = {
        "format_version": FORMAT_VERSION,
        "generator": generator,
        "tests": {
            test: {name: _reviewed_part(entry) for name, entry in measurements.items()}
            for test, measurements in data.items()
        },
    }
    return _dump(document, 0) + "\n"


def _samples_text(data: EntryData) -> str:
    lines = []
    for test, measurements in data.items():
        for name, entry in measurements.items():
            record = {"test": test, "measurement": name}
            record |= {key: entry[key] for key in RAW_KEYS if key in entry}
            for key in RAW_KEYS[1:]:
                _check_finite(record[key])
            lines.append(json.dumps(record, allow_nan=False, sort_keys=False))
    return "".join(line + "\n" for line in lines)


class _InOrder(dict[str, Any]):
    """An object whose keys are written in the order given, not sorted."""


def _reviewed_part(data: Mapping[str, Any]) -> _InOrder:
    ordered = [key for key in ENTRY_KEY_ORDER if key in data]
    ordered += sorted(key for key in data if key not in ENTRY_KEY_ORDER and key not in RAW_KEYS)
    return _InOrder((key, data[key]) for key in ordered)


def _dump(value: Any, depth: int) -> str:
    """JSON with sorted keys (unless ``_InOrder``), two-space indent, and lists of numbers
    and objects of numbers kept on one line."""
    kind = type(value)
    if kind is str:
        return _quoted(value)
    if kind in _NUMBER_TEXT:
        return _figure(value)
    if value is None:
        return "null"
    pad = "  " * (depth + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        keys = value if isinstance(value, _InOrder) else sorted(value)
        values = [value[k] for k in keys]
        figures = _figures(values)
        if figures is not None:  # a line of figures
            pairs = zip(keys, figures, strict=True)
            return "{" + ", ".join(f"{_quoted(str(k))}: {f}" for k, f in pairs) + "}"
        items = [
            f"{pad}{_quoted(str(k))}: {_quoted(v) if type(v) is str else _dump(v, depth + 1)}"
            for k, v in zip(keys, values, strict=True)
        ]
        return "{\n" + ",\n".join(items) + "\n" + "  " * depth + "}"
    if isinstance(value, list):
        figures = _figures(value)
        if figures is not None:
            return "[" + ", ".join(figures) + "]"
        if any(isinstance(v, dict | list) for v in value):
            items = [pad + _dump(v, depth + 1) for v in value]
            return "[\n" + ",\n".join(items) + "\n" + "  " * depth + "]"
    if isinstance(value, str):
        return _quoted(value)
    _check_finite(value if isinstance(value, list) else [value])
    return json.dumps(value, allow_nan=False)


#: What ``json.dumps`` writes for a string, without its per-call overhead (a file of
#: 10,000 entries has some 200,000 strings and figures).
_quoted = json.encoder.encode_basestring_ascii
#: ... and for a number of these exact types (``json`` calls these; a bool is not one).
_NUMBER_TEXT: dict[type, Any] = {float: float.__repr__, int: int.__repr__}


def _figure(value: float) -> str:
    """A float or int as ``json.dumps`` writes it; a non-finite one refused."""
    text: str = _NUMBER_TEXT[type(value)](value)
    if "n" in text:  # inf, nan: the only texts of a number with an n
        _check_finite([value])
    return text


def _figures(values: list[Any]) -> list[str] | None:
    """Each value as ``json.dumps`` writes it, when all are plain numbers; else None."""
    texts = []
    for value in values:
        text_of = _NUMBER_TEXT.get(type(value))
        if text_of is None:
            break
        texts.append(text_of(value))
    else:
        if any("n" in text for text in texts):  # inf, nan: the only numbers with an n
            _check_finite(values)
        return texts
    if not _all_numbers(values):
        return None
    # A subclass (an IntEnum) is a number too, and a bool is not.
    return [_figure(float(v) if isinstance(v, float) else int(v)) for v in values]


def _all_numbers(values: Iterable[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _check_finite(values: Iterable[Any]) -> None:
    for number in values:
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError(f"cannot store non-finite number {number!r} in a baseline")


class BaselineStore:
    """Reads and writes the baseline files under one directory."""

    def __init__(self, root: Path, generator: str = "pytest-perfgate") -> None:
        self.root = root
        self.generator = generator
        #: path -> (digest of the file and its sidecar, what they parse to): a file read
        #: again unchanged (a refresh re-reads each under the lock) is not parsed again.
        #: The parse is shared between readers, who copy it before changing it.
        self._parsed: dict[Path, tuple[bytes, dict[str, dict[str, BaselineEntry]]]] = {}

    def path_for(self, module: str) -> Path:
        """The file for a test module given relative to the rootdir, e.g. ``tests/test_x.py``."""
        relative = Path(module)
        if relative.is_absolute() or ".." in relative.parts:
            relative = Path(relative.name)
        return self.root / relative.with_suffix(".json")

    def load(self, module: str) -> BaselineFile:
        """The baselines of a module; an empty file object when none were recorded yet."""
        return self._read(module)[0]

    def _read(self, module: str) -> tuple[BaselineFile, tuple[str | None, str | None]]:
        """The module's baselines, and the texts of its file and sidecar (None: absent)."""
        path = self.path_for(module)
        text = _read_if_present(path)
        if text is None:
            return BaselineFile(path), (None, None)
        samples_text = _read_if_present(samples_path(path))
        digest = hashlib.blake2b(text.encode())
        digest.update(b"\0" if samples_text is None else b"\1" + samples_text.encode())
        key = digest.digest()
        cached = self._parsed.get(path)
        if cached is None or cached[0] != key:
            cached = self._parsed[path] = (key, parse_document(text, path, samples_text))
        return BaselineFile(path, cached[1]), (samples_text, text)

    def files(self) -> list[Path]:
        """Every baseline file under the root, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.rglob("*.json") if p.is_file())

    def check_writable(self) -> None:
        """Fail early, before any test runs, when refreshed baselines could not be written."""
        if self.root.exists() and not self.root.is_dir():
            raise BaselineError(f"{self.root}: cannot write baselines there (not a directory)")
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
            # Sidecar first: a reader never sees entries whose samples are not written yet.
            write_atomically(samples_path(current.path), render_samples(tests))
            write_atomically(current.path, render_document(tests, self.generator))
            return current.path

    def update_many(
        self, updates: Mapping[str, Mapping[str, Mapping[str, BaselineEntry]]]
    ) -> StoreWrite:
        """Merge each module's entries into its file, all or nothing: every new file is
        written to a temporary file first, and only when all are on disk are they renamed
        into place. SIGINT is held back meanwhile: one that comes before the renames
        writes nothing (``interrupted``), temporary files removed. A module whose file
        cannot be read is left out (its error returned); the others are still written."""
        staged: list[tuple[Path, Path]] = []  # (temporary file, its target)
        errors: list[str] = []
        try:
            # SIGINT is held back from here on and looked at between modules: a
            # KeyboardInterrupt raised inside mkstemp or a cleanup would leave a file behind.
            with self.locked(), _interrupts_deferred() as received:
                self.remove_leftovers()
                for module, entries in sorted(updates.items()):
                    if received:
                        return StoreWrite(errors=tuple(errors), interrupted=True)
                    try:
                        staged += self._stage_module(module, entries)
                    except BaselineError as error:
                        errors.append(f"{error}; its baselines were not refreshed")
                    except OSError as error:
                        path = self.path_for(module)
                        errors.append(f"{path}: cannot write ({error.strerror or error})")
                if received:
                    return StoreWrite(errors=tuple(errors), interrupted=True)
                written = []
                for temp, path in staged:
                    os.replace(temp, path)
                    if not path.name.endswith(SAMPLES_SUFFIX):
                        written.append(path)
                staged = []
                return StoreWrite(tuple(written), tuple(errors), interrupted=bool(received))
        except KeyboardInterrupt:  # outside the main thread, or before the handler was set
            return StoreWrite(errors=tuple(errors), interrupted=True)
        finally:
            for temp, _ in staged:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)

    def _stage_module(
        self, module: str, entries: Mapping[str, Mapping[str, BaselineEntry]]
    ) -> list[tuple[Path, Path]]:
        """The module's merged file and sidecar, staged (sidecar first: renamed in this
        order, a reader never sees entries whose samples are not there yet); a file
        whose text would not change is left as it is."""
        current, texts_now = self._read(module)
        tests = {test: dict(ms) for test, ms in current.tests.items()}
        for test, measurements in entries.items():
            tests.setdefault(test, {}).update(measurements)
        data = _entry_data(tests)
        for test, measurements in entries.items():
            for name in measurements:
                try:  # never write what the reader would refuse
                    BaselineEntry.from_dict(data[test][name])
                except ValueError as error:
                    raise BaselineError(f"{current.path}: {test} [{name}]: {error}") from None
        try:
            texts = (_samples_text(data), _document_text(data, self.generator))
        except ValueError as error:  # a non-finite number: never written
            raise BaselineError(f"{current.path}: {error}") from None
        staged: list[tuple[Path, Path]] = []
        try:
            paths = (samples_path(current.path), current.path)
            for path, text, now in zip(paths, texts, texts_now, strict=True):
                if text != now:
                    staged.append((stage(path, text), path))
        except BaseException:
            for temp, _ in staged:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
            raise
        return staged

    def remove_leftovers(self) -> list[Path]:
        """Remove the temporary files that killed writers left (ours only: named
        ``*.perfgate-tmp``, or the ``.<name>.json.<random>.tmp`` of earlier versions).
        Call with the lock held: no live writer has any then."""
        if not self.root.is_dir():
            return []
        removed = []
        for path in self.root.rglob(".*"):
            name = path.name
            ours = name.endswith(TEMP_SUFFIX) or (
                name.endswith(".tmp") and (".json." in name or ".jsonl." in name)
            )
            if ours and path.is_file():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                removed.append(path)
        return removed

    def rewrite(self) -> list[Path]:
        """Write every baseline file again in the current format, every value kept
        (a format upgrade without a refresh); returns the files rewritten."""
        rewritten = []
        with self.locked():
            for path in self.files():
                module = str(path.relative_to(self.root).with_suffix(".py"))
                tests = self.load(module).tests
                write_atomically(samples_path(path), render_samples(tests))
                write_atomically(path, render_document(tests, self.generator))
                rewritten.append(path)
        return rewritten


def _read_if_present(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise BaselineError(f"{path}: cannot read ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise BaselineError(
            f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None


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
    temp = stage(path, text)
    try:
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def stage(path: Path, text: str) -> Path:
    """The first half of an atomic write: ``text`` in a synced temporary file beside
    ``path``, named ``.<name>.<random>.perfgate-tmp`` (a refresh removes those that a
    killed process left)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        # mkstemp makes the file owner-only; give it the mode a plain open() would (or
        # keep the replaced file's), so reports can be served and baselines shared.
        os.chmod(temp, _file_mode(path))
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    return Path(temp)


@final
@dataclass(frozen=True, slots=True)
class StoreWrite:
    """What one all-or-nothing write of several modules did."""

    written: tuple[Path, ...] = ()  #: baseline files replaced
    errors: tuple[str, ...] = ()  #: one per module left as it was, and why
    interrupted: bool = False  #: SIGINT arrived (before the renames: nothing was written)


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[list[int]]:
    """Hold SIGINT back while the block runs (main thread only: elsewhere signals go to
    the main thread anyway); yields a list that holds the signal if one came."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield received
    finally:
        signal.signal(signal.SIGINT, previous)


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
    source_digest: str | None = None,
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
    if environment.calibration_ns is not None:
        environment = replace(environment, calibration_ns=_round(environment.calibration_ns))
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
        summary=_rounded(summary),
        history=(*earlier, _round(level))[-history:],
        environment=environment,
        details=measurement.details,
        loops=measurement.loops,
        cpu_samples=_stored(thin(measurement.cpu_samples, max_samples)),
        reference=_stored(thin(measurement.reference, max_samples)),
        summary_only=summary_only,
        statistic=measurement.statistic,
        code_hash=code_hash,
        source_digest=source_digest,
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


def _rounded(summary: Summary) -> Summary:
    """The summary as stored: rounded like the samples, so a figure that did not move
    beyond the sixth digit does not show in the diff of a refresh."""
    return Summary(
        n=summary.n,
        median=_round(summary.median),
        mean=_round(summary.mean),
        stdev=_round(summary.stdev),
        min=_round(summary.min),
        max=_round(summary.max),
        q1=_round(summary.q1),
        q3=_round(summary.q3),
        median_ci_low=_round(summary.median_ci_low),
        median_ci_high=_round(summary.median_ci_high),
    )


def _round(value: float) -> float:
    """Six significant digits: far below any noise, and it keeps files small."""
    return float(f"{value:.6g}")


def _stored(values: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(_round(v) for v in values)
