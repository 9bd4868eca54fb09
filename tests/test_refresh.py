"""The core of --perf-update-baselines and stale entries, and the summary's text, on a real
baseline store: plain functions over the results model, no pytest run."""

from __future__ import annotations

from pathlib import Path

from pytest_perfgate.baseline import BaselineError, BaselineFile, BaselineStore
from pytest_perfgate.model import (
    BaselineEntry,
    Comparison,
    Direction,
    Environment,
    Measurement,
    Verdict,
)
from pytest_perfgate.refresh import (
    INTERRUPTED,
    RefreshContext,
    RefreshReport,
    refresh_baselines,
    stale_entries,
)
from pytest_perfgate.report.files import write_report
from pytest_perfgate.report.summary import SummaryLine, refresh_lines
from pytest_perfgate.results import TestResults
from pytest_perfgate.stats import summarize

ENVIRONMENT = Environment({"cpu": "Test CPU"})


def measured(
    test_id: str, name: str, verdict: Verdict = Verdict.NEW
) -> tuple[Measurement, Comparison]:
    samples = (1e-3, 1.1e-3, 0.9e-3, 1.05e-3)
    measurement = Measurement(name, "s", Direction.LOWER_IS_BETTER, samples)
    comparison = Comparison(
        test_id, name, verdict, "s", Direction.LOWER_IS_BETTER, summarize(samples), None
    )
    return measurement, comparison


def perf_test(test: str, *names: str, outcome: str = "passed") -> TestResults:
    test_id = f"test_m.py::{test}"
    return TestResults(
        test_id, "test_m.py", test, outcome, tuple(measured(test_id, n) for n in names)
    )


def context(store: BaselineStore) -> RefreshContext:
    def load(module: str) -> BaselineFile | BaselineError:
        try:
            return store.load(module)
        except BaselineError as error:
            return error

    return RefreshContext(
        store=store,
        load=load,
        environment=ENVIRONMENT,
        code_hashes={"test_m.py::test_a": "abc"},
        commit="c0ffee",
        recorded_at="2026-11-28T00:00:00Z",
        history=5,
        max_samples=100,
    )


def test_refresh_records_passing_tests_and_keeps_failed_ones(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    tests = [perf_test("test_a", "time"), perf_test("test_b", "time", outcome="failed")]
    report = refresh_baselines(tests, context(store))
    assert report.added == ("test_m.py::test_a",)  # "time" is the unnamed measurement
    assert report.skipped == ("test_m.py::test_b",)
    assert report.errors == ()
    assert report.short_history == 1  # one timing entry, with one run of history
    entry = store.load("test_m.py").get("test_a", "time")
    assert entry is not None
    assert (entry.code_hash, entry.commit) == ("abc", "c0ffee")
    assert store.load("test_m.py").get("test_b", "time") is None
    again = refresh_baselines(tests[:1], context(store))
    assert (again.added, again.refreshed) == ((), ("test_m.py::test_a",))


def test_stale_entries_are_tests_and_measurements_no_longer_produced(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    refresh_baselines(
        [perf_test("test_a", "time", "memory"), perf_test("test_gone", "time")],
        context(store),
    )

    def load(module: str) -> dict[str, dict[str, BaselineEntry]]:
        return store.load(module).tests

    stale = stale_entries(
        {"test_m.py": {"test_a"}}, {"test_m.py": {""}}, [perf_test("test_a", "time")], load
    )
    assert stale == ["test_m.py::test_a [memory]", "test_m.py::test_gone"]
    # Names alone do (what a pytest-xdist worker sends the controller).
    names = {"test_m.py": {"test_a": ["memory", "time"], "test_gone": ["time"]}}
    assert (
        stale_entries(
            {"test_m.py": {"test_a"}},
            {"test_m.py": {""}},
            [perf_test("test_a", "time")],
            names.__getitem__,
        )
        == stale
    )
    # Only its class TestX was expanded (a node id on the command line): test_gone may
    # exist elsewhere in the module, so it is not called stale.
    assert stale_entries({"test_m.py": {"test_a"}}, {"test_m.py": {"TestX"}}, [], load) == []
    # A failed test's missing measurements are not stale: it may not have reached them.
    failed = [perf_test("test_a", "time", outcome="failed")]
    assert stale_entries({"test_m.py": {"test_a", "test_gone"}}, {}, failed, load) == []


def test_refresh_lines_say_what_was_done(tmp_path: Path) -> None:
    report = RefreshReport(added=("t [time]",), skipped=("t2",), short_history=1)
    assert [line.text for line in refresh_lines(report, tmp_path)] == [
        f"perfgate: baselines in {tmp_path}: 1 added, 0 refreshed (0 changed significantly), "
        "1 not refreshed (test failed)",
        "  added t [time]",
        "  not refreshed t2 (the test did not pass)",
        "perfgate: 1 timing baseline(s) have fewer than 3 runs of history, so the gate assumes "
        "their run-to-run noise; refresh again (3 runs in all) to have it measured and the "
        "gate tightened",
    ]
    assert refresh_lines(INTERRUPTED, tmp_path)[-1] == SummaryLine(
        "perfgate: error: run interrupted: no baseline was written", "red"
    )


def test_a_report_that_cannot_be_written_says_why(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert write_report(tmp_path / "r.md", "x", "Markdown report") == (
        f"perfgate: Markdown report written to {tmp_path / 'r.md'}"
    )
    blocked = tmp_path / "file" / "r.md"  # a file where a directory should be
    assert write_report(blocked, "x", "HTML report").startswith(
        f"perfgate: cannot write the HTML report to {blocked} ("
    )
