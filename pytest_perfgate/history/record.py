"""From a results file to what the history records: one run, its measurements.

``recorded_from`` is pure (the results and what the caller knows in, values out), so the
plugin, ``perfgate ab``, ``perfgate merge`` and ``perfgate history import`` record alike.
``record_results`` is the one call they make: it opens the history, records, and says
what it did or why it could not, never raising for a history it cannot write.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, final

from ..model import Comparison, Direction, Measurement
from ..results import RunResults
from .model import RecordedMeasurement, RecordedRun, RunKind

if TYPE_CHECKING:
    from .store import History

#: Environment variables that name the branch a CI job runs for, most specific first:
#: a pull request's head branch, then the pushed branch (GitHub Actions, GitLab CI).
BRANCH_VARIABLES = ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME")


def recorded_from(
    results: RunResults,
    kind: RunKind,
    *,
    branch: str | None = None,
    wall_seconds: float | None = None,
    source: str = "",
    started_at: datetime | None = None,
) -> tuple[RecordedRun, list[RecordedMeasurement]]:
    """The run and measurements a results file records. ``started_at`` defaults to the
    file's ``created_at``; a file without one needs it given."""
    run = RecordedRun(
        kind=kind,
        started_at=started_at or created_at_of(results),
        commit=results.commit,
        branch=branch,
        machine_class=machine_class(results.environment.machine),
        wall_seconds=wall_seconds,
        source=source,
    )
    measurements = [
        recorded_measurement(test.test_id, measurement, comparison)
        for test in results.tests
        for measurement, comparison in test.results
    ]
    return run, measurements


def recorded_measurement(
    test_id: str, measurement: Measurement, comparison: Comparison
) -> RecordedMeasurement:
    """One measurement's level (the statistic it is gated on), interval and verdict."""
    low, high = _interval(measurement, comparison)
    return RecordedMeasurement(
        test_id=test_id,
        name=measurement.name,
        unit=measurement.unit,
        lower_is_better=measurement.direction is Direction.LOWER_IS_BETTER,
        statistic=comparison.statistic,
        value=comparison.now,
        ci_low=low,
        ci_high=high,
        samples=comparison.current.n,
        verdict=comparison.verdict.value,
        ratio=comparison.ratio,
        budget=budget_of(measurement.details),
    )


def _interval(measurement: Measurement, comparison: Comparison) -> tuple[float, float]:
    """95% interval of the level from this run's samples: the median's distribution-free
    interval, or for a tail quantile a log-normal one from its bootstrap standard error."""
    if comparison.statistic == "median":
        return comparison.current.median_ci_low, comparison.current.median_ci_high
    from ..stats import Z95, log_quantile_se, quantile_of

    se = log_quantile_se(measurement.samples, quantile_of(comparison.statistic))
    level = comparison.now
    return level * math.exp(-Z95 * se), level * math.exp(Z95 * se)


def budget_of(details: Mapping[str, Any]) -> float | None:
    """The absolute budget a measurement declared (``details["budget"]``, in its unit)."""
    budget = details.get("budget")
    if isinstance(budget, bool) or not isinstance(budget, int | float):
        return None
    return float(budget) if math.isfinite(budget) else None


def machine_class(machine: Mapping[str, str]) -> str:
    """A short, stable label of a machine-class fingerprint: readable parts and a hash of
    all fields, e.g. ``Linux-x86_64-2cpu-3f2a9c1b``. Equal fingerprints, equal labels."""
    digest = hashlib.sha256(json.dumps(dict(machine), sort_keys=True).encode()).hexdigest()
    parts = [machine.get("os", ""), machine.get("arch", "")]
    if machine.get("cpus"):
        parts.append(f"{machine['cpus']}cpu")
    return "-".join([*(part for part in parts if part), digest[:8]])


