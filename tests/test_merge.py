"""``perfgate merge``: the shards of a split suite as one run, judged at the suite's level."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from plugin_support import SLOWDOWN, WORK_SUITE, write_settings

from pytest_perfgate import cli
from pytest_perfgate.merge import (
    DECISIONS_KEY,
    MergeError,
    Shard,
    decision_count,
    merge_shards,
    suite_corrected,
    suite_decisions,
)
from pytest_perfgate.model import Comparison, Direction, Environment, Measurement, Verdict
from pytest_perfgate.results import RunResults, TestResults, read_results, write_results
from pytest_perfgate.stats import summarize

SAMPLES = tuple(0.01 * (1 + 0.001 * i) for i in range(20))
SETTINGS = {"mode": "warn", "threshold": 0.02, "alpha": 0.05, "run_noise": 0.02}


def judged(name: str, verdict: Verdict, p: float | None, decisions: int) -> TestResults:
    test_id = f"t.py::{name}"
    comparison = Comparison(
        test_id,
        "time",
        verdict,
        "s",
        Direction.LOWER_IS_BETTER,
        summarize(SAMPLES),
        summarize(SAMPLES),
        ratio=1.3,
        p_value=p,
        q_value=None if p is None else min(1.0, p * decisions),
        threshold=0.02,
    )
    measurement = Measurement("time", "s", Direction.LOWER_IS_BETTER, SAMPLES)
    outcome = "failed" if verdict is Verdict.REGRESSED else "passed"
    return TestResults(test_id, "t.py", name, outcome, ((measurement, comparison),))


def shard(name: str, *tests: TestResults, machine: str = "cpu-a", **settings: object) -> Shard:
    """A shard's results, run in warn mode (the merge is the gate)."""
    results = RunResults(
        environment=Environment({"cpu": machine}),
        tests=tests,
        settings={**SETTINGS, **settings},
        commit="abc",
        created_at=f"2026-11-28T10:0{len(name)}:00Z",
    )
    return Shard(name, results)


def two_shards() -> list[Shard]:
    """Shard a decided over 2 tests, shard b over 3: 5 decisions in the whole suite."""
    a = shard(
        "a.json",
        judged("test_weak", Verdict.REGRESSED, 0.015, 2),  # q 0.03 over 2; 0.075 over 5
        judged("test_fine", Verdict.UNCHANGED, 0.4, 2),
    )
    b = shard(
        "bb.json",
        judged("test_strong", Verdict.REGRESSED, 0.001, 3),  # q 0.003 over 3; 0.005 over 5
        judged("test_new", Verdict.NEW, None, 3),
        judged("test_more", Verdict.UNCHANGED, 0.2, 3),
    )
    return [a, b]


def test_shards_join_and_regressions_are_rejudged_for_the_whole_suite() -> None:
    merged = merge_shards(two_shards())
    assert merged.decisions == 5
    by_test = {c.test_id.split("::")[1]: c for c in merged.results.comparisons}
    assert list(by_test) == ["test_fine", "test_more", "test_new", "test_strong", "test_weak"]
    assert by_test["test_strong"].verdict is Verdict.REGRESSED
    assert by_test["test_strong"].q_value == pytest.approx(0.005)
    weak = by_test["test_weak"]
    assert weak.verdict is Verdict.INCONCLUSIVE
    assert weak.q_value == pytest.approx(0.075)
    assert "regressed in its shard (q=0.03)" in weak.notes[-1]
    assert "q=0.075 over 5 decisions" in weak.notes[-1]
    assert merged.downgraded == ("t.py::test_weak",)
    assert by_test["test_fine"].q_value == pytest.approx(1.0)  # min(1, 0.4 x 5)
    assert by_test["test_new"].q_value is None
    assert merged.results.settings[DECISIONS_KEY] == 5
    assert merged.results.settings["mode"] == "gate"
    assert merged.results.created_at == "2026-11-28T10:06:00Z"  # the earliest shard's
    assert merged.regressed


def test_the_count_is_stated_else_shown_by_q_else_the_tests() -> None:
    a, b = two_shards()
    assert decision_count(a.results) == 2
    assert decision_count(b.results) == 3
    stated = replace(a.results, settings={**SETTINGS, DECISIONS_KEY: 7})
    assert decision_count(stated) == 7
    untested = shard(
        "c.json", judged("t1", Verdict.NEW, None, 1), judged("t2", Verdict.NEW, None, 1)
    )
    assert decision_count(untested.results) == 2
    merged_twice = merge_shards([Shard("m.json", merge_shards([a, b]).results)])
    assert merged_twice.decisions == 5


