"""Paired A/B: two long-lived pytest processes take turns, batch by batch, and a
coordinator judges each measurement on the log ratios of adjacent batches.

Whole-run alternation (ab.py) cancels machine drift slower than a pytest run; pairing
batches of a few milliseconds cancels drift slower than a pair. The ``perfgate ab``
process is the coordinator. It listens on a local socket whose path the workers find in
:data:`SOCKET_VARIABLE`; each worker (plugin/paired_worker.py) asks for its turn before
every batch, measures, reports the batch's level and waits. Only one side measures at a
time, so the two never compete for the cores.

This module holds the three parts that do not need pytest:

* the protocol (its names and encoding in paired_protocol.py): one JSON object per
  line, worker -> coordinator ``hello`` (side and the perf tests it collected),
  ``arrive`` (a measurement is about to start), ``level`` (a batch's level),
  ``finished`` (a test ended); coordinator -> worker ``go`` (measure one batch), ``stop``
  (end this measurement), ``solo`` (measure alone, unpaired);
* :class:`Coordinator`: a pure state machine, fed events with the time they happened
  and answering with the replies to send, so its decisions are tested with scripted
  levels and an injected clock;
* :func:`paired_decision`: the verdict on the log ratios, and :class:`CoordinatorServer`,
  the thin socket shell around the coordinator.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import math
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, final

from .model import Direction, Verdict
from .paired_protocol import SIDES, decode, encode

if TYPE_CHECKING:  # stats imports numpy and scipy: a worker loads this module at start-up
    from .stats import Decision

#: Paired A/B's practical threshold where the user sets none. On a 2-core VM a paired
#: verdict's standard error was 0.38-1.18% (10th-90th percentile, median 0.6%), where a
#: stored baseline's run level moves by 3.5% (sd), so a 1% margin keeps the false-alarm
#: level and a 5% slowdown clears it by 4% instead of 3% (docs/performance.md).
PAIRED_THRESHOLD = 0.01
#: Paired A/B's warm-up where the user sets none: it runs inside the paired clock, once
#: per process and measurement, and both sides warm alike, so it is kept short.
PAIRED_WARMUP_TIME = 0.02

#: Identity of a measurement on both sides: (pytest node id, measurement name). The
#: fixture refuses a name twice in one test, so the name stands for the call index too.
Key = tuple[str, str]
#: A message to send: (side, JSON object).
Reply = tuple[str, dict[str, Any]]


def other(side: str) -> str:
    return "candidate" if side == "base" else "base"


# -- statistics ---------------------------------------------------------------------------


#: Share of pairs trimmed from each end before the mean (Yuen's trimmed t-test).
TRIM = 0.2


@final
@dataclass(frozen=True, slots=True)
class TrimmedMean:
    """The 20%-trimmed mean of log ratios and what its t-test needs."""

    mean: float  #: trimmed mean
    se: float  #: its standard error (winsorized variance)
    df: int  #: degrees of freedom of its t distribution


def trimmed_mean(values: Sequence[float], trim: float = TRIM) -> TrimmedMean:
    """Yuen's trimmed mean: a pair whose batch met a neighbour's burst on one side (a
    ratio of 3 on a busy machine) moves it no more than any other trimmed pair."""
    n = len(values)
    if n < 3:
        raise ValueError("a paired decision needs at least 3 pairs")
    ordered = sorted(values)
    g = math.floor(trim * n)
    kept = ordered[g : n - g]
    mean = math.fsum(kept) / len(kept)
    winsorized = [ordered[g]] * g + kept + [ordered[n - g - 1]] * g
    w_mean = math.fsum(winsorized) / n
    w_var = math.fsum((x - w_mean) ** 2 for x in winsorized) / (n - 1)
    se = math.sqrt(w_var) / ((1 - 2 * g / n) * math.sqrt(n))
    return TrimmedMean(mean, se, len(kept) - 1)


def paired_decision(
    log_ratios: Sequence[float], *, threshold: float, alpha: float, direction: Direction
) -> Decision:
    """The verdict on the log ratios (candidate over base) of one pair of processes.

    A one-sided trimmed t-test on their centre with the practical threshold folded in,
    in both directions, as the gate's decision is (stats.compare); within one pair of
    processes the pairs' own spread is the whole noise, since drift slower than a pair
    has cancelled out of every ratio.
    """
    centre = trimmed_mean(log_ratios)
    return _t_decision(centre.mean, centre.se, centre.df, threshold, alpha, direction)


def _t_decision(
    mean: float, se: float, df: int, threshold: float, alpha: float, direction: Direction
) -> Decision:
    """The gate's one decision rule on a mean log ratio, with a Student-t of ``df``
    degrees of freedom; the paired standard error is the whole noise."""
    from .stats import decide_log_difference

    return decide_log_difference(mean, se, direction, threshold, alpha, se, df=df)


#: Below this p, a measurement's rounds disagree more than the suite's process noise
#: allows (one pair of processes landed far apart): INCONCLUSIVE, never REGRESSED.
ROUNDS_DISAGREE = 0.001
#: The least process noise assumed (relative sd), however quiet the suite's rounds.
MIN_PROCESS_NOISE = 0.002


def process_noise(rounds: Sequence[Sequence[PairedResult]]) -> float:
    """How far one pair of processes lands from another (sd of log ratio), over the
    suite: from how each measurement's rounds differ, through the median absolute
    difference, so the odd measurement whose processes landed far apart does not set
    it. Every process has its own heap layout and hash seed; pairs cancel drift, not
    that."""
    differences = []
    for results in rounds:
        centres = [trimmed_mean(r.log_ratios).mean for r in results if r.pairs >= 3]
        differences += [abs(a - b) for a, b in itertools.pairwise(centres)]
    if not differences:
        return MIN_PROCESS_NOISE
    median = sorted(differences)[len(differences) // 2]
    return max(median / (0.6745 * math.sqrt(2)), MIN_PROCESS_NOISE)


@final
@dataclass(frozen=True, slots=True)
class Combined:
    """One measurement over its rounds: the mean of their trimmed means."""

    mean: float  #: log ratio, candidate over base
    se: float  #: its standard error (see _combine)
    df: int  #: degrees of freedom of its t distribution
    disagreement: str  #: why the rounds disagree, or ""
    note: str = ""  #: a round left out, and why


def combined(results: Sequence[PairedResult], noise: float) -> Combined | None:
    """The rounds with 3 pairs or more, combined; None when there are none.

    Rounds that differ by more than their own errors and the suite's process ``noise``
    allow (p below ROUNDS_DISAGREE) disagree. With three rounds or more, the one round
    farthest from the others is left out when the rest then agree: a process that
    landed 15% off is a known way for a run to go wrong (memory layout), not a change.
    """
    centres = [trimmed_mean(r.log_ratios) for r in results if r.pairs >= 3]
    if not centres:
        return None
    both = _combine(centres, noise)
    if both.disagreement and len(centres) >= 3:
        middle = sorted(c.mean for c in centres)[len(centres) // 2]
        odd = max(range(len(centres)), key=lambda i: abs(centres[i].mean - middle))
        rest = _combine([c for i, c in enumerate(centres) if i != odd], noise)
        if not rest.disagreement:
            note = (
                f"left out a round at {math.expm1(centres[odd].mean):+.1%} (processes landed apart)"
            )
            return replace(rest, disagreement="", note=note)
    return both


#: From this many rounds on, a measurement's own rounds measure its process noise too.
MODERATE_FROM = 3


def _combine(centres: Sequence[TrimmedMean], noise: float) -> Combined:
    """The mean of the rounds' centres and its standard error.

    With MODERATE_FROM rounds or more, the suite's process noise is pooled with this
    measurement's own spread of round centres, each weighing k - 1 degrees of freedom (a
    moderated t): tests differ (on this VM a C hash moves 0.4% between processes, a
    string join 2.5%), and the suite's median figure alone made the noisy ones look
    surer than they were. Both figures include each round's own error.
    """
    from scipy import stats as scipy_stats

    k = len(centres)
    mean = math.fsum(c.mean for c in centres) / k
    if k >= MODERATE_FROM:
        own = math.fsum((c.mean - mean) ** 2 for c in centres) / (k - 1)
        se, df = math.sqrt((noise**2 + own) / 2 / k), 2 * (k - 1)
    else:
        se = math.sqrt(math.fsum(c.se**2 for c in centres) / k**2 + noise**2 / k)
        df = sum(c.df for c in centres)
    disagreement = ""
    if k >= 2:
        spread = math.fsum((c.mean - mean) ** 2 / (c.se**2 + noise**2) for c in centres)
        if float(scipy_stats.chi2.sf(spread, k - 1)) < ROUNDS_DISAGREE:
            changes = ", ".join(f"{math.expm1(c.mean):+.1%}" for c in centres)
            disagreement = (
                f"rounds disagree ({changes}): processes landed apart, as memory layout "
                "can move a test between processes (docs/how-to/ab-mode.md)"
            )
    return Combined(mean, se, df, disagreement)


#: Two layouts are told apart only where the gap between them is at least this many
#: times the spread of the processes on one layout (sd): four sds between the levels of
#: processes on one layout is rare, and a side that shows no such gap has one layout.
LAYOUT_GAP = 4.0
#: Below this p, the two sides' gaps between their layouts differ: the change did not
#: scale both layouts alike, and the two-level reading does not hold.
GAPS_DIFFER = 0.01


@final
@dataclass(frozen=True, slots=True)
class TwoLevels:
    """A measurement whose processes ran at two levels (memory layouts), judged within
    each: log level = side's level + gap x (on the higher layout) + noise, fitted to every
    process at once, so a change is the same change on either layout whatever share of
    each side's processes landed on which.

    A side whose processes all landed on one layout cannot say which one; ``changes``
    then holds the change read both ways (that side on the lower layout, on the higher),
    and a verdict stands only where both readings give it.
    """

    changes: tuple[Combined, ...]  #: candidate over base, within a layout; one per reading
    gap: float  #: the higher layout's level over the lower one's (log)
    higher: tuple[int | None, int | None]  #: processes on the higher layout (None: unknown)
    processes: int  #: processes on each side

    def describe(self) -> str:
        def share(side: str, count: int | None) -> str:
            if count is None:
                return f"{side}: all on one level, which one unknown"
            return f"{side}: {count} of {self.processes} on the higher"

        sides = "; ".join(share(s, c) for s, c in zip(SIDES, self.higher, strict=True))
        return f"processes ran at two levels {math.expm1(self.gap):.0%} apart ({sides})"


def two_levels(results: Sequence[PairedResult], noise: float) -> TwoLevels | None:
    """The change within a layout where the processes fell into two levels; None where
    they did not, or where neither side shows both (the gap is then unknown).

    A process's level is the median of its turns. A side shows two layouts where its
    widest gap between process levels is LAYOUT_GAP spreads wide, and a side shows one
    where it has no such gap; where both show two, their gaps must agree (a change that
    scales both layouts alike keeps the gap).
    """
    import numpy as np

    rounds = [r for r in results if r.pairs >= 3]
    if len(rounds) < 3:
        return None
    sides = [
        np.sort([float(np.median(np.log(getattr(r, side)))) for r in rounds]) for side in SIDES
    ]
    cuts = [int(np.argmax(np.diff(levels))) + 1 for levels in sides]
    for split in ((True, True), (True, False), (False, True)):
        rss = _layouts_hold(sides, cuts, split)
        if rss is not None:
            return _within_levels(sides, cuts, split, rss, noise)
    return None


def _layouts_hold(
    sides: Sequence[Any], cuts: Sequence[int], split: tuple[bool, bool]
) -> float | None:
    """Whether the sides that ``split`` names show two layouts and the others one: the
    residual sum of squares about the layouts' levels if so, else None."""
    import numpy as np

    residuals, levels_fitted = [], 0
    for levels, cut, splits in zip(sides, cuts, split, strict=True):
        parts = (levels[:cut], levels[cut:]) if splits else (levels,)
        residuals += [float(np.sum((part - part.mean()) ** 2)) for part in parts]
        levels_fitted += len(parts)
    rss = math.fsum(residuals)
    within = sum(len(levels) for levels in sides) - levels_fitted
    spread = math.sqrt(max(rss / within, (MIN_PROCESS_NOISE / math.sqrt(2)) ** 2))
    for levels, cut, splits in zip(sides, cuts, split, strict=True):
        if (float(levels[cut] - levels[cut - 1]) >= LAYOUT_GAP * spread) != splits:
            return None
    return rss


