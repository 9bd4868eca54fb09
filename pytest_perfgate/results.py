"""The run's results: every perf test, its measurements with their comparisons, and the
environment; and the results file (``--perf-json``) that holds them.

This is the model every report renders (terminal, Markdown, HTML, JUnit, GitHub) and that
``perfgate compare``/``report``/``ab`` read and write, so it holds everything they need and
nothing they have to guess. The file's shape is documented as a JSON Schema in
docs/reference/results-schema.json, which the tests validate against.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, final

from .baseline import write_atomically
from .model import Comparison, Environment, Measurement, Verdict
from .strict_json import StrictJSONError, loads_strict

SCHEMA_NAME = "pytest-perfgate-results"
# Results format history (bump on any change a reader of the old version would misread):
# 1 - first version: environment, settings, per test its outcome and measurements with
#     their comparisons, verdict counts.
SCHEMA_VERSION = 1


class ResultsError(Exception):
    """A results file cannot be read; the message names the file and what is wrong."""


@final
@dataclass(frozen=True, slots=True)
class TestResults:
    """One perf test of a run: where it lives, how it ended, what it measured."""

    __test__ = False  # not a test class, whatever pytest's collection thinks of the name

    test_id: str  #: pytest node id
    module: str  #: the test module's path, e.g. "example_suite/test_text.py"
    test: str  #: the test's name inside its module
    outcome: str  #: "passed", "failed" or "skipped"
    results: tuple[tuple[Measurement, Comparison], ...] = ()
    location: tuple[str, int] | None = None  #: (file, 1-based line) of the test function
    #: ``benchmark.extra_info`` of a pytest-benchmark style test; written only when not empty.
    extra_info: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "test_id": self.test_id,
            "module": self.module,
            "test": self.test,
            "outcome": self.outcome,
            "measurements": [
                {"measurement": m.to_dict(), "comparison": c.to_dict()} for m, c in self.results
            ],
        }
        if self.location is not None:
            data["location"] = {"file": self.location[0], "line": self.location[1]}
        if self.extra_info:
            data["extra_info"] = dict(self.extra_info)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TestResults:
        keys = ("test_id", "module", "test", "outcome")
        test_id, module, test, outcome = (_text(data[key], key) for key in keys)
        if not isinstance(data["measurements"], list):
            raise TypeError(f"{test_id}: measurements must be a list")
        try:
            results = tuple(map(_measured_pair, data["measurements"]))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"{test_id}: {error}") from None
        location = _location_from(data.get("location"))
        extra_info = dict(data.get("extra_info", {}))
        return cls(test_id, module, test, outcome, results, location, extra_info)


def _measured_pair(data: Mapping[str, Any]) -> tuple[Measurement, Comparison]:
    return Measurement.from_dict(data["measurement"]), Comparison.from_dict(data["comparison"])


def _location_from(data: Mapping[str, Any] | None) -> tuple[str, int] | None:
    if not data:
        return None
    line = data["line"]
    if isinstance(line, bool) or not isinstance(line, int):
        raise ValueError(f"location.line: must be a whole number, got {line!r}")
    return _text(data["file"], "location.file"), line


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name}: must be a string, got {type(value).__name__}")
    return value


@final
@dataclass(frozen=True, slots=True)
class RunResults:
    """A whole run: what ``--perf-json`` writes and the reports read."""

    environment: Environment
    tests: tuple[TestResults, ...]
    settings: Mapping[str, Any] = field(default_factory=dict)
    commit: str | None = None
    created_at: str = ""
    generator: str = "pytest-perfgate"

    @property
    def comparisons(self) -> list[Comparison]:
        return [c for test in self.tests for _, c in test.results]

    def counts(self) -> dict[str, int]:
        counts = {verdict.value: 0 for verdict in Verdict}
        for comparison in self.comparisons:
            counts[comparison.verdict.value] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_NAME,
            "schema_version": SCHEMA_VERSION,
            "generator": self.generator,
            "created_at": self.created_at,
            "commit": self.commit,
            "environment": self.environment.to_dict(),
            "settings": dict(self.settings),
            "counts": self.counts(),
            "tests": [test.to_dict() for test in self.tests],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResults:
        return cls(
            environment=Environment.from_dict(data["environment"]),
            tests=tuple(TestResults.from_dict(t) for t in _listed(data["tests"], "tests")),
            settings=dict(data.get("settings", {})),
            commit=data.get("commit"),
            created_at=str(data.get("created_at", "")),
            generator=str(data.get("generator", "")),
        )


def _listed(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{name}: must be a list, got {type(value).__name__}")
    return value


def settings_summary(settings: Any) -> dict[str, Any]:
    """The settings a reader needs to interpret verdicts, as plain JSON values."""
    fields = ("mode", "threshold", "alpha", "max_looks", "run_noise", "on_mismatch")
    summary: dict[str, Any] = {}
    for name in fields:
        value = getattr(settings, name)
        summary[name] = getattr(value, "value", value)
    return summary


def results_json(results: RunResults) -> str:
    """The text of a results file."""
    return json.dumps(results.to_dict(), indent=1, sort_keys=True, allow_nan=False) + "\n"


def write_results(path: Path, results: RunResults) -> None:
    """Write atomically: a reader never sees half a file, an interrupted write leaves the
    previous file."""
    write_atomically(path, results_json(results))


def read_results(path: Path) -> RunResults:
    """Read a results file; every problem is a ResultsError naming ``path``."""
    try:
        document = loads_strict(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ResultsError(f"{path}: cannot read ({error.strerror or error})") from None
    except UnicodeDecodeError as error:
        raise ResultsError(
            f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    except StrictJSONError as error:
        raise ResultsError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA_NAME:
        raise ResultsError(
            f"{path}: not a pytest-perfgate results file (no schema {SCHEMA_NAME!r})"
        )
    version = document.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:
        raise ResultsError(
            f"{path}: results schema version {version!r} is not supported "
            f"(this pytest-perfgate reads version {SCHEMA_VERSION})"
        )
    try:
        return RunResults.from_dict(document)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ResultsError(f"{path}: malformed results ({type(error).__name__}: {error})") from None


def tests_from(records: Iterable[TestResults]) -> tuple[TestResults, ...]:
    """Sorted by test id, so two runs' files diff cleanly."""
    return tuple(sorted(records, key=lambda t: t.test_id))


__all__: Sequence[str] = (
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "ResultsError",
    "RunResults",
    "TestResults",
    "read_results",
    "results_json",
    "settings_summary",
    "tests_from",
    "write_results",
)
