"""One results file from the shards of a split suite (pytest-split, a CI matrix).

Each shard judged its measurements at the suite's level ``alpha`` split over the decisions
*it* made (Bonferroni: q = p x k, REGRESSED only where q < alpha). Over the whole suite
there are K = k1 + k2 + ... decisions, so a regression declared in a shard is re-judged at
q = p x K: one that no longer holds becomes INCONCLUSIVE, with a note saying why. Without
this, four shards would make four times the false alarms of the same suite run whole.

A shard's count k is what its settings state (``decisions``), else what its own q-values
show (q / p, exact under Bonferroni wherever q < 1), else its number of tests (the count
the gate used when it split the level per perf test). A shard may have counted more than
its own decisions: pytest-split and ``-k`` collect the whole suite and deselect the rest,
and a gate that counts collected tests then split the level over the whole suite already.
So each shard contributes at most its own measurements, and K is never below any shard's
k: K = max(max k_i, sum of min(k_i, measurements_i)). A regression is thus re-judged at
least as strictly as its shard judged it, never more leniently.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, final

from .model import Comparison, Verdict
from .results import RunResults, TestResults, tests_from

#: The settings key of a results file that states how many decisions the level was split
#: over; merged files write it, so that merging merged files stays right.
DECISIONS_KEY = "decisions"


class MergeError(Exception):
    """The shards cannot be one run; the message names the files."""


@final
@dataclass(frozen=True, slots=True)
class Shard:
    """One shard's results file."""

    name: str  #: its path, as messages show it
    results: RunResults


@final
@dataclass(frozen=True, slots=True)
class MergedRun:
    """The merged results, and what the correction did."""

    results: RunResults
    decisions: int  #: K: the decisions of the whole suite
    downgraded: tuple[str, ...]  #: labels of regressions that did not hold for the suite

    @property
    def regressed(self) -> bool:
        return any(c.verdict is Verdict.REGRESSED for c in self.results.comparisons)


def merge_shards(shards: Sequence[Shard]) -> MergedRun:
    """The shards as one run, its level corrected for the whole suite."""
    if not shards:
        raise MergeError("no results files to merge")
    first = shards[0]
    for shard in shards[1:]:
        _check_same_run(first, shard)
    tests = _joined_tests(shards)
    decisions = suite_decisions([shard.results for shard in shards])
    alpha = _alpha(first)
    corrected, downgraded = [], []
    for test in tests:
        pairs = []
        for measurement, comparison in test.results:
            judged = suite_corrected(comparison, decisions, alpha)
            if judged.verdict is not comparison.verdict:
                downgraded.append(judged.label)
            pairs.append((measurement, judged))
        corrected.append(replace(test, results=tuple(pairs)))
    # The merge is the gate (shards typically ran in warn mode): its file says so.
    settings = {
        **first.results.settings,
        "mode": "gate",
        DECISIONS_KEY: decisions,
        "shards": len(shards),
    }
    results = replace(
        first.results,
        tests=tests_from(corrected),
        settings=settings,
        created_at=min(s.results.created_at for s in shards),
        generator=first.results.generator,
    )
    return MergedRun(results, decisions, tuple(downgraded))


def suite_corrected(comparison: Comparison, decisions: int, alpha: float) -> Comparison:
    """``comparison`` with its q-value over the suite's ``decisions``; a REGRESSED that
    does not hold at that level becomes INCONCLUSIVE, with a note."""
    p = comparison.p_value
    if p is None:
        return comparison
    q = min(1.0, p * decisions)
    if comparison.verdict is not Verdict.REGRESSED or q < alpha:
        return replace(comparison, q_value=q)
    note = (
        f"regressed in its shard (q={_shown(comparison.q_value)}), not at the whole suite's "
        f"level: q={_shown(q)} over {decisions} decisions, alpha {alpha:g}"
    )
    return replace(
        comparison, verdict=Verdict.INCONCLUSIVE, q_value=q, notes=(*comparison.notes, note)
    )


def _shown(q: float | None) -> str:
    return "?" if q is None else f"{q:.2g}"


def suite_decisions(shards: Sequence[RunResults]) -> int:
    """K: the decisions of the whole suite (see the module's docstring)."""
    counts = [decision_count(results) for results in shards]
    measured = [max(1, len(results.comparisons)) for results in shards]
    own = [min(k, m) for k, m in zip(counts, measured, strict=True)]
    return max(*counts, sum(own))


def decision_count(results: RunResults) -> int:
    """How many decisions a shard split its level over (see the module's docstring)."""
    stated = results.settings.get(DECISIONS_KEY)
    if isinstance(stated, int) and not isinstance(stated, bool) and stated >= 1:
        return stated
    shown = collections.Counter(
        round(c.q_value / c.p_value)
        for c in results.comparisons
        if c.p_value and c.q_value is not None and c.q_value < 1.0
    )
    if shown:
        return max(1, shown.most_common(1)[0][0])
    return max(1, len(results.tests))


def _alpha(shard: Shard) -> float:
    alpha = shard.results.settings.get("alpha", 0.05)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise MergeError(f"{shard.name}: settings.alpha must be a level in (0, 1), got {alpha!r}")
    return float(alpha)


def _check_same_run(first: Shard, shard: Shard) -> None:
    """Shards of one run: same machine class, same commit, same level."""
    mismatches = first.results.environment.mismatches(shard.results.environment)
    if mismatches:
        raise MergeError(
            f"{shard.name} ran on another machine class than {first.name}: "
            + "; ".join(mismatches)
            + " (shards of one run must run on one kind of runner)"
        )
    if first.results.commit != shard.results.commit:
        raise MergeError(
            f"{shard.name} measured commit {shard.results.commit} and {first.name} "
            f"{first.results.commit}: shards of one run measure one commit"
        )
    for key in ("alpha", "mode"):
        mine, theirs = _setting(first, key), _setting(shard, key)
        if mine != theirs:
            raise MergeError(
                f"{shard.name} was judged with {key} {theirs!r} and {first.name} with "
                f"{mine!r}: shards of one run share their settings"
            )


def _setting(shard: Shard, key: str) -> Any:
    settings: Mapping[str, Any] = shard.results.settings
    return settings.get(key)


def _joined_tests(shards: Sequence[Shard]) -> list[TestResults]:
    """Every shard's tests; a test in two shards is an error naming both."""
    owner: dict[str, str] = {}
    tests = []
    for shard in shards:
        for test in shard.results.tests:
            if test.test_id in owner:
                raise MergeError(
                    f"{test.test_id} is in both {owner[test.test_id]} and {shard.name}: "
                    "each test belongs to one shard"
                )
            owner[test.test_id] = shard.name
            tests.append(test)
    return tests


__all__: Sequence[str] = (
    "DECISIONS_KEY",
    "MergeError",
    "MergedRun",
    "Shard",
    "decision_count",
    "merge_shards",
    "suite_corrected",
    "suite_decisions",
)