def _within_levels(
    sides: Sequence[Any], cuts: Sequence[int], split: tuple[bool, bool], rss: float, noise: float
) -> TwoLevels | None:
    """The change within a layout, fitted to every process with one gap shared by both
    sides; None where the sides' own gaps differ or the fit finds no gap."""
    import numpy as np
    from scipy import stats as scipy_stats

    n = sum(len(levels) for levels in sides)
    y = np.concatenate(sides)
    candidate = np.concatenate([np.full(len(levels), float(i)) for i, levels in enumerate(sides)])
    higher = [
        (np.arange(len(levels)) >= cut).astype(float)
        for levels, cut in zip(sides, cuts, strict=True)
    ]
    # A side on one layout may be on either: read it both ways.
    options = [
        [h] if splits else [np.zeros_like(h), np.ones_like(h)]
        for h, splits in zip(higher, split, strict=True)
    ]
    readings, gaps = [], []
    for labels in itertools.product(*options):
        design = np.column_stack([np.ones(n), candidate, np.concatenate(labels)])
        fit, *_ = np.linalg.lstsq(design, y, rcond=None)
        shared_rss = float(np.sum((y - design @ fit) ** 2))
        if all(split):  # do both sides' own gaps fit one shared gap?
            within = n - 4
            f = (shared_rss - rss) / max(rss / within, 1e-12)
            if float(scipy_stats.f.sf(f, 1, within)) < GAPS_DIFFER:
                return None
        # The change's error: this measurement's own spread pooled with the suite's
        # process noise (one process: noise / sqrt 2), as _combine pools them.
        variance = ((noise / math.sqrt(2)) ** 2 + shared_rss / (n - 3)) / 2
        leverage = float(np.linalg.inv(design.T @ design)[1, 1])
        readings.append(Combined(float(fit[1]), math.sqrt(variance * leverage), 2 * (n - 3), ""))
        gaps.append(float(fit[2]))
    if min(gaps) <= 0:
        return None
    counts = [int(h.sum()) if splits else None for h, splits in zip(higher, split, strict=True)]
    return TwoLevels(tuple(readings), gaps[0], (counts[0], counts[1]), len(sides[0]))


