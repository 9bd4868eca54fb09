"""The end-of-run summary's text: the table of measurements, the verdicts that need a
look, stale baselines, what a refresh did and which files were written.

Lines only: the pytest layer prints them through its terminal reporter.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, final

from ..model import Comparison, Measurement, Verdict, explain
from ..refresh import RefreshReport
from ..results import RunResults
from ..settings import Mode, Settings
from . import github
from .hints import GENERIC_REFRESH, blind_spot_hint, with_command


@final
@dataclass(frozen=True, slots=True)
class SummaryLine:
    """One line of the summary (or the table, a block of lines)."""

    text: str
    color: str | None = None  #: terminal markup ("red", "yellow"), None for plain text
    block: bool = False  #: written as it is (the table ends with its own newline)


@final
@dataclass(frozen=True, slots=True)
class RunSummary:
    """What the summary speaks of."""

    results: RunResults  #: the run's results, as the files hold them
    #: every measurement with its comparison, in the order the tests ran
    measured: Sequence[tuple[Measurement, Comparison]]
    settings: Settings
    perf_tests: int  #: perf tests collected
    baseline_root: Path  #: where the baselines are
    rootdir: Path  #: the run's root directory (GitHub annotations are relative to it)
    stale: Sequence[str] = ()  #: stale baseline entries
    unmeasured: Sequence[str] = ()  #: perf tests that measured nothing
    refresh: RefreshReport | None = None  #: what --perf-update-baselines did
    files: Sequence[str] = ()  #: lines about the report files written
    xdist_workers: int = 0  #: pytest-xdist workers that ran the tests (0 without xdist)
    workspace: str | None = None  #: $GITHUB_WORKSPACE
    #: the run's own command turned into a refresh (hints.refresh_command)
    refresh_command: str = GENERIC_REFRESH
    #: gated measurements the suite's alpha is split over (0: not counted, the perf tests)
    decisions: int = 0

    @property
    def regressions_failed(self) -> bool:
        """Regressions failed their tests, so pytest has printed their messages already."""
        return self.settings.mode is Mode.GATE and not self.settings.update_baselines


def summary_lines(summary: RunSummary, *, width: int, color: bool) -> list[SummaryLine]:
    """The summary, or nothing when there is nothing to say."""
    comparisons = [c for _, c in summary.measured]
    refresh_failed = summary.refresh is not None and bool(summary.refresh.errors)
    if not (comparisons or summary.stale or summary.unmeasured or refresh_failed or summary.files):
        return []
    lines = _verdict_lines(summary, comparisons, width=width, color=color)
    lines += _note_lines(summary, comparisons)
    lines += _budget_lines(summary)
    if summary.refresh is not None:
        lines += refresh_lines(summary.refresh, summary.baseline_root)
    lines += [SummaryLine(line) for line in summary.files]
    if comparisons and summary.xdist_workers > 1:
        lines.append(
            SummaryLine(
                f"perfgate: warning: the perf tests ran on {summary.xdist_workers} pytest-xdist "
                "workers at once, sharing the machine with each other and with other tests: "
                "their times carry that contention; measure them with -p no:xdist (or -n 0)",
                "yellow",
            )
        )
    return lines


def _verdict_lines(
    summary: RunSummary, comparisons: list[Comparison], *, width: int, color: bool
) -> list[SummaryLine]:
    """The table, the counts, the verdicts to look at, GitHub annotations, GPU lines."""
    from .terminal import gpu_lines, render_table, verdict_counts

    settings = summary.settings
    lines: list[SummaryLine] = []
    if comparisons:
        tests = f"{summary.perf_tests} perf test{'' if summary.perf_tests == 1 else 's'}"
        lines += [
            SummaryLine(render_table(comparisons, width=width, color=color), block=True),
            SummaryLine(
                f"perfgate: {verdict_counts(comparisons)} ({tests}, alpha {settings.alpha} "
                f"over the suite, mode {settings.mode.value})"
            ),
        ]
        if any(c.ci_low is not None for c in comparisons):
            # The table's intervals are per measurement; the verdicts' level is corrected.
            decisions = summary.decisions or summary.perf_tests
            shared = f"{decisions} measurement{'' if decisions == 1 else 's'} of the {tests}"
            lines.append(
                SummaryLine(
                    "perfgate: the table's CIs are 95% for each measurement on its own; "
                    f"verdicts use alpha {settings.alpha} shared by the {shared}"
                )
            )
    blind = blind_spot_hint([c.detectable_change for c in comparisons])
    if blind:
        lines.append(SummaryLine(f"perfgate: {blind}"))
    lines += look_lines(summary, comparisons)
    if github.running_in_actions() and any(c.verdict.fails for c in comparisons):
        # Workflow commands: GitHub shows each on the test's line in the PR's diff.
        commands = github.workflow_commands(
            summary.results,
            level="error" if summary.regressions_failed else "warning",
            rootdir=summary.rootdir,
            workspace=summary.workspace,
        )
        lines += [SummaryLine(line) for line in commands]
    gpu = gpu_lines([(c.label, m) for m, c in summary.measured])
    if gpu:
        lines += [SummaryLine("perfgate GPU:"), *(SummaryLine(f"  {line}") for line in gpu)]
    return lines


#: Lines ``look_lines`` lists at most, regressions first; the rest are counted by verdict
#: in one line. A suite of ten thousand trivial tests had four thousand INCONCLUSIVE
#: lines; the results file (``--perf-json``) has every one.
MAX_LOOK_LINES = 100


def look_lines(summary: RunSummary, comparisons: Sequence[Comparison]) -> list[SummaryLine]:
    """The verdicts to look at, one line each; those that share a reason (another machine
    class, for every measurement) one line with a count. A regression that failed its
    test is not repeated: pytest printed its message in the failure and its summary.
    Beyond ``MAX_LOOK_LINES`` lines, the rest are counted, not listed."""
    from .terminal import VERDICT_ORDER, verdict_counts

    groups = grouped(comparisons, summary.regressions_failed)
    if len(groups) > MAX_LOOK_LINES:
        groups.sort(key=lambda group: VERDICT_ORDER.index(group[0].verdict))
    shown, left_out = groups[:MAX_LOOK_LINES], groups[MAX_LOOK_LINES:]
    lines = [SummaryLine(_look_text(group, summary.refresh_command)) for group in shown]
    if left_out:
        rest = [c for group in left_out for c in group]
        lines.append(SummaryLine(f"  ... and {len(rest)} more not listed: {verdict_counts(rest)}"))
    return lines


def look_texts(
    comparisons: Sequence[Comparison], command: str, regressions_failed: bool = False
) -> list[str]:
    """The lines of look_lines, as text, every one (``perfgate compare`` prints them)."""
    return [_look_text(group, command) for group in grouped(comparisons, regressions_failed)]


def _look_text(group: Sequence[Comparison], command: str) -> str:
    first = group[0]
    if len(group) == 1:
        text = f"  {first.verdict.value} {first.label}: {explain(first)}"
    else:
        text = f"  {len(group)} {first.verdict.value}: {'; '.join(first.notes)}"
    return with_command(text, command)


def grouped(
    comparisons: Sequence[Comparison], regressions_failed: bool = False
) -> list[list[Comparison]]:
    """The REGRESSED, INCONCLUSIVE and INCOMPARABLE comparisons in groups: one group per
    shared reason (same verdict, same notes), in the order the first of each came."""
    looked_at = {Verdict.INCONCLUSIVE, Verdict.INCOMPARABLE}
    if not regressions_failed:
        looked_at.add(Verdict.REGRESSED)
    groups: dict[tuple[Verdict, tuple[str, ...]], list[Comparison]] = {}
    for c in comparisons:
        if c.verdict in looked_at:
            # A regression's notes are its own evidence: never merged with another's.
            key = (c.verdict, c.notes if c.verdict is Verdict.INCOMPARABLE else (c.label,))
            groups.setdefault(key, []).append(c)
    return list(groups.values())


def shared_reasons(
    comparisons: Sequence[Comparison],
) -> dict[tuple[Verdict, tuple[str, ...]], list[Comparison]]:
    """INCOMPARABLE and NEW measurements that share their verdict and reason, by reason,
    where two or more do: the reports say such a reason once, with a count."""
    groups: dict[tuple[Verdict, tuple[str, ...]], list[Comparison]] = {}
    for c in comparisons:
        if c.verdict in (Verdict.INCOMPARABLE, Verdict.NEW):
            groups.setdefault((c.verdict, c.notes), []).append(c)
    return {key: group for key, group in groups.items() if len(group) > 1}


def extra_info_text(extra_info: Mapping[str, Any]) -> str:
    """``benchmark.extra_info`` as ``key=value`` pairs in key order: strings as they are,
    other values as compact JSON."""
    return ", ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value, default=str)}"
        for key, value in sorted(extra_info.items())
    )


def _note_lines(summary: RunSummary, comparisons: list[Comparison]) -> list[SummaryLine]:
    """Measurements without a baseline, perf tests that measured nothing, stale entries."""
    lines: list[SummaryLine] = []
    new = [c for c in comparisons if c.verdict is Verdict.NEW]
    if new and not summary.settings.update_baselines:
        lines.append(
            SummaryLine(
                f"perfgate: {len(new)} measurement(s) have no baseline yet; "
                f"record them with `{summary.refresh_command}`"
            )
        )
    lines += [
        SummaryLine(
            f"perfgate: warning: {nodeid} is a perf test but measured nothing "
            "(use the perf fixture)",
            "yellow",
        )
        for nodeid in summary.unmeasured
    ]
    if summary.stale:
        lines.append(
            SummaryLine(
                f"perfgate: {len(summary.stale)} stale baseline(s), for tests or "
                "measurements that no longer exist (delete them from the file):"
            )
        )
        lines += [SummaryLine(f"  stale {name}") for name in summary.stale]
    return lines


def _budget_lines(summary: RunSummary) -> list[SummaryLine]:
    """Measurements past their declared budgets: a note, or with --perf-fail-over-budget
    the reason their tests failed (printed with the failures already)."""
    if summary.settings.fail_over_budget and summary.regressions_failed:
        return []
    from ..history.budgets import budget_notes

    return [
        SummaryLine(f"perfgate: note: {note}", "yellow") for note in budget_notes(summary.measured)
    ]


def refresh_lines(report: RefreshReport, root: Path) -> list[SummaryLine]:
    """What a refresh did: counts, then each added, changed and skipped entry, and errors."""
    lines = [
        SummaryLine(
            f"perfgate: baselines in {root}: {len(report.added)} added, "
            f"{len(report.refreshed)} refreshed ({len(report.changed)} changed "
            f"significantly), {len(report.skipped)} not refreshed (test failed)"
        ),
        *(SummaryLine(f"  added {label}") for label in report.added),
        *(SummaryLine(f"  changed {line}") for line in report.changed),
        *(
            SummaryLine(f"  not refreshed {nodeid} (the test did not pass)")
            for nodeid in report.skipped
        ),
        *(SummaryLine(f"perfgate: error: {error}", "red") for error in report.errors),
    ]
    if report.short_history and not report.errors:
        # Measured in docs/performance.md: three refreshes catch far more slowdowns.
        lines.append(
            SummaryLine(
                f"perfgate: {report.short_history} timing baseline(s) have fewer than 3 runs "
                "of history, so the gate assumes their run-to-run noise; refresh again "
                "(3 runs in all) to have it measured and the gate tightened"
            )
        )
    return lines