def created_at_of(results: RunResults) -> datetime:
    """The results file's ``created_at`` as a UTC time (a time without a zone is UTC)."""
    text = results.created_at.strip()
    if not text:
        raise ValueError("the results file has no created_at time")
    moment = datetime.fromisoformat(text.removesuffix("Z") + ("+00:00" if text[-1:] == "Z" else ""))
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def current_branch(directory: Path, environ: Mapping[str, str] | None = None) -> str | None:
    """The branch being measured: from CI's variables, else git's checked-out branch."""
    environ = os.environ if environ is None else environ
    for variable in BRANCH_VARIABLES:
        if environ.get(variable):
            return environ[variable]
    from ..environment import git_output  # environment imports numpy: only when asked

    branch = git_output(directory, "rev-parse", "--abbrev-ref", "HEAD")
    return branch if branch != "HEAD" else None  # a detached HEAD names no branch


@final
@dataclass(frozen=True, slots=True)
class Recording:
    """What recording a run into the history did, in a line a person reads."""

    ok: bool
    message: str


def history_target(setting: str, rootdir: Path) -> str | Path:
    """Where a configured history is: a URL as given, a file relative to ``rootdir``."""
    return setting if "://" in setting else rootdir / setting


def record_session(
    results: RunResults, where: str | Path, *, refresh: bool, rootdir: Path, wall_seconds: float
) -> Recording:
    """Record a pytest session's results (a gated run, or a refresh)."""
    return record_results(
        where,
        results,
        RunKind.REFRESH if refresh else RunKind.GATE,
        branch=current_branch(rootdir),
        wall_seconds=wall_seconds,
        source="pytest",
    )


def record_results(
    where: str | Path,
    results: RunResults,
    kind: RunKind,
    *,
    branch: str | None,
    wall_seconds: float | None,
    source: str,
) -> Recording:
    """Record ``results`` into the history at ``where``; never raises for a history it
    cannot open or write (a run must not fail because its history is away)."""
    from .store import HistoryError, open_history, redacted

    shown = redacted(str(where))
    try:
        run, measurements = recorded_from(
            results, kind, branch=branch, wall_seconds=wall_seconds, source=source
        )
        with open_history(where) as history:
            run_id = history.record(run, measurements)
    except (HistoryError, ValueError, OSError) as error:
        return Recording(False, f"perfgate: warning: run not recorded in the history: {error}")
    return Recording(True, f"perfgate: run recorded in the history {shown} as run {run_id}")


@final
@dataclass(frozen=True, slots=True)
class ImportReport:
    """What ``import_results_files`` did with each file."""

    imported: tuple[tuple[Path, int], ...]  #: each file recorded, with its run id
    skipped: tuple[tuple[Path, int], ...]  #: each file recorded before, with that run's id
    errors: tuple[str, ...]  #: each file that could not be read, its name and why


def import_results_files(
    history: History, paths: Sequence[Path], kind: RunKind, *, branch: str | None = None
) -> ImportReport:
    """Record each results file (a CI artifact) as a run; a file whose content was
    imported before is skipped, a bad file reported by name and the rest still imported."""
    from ..results import ResultsError, read_results
    from .store import AlreadyRecorded

    imported, skipped, errors = [], [], []
    for path in paths:
        try:
            content_hash = hashlib.sha256(path.read_bytes()).hexdigest()
            results = read_results(path)
            run, measurements = recorded_from(results, kind, branch=branch, source=str(path))
            imported.append((path, history.record(run, measurements, content_hash=content_hash)))
        except AlreadyRecorded as already:
            skipped.append((path, already.run_id))
        except OSError as error:
            errors.append(f"{path}: cannot read ({error.strerror or error})")
        except ResultsError as error:
            errors.append(str(error))
        except ValueError as error:
            errors.append(f"{path}: {error}")
    return ImportReport(tuple(imported), tuple(skipped), tuple(errors))


__all__: Sequence[str] = (
    "BRANCH_VARIABLES",
    "ImportReport",
    "Recording",
    "budget_of",
    "created_at_of",
    "current_branch",
    "history_target",
    "import_results_files",
    "machine_class",
    "record_results",
    "record_session",
    "recorded_from",
    "recorded_measurement",
)