def rounds_decision(
    results: Sequence[PairedResult],
    *,
    noise: float,
    threshold: float,
    alpha: float,
    direction: Direction = Direction.LOWER_IS_BETTER,
) -> tuple[Decision, str] | None:
    """The verdict on one measurement over every round (pair of processes) it was
    measured in, and a note: why its rounds disagree (which makes it INCONCLUSIVE),
    which round was left out, or that it was judged within two layouts. None with fewer
    than 3 pairs in every round."""
    both = combined(results, noise)
    if both is None:
        return None
    decision = _t_decision(both.mean, both.se, both.df, threshold, alpha, direction)
    if not both.disagreement:
        return decision, both.note
    layouts = two_levels(results, noise)
    if layouts is None:
        return replace(decision, verdict=Verdict.INCONCLUSIVE), both.disagreement
    readings = [
        _t_decision(c.mean, c.se, c.df, threshold, alpha, direction) for c in layouts.changes
    ]
    if len({r.verdict for r in readings}) > 1:
        either = " or ".join(f"{r.ratio - 1:+.1%}" for r in readings)
        note = f"{layouts.describe()}: {either} within a level, which cannot be told"
        return replace(decision, verdict=Verdict.INCONCLUSIVE), note
    # Where both readings agree, the one nearer no change is reported: the smaller claim.
    nearest = min(readings, key=lambda r: abs(math.log(r.ratio)))
    return nearest, f"{layouts.describe()}: judged within each level"


