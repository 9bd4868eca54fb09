"""Refreshing baselines from a run's results (``--perf-update-baselines``), and finding
stored baselines that no test produces any more.

Plain functions over the results model and the baseline store: the pytest layer only
says which tests it collected and hands over the run's results.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import final

from .baseline import BaselineError, BaselineFile, BaselineStore, refreshed_entry
from .model import BaselineEntry, Environment, Verdict, explain
from .results import TestResults
from .stats import NOISE_RUNS

#: A module's baseline file, or why it cannot be read.
BaselineLoader = Callable[[str], "BaselineFile | BaselineError"]
#: A module's stored test names, each with its measurement names (a file's ``tests``, or
#: what a pytest-xdist worker that read the file sent), or why the file cannot be read.
StoredNames = Callable[[str], "Mapping[str, Iterable[str]] | BaselineError"]

#: module -> test -> measurement name -> the entry to store.
_Entries = dict[str, dict[str, dict[str, BaselineEntry]]]


@final
@dataclass(frozen=True, slots=True)
class RefreshReport:
    """What a refresh did, for the end-of-run summary."""

    added: tuple[str, ...] = ()  #: labels of measurements recorded for the first time
    refreshed: tuple[str, ...] = ()  #: labels of measurements whose baseline was replaced
    changed: tuple[str, ...] = ()  #: "label: explanation" of the significant changes
    skipped: tuple[str, ...] = ()  #: node ids of tests that did not pass: left as they were
    errors: tuple[str, ...] = ()  #: files that could not be written, and why
    short_history: int = 0  #: timing entries with fewer than 3 runs of history


@final
@dataclass(frozen=True, slots=True)
class RefreshContext:
    """Where and with what the new entries are recorded."""

    store: BaselineStore
    load: BaselineLoader  #: the baselines the run was judged against
    environment: Environment
    code_hashes: Mapping[str, str | None]  #: test id -> hash of the test's code
    commit: str | None
    recorded_at: str  #: UTC time, ISO 8601
    history: int  #: run-level medians kept per entry
    max_samples: int  #: raw samples kept per entry
    #: test id -> digest of the file its code hash was taken from (code_hash.identify)
    source_digests: Mapping[str, str | None] = field(default_factory=dict)


#: A refresh that did not run because the run was interrupted.
INTERRUPTED = RefreshReport(errors=("run interrupted: no baseline was written",))


def refresh_baselines(tests: Iterable[TestResults], context: RefreshContext) -> RefreshReport:
    """Record every measurement of the passing tests as its new baseline; a failed or
    skipped test keeps its old one. All files are written together under the store's
    lock, all or nothing: a SIGINT (Ctrl-C) before the renames writes none of them."""
    try:
        return _refresh(tests, context)
    except KeyboardInterrupt:  # while the entries were computed: nothing was written
        return INTERRUPTED


def _refresh(tests: Iterable[TestResults], context: RefreshContext) -> RefreshReport:
    entries: _Entries = {}
    added: list[str] = []
    refreshed: list[str] = []
    changed: list[str] = []
    skipped: list[str] = []
    short_history = 0
    files: dict[str, BaselineFile | BaselineError] = {}  # each module's file, read once
    for test in sorted(tests, key=lambda t: t.test_id):
        if test.outcome != "passed":
            skipped.append(test.test_id)
            continue
        file = files.get(test.module)
        if file is None:
            file = files[test.module] = context.load(test.module)
        old = None if isinstance(file, BaselineError) else file
        for measurement, comparison in test.results:
            previous = None if old is None else old.get(test.test, measurement.name)
            significant = comparison.verdict in (Verdict.REGRESSED, Verdict.IMPROVED)
            entry = refreshed_entry(
                measurement,
                previous,
                environment=context.environment,
                code_hash=context.code_hashes.get(test.test_id),
                source_digest=context.source_digests.get(test.test_id),
                commit=context.commit,
                recorded_at=context.recorded_at,
                history=context.history,
                max_samples=context.max_samples,
                changed=significant,
            )
            entries.setdefault(test.module, {}).setdefault(test.test, {})[measurement.name] = entry
            if entry.unit == "s" and len(entry.history) < NOISE_RUNS:
                short_history += 1
            if previous is None:
                added.append(comparison.label)
                continue
            refreshed.append(comparison.label)
            if significant:
                changed.append(f"{comparison.label}: {explain(comparison)}")
    written = context.store.update_many(entries)
    if written.interrupted and not written.written:
        return INTERRUPTED
    errors = written.errors
    if written.interrupted:
        errors += ("run interrupted while the baselines were renamed into place: all were written",)
    return RefreshReport(
        added=tuple(added),
        refreshed=tuple(refreshed),
        changed=tuple(changed),
        skipped=tuple(skipped),
        errors=errors,
        short_history=short_history,
    )


def stale_entries(
    collected: Mapping[str, set[str]],
    expanded: Mapping[str, set[str]],
    tests: Iterable[TestResults],
    stored_names: StoredNames,
) -> list[str]:
    """Baselines of collected modules whose test no longer exists (renamed or removed),
    and measurements a passing test no longer takes.

    ``collected`` maps a module to every perf test collected in it; ``expanded`` maps it
    to the scopes ("" for the module, "TestX" for a class) whose tests were all seen: a
    test outside them may exist and only have been left out (a node id on the command line).
    """
    produced = {
        (test.module, test.test): {measurement.name for measurement, _ in test.results}
        for test in tests
        if test.outcome == "passed"
    }
    stale: list[str] = []
    for module, names in sorted(collected.items()):
        stored = stored_names(module)
        if isinstance(stored, BaselineError):
            continue
        scopes = expanded.get(module)
        for test, measurements in sorted(stored.items()):
            if test not in names:
                # Only where every test was seen: "TestX::test_y[1]" is in scope "TestX".
                if scopes is None or test.split("[", 1)[0].rpartition("::")[0] in scopes:
                    stale.append(f"{module}::{test}")
                continue
            taken = produced.get((module, test))
            if taken is not None:
                stale.extend(
                    f"{module}::{test} [{name}]"
                    for name in sorted(measurements)
                    if name not in taken
                )
    return stale
