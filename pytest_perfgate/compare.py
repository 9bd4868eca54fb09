"""Two results files judged against each other (``perfgate compare BASE CANDIDATE``).

The base run's samples of a measurement stand in for its stored baseline, built as a
refresh would build it (``refreshed_entry``), and ``gate.judge`` decides: the same
statistics, thresholds and verdicts as the gate in a pytest run. Tests are matched by
test id and measurement name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, final

from .baseline import refreshed_entry
from .environment import utc_now
from .gate import GatePolicy, judge
from .model import BaselineEntry, Comparison, Measurement, Verdict
from .results import RunResults, settings_summary
from .settings import OPTIONS_BY_NAME, Settings


@final
@dataclass(frozen=True, slots=True)
class ComparedRuns:
    """The candidate run with every measurement judged against the base run."""

    results: RunResults  #: the candidate's tests, with the new comparisons
    only_in_base: tuple[str, ...]  #: labels of base measurements the candidate lacks

    @property
    def comparisons(self) -> list[Comparison]:
        return self.results.comparisons

    @property
    def regressed(self) -> bool:
        return any(c.verdict.fails for c in self.comparisons)


def recorded_settings(run: RunResults, overrides: Mapping[str, Any]) -> Settings:
    """The settings the run was made with (where its file records them), under
    ``overrides`` (None values are unset). Raises SettingsError on a bad value."""
    # None: a default recorded as "unset" (run_noise: each kind's own prior).
    recorded = {k: v for k, v in run.settings.items() if k in OPTIONS_BY_NAME and v is not None}
    return Settings.resolve(recorded, overrides, pyproject_source="the candidate's settings")


def compare_runs(
    base: RunResults,
    candidate: RunResults,
    settings: Settings,
    *,
    threshold_given: bool = False,
    base_name: str = "the base run",
) -> ComparedRuns:
    """Judge each candidate measurement against the same measurement of ``base``.

    Each measurement keeps the threshold its candidate run gated it with (a marker's
    ``threshold=`` included) unless ``threshold_given``: then ``settings.threshold``
    applies to all. One look only: the samples are what the files hold.
    """
    base_measurements = {
        (test.test_id, measurement.name): measurement
        for test in base.tests
        for measurement, _ in test.results
    }
    tests = []
    seen = set()
    decisions = max(sum(len(test.results) for test in candidate.tests), 1)
    for test in candidate.tests:
        results: list[tuple[Measurement, Comparison]] = []
        for measurement, recorded in test.results:
            key = (test.test_id, measurement.name)
            seen.add(key)
            previous = base_measurements.get(key)
            # The suite's alpha is split over its measurements, as in the gate.
            policy = _policy(settings, recorded, threshold_given, tests=decisions)
            entry = None if previous is None else _base_entry(previous, base, settings)
            comparison = judge(
                test.test_id, measurement, entry, policy, environment=candidate.environment
            ).comparison
            if comparison.verdict is Verdict.NEW:
                comparison = replace(comparison, notes=(f"not in {base_name}",))
            results.append((measurement, comparison))
        tests.append(replace(test, results=tuple(results)))
    only_in_base = tuple(
        test_id if name == "time" else f"{test_id} [{name}]"
        for test_id, name in sorted(base_measurements)
        if (test_id, name) not in seen
    )
    judged = RunResults(
        environment=candidate.environment,
        tests=tuple(tests),
        settings=settings_summary(settings),
        commit=candidate.commit,
        created_at=utc_now(),
        generator=candidate.generator,
    )
    return ComparedRuns(judged, only_in_base)


def _policy(
    settings: Settings, recorded: Comparison, threshold_given: bool, *, tests: int
) -> GatePolicy:
    """The gate's rules for one measurement: one look (the files hold all the samples
    there are), and the threshold its candidate run gated it with unless one is given."""
    threshold = settings.threshold
    # A threshold widened for another machine class would be widened twice.
    if not threshold_given and not any("threshold widened" in n for n in recorded.notes):
        threshold = recorded.threshold
    return GatePolicy(
        threshold=threshold,
        alpha=settings.alpha,
        tests=max(tests, 1),
        max_looks=1,
        on_mismatch=settings.on_mismatch,
        normalize_margin=settings.normalize_margin,
        run_noise=settings.run_noise,
    )


def _base_entry(previous: Measurement, base: RunResults, settings: Settings) -> BaselineEntry:
    """The base run's measurement as the baseline a refresh would have stored."""
    return refreshed_entry(
        previous,
        None,
        environment=base.environment,
        code_hash=None,
        commit=base.commit,
        recorded_at=base.created_at,
        history=settings.history,
        max_samples=max(len(previous.samples), 1),  # keep every sample
    )


__all__: Sequence[str] = ("ComparedRuns", "compare_runs", "recorded_settings")