def clearly_unchanged(
    log_ratios: Sequence[float], *, threshold: float, level: float, direction: Direction
) -> bool:
    """Whether one round's change is inside the threshold both ways at ``level`` (both
    one-sided bounds inside it): that round may stop measuring it."""
    from scipy import stats as scipy_stats

    centre = trimmed_mean(log_ratios)
    reach = float(scipy_stats.t(df=centre.df).ppf(1 - level)) * centre.se
    worse = centre.mean if direction is Direction.LOWER_IS_BETTER else -centre.mean
    delta = math.log1p(threshold)
    return worse + reach < delta and worse - reach > -delta


# -- the coordinator ----------------------------------------------------------------------


@final
@dataclass(frozen=True, slots=True)
class PairRules:
    """How the coordinator spends pairs. Times in seconds."""

    alpha: float = 0.05  #: false-alarm level of the whole suite
    min_pairs: int = 6  #: the first look, in pairs
    growth: float = 1.3  #: each look after that comes this much later (in pairs)
    max_looks: int = 10  #: the level of one measurement is split evenly over these looks
    #: Early stop as UNCHANGED when the change is inside the threshold at this level.
    unchanged_level: float = 0.05
    #: Pairs of processes, all started at once, taking turns one at a time: each
    #: process lands at its own level, so the verdict needs several pairs of them.
    rounds: int = 6
    #: Paired measuring of one measurement at most, all rounds together.
    measurement_time: float = 1.5
    total_time: float | None = None  #: of all measurements together; None: no cap
    wait_timeout: float = 120.0  #: a side that does not answer for this long is left out
    #: The work in one turn (at least three samples). Pairs beyond a few per round add
    #: little: the rounds' process noise dominates, so turns are short and rounds many.
    batch_time: float = 0.01

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be between 0 and 1")
        if self.rounds < 1:
            raise ValueError("rounds must be at least 1")
        if self.min_pairs < 3:
            raise ValueError("min_pairs must be at least 3")
        if self.growth <= 1 or self.max_looks < 1:
            raise ValueError("growth must be above 1 and max_looks at least 1")
        if self.measurement_time <= 0 or self.wait_timeout <= 0 or self.batch_time <= 0:
            raise ValueError("times must be positive")

    def look_points(self) -> tuple[int, ...]:
        """The numbers of pairs at which the coordinator looks."""
        points: list[int] = []
        for k in range(self.max_looks):
            n = math.ceil(self.min_pairs * self.growth**k)
            points.append(max(n, points[-1] + 1) if points else n)
        return tuple(points)


