"""The Markdown report (``--perf-markdown``, ``perfgate report --markdown``), made for a
pull-request comment or a GitHub job summary: a headline with the counts, regressions
first, unchanged measurements folded away.

Everything from a test (its id, a parametrization can hold any character) and every value
is escaped, so that it shows as the text it is and can neither break a table nor inject
HTML into the page it is posted on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..model import (
    Comparison,
    Direction,
    Verdict,
    format_change,
    format_detectable,
    format_quantity,
    printable,
)
from ..results import RunResults
from .hints import GENERIC_REFRESH, blind_spot_hint, with_command
from .summary import extra_info_text, shared_reasons

#: Lets a bot or a workflow find the comment it posted before (to update, not repeat it).
MARKER = "<!-- pytest-perfgate report -->"

#: How the headline counts a verdict: (singular, plural).
_COUNTED: dict[Verdict, tuple[str, str]] = {
    Verdict.REGRESSED: ("regression", "regressions"),
    Verdict.INCONCLUSIVE: ("inconclusive", "inconclusive"),
    Verdict.IMPROVED: ("improvement", "improvements"),
    Verdict.INCOMPARABLE: ("incomparable", "incomparable"),
    Verdict.NEW: ("new", "new"),
    Verdict.UNCHANGED: ("unchanged", "unchanged"),
}

# Inline Markdown syntax (GitHub flavour: tables, strikethrough, math), escaped with a
# backslash. Block syntax (#, -, >) cannot start inside a table cell, so it needs none.
_INLINE = re.compile(r"([\\`*_\[\]~$|])")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
#: What GitHub turns into a notification or a link in a comment: @mentions, #123 and
#: GH-123 references, bare URLs (http://, www.). A zero-width space after the trigger
#: keeps the text as it reads and takes the link away. Every "www." (not only at a word
#: start): GitHub also links one after "_", which the escaped text has before it.
_LINKING = re.compile(r"(?:@|#|\bGH-)(?=\w)|:(?=//)|www(?=\.)", re.IGNORECASE)
_ZERO_WIDTH_SPACE = "\u200b"


def escape(text: str) -> str:
    """``text`` as literal Markdown that is also safe in a table cell.

    Control and bidirectional characters (a newline would end the table row, U+202E
    reverse it) become visible escapes, Markdown punctuation is backslash-escaped and
    ``<``, ``>``, ``&`` become entities, so no tag, link, code span or emphasis can come
    out of a test id; and no @mention, issue reference or bare URL either.
    """
    text = _INLINE.sub(r"\\\1", printable(text))
    text = "".join(_HTML.get(char, char) for char in text)
    return _LINKING.sub(lambda m: m.group() + _ZERO_WIDTH_SPACE, text)


def headline_counts(comparisons: Sequence[Comparison]) -> str:
    """``"1 regression, 2 inconclusive, 14 unchanged"``, in report order."""
    counts = dict.fromkeys(_COUNTED, 0)
    for c in comparisons:
        counts[c.verdict] += 1
    return ", ".join(
        f"{n} {_COUNTED[v][0] if n == 1 else _COUNTED[v][1]}" for v, n in counts.items() if n
    )


#: GitHub refuses a comment over 65,536 characters; the rest of the budget is for the
#: comments that tools such as sticky-pull-request-comment add.
MAX_CHARS = 65_000


@dataclass(slots=True)
class _Section:
    opening: list[str]  #: heading (or <details>) and the table header
    rows: list[str]
    closing: list[str]
    kept: int = 0

    def lines(self) -> list[str]:
        left_out = len(self.rows) - self.kept
        note = (
            [
                f"_{left_out} more left out to keep the report within a comment's size limit: "
                "every measurement is in the results file (--perf-json)._",
                "",
            ]
            if left_out
            else []
        )
        # A table with every row left out loses its header too.
        opening = self.opening if self.kept else self.opening[:-2]
        return [*opening, *self.rows[: self.kept], "", *note, *self.closing]


def render_markdown(
    run: RunResults, *, max_chars: int = MAX_CHARS, refresh_command: str = GENERIC_REFRESH
) -> str:
    """The whole report, ending with a newline. Beyond ``max_chars``, rows are left out,
    unchanged ones first and regressions last, with a note saying how many.
    ``refresh_command`` is the run's own command turned into a refresh (hints.py)."""
    comparisons = sorted(run.comparisons, key=lambda c: c.label)
    head = [MARKER]
    if not comparisons:
        head += ["### perfgate: no perf measurements in this run", ""]
        return "\n".join(head)
    head += [f"### perfgate: {_outcome(run, comparisons)}: {headline_counts(comparisons)}", ""]
    if any(c.verdict is Verdict.REGRESSED for c in comparisons):
        head += [f"To accept this change: `{refresh_command}`", ""]
    head += [_context(run), ""]
    blind = blind_spot_hint([c.detectable_change for c in comparisons])
    if blind:
        head += [blind[0].upper() + blind[1:] + ".", ""]  # our own text: no escaping
    sections = _sections(run, comparisons, refresh_command)
    for section in sections:
        section.kept = len(section.rows)
    size = sum(len(line) + 1 for line in head) + sum(
        len(line) + 1 for s in sections for line in s.lines()
    )
    for section in reversed(sections):  # the least important rows go first
        if size <= max_chars:
            break
        size += 200  # room for the note
        while section.kept and size > max_chars:
            section.kept -= 1
            size -= len(section.rows[section.kept]) + 1
    return "\n".join(head + [line for s in sections for line in s.lines()])


