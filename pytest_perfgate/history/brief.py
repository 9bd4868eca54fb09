"""The brief (``perfgate brief``): one page on a period of the history, for people who
fund the machines and read it in two minutes.

It says, in plain words: what got slower and faster (the largest change points, with their
size, interval and commits), the regressions the gate stopped (REGRESSED verdicts of gated,
A/B and merged runs), the budgets at risk with the quarter they are expected to be breached
in, and what the perf jobs cost in machine time. The facts are gathered once (``Brief``),
worded once (``brief_sections``: plain text), and only then written as Markdown or HTML,
each escaping the text its own way.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import final

from ..model import format_quantity
from ..report.html import _WATCHDOG, _content_security_policy, escape
from ..report.markdown import escape as md_escape
from .changepoints import ChangePoint
from .forecast import BudgetOutlook
from .model import RecordedRun, RunKind
from .views import SeriesView, budget_status, commit_range

#: Changes listed each way (slower, faster); the rest are counted.
TOP_CHANGES = 5
#: Stopped regressions listed; the rest are counted.
TOP_STOPPED = 8
#: Run kinds whose REGRESSED verdicts failed a job: the gate stopped what they found.
GATING_KINDS = frozenset({RunKind.GATE, RunKind.AB, RunKind.MERGED})


@final
@dataclass(frozen=True, slots=True)
class BriefChange:
    """A change point inside the period."""

    label: str  #: the measurement, as the dashboard names it
    machine_class: str
    unit: str
    lower_is_better: bool
    change: ChangePoint


@final
@dataclass(frozen=True, slots=True)
class StoppedRegression:
    """A REGRESSED verdict in a run that gates: a job failed on it."""

    label: str
    machine_class: str
    at: datetime
    commit: str | None
    ratio: float | None  #: now / baseline, when the run recorded it


@final
@dataclass(frozen=True, slots=True)
class BudgetRisk:
    label: str
    machine_class: str
    unit: str
    outlook: BudgetOutlook


@final
@dataclass(frozen=True, slots=True)
class MachineCost:
    """The perf jobs' machine time on one machine class."""

    machine_class: str
    runs: int
    hours: float  #: the sum of the runs' wall_seconds, in hours
    untimed_runs: int  #: runs that recorded no duration (not in ``hours``)


@final
@dataclass(frozen=True, slots=True)
class Brief:
    """The facts of one period."""

    since: datetime
    until: datetime
    runs: int  #: recorded runs in the period
    measurements: int  #: series with a point in the period
    slower: tuple[BriefChange, ...]  #: worse for their direction, largest first
    faster: tuple[BriefChange, ...]
    stopped: tuple[StoppedRegression, ...]  #: most recent first
    risks: tuple[BudgetRisk, ...]  #: over budget first, then by the first breach quarter
    costs: tuple[MachineCost, ...]
    price_per_hour: float | None
    currency: str = "$"


def make_brief(
    views: Sequence[SeriesView],
    runs: Sequence[RecordedRun],
    *,
    since: datetime,
    until: datetime,
    price_per_hour: float | None = None,
    currency: str = "$",
) -> Brief:
    """Gather the facts of the period from ``since`` to ``until`` (change points of each
    series' whole history that fall inside it, runs that started inside it)."""
    in_period = [r for r in runs if since <= r.started_at <= until]
    changes = [
        BriefChange(v.label, v.series.machine_class, v.series.unit, v.series.lower_is_better, c)
        for v in views
        for c in v.changes
        if since <= c.at <= until
    ]
    by_size = sorted(changes, key=lambda c: -abs(c.change.change))
    return Brief(
        since=since,
        until=until,
        runs=len(in_period),
        measurements=sum(1 for v in views if v.latest.at >= since),
        slower=tuple(c for c in by_size if c.change.regression),
        faster=tuple(c for c in by_size if not c.change.regression),
        stopped=_stopped(views, in_period),
        risks=_risks(views),
        costs=_costs(in_period),
        price_per_hour=price_per_hour,
        currency=currency,
    )