@final
@dataclass(frozen=True, slots=True)
class PairedResult:
    """What the coordinator decided about one measurement."""

    key: Key
    base: tuple[float, ...]  #: batch levels of the base side, in pair order
    candidate: tuple[float, ...]  #: batch levels of the candidate side
    decision: Decision | None  #: None when fewer than 3 pairs were taken
    looks: int  #: looks taken
    stop_reason: str  #: "clear", "time budget", "look limit", or why it ended early
    seconds: float  #: paired measuring time
    threshold: float  #: the practical threshold it was judged with
    alpha: float  #: the level of each look in this round

    @property
    def pairs(self) -> int:
        return min(len(self.base), len(self.candidate))

    @property
    def log_ratios(self) -> tuple[float, ...]:
        return tuple(
            math.log(c) - math.log(b) for b, c in zip(self.base, self.candidate, strict=False)
        )


@dataclass(slots=True)
class _Side:
    tests: frozenset[str] | None = None  #: perf tests it collected (None: not said yet)
    finished: set[str] = field(default_factory=set)
    gone: bool = False
    waiting: Key | None = None  #: the measurement it waits to start
    awaiting: bool = False  #: it asked (arrive, level) and waits for a reply
    since: float = 0.0  #: when it began waiting (for the timeout)
    threshold: float = 0.02


@dataclass(slots=True)
class _Active:
    key: Key
    threshold: float
    started: float
    deadline: float
    levels: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in SIDES})
    turn: str = "base"  #: whose level is awaited
    turn_since: float = 0.0
    looks: int = 0


