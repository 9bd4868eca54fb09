"""Paired A/B: the protocol, the coordinator's decisions on scripted workers with an
injected clock, the paired statistics, and the sampler taking turns."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from pytest_perfgate.model import Direction, Verdict
from pytest_perfgate.paired import (
    Coordinator,
    CoordinatorServer,
    Key,
    PairedResult,
    PairRules,
    Reply,
    combined,
    paired_decision,
    process_noise,
    rounds_decision,
    trimmed_mean,
)
from pytest_perfgate.paired_protocol import decode, encode
from pytest_perfgate.sampling import BatchTime, Sampler, SamplingPlan
from pytest_perfgate.stats import Decision

T1, T2 = "test_x.py::test_one", "test_x.py::test_two"
KEY: Key = (T1, "time")
RULES = PairRules(min_pairs=6, growth=1.5, max_looks=4, measurement_time=10.0)


def ops(replies: list[Reply]) -> list[tuple[str, str]]:
    return [(side, message["op"]) for side, message in replies]


def started(rules: PairRules = RULES, tests: Sequence[str] = (T1, T2)) -> Coordinator:
    coordinator = Coordinator(rules)
    coordinator.hello("base", tests, 0.0)
    coordinator.hello("candidate", tests, 0.0)
    return coordinator


def run_pairs(
    coordinator: Coordinator, base: float, candidate: float, *, pairs: int, now: float = 1.0
) -> list[Reply]:
    """Both arrive at KEY, then answer every "go" with the scripted level."""
    coordinator.arrive("base", KEY, 0.02, now)
    replies = coordinator.arrive("candidate", KEY, 0.02, now)
    levels = {"base": base, "candidate": candidate}
    for turn in range(pairs * 2):
        goes = [side for side, message in replies if message["op"] == "go"]
        if not goes:
            return replies
        # A little spread, the same on both sides, so the pairs are not identical.
        value = levels[goes[0]] * (1 + 0.001 * (turn % 3))
        replies = coordinator.level(goes[0], value, now)
    return replies


# -- protocol ---------------------------------------------------------------------------


def test_a_message_survives_the_wire() -> None:
    message = {"op": "arrive", "test": T1, "name": "time", "threshold": 0.02}
    assert decode(encode(message)) == message
    assert encode(message).endswith(b"\n")


@pytest.mark.parametrize("line", [b"[1, 2]\n", b'{"no": "op"}\n', b"not json\n"])
def test_a_malformed_line_is_refused(line: bytes) -> None:
    with pytest.raises(ValueError, match=r"perfgate paired message|Expecting value"):
        decode(line)


# -- statistics -------------------------------------------------------------------------


def test_one_wild_pair_moves_the_trimmed_mean_no_more_than_another() -> None:
    calm = [0.01, 0.012, 0.009, 0.011, 0.01, 0.008, 0.012, 0.01, 0.011, 0.009]
    wild = [*calm[:-1], 1.1]  # a ratio of 3: one side's turn met a neighbour's burst
    assert trimmed_mean(wild).mean == pytest.approx(trimmed_mean(calm).mean, abs=0.002)
    assert sum(wild) / len(wild) > 0.1  # the plain mean would say +10%


def test_a_consistent_slowdown_is_regressed_and_no_change_is_unchanged() -> None:
    slower = [math.log(1.10) + 0.005 * ((i % 5) - 2) for i in range(20)]
    same = [0.005 * ((i % 5) - 2) for i in range(20)]
    faster = [-r for r in slower]

    def decide(ratios: list[float]) -> Decision:
        return paired_decision(
            ratios, threshold=0.02, alpha=0.001, direction=Direction.LOWER_IS_BETTER
        )

    assert decide(slower).verdict is Verdict.REGRESSED
    assert decide(same).verdict is Verdict.UNCHANGED
    assert decide(faster).verdict is Verdict.IMPROVED
    decision = decide(slower)
    assert decision.ci_low < 1.10 < decision.ci_high


def result(change: float, *, pairs: int = 20, key: Key = KEY) -> PairedResult:
    """A round whose candidate is ``change`` slower, with a little spread."""
    base = tuple(1e-3 * (1 + 0.002 * (i % 3)) for i in range(pairs))
    candidate = tuple(b * (1 + change) * (1 + 0.002 * (i % 2)) for i, b in enumerate(base))
    return PairedResult(key, base, candidate, None, 1, "time budget", 1.0, 0.02, 0.001)


def test_rounds_that_agree_on_a_slowdown_make_it_regressed() -> None:
    rounds = [result(0.10), result(0.11), result(0.09)]
    decided = rounds_decision(rounds, noise=0.01, threshold=0.02, alpha=0.001)
    assert decided is not None
    assert decided[0].verdict is Verdict.REGRESSED
    assert decided[1] == ""


def test_two_rounds_whose_processes_landed_apart_are_inconclusive_not_regressed() -> None:
    rounds = [result(0.0), result(0.25)]
    decided = rounds_decision(rounds, noise=0.01, threshold=0.02, alpha=0.001)
    assert decided is not None
    assert decided[0].verdict is Verdict.INCONCLUSIVE
    assert "rounds disagree" in decided[1]


def test_rounds_all_over_the_place_are_inconclusive() -> None:
    rounds = [result(0.0), result(0.25), result(-0.2), result(0.1)]
    decided = rounds_decision(rounds, noise=0.01, threshold=0.02, alpha=0.001)
    assert decided is not None
    assert decided[0].verdict is Verdict.INCONCLUSIVE


def test_a_measurement_noisier_than_the_suite_gets_a_wider_interval_a_quieter_one_narrower() -> (
    None
):
    # The suite's process noise is 1%; one measurement's rounds spread by about 3%,
    # another's by 0.1%. Each is judged on the two figures pooled, not on 1% alone.
    noisy = combined([result(c) for c in (0.05, 0.09, 0.02, 0.07, 0.03, 0.08)], 0.01)
    quiet = combined([result(c) for c in (0.050, 0.051, 0.049, 0.050, 0.052, 0.049)], 0.01)
    suite_alone = 0.01 / math.sqrt(6)
    assert noisy is not None
    assert quiet is not None
    assert noisy.se > 1.5 * suite_alone
    assert quiet.se < 0.8 * suite_alone
    assert noisy.df == quiet.df == 10  # 5 from the suite's figure, 5 from its own rounds


def test_process_noise_follows_the_typical_round_difference_not_the_odd_one() -> None:
    typical = [[result(0.0), result(0.01)] for _ in range(9)]
    odd = [[result(0.0), result(0.30)]]
    noise = process_noise(typical + odd)
    assert 0.005 < noise < 0.02
    assert process_noise([]) > 0  # a floor, never zero


# -- two layouts --------------------------------------------------------------------------


def processes(base_us: Sequence[float], candidate_us: Sequence[float]) -> list[PairedResult]:
    """One round per pair of process levels (microseconds), each with 12 turns a side
    spread by +-0.3% about its level."""
    spread = (1.0, 1.003, 0.997, 1.002, 0.998, 1.001, 0.999, 1.003, 0.997, 1.0, 1.002, 0.998)
    return [
        PairedResult(
            KEY,
            tuple(b * 1e-6 * s for s in spread),
            tuple(c * 1e-6 * s for s in reversed(spread)),
            decision=None,
            looks=4,
            stop_reason="time budget",
            seconds=0.25,
            threshold=0.01,
            alpha=0.001,
        )
        for b, c in zip(base_us, candidate_us, strict=True)
    ]


def judge(rounds: Sequence[PairedResult]) -> tuple[Decision, str]:
    decided = rounds_decision(rounds, noise=0.01, threshold=0.01, alpha=0.05 / 24)
    assert decided is not None
    return decided


# Process levels of test_regex[10000] in real paired trials on the project's VM
# (benchmarks/results/paired_levels_regex_2026-11-28_s15.txt): two layouts about 12%
# apart, in shares that differ between the sides.
REGEX_AA = ([183, 163, 184, 189, 185, 182, 183, 187], [181, 181, 164, 161, 166, 183, 182, 162])
REGEX_10 = ([165, 188, 185, 187, 185, 183, 190, 165], [181, 180, 202, 181, 179, 181, 183, 204])
REGEX_5 = ([189, 177, 184, 188, 163, 183, 187, 164], [173, 174, 195, 174, 174, 199, 174, 205])


def test_a_slowdown_on_two_layouts_is_judged_within_each_whatever_their_shares() -> None:
    for base, candidate, low, high in ((*REGEX_10, 1.07, 1.13), (*REGEX_5, 1.03, 1.10)):
        # Round by round these read -2%..+24%: the plain rule finds the rounds disagree.
        decision, note = judge(processes(base, candidate))
        assert decision.verdict is Verdict.REGRESSED, note
        assert low < decision.ratio < high
        assert "two levels" in note
        assert "judged within each level" in note


def test_unchanged_code_on_two_layouts_in_different_shares_is_not_a_regression() -> None:
    decision, note = judge(processes(*REGEX_AA))
    assert decision.verdict is Verdict.UNCHANGED, note
    assert "(base: 7 of 8 on the higher; candidate: 4 of 8 on the higher)" in note


def test_a_side_all_on_one_layout_is_read_both_ways() -> None:
    base = [224, 223, 226, 225, 221, 227]  # which layout? it cannot say
    # The candidate's two layouts 18% apart: the base is on its lower one (-8%) or on
    # its higher one (+9%). Both are possible, so no verdict.
    decision, note = judge(processes(base, [204, 243, 206, 244, 246, 241]))
    assert decision.verdict is Verdict.INCONCLUSIVE
    assert "base: all on one level, which one unknown" in note
    assert "cannot be told" in note
    # Slower than both of the base's layouts: a slowdown read either way (+10% or +33%),
    # reported as the smaller.
    decision, note = judge(
        processes([177, 212, 177, 214, 216, 218], [234, 235, 234, 236, 234, 235])
    )
    assert decision.verdict is Verdict.REGRESSED, note
    assert 1.07 < decision.ratio < 1.13


def test_a_change_on_one_layout_only_stays_inconclusive() -> None:
    # The lower layout 10% slower, the higher one unchanged: the gap shrank, so there is
    # no one change to report.
    decision, note = judge(
        processes([160, 185, 160, 185, 160, 185], [176, 185, 176, 185, 176, 185])
    )
    assert decision.verdict is Verdict.INCONCLUSIVE
    assert "rounds disagree" in note


def test_rounds_spread_without_two_layouts_stay_inconclusive() -> None:
    # Processes everywhere between -10% and +25%: no gap stands out on either side.
    base = [100, 104, 108, 112, 116, 120]
    decision, note = judge(processes(base, [95, 124, 103, 131, 109, 118]))
    assert decision.verdict is Verdict.INCONCLUSIVE
    assert "rounds disagree" in note


# -- the coordinator --------------------------------------------------------------------


def test_base_measures_first_then_the_pairs_alternate_who_opens() -> None:
    coordinator = started()
    assert ops(coordinator.arrive("base", KEY, 0.02, 1.0)) == []  # waits for its partner
    assert ops(coordinator.arrive("candidate", KEY, 0.02, 1.0)) == [("base", "go")]
    assert ops(coordinator.level("base", 1e-3, 1.0)) == [("candidate", "go")]
    # Pair 1 done; pair 2 is opened by the candidate (ABBA...).
    assert ops(coordinator.level("candidate", 1e-3, 1.0)) == [("candidate", "go")]
    assert ops(coordinator.level("candidate", 1e-3, 1.0)) == [("base", "go")]


def test_a_round_that_opens_with_the_candidate_mirrors_the_order(tmp_path: Path) -> None:
    # Rounds alternate who opens, so a burst that spans a few turns of every round at
    # once meets both sides across the rounds.
    coordinator = Coordinator(RULES, opens="candidate")
    coordinator.hello("base", (T1, T2), 0.0)
    coordinator.hello("candidate", (T1, T2), 0.0)
    coordinator.arrive("base", KEY, 0.02, 1.0)
    assert ops(coordinator.arrive("candidate", KEY, 0.02, 1.0)) == [("candidate", "go")]
    assert ops(coordinator.level("candidate", 1e-3, 1.0)) == [("base", "go")]
    assert ops(coordinator.level("base", 1e-3, 1.0)) == [("base", "go")]
    with CoordinatorServer(tmp_path / "pair.sock", PairRules(rounds=3)) as server:
        assert [c.opens for c in server.coordinators] == ["base", "candidate", "base"]


def test_a_clear_slowdown_stops_at_the_first_look() -> None:
    coordinator = started()
    replies = run_pairs(coordinator, 1e-3, 2e-3, pairs=50)
    assert sorted(ops(replies)) == [("base", "stop"), ("candidate", "stop")]
    paired = coordinator.results[KEY]
    assert paired.pairs == RULES.min_pairs
    assert paired.stop_reason == "clear"
    assert paired.decision is not None
    assert paired.decision.verdict is Verdict.REGRESSED


def test_an_open_measurement_goes_on_to_its_time_budget() -> None:
    rules = PairRules(min_pairs=6, max_looks=10, measurement_time=2.0)
    coordinator = started(rules)
    coordinator.arrive("base", KEY, 0.02, 0.0)
    replies = coordinator.arrive("candidate", KEY, 0.02, 0.0)
    now, turns = 0.0, 0
    levels = [1e-3, 1.03e-3, 0.99e-3, 1.05e-3]  # +2% or so, noisy: never clear
    while any(m["op"] == "go" for _, m in replies):
        side = next(s for s, m in replies if m["op"] == "go")
        now += 0.05
        turns += 1
        replies = coordinator.level(side, levels[turns % 4], now)
    paired = coordinator.results[KEY]
    assert paired.stop_reason in ("time budget", "look limit")
    assert paired.seconds >= 2.0 or paired.looks == rules.max_looks
    assert paired.pairs > rules.min_pairs


def test_a_test_collected_on_one_side_only_is_measured_alone() -> None:
    coordinator = Coordinator(RULES)
    coordinator.hello("base", [T2], 0.0)
    coordinator.hello("candidate", [T1, T2], 0.0)
    replies = coordinator.arrive("candidate", KEY, 0.02, 1.0)
    assert ops(replies) == [("candidate", "solo")]
    assert "not collected on the base side" in coordinator.unpaired[KEY]


def test_a_test_that_ended_on_the_other_side_without_measuring_releases_the_waiter() -> None:
    coordinator = started()
    assert coordinator.arrive("base", KEY, 0.02, 1.0) == []
    replies = coordinator.finished("candidate", T1, 1.1)  # skipped or failed there
    assert ops(replies) == [("base", "solo")]
    assert "not measured on the candidate side" in coordinator.unpaired[KEY]


def test_a_side_that_never_comes_is_waited_for_only_until_the_timeout() -> None:
    coordinator = started(PairRules(wait_timeout=30.0))
    coordinator.arrive("base", KEY, 0.02, 1.0)
    assert coordinator.tick(20.0) == []
    assert ops(coordinator.tick(32.0)) == [("base", "solo")]


def test_a_worker_that_dies_mid_measurement_ends_it_for_the_other() -> None:
    coordinator = started()
    coordinator.arrive("base", KEY, 0.02, 1.0)
    coordinator.arrive("candidate", KEY, 0.02, 1.0)
    coordinator.level("base", 1e-3, 1.0)  # the candidate has its turn...
    replies = coordinator.gone("candidate", 2.0)  # ...and crashes
    assert ops(replies) == [("base", "stop")]
    assert coordinator.results[KEY].stop_reason == "the candidate side ended"
    # What the base side measures next, it measures alone.
    assert ops(coordinator.arrive("base", (T2, "time"), 0.02, 3.0)) == [("base", "solo")]


def test_a_worker_whose_test_failed_mid_measurement_ends_it() -> None:
    coordinator = started()
    coordinator.arrive("base", KEY, 0.02, 1.0)
    coordinator.arrive("candidate", KEY, 0.02, 1.0)
    coordinator.level("base", 1e-3, 1.0)  # the candidate's code raises in its turn
    replies = coordinator.finished("candidate", T1, 1.5)
    assert ops(replies) == [("base", "stop")]  # the candidate asked nothing: no reply


def test_a_side_that_measured_while_the_other_left_hears_stop() -> None:
    coordinator = started()
    coordinator.arrive("base", KEY, 0.02, 1.0)
    coordinator.arrive("candidate", KEY, 0.02, 1.0)  # base measures its turn...
    coordinator.gone("candidate", 1.2)  # ...while the candidate crashes
    assert ops(coordinator.level("base", 1e-3, 1.5)) == [("base", "stop")]


def test_a_turn_that_takes_too_long_ends_the_measurement() -> None:
    coordinator = started(PairRules(wait_timeout=30.0))
    coordinator.arrive("base", KEY, 0.02, 1.0)
    coordinator.arrive("candidate", KEY, 0.02, 1.0)  # base has the turn, and hangs
    replies = coordinator.tick(40.0)
    assert ops(replies) == [("candidate", "stop")]
    assert "did not answer" in coordinator.results[KEY].stop_reason


def test_two_names_in_one_test_do_not_wait_for_each_other() -> None:
    coordinator = started()
    assert coordinator.arrive("base", (T1, "a"), 0.02, 1.0) == []
    replies = coordinator.arrive("candidate", (T1, "b"), 0.02, 1.1)
    assert ops(replies) == [("candidate", "solo")]  # the later arrival goes alone


def test_a_level_out_of_turn_ends_the_measurement_rather_than_pair_wrongly() -> None:
    coordinator = started()
    coordinator.arrive("base", KEY, 0.02, 1.0)
    coordinator.arrive("candidate", KEY, 0.02, 1.0)  # base's turn
    replies = coordinator.level("candidate", 1e-3, 1.0)
    assert ops(replies) == [("candidate", "stop")]
    assert coordinator.results[KEY].stop_reason == "protocol error"
    # The base side, measuring its turn, hears "stop" when it hands its level in.
    assert ops(coordinator.level("base", 1e-3, 1.1)) == [("base", "stop")]


def test_the_look_points_grow_and_never_repeat() -> None:
    points = PairRules(min_pairs=6, growth=1.1, max_looks=8).look_points()
    assert points[0] == 6
    assert list(points) == sorted(set(points))


def test_rules_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="rounds"):
        PairRules(rounds=0)
    with pytest.raises(ValueError, match="min_pairs"):
        PairRules(min_pairs=2)


# -- the sampler taking turns -------------------------------------------------------------


class ScriptedTurns:
    """Turns that allow ``turns`` turns and record what each handed in."""

    def __init__(self, turns: int, *, paired: bool = True) -> None:
        self.left = turns
        self.paired = paired
        self.handed_in: list[int] = []

    @property
    def batch_time(self) -> float:
        return 0.003

    def start(self) -> bool:
        return self.paired

    def next(self, wall: Sequence[float]) -> bool:
        self.handed_in.append(len(wall))
        self.left -= 1
        return self.left > 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def batch(self, loops: int) -> BatchTime:
        self.now += 1_000_000 * loops  # 1 ms a call
        return BatchTime(1_000_000 * loops, 1_000_000 * loops)


def test_the_sampler_samples_in_turns_until_told_to_stop() -> None:
    clock = FakeClock()
    turns = ScriptedTurns(4)
    plan = SamplingPlan(warmup_time=0.0, loops=1, disable_gc=False)
    sampled = Sampler(plan, clock=clock).run(clock.batch, turns=turns)
    assert sampled.stop_reason == "paired"
    assert len(turns.handed_in) == 4
    assert all(n >= 3 for n in turns.handed_in)  # a turn is 3 ms and 3 samples at least
    assert len(sampled.wall) == sum(turns.handed_in)


def test_a_measurement_told_to_go_alone_samples_as_usual() -> None:
    clock = FakeClock()
    turns = ScriptedTurns(4, paired=False)
    plan = SamplingPlan(warmup_time=0.0, loops=1, min_samples=5, max_time=0.02, disable_gc=False)
    sampled = Sampler(plan, clock=clock).run(clock.batch, turns=turns)
    assert sampled.stop_reason != "paired"
    assert turns.handed_in == []


# -- the socket shell, with the worker's real client --------------------------------------


def test_real_workers_of_two_rounds_take_one_turn_at_a_time(tmp_path: Path) -> None:
    from pytest_perfgate.plugin.paired_worker import MeasurementTurns, PairedWorker

    socket_path = tmp_path / "pair.sock"
    rules = PairRules(rounds=2, min_pairs=6, max_looks=3, measurement_time=10.0)
    levels = {"base": 1e-3, "candidate": 3e-3}
    turns_taken: list[tuple[str, str]] = []  # ("in"/"out", worker), in the order they happen
    lock = threading.Lock()
    errors: list[BaseException] = []

    def measure(name: str) -> None:
        with lock:
            turns_taken.append(("in", name))
        time.sleep(0.002)  # a turn's work; another worker measuring now would interleave
        with lock:
            turns_taken.append(("out", name))

    def worker(index: int, side: str) -> None:
        try:
            client = PairedWorker(socket_path, side, 0.001, index)
            client.tell({"op": "hello", "side": side, "round": index, "tests": [T1]})
            turns = MeasurementTurns(client, T1, "time", 0.02)
            going = turns.start()
            assert going
            while going:
                measure(f"{index}{side}")
                going = turns.next([levels[side]] * 3)
            client.tell({"op": "finished", "test": T1})
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    with CoordinatorServer(socket_path, rules) as server:
        threads = [
            threading.Thread(target=worker, args=(i, s))
            for i in range(2)
            for s in ("base", "candidate")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
    assert errors == []
    # Every turn ends before the next begins, across both rounds.
    assert [kind for kind, _ in turns_taken] == ["in", "out"] * (len(turns_taken) // 2)
    for coordinator in server.coordinators:
        paired = coordinator.results[KEY]
        assert paired.decision is not None
        assert paired.decision.verdict is Verdict.REGRESSED
        assert paired.decision.ratio == pytest.approx(3.0)
    assert not socket_path.exists()