def _stopped(
    views: Sequence[SeriesView], runs: Sequence[RecordedRun]
) -> tuple[StoppedRegression, ...]:
    gating = {r.run_id for r in runs if r.kind in GATING_KINDS and r.run_id is not None}
    found = [
        StoppedRegression(
            label=v.label,
            machine_class=v.series.machine_class,
            at=p.at,
            commit=p.commit,
            ratio=_ratio(p.value, v, p.run_id),
        )
        for v in views
        for p in v.series.points
        if p.verdict == "REGRESSED" and p.run_id in gating
    ]
    return tuple(sorted(found, key=lambda s: s.at, reverse=True))


def _ratio(value: float, view: SeriesView, run_id: int | None) -> float | None:
    """now / the level before: the point's value over the median of the five points
    before it (a series point does not carry its run's baseline)."""
    points = view.series.points
    index = next(i for i, p in enumerate(points) if p.run_id == run_id)
    before = sorted(p.value for p in points[max(0, index - 5) : index])
    if not before:
        return None
    middle = before[len(before) // 2]
    return value / middle if middle else None


def _risks(views: Sequence[SeriesView]) -> tuple[BudgetRisk, ...]:
    risks = [
        BudgetRisk(v.label, v.series.machine_class, v.series.unit, v.outlook)
        for v in views
        if v.outlook is not None and (v.outlook.over_budget or v.outlook.first_breach is not None)
    ]

    def urgency(risk: BudgetRisk) -> tuple[bool, int, int]:
        first = risk.outlook.first_breach
        return (not risk.outlook.over_budget, *((first.year, first.number) if first else (0, 0)))

    return tuple(sorted(risks, key=urgency))


def _costs(runs: Sequence[RecordedRun]) -> tuple[MachineCost, ...]:
    classes = sorted({r.machine_class for r in runs})
    return tuple(
        MachineCost(
            machine_class=name,
            runs=sum(1 for r in runs if r.machine_class == name),
            hours=sum(r.wall_seconds or 0.0 for r in runs if r.machine_class == name) / 3600,
            untimed_runs=sum(1 for r in runs if r.machine_class == name and r.wall_seconds is None),
        )
        for name in classes
    )


# -- the words ----------------------------------------------------------------------------


@final
@dataclass(frozen=True, slots=True)
class Section:
    """One part of the brief, as plain text: a title, sentences, and a list of items."""

    title: str
    sentences: tuple[str, ...]
    items: tuple[str, ...] = ()


def brief_title(brief: Brief) -> str:
    return f"Performance brief, {brief.since:%Y-%m-%d} to {brief.until:%Y-%m-%d}"


def brief_sections(brief: Brief) -> list[Section]:
    """The brief in plain words, headline first."""
    return [
        Section("In short", (_headline(brief),)),
        _changes_section("What got slower", brief.slower, "Nothing got measurably slower."),
        _changes_section("What got faster", brief.faster, "Nothing got measurably faster."),
        _stopped_section(brief),
        _risks_section(brief),
        _cost_section(brief),
    ]


def _headline(brief: Brief) -> str:
    hours = sum(c.hours for c in brief.costs)
    parts = [
        f"{_count(brief.runs, 'perf run')} measured {_count(brief.measurements, 'series')}.",
        f"{_count(len(brief.slower), 'change')} for the worse and "
        f"{len(brief.faster)} for the better.",
        f"The gate stopped {_count(len(brief.stopped), 'regression')} before merge."
        if brief.stopped
        else "The gate stopped no regression.",
        f"{_count(len(brief.risks), 'budget')} at risk in the next year."
        if brief.risks
        else "No budget is at risk in the next year.",
        f"The perf jobs used {hours:.2f} machine-hours"
        + (f" ({_money(brief, hours)})." if brief.price_per_hour is not None else "."),
    ]
    return " ".join(parts)


def _changes_section(title: str, changes: Sequence[BriefChange], none: str) -> Section:
    if not changes:
        return Section(title, (none,))
    shown = changes[:TOP_CHANGES]
    rest = len(changes) - len(shown)
    sentences = [
        "The largest changes, with a 95% interval and the commits between which they happened."
    ]
    if rest:
        sentences.append(f"{rest} smaller ones are on the dashboard.")
    return Section(title, tuple(sentences), tuple(_change_item(c) for c in shown))


def _change_item(item: BriefChange) -> str:
    c = item.change
    size = abs(c.change) * 100
    if c.change_low * c.change_high > 0:  # the interval is all on one side of no change
        low, high = sorted((abs(c.change_low) * 100, abs(c.change_high) * 100))
        interval = f"between {low:.1f}% and {high:.1f}%"
    else:
        interval = f"95% interval {c.change_low * 100:+.1f}%..{c.change_high * 100:+.1f}%"
    if item.lower_is_better:
        what = "slower" if c.change > 0 else "faster"
    else:
        what = "higher" if c.change > 0 else "lower"
    return (
        f"{item.label} on {item.machine_class}: {size:.1f}% {what} "
        f"({interval}), "
        f"{format_quantity(c.before, item.unit)} → {format_quantity(c.after, item.unit)}, "
        f"since {c.at:%Y-%m-%d}, commits {commit_range(c)}."
    )


def _stopped_section(brief: Brief) -> Section:
    title = "Regressions the gate stopped"
    if not brief.stopped:
        return Section(title, ("No gated run failed on a regression in this period.",))
    shown = brief.stopped[:TOP_STOPPED]
    sentences = [
        f"Gated runs failed {_count(len(brief.stopped), 'time')} because a measurement got "
        "slower than its baseline allows: each time, a slowdown was kept out of the main "
        "branch or someone had to look at it."
    ]
    if len(brief.stopped) > len(shown):
        sentences.append(f"The {len(shown)} most recent:")
    items = tuple(
        f"{s.label} on {s.machine_class}, {s.at:%Y-%m-%d}, commit {(s.commit or '?')[:8]}"
        + (f", about {(s.ratio - 1) * 100:+.0f}% against the runs before." if s.ratio else ".")
        for s in shown
    )
    return Section(title, tuple(sentences), items)


def _risks_section(brief: Brief) -> Section:
    title = "Budgets at risk"
    if not brief.risks:
        return Section(title, ("No budget is over or expected to be breached within a year.",))
    items = tuple(
        f"{r.label} on {r.machine_class}: {budget_status(r.outlook)}; budget "
        f"{format_quantity(r.outlook.budget, r.unit)}, now "
        f"{format_quantity(r.outlook.current, r.unit)}."
        for r in brief.risks
    )
    return Section(
        title,
        ("The quarter is the first in which the trend gives a breach an even chance or more.",),
        items,
    )


def _cost_section(brief: Brief) -> Section:
    title = "What the perf jobs cost"
    if not brief.costs:
        return Section(title, ("No perf run was recorded in this period.",))
    items = []
    for cost in brief.costs:
        text = f"{cost.machine_class}: {_count(cost.runs, 'run')}, {cost.hours:.2f} machine-hours"
        if brief.price_per_hour is not None:
            text += f", {_money(brief, cost.hours)}"
        if cost.untimed_runs:
            text += f" ({cost.untimed_runs} without a recorded duration, not counted)"
        items.append(text + ".")
    price = (
        f" at {brief.currency}{brief.price_per_hour:.2f} per machine-hour"
        if brief.price_per_hour is not None
        else " (give --price-per-hour for a cost)"
    )
    return Section(title, (f"Machine time of the recorded runs{price}.",), tuple(items))


def _money(brief: Brief, hours: float) -> str:
    assert brief.price_per_hour is not None
    return f"{brief.currency}{hours * brief.price_per_hour:,.2f}"


def render_brief_markdown(brief: Brief) -> str:
    lines = [f"# {md_escape(brief_title(brief))}", ""]
    for section in brief_sections(brief):
        lines += [f"## {md_escape(section.title)}", ""]
        lines += [" ".join(md_escape(s) for s in section.sentences), ""]
        if section.items:
            lines += [f"- {md_escape(item)}" for item in section.items]
            lines.append("")
    return "\n".join(lines)


def render_brief_html(brief: Brief) -> str:
    """One self-contained page, laid out to print on one sheet (the PDF is its print)."""
    title = brief_title(brief)
    body = [f"<h1>{escape(title)}</h1>"]
    for section in brief_sections(brief):
        body.append(f"<section><h2>{escape(section.title)}</h2>")
        body.append(f"<p>{' '.join(escape(s) for s in section.sentences)}</p>")
        if section.items:
            body.append("<ul>" + "".join(f"<li>{escape(i)}</li>" for i in section.items) + "</ul>")
        body.append("</section>")
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            _content_security_policy([_WATCHDOG]),
            f"<script>{_WATCHDOG}</script>",
            f"<title>{escape(title)}</title>",
            f"<style>{BRIEF_STYLE}</style>",
            "</head>",
            '<body class="brief">',
            *body,
            "<footer>Made by pytest-perfgate (perfgate brief) from the run history.</footer>",
            "</body>",
            "</html>",
            "",
        ]
    )