class Coordinator:
    """Pairs the batches of two workers; every method takes the event's time and returns
    the replies to send. Not thread-safe: the server holds a lock around it."""

    def __init__(self, rules: PairRules, opens: str = "base") -> None:
        self.rules = rules
        #: The side that opens every even pair (ABBA...). Rounds alternate it: they
        #: measure at the same time, so a neighbour's burst that lasts several turns
        #: then meets both sides across the rounds, not one side in all of them.
        self.opens = opens
        self.sides = {s: _Side() for s in SIDES}
        self.results: dict[Key, PairedResult] = {}
        self.unpaired: dict[Key, str] = {}  #: measured on one side alone -> why
        self.spent = 0.0  #: paired measuring time so far
        self._active: _Active | None = None
        self._points = rules.look_points()

    # -- events -----------------------------------------------------------------------
    def hello(self, side: str, tests: Sequence[str], now: float) -> list[Reply]:
        self.sides[side].tests = frozenset(tests)
        return self._release(now)

    def arrive(self, side: str, key: Key, threshold: float, now: float) -> list[Reply]:
        replies: list[Reply] = []
        if self._active is not None:  # it left the measurement (its test failed there)
            replies += self._end(f"the {side} side left it", now)
        state = self.sides[side]
        state.waiting, state.since, state.threshold, state.awaiting = key, now, threshold, True
        partner = self.sides[other(side)]
        if partner.waiting == key:
            return replies + self._begin(key, now)
        return replies + self._release(now)

    def level(self, side: str, value: float, now: float) -> list[Reply]:
        self.sides[side].awaiting = True
        active = self._active
        if active is None:  # it ended while this side measured (the other side left)
            return self._reply(side, "stop")
        if active.turn != side or not value > 0 or not math.isfinite(value):
            # Out of turn or nonsense: end the measurement rather than pair wrongly.
            return self._end("protocol error", now)
        active.levels[side].append(value)
        base, candidate = active.levels["base"], active.levels["candidate"]
        if len(base) != len(candidate):
            return self._give_turn(other(side), now)
        return self._after_pair(now)

    def finished(self, side: str, test_id: str, now: float) -> list[Reply]:
        self.sides[side].finished.add(test_id)
        replies: list[Reply] = []
        if self._active is not None and self._active.key[0] == test_id:
            replies += self._end(f"the {side} side's test ended", now)
        return replies + self._release(now)

    def gone(self, side: str, now: float) -> list[Reply]:
        self.sides[side].gone = True
        self.sides[side].waiting = None
        self.sides[side].awaiting = False
        replies: list[Reply] = []
        if self._active is not None:
            replies += self._end(f"the {side} side ended", now)
        return replies + self._release(now)

    def tick(self, now: float) -> list[Reply]:
        """Time passes: a turn or a wait that lasted past the timeout ends."""
        active = self._active
        timeout = self.rules.wait_timeout
        if active is not None and now - active.turn_since > timeout:
            return self._end(f"the {active.turn} side did not answer for {timeout:.0f}s", now)
        return self._release(now)

    # -- pairing ----------------------------------------------------------------------
    def _begin(self, key: Key, now: float) -> list[Reply]:
        for state in self.sides.values():
            state.waiting = None
        threshold = self.sides["candidate"].threshold
        self._active = _Active(key, threshold, now, now + self._time_for_one(), turn_since=now)
        return self._give_turn(self.opens, now)

    def _time_for_one(self) -> float:
        """This measurement's share of the budget: its own cap, or what is left of the
        total over the tests still to come, whichever is less."""
        rules = self.rules
        if rules.total_time is None:
            return rules.measurement_time
        base = self.sides["base"]
        left = len(base.tests or ()) - len(base.finished & (base.tests or frozenset()))
        share = max(rules.total_time - self.spent, 0.0) / max(left, 1)
        return max(min(rules.measurement_time, share), rules.batch_time * 2 * rules.min_pairs)

    def _give_turn(self, side: str, now: float) -> list[Reply]:
        assert self._active is not None
        self._active.turn, self._active.turn_since = side, now
        return self._reply(side, "go")

    def _reply(self, side: str, op: str, **extra: str) -> list[Reply]:
        """A reply to a side that waits for one (a side that left a measurement does not)."""
        state = self.sides[side]
        if not state.awaiting or state.gone:
            return []
        state.awaiting = False
        return [(side, {"op": op, **extra})]

    def _after_pair(self, now: float) -> list[Reply]:
        active = self._active
        assert active is not None
        pairs = len(active.levels["base"])
        out_of_time = now >= active.deadline
        if pairs in self._points or out_of_time:
            active.looks += 1
            if self._clear(active):
                return self._end("clear", now)
            if out_of_time or active.looks >= self.rules.max_looks:
                return self._end("time budget" if out_of_time else "look limit", now)
        # Alternate who opens a pair (ABBA...), so neither side always measures first.
        return self._give_turn(self.opens if pairs % 2 == 0 else other(self.opens), now)

    def _clear(self, active: _Active) -> bool:
        ratios = _log_ratios(active.levels)
        if len(ratios) < 3:
            return False
        decision = paired_decision(
            ratios, threshold=active.threshold, alpha=self._look_level(),
            direction=Direction.LOWER_IS_BETTER,
        )  # fmt: skip
        if decision.verdict in (Verdict.REGRESSED, Verdict.IMPROVED):
            return True
        return clearly_unchanged(
            ratios, threshold=active.threshold,
            level=self.rules.unchanged_level / self.rules.max_looks,
            direction=Direction.LOWER_IS_BETTER,
        )  # fmt: skip

    def perf_tests(self) -> int:
        """Perf tests the two sides collected between them."""
        tests = [s.tests for s in self.sides.values() if s.tests is not None]
        return len(frozenset().union(*tests)) if tests else 1

    def measurement_level(self) -> float:
        """The suite's level over the perf tests both sides collected (Bonferroni)."""
        return self.rules.alpha / max(self.perf_tests(), 1)

    def _look_level(self) -> float:
        """The measurement's level spent evenly over its looks (Bonferroni over looks):
        looking after every few pairs must not raise the false-alarm rate."""
        return self.measurement_level() / self.rules.max_looks

    def _end(self, reason: str, now: float) -> list[Reply]:
        active = self._active
        assert active is not None
        self._active = None
        seconds = now - active.started
        self.spent += seconds
        ratios = _log_ratios(active.levels)
        decision = (
            paired_decision(
                ratios, threshold=active.threshold, alpha=self._look_level(),
                direction=Direction.LOWER_IS_BETTER,
            )
            if len(ratios) >= 3
            else None
        )  # fmt: skip
        pairs = len(ratios)
        self.results[active.key] = PairedResult(
            active.key,
            tuple(active.levels["base"][:pairs]),
            tuple(active.levels["candidate"][:pairs]),
            decision,
            active.looks,
            reason,
            seconds,
            active.threshold,
            self._look_level(),
        )
        return [reply for s in SIDES for reply in self._reply(s, "stop")]

    def _release(self, now: float) -> list[Reply]:
        """Let a side waiting for a partner that will never come measure alone."""
        if self._active is not None:
            return []
        replies: list[Reply] = []
        for side in SIDES:
            state = self.sides[side]
            key = state.waiting
            if key is None:
                continue
            why = self._never_coming(side, key, now)
            if why:
                state.waiting = None
                self.unpaired[key] = why
                replies += self._reply(side, "solo", why=why)
        return replies

    def _never_coming(self, side: str, key: Key, now: float) -> str:
        partner_side = other(side)
        partner = self.sides[partner_side]
        test_id = key[0]
        if partner.gone:
            return f"the {partner_side} side ended"
        if partner.tests is not None and test_id not in partner.tests:
            return f"not collected on the {partner_side} side"
        if test_id in partner.finished:
            return f"not measured on the {partner_side} side"
        # Both in one test at different names: the later arrival measures alone, the
        # other may still meet its partner.
        elsewhere = partner.waiting
        later = self.sides[side].since >= partner.since
        if elsewhere is not None and elsewhere != key and elsewhere[0] == test_id and later:
            return f"not measured at this point on the {partner_side} side"
        if now - self.sides[side].since > self.rules.wait_timeout:
            return f"the {partner_side} side did not arrive in {self.rules.wait_timeout:.0f}s"
        return ""