def _outcome(run: RunResults, comparisons: Sequence[Comparison]) -> str:
    """Pass or fail first: what a reviewer looks for before any figure."""
    if not any(c.verdict.fails for c in comparisons):
        return "✅ pass"
    if run.settings.get("mode", "gate") == "gate":
        return "❌ fail"
    return f"⚠️ pass (mode {run.settings['mode']}: regressions are reported, not failed)"


def _sections(
    run: RunResults, comparisons: Sequence[Comparison], refresh_command: str
) -> list[_Section]:
    """Regressed, inconclusive, improved, then incomparable or new (one section per reason
    that several share, the rest in one table), then unchanged, folded away."""
    threshold = run.settings.get("threshold")
    # benchmark.extra_info goes with its test's notes (after grouping: it is not a reason)
    extra = {t.test_id: extra_info_text(t.extra_info) for t in run.tests if t.extra_info}
    by_verdict = {v: [c for c in comparisons if c.verdict is v] for v in Verdict}
    sections = [
        _Section(
            [f"#### {title}", "", *_change_header(with_q)],
            [_change_row(c, threshold, with_q, extra) for c in group],
            [],
        )
        for title, group, with_q in (
            ("Regressed", by_verdict[Verdict.REGRESSED], True),
            ("Inconclusive", by_verdict[Verdict.INCONCLUSIVE], True),
            ("Improved", by_verdict[Verdict.IMPROVED], False),
        )
    ]
    other = by_verdict[Verdict.INCOMPARABLE] + by_verdict[Verdict.NEW]
    shared = shared_reasons(other)
    alone = [c for c in other if (c.verdict, c.notes) not in shared]
    for (verdict, notes), group in shared.items():
        reason = escape(with_command("; ".join(notes) or "no baseline", refresh_command))
        sections.append(
            _Section(
                [
                    f"**{len(group)} {_COUNTED[verdict][1]}**: {reason}",
                    "",
                    "<details>",
                    f"<summary>the {len(group)} measurements</summary>",
                    "",
                    *_SHARED_HEADER,
                ],
                [
                    _row([escape(c.label), escape(_now(c)), escape(extra.get(c.test_id, ""))])
                    for c in group
                ],
                ["</details>", ""],
            )
        )
    if alone:
        sections.append(
            _Section(
                ["#### Incomparable or new", "", *_OTHER_HEADER],
                [_other_row(c, refresh_command, extra) for c in alone],
                [],
            )
        )
    unchanged = by_verdict[Verdict.UNCHANGED]
    # A blank line after <summary> makes GitHub render the table inside as Markdown.
    sections.append(
        _Section(
            [
                "<details>",
                f"<summary>{len(unchanged)} unchanged</summary>",
                "",
                *_change_header(False),
            ],
            [_change_row(c, threshold, False, extra) for c in unchanged],
            ["</details>", ""],
        )
    )
    return [s for s in sections if s.rows]