def test_shards_that_counted_the_whole_suite_are_not_corrected_twice() -> None:
    """pytest-split: each shard collected all 4 tests, ran 2, and split alpha over 4."""
    a = shard(
        "a.json", judged("t1", Verdict.REGRESSED, 0.01, 4), judged("t2", Verdict.UNCHANGED, 0.5, 4)
    )
    b = shard(
        "b.json", judged("t3", Verdict.UNCHANGED, 0.3, 4), judged("t4", Verdict.UNCHANGED, 0.5, 4)
    )
    assert suite_decisions([a.results, b.results]) == 4
    merged = merge_shards([a, b])
    assert merged.downgraded == ()
    assert merged.regressed
    # A shard that counted more than anyone ran is never judged more leniently.
    wide = shard("w.json", judged("t5", Verdict.UNCHANGED, 0.001, 50))
    assert suite_decisions([a.results, wide.results]) == 50


def test_a_regression_that_holds_stays() -> None:
    strong = judged("t", Verdict.REGRESSED, 0.001, 1).results[0][1]
    assert suite_corrected(strong, 40, 0.05).verdict is Verdict.REGRESSED
    assert suite_corrected(strong, 60, 0.05).verdict is Verdict.INCONCLUSIVE


def test_a_test_in_two_shards_is_an_error_naming_both() -> None:
    a, b = two_shards()
    b = shard("b.json", *b.results.tests, judged("test_fine", Verdict.UNCHANGED, 0.5, 3))
    with pytest.raises(MergeError, match=r"t.py::test_fine is in both a.json and b.json"):
        merge_shards([a, b])


def test_shards_from_other_machine_classes_commits_or_levels_are_refused() -> None:
    a, _ = two_shards()
    other = shard("x.json", judged("t9", Verdict.NEW, None, 1), machine="cpu-b")
    with pytest.raises(MergeError, match=r"x.json ran on another machine class than a.json: cpu"):
        merge_shards([a, other])
    moved = Shard("y.json", replace(shard("y.json").results, commit="def"))
    with pytest.raises(MergeError, match=r"y.json measured commit def and a.json abc"):
        merge_shards([a, moved])
    with pytest.raises(MergeError, match=r"z.json was judged with alpha 0.01"):
        merge_shards([a, shard("z.json", alpha=0.01)])
    with pytest.raises(MergeError, match="no results files"):
        merge_shards([])


def test_the_command_writes_the_merged_file_and_exits_like_a_gated_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = two_shards()
    paths = []
    for part in (a, b):
        paths.append(tmp_path / part.name)
        write_results(paths[-1], part.results)
    out = tmp_path / "merged.json"
    history = tmp_path / "h.sqlite"
    argv = ["merge", *map(str, paths), "-o", str(out), "--history", str(history)]
    assert cli.main(argv) == 1
    printed = capsys.readouterr().out
    assert "2 shards, 5 tests, 5 decisions" in printed
    assert "t.py::test_weak: REGRESSED in its shard, INCONCLUSIVE at the whole suite's level" in (
        printed
    )
    assert "run recorded in the history" in printed
    assert len(read_results(out).tests) == 5
    # Without the strong regression, the merged run passes.
    write_results(paths[1], replace(b.results, tests=b.results.tests[1:]))
    assert cli.main(["merge", *map(str, paths), "-o", str(out)]) == 0


def test_bad_shards_exit_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, _ = two_shards()
    good, bad = tmp_path / "a.json", tmp_path / "bad.json"
    write_results(good, a.results)
    bad.write_text("{")
    assert cli.main(["merge", str(good), str(bad), "-o", str(tmp_path / "m.json")]) == 2
    assert str(bad) in capsys.readouterr().err
    assert cli.main(["merge", str(good), str(good), "-o", str(tmp_path / "m.json")]) == 2
    assert "is in both" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()


def test_real_shards_of_a_suite_merge_into_one_gated_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two shards of a real suite, as pytest-split or a CI matrix would run them."""
    write_settings(pytester)
    pytester.makepyfile(test_work=WORK_SUITE)
    monkeypatch.setenv("WORK", "1")
    pytester.runpytest("--perf-update-baselines").assert_outcomes(passed=2)
    monkeypatch.setenv("WORK", SLOWDOWN)
    pytester.runpytest("-k", "test_slow", "--perf-json=one.json")
    pytester.runpytest("-k", "test_steady", "--perf-json=two.json")
    one, two = (str(pytester.path / name) for name in ("one.json", "two.json"))
    merged = pytester.path / "merged.json"
    assert cli.main(["merge", one, two, "-o", str(merged)]) == 1
    verdicts = {c.test_id: c.verdict for c in read_results(merged).comparisons}
    assert verdicts["test_work.py::test_slow"] is Verdict.REGRESSED
    assert verdicts["test_work.py::test_steady"] is not Verdict.REGRESSED