def _log_ratios(levels: dict[str, list[float]]) -> list[float]:
    return [
        math.log(c) - math.log(b) for b, c in zip(levels["base"], levels["candidate"], strict=False)
    ]


# -- the socket shell ---------------------------------------------------------------------


#: A worker: (round, side).
Worker = tuple[int, str]


class CoordinatorServer:
    """The coordinators of every round behind one Unix socket: one thread per worker
    connection, one lock around everything, a ticker for timeouts. The rounds run at
    the same time, each its own pair of processes and its own :class:`Coordinator`,
    and one turn is handed out at a time across all of them: a "go" waits in a queue
    until the worker that measures has handed its turn in. Use as a context manager."""

    def __init__(
        self,
        path: Path,
        rules: PairRules,
        *,
        clock: Callable[[], float] = time.monotonic,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.path = path
        self.coordinators = [Coordinator(rules, SIDES[i % 2]) for i in range(rules.rounds)]
        self._clock = clock
        self._log = log
        self._lock = threading.Lock()
        self._connections: dict[Worker, socket.socket] = {}
        self._turns: collections.deque[Worker] = collections.deque()  #: waiting for a "go"
        self._measuring: Worker | None = None  #: holds the one turn
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def coordinator(self) -> Coordinator:
        """The first round's coordinator (the only one with one round)."""
        return self.coordinators[0]

    def __enter__(self) -> CoordinatorServer:
        self._listener.bind(str(self.path))
        self._listener.listen(2 * len(self.coordinators))
        self._listener.settimeout(0.2)
        for target in (self._accept, self._tick):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for connection in self._connections.values():
                connection.close()
        for thread in self._threads:
            thread.join(timeout=2)
        self.path.unlink(missing_ok=True)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _tick(self) -> None:
        while not self._closed.wait(0.25):
            for index, coordinator in enumerate(self.coordinators):
                self._apply(index, coordinator.tick)

    def _serve(self, connection: socket.socket) -> None:
        worker: Worker | None = None
        with connection, connection.makefile("rb") as lines:
            for line in lines:
                try:
                    message = decode(line)
                except ValueError as error:
                    self._log(f"perfgate ab: {error}")
                    break
                if message["op"] == "hello":
                    worker = self._hello(message, connection)
                    if worker is None:
                        break
                if worker is not None:
                    index, side = worker
                    event = functools.partial(self._event, index, side, message)
                    self._apply(index, event, source=worker)
        if worker is not None:
            index, side = worker
            self._apply(index, functools.partial(self.coordinators[index].gone, side), worker)

    def _hello(self, message: dict[str, Any], connection: socket.socket) -> Worker | None:
        side, index = str(message.get("side")), message.get("round", 0)
        if side not in SIDES or not isinstance(index, int):
            return None
        if not 0 <= index < len(self.coordinators):
            return None
        with self._lock:
            self._connections[(index, side)] = connection
        return (index, side)

    def _event(self, index: int, side: str, message: dict[str, Any], now: float) -> list[Reply]:
        """One worker message, handed to its round's coordinator."""
        op, coordinator = message["op"], self.coordinators[index]
        if op == "hello":
            return coordinator.hello(side, [str(t) for t in message.get("tests", [])], now)
        if op == "arrive":
            key = (str(message["test"]), str(message["name"]))
            return coordinator.arrive(side, key, float(message.get("threshold", 0.02)), now)
        if op == "level":
            return coordinator.level(side, float(message["value"]), now)
        if op == "finished":
            return coordinator.finished(side, str(message["test"]), now)
        return []

    def _apply(
        self, index: int, event: Callable[[float], list[Reply]], source: Worker | None = None
    ) -> None:
        """Run ``event`` on round ``index``'s coordinator, send its replies, and hand out
        the next turn; ``source`` sent the message, so its turn, if it had one, is over."""
        with self._lock:
            if source is not None and self._measuring == source:
                self._measuring = None
            for side, reply in event(self._clock()):
                if reply["op"] == "go":
                    self._turns.append((index, side))
                else:
                    self._send((index, side), reply)
            self._hand_out_turn()

    def _hand_out_turn(self) -> None:
        while self._measuring is None and self._turns:
            worker = self._turns.popleft()
            if worker in self._connections:
                self._measuring = worker
                self._send(worker, {"op": "go"})

    def _send(self, worker: Worker, reply: dict[str, Any]) -> None:
        connection = self._connections.get(worker)
        if connection is None:
            return
        # On error its reader thread sees the closed connection and says "gone".
        with contextlib.suppress(OSError):
            connection.sendall(encode(reply))