BRIEF_STYLE = """
:root { color-scheme: light; }
body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  margin: 0 auto; max-width: 800px; padding: 1em 1.5em 2em; color: #111827; }
h1 { font-size: 1.5em; margin: 0.2em 0 0.6em; }
h2 { font-size: 1.1em; margin: 1.2em 0 0.3em; border-bottom: 1px solid #e5e7eb; }
p, ul { margin: 0.3em 0; }
li { margin: 0.15em 0; word-break: break-word; }
footer { margin-top: 2em; color: #6b7280; font-size: 0.85em; }
@page { size: A4; margin: 14mm; }
@media print { body { padding: 0; font-size: 11.5px; } }
"""


#: Browsers that print a page to PDF headless, in the order tried.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class PdfError(Exception):
    """The brief could not be printed to PDF (no browser, or the browser failed)."""


def print_pdf(page: str, pdf: Path, *, timeout: float = 120.0) -> None:
    """Print the HTML ``page`` to ``pdf`` with a headless Chromium (``--print-to-pdf``)."""
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    if browser is None:
        raise PdfError(
            "no Chromium found for --format pdf (Debian: apt-get install chromium); "
            "--format html writes the same page"
        )
    with tempfile.TemporaryDirectory(prefix="perfgate-brief-") as scratch:
        source = Path(scratch) / "brief.html"
        source.write_text(page, encoding="utf-8")
        target = pdf.resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        completed = subprocess.run(
            [
                browser,
                "--headless",
                "--disable-gpu",
                "--no-sandbox",  # as root in a container, Chromium's sandbox refuses to start
                "--no-first-run",
                "--disable-dev-shm-usage",
                f"--user-data-dir={Path(scratch) / 'profile'}",
                "--no-pdf-header-footer",
                f"--print-to-pdf={target}",
                source.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    if completed.returncode != 0 or not target.is_file():
        raise PdfError(f"{browser} failed ({completed.returncode}): {completed.stderr[-500:]}")


def _count(n: int, noun: str) -> str:
    plural = noun if n == 1 or noun.endswith("s") else noun + "s"
    return f"{n} {plural}"


__all__: Sequence[str] = (
    "Brief",
    "BriefChange",
    "BudgetRisk",
    "MachineCost",
    "PdfError",
    "Section",
    "StoppedRegression",
    "brief_sections",
    "brief_title",
    "make_brief",
    "print_pdf",
    "render_brief_html",
    "render_brief_markdown",
)