def _context(run: RunResults) -> str:
    """What a reader needs to weigh the verdicts: settings, run size, commit."""
    parts = []
    settings = run.settings
    if isinstance(settings.get("threshold"), int | float):
        parts.append(f"threshold {settings['threshold'] * 100:.3g}%")
    if isinstance(settings.get("alpha"), int | float):
        parts.append(f"alpha {settings['alpha']:g} over the suite")
    if settings.get("mode"):
        parts.append(f"mode {settings['mode']}")
    tests = len(run.tests)
    measured = len(run.comparisons)
    parts.append(
        f"{measured} measurement{'' if measured == 1 else 's'} "
        f"in {tests} perf test{'' if tests == 1 else 's'}"
    )
    if run.commit:
        parts.append(f"commit {run.commit[:12]}")
    return "_" + escape(", ".join(parts)) + "_"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _change_header(with_q: bool) -> tuple[str, str]:
    """q is shown where it weighs a possible regression: on an improvement or an unchanged
    row, the probability of being worse beyond the threshold means nothing to a reader."""
    names: tuple[str, ...] = ("test [measurement]", "baseline", "now", "change", "95% CI")
    names += ("detects",)  # the minimum detectable change
    names += ("q", "notes") if with_q else ("notes",)
    aligns: tuple[str, ...] = ("---", "---:", "---:", "---:", "---:", "---:") + (
        ("---:", "---") if with_q else ("---",)
    )
    return _row(names), _row(aligns)


_OTHER_HEADER = (_row(("test [measurement]", "verdict", "now", "notes")), _row(("---",) * 4))
_SHARED_HEADER = (_row(("test [measurement]", "now", "notes")), _row(("---", "---:", "---")))


def _change_row(c: Comparison, threshold: object, with_q: bool, extra: Mapping[str, str]) -> str:
    reference = c.reference_median
    interval = (
        "-"
        if c.ci_low is None or c.ci_high is None
        else f"{format_change(c.ci_low)} .. {format_change(c.ci_high)}"
    )
    cells = [
        c.label,
        "-" if reference is None else format_quantity(reference, c.unit),
        _now(c),
        "-" if c.ratio is None else format_change(c.ratio),
        interval,
        format_detectable(c.detectable_change),
    ]
    if with_q:
        cells.append(_q(c.q_value))
    # This row's own threshold (a marker's), where it is not the run's headline one.
    own = f"threshold {c.threshold * 100:.3g}%" if c.threshold != threshold else ""
    cells.append("; ".join(filter(None, [own, _notes(c), extra.get(c.test_id, "")])))
    return _row([escape(cell) for cell in cells])


def _other_row(c: Comparison, refresh_command: str, extra: Mapping[str, str]) -> str:
    notes = "; ".join(
        filter(None, [with_command(_notes(c), refresh_command), extra.get(c.test_id, "")])
    )
    return _row([escape(cell) for cell in (c.label, c.verdict.value, _now(c), notes)])


def _now(c: Comparison) -> str:
    text = format_quantity(c.now, c.unit)
    return text if c.statistic == "median" else f"{c.statistic} {text}"


def _q(q: float | None) -> str:
    if q is None:
        return "-"
    # A tail probability can underflow to 0; print the floor, not a false zero.
    return f"{q:.2g}" if q > 0 else "<1e-300"


def _notes(c: Comparison) -> str:
    notes = list(c.notes)
    if c.direction is Direction.HIGHER_IS_BETTER:
        notes.insert(0, "higher is better")
    return "; ".join(notes)


__all__: Sequence[str] = ("MARKER", "MAX_CHARS", "escape", "headline_counts", "render_markdown")
