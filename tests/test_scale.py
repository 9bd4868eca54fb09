"""What keeps the cost per perf test flat in a large suite (issue 18): each baseline file
parsed once, files rewritten only when their text changes, refreshes that read each
module once. The figures are in docs/performance.md; these tests check the mechanisms."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_perfgate.baseline import BaselineError, BaselineFile, BaselineStore, samples_path
from pytest_perfgate.model import Comparison, Direction, Environment, Measurement, Verdict
from pytest_perfgate.refresh import RefreshContext, refresh_baselines
from pytest_perfgate.report.summary import MAX_LOOK_LINES, RunSummary, look_lines
from pytest_perfgate.results import RunResults, TestResults
from pytest_perfgate.settings import Mode, Settings
from pytest_perfgate.stats import summarize

ENVIRONMENT = Environment({"cpu": "Test CPU"})


def perf_test(module: str, test: str) -> TestResults:
    samples = (1e-3, 1.1e-3, 0.9e-3, 1.05e-3)
    measurement = Measurement("time", "s", Direction.LOWER_IS_BETTER, samples)
    comparison = Comparison(
        f"{module}::{test}",
        "time",
        Verdict.NEW,
        "s",
        Direction.LOWER_IS_BETTER,
        summarize(samples),
        None,
    )
    return TestResults(f"{module}::{test}", module, test, "passed", ((measurement, comparison),))


def refresh_context(store: BaselineStore, loaded: list[str] | None = None) -> RefreshContext:
    def load(module: str) -> BaselineFile | BaselineError:
        if loaded is not None:
            loaded.append(module)
        return store.load(module)

    return RefreshContext(
        store=store,
        load=load,
        environment=ENVIRONMENT,
        code_hashes={},
        commit=None,
        recorded_at="2026-11-28T00:00:00Z",
        history=5,
        max_samples=100,
    )


def stamps(root: Path) -> dict[str, tuple[int, int]]:
    """Every file's inode and modification time: a rename over it changes the inode."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.iterdir() if p.is_file()}


def test_a_refresh_reads_each_module_once(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    tests = [perf_test(f"test_{m}.py", f"test_{i}") for m in "ab" for i in range(5)]
    loaded: list[str] = []
    refresh_baselines(tests, refresh_context(store, loaded))
    assert sorted(loaded) == ["test_a.py", "test_b.py"]


def test_files_whose_text_would_not_change_are_not_rewritten(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    refresh_baselines(
        [perf_test("test_a.py", "test_1"), perf_test("test_b.py", "test_1")],
        refresh_context(store),
    )
    before = stamps(tmp_path)
    same = {"test_a.py": store.load("test_a.py").tests}
    assert store.update_many(same).written == ()
    refresh_baselines([perf_test("test_b.py", "test_1")], refresh_context(store))
    after = stamps(tmp_path)
    assert after["test_a.json"] == before["test_a.json"]
    assert after["test_a.samples.jsonl"] == before["test_a.samples.jsonl"]
    assert after["test_b.json"] != before["test_b.json"]  # its history grew by a run


def test_a_file_read_again_unchanged_is_not_parsed_again(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    refresh_baselines([perf_test("test_a.py", "test_1")], refresh_context(store))
    first = store.load("test_a.py").tests
    assert store.load("test_a.py").tests is first
    # Another writer (another process's refresh) changes the file: parsed again.
    refresh_baselines([perf_test("test_a.py", "test_2")], refresh_context(BaselineStore(tmp_path)))
    again = store.load("test_a.py").tests
    assert again is not first
    assert sorted(again) == ["test_1", "test_2"]


def test_a_changed_sidecar_alone_is_parsed_again(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    refresh_baselines([perf_test("test_a.py", "test_1")], refresh_context(store))
    first = store.load("test_a.py").get("test_1", "time")
    sidecar = samples_path(store.path_for("test_a.py"))
    sidecar.write_text(sidecar.read_text().replace("0.0011", "0.0012"))
    second = store.load("test_a.py").get("test_1", "time")
    assert first is not None
    assert second is not None
    assert 1.2e-3 in second.samples
    assert 1.2e-3 not in first.samples


FREEZE_PROBE = """
import atexit, gc, json

seen = {}

def pytest_runtest_call(item):
    seen[item.name] = gc.get_freeze_count()

@atexit.register
def write():  # after pytest's cleanups: the session unfroze the heap by then
    seen["at exit"] = gc.get_freeze_count()
    with open("freeze.json", "w") as file:
        json.dump(seen, file)
"""


def test_the_heap_is_frozen_while_perf_tests_run_and_unfrozen_after(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(FREEZE_PROBE)
    pytester.makepyfile(
        """
        import pytest

        def test_plain():
            pass

        @pytest.mark.perf(rounds=5, loops=1, warmup_time=0, speed_reference=False)
        def test_p(perf):
            perf(int, 1)
        """
    )
    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=2)
    seen = json.loads((pytester.path / "freeze.json").read_text())
    assert seen["test_plain"] > 0  # what collection built, frozen before any test runs
    assert seen["test_p"] > 0
    assert seen["at exit"] == 0


def test_a_run_without_perf_tests_freezes_nothing(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FREEZE_PROBE)
    pytester.makepyfile("def test_plain():\n    pass\n")
    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)
    assert json.loads((pytester.path / "freeze.json").read_text())["test_plain"] == 0


def verdict_of(test: str, verdict: Verdict) -> Comparison:
    samples = (1e-3, 1.1e-3, 0.9e-3)
    return Comparison(
        test, "time", verdict, "s", Direction.LOWER_IS_BETTER, summarize(samples), None
    )


def test_the_lines_to_look_at_are_capped_with_regressions_first() -> None:
    inconclusive = [
        verdict_of(f"t.py::test_{i:05d}", Verdict.INCONCLUSIVE) for i in range(MAX_LOOK_LINES)
    ]
    comparisons = [*inconclusive, verdict_of("t.py::test_slow", Verdict.REGRESSED)]
    summary = RunSummary(
        results=RunResults(ENVIRONMENT, ()),
        measured=[],
        settings=Settings(mode=Mode.WARN),
        perf_tests=len(comparisons),
        baseline_root=Path("baselines"),
        rootdir=Path("."),
    )
    lines = [line.text for line in look_lines(summary, comparisons)]
    assert len(lines) == MAX_LOOK_LINES + 1
    assert lines[0].startswith("  REGRESSED t.py::test_slow: ")  # never the one left out
    assert lines[-1] == "  ... and 1 more not listed: 1 INCONCLUSIVE"
    # Under the cap every line is listed, in the order the tests ran.
    few = look_lines(summary, comparisons[-3:])
    assert [line.text.split()[:2] for line in few] == [
        ["INCONCLUSIVE", "t.py::test_00098:"],
        ["INCONCLUSIVE", "t.py::test_00099:"],
        ["REGRESSED", "t.py::test_slow:"],
    ]
