"""`perfgate ab --whole-runs`: base ref and candidate measured in alternating whole runs, in
one job, on real git repos (paired A/B, the default, is test_ab_paired.py's).

The only timing relied on is an injected slowdown of several times, with a wide
threshold (plugin_support.FAST_SETTINGS), as in the other acceptance tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_support import AB_SUITE, SLOWDOWN, committed_repo, git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


NEW_TEST = """

@pytest.mark.perf
def test_added(perf):
    perf(spin, 1000)
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository whose HEAD holds AB_SUITE at WORK = 1."""
    return committed_repo(tmp_path)


def perfgate_ab(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest_perfgate.cli", "ab", "--whole-runs", *args]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(command, cwd=repo, capture_output=True, text=True, env=env, timeout=300)


def test_a_slowdown_against_the_base_ref_is_a_regression(repo: Path) -> None:
    (repo / "test_work.py").write_text(AB_SUITE.format(work=SLOWDOWN))
    done = perfgate_ab(repo, "--base", "HEAD", "--rounds", "2", "--json", "ab.json", "--", "pytest")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "REGRESSED test_work.py::test_slow:" in done.stdout
    assert "REGRESSED test_work.py::test_steady" not in done.stdout
    document = json.loads((repo / "ab.json").read_text())
    verdicts = {t["test"]: t["measurements"][0]["comparison"]["verdict"] for t in document["tests"]}
    assert verdicts["test_slow"] == "REGRESSED"
    # Alternating, base first: base, candidate, then candidate, base.
    assert "round 1/2 base" in done.stderr.splitlines()[0]
    assert not (repo / "baselines").exists()  # no stored baseline read or written


def test_nothing_changed_passes(repo: Path) -> None:
    done = perfgate_ab(repo, "--base", "HEAD", "--rounds", "2", "--", "pytest")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "REGRESSED" not in done.stdout


def test_a_test_missing_on_the_base_side_is_reported_not_fatal(repo: Path) -> None:
    (repo / "test_work.py").write_text(AB_SUITE.format(work=1) + NEW_TEST)
    done = perfgate_ab(repo, "--base", "HEAD", "--rounds", "2", "--", "pytest")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_work.py::test_added [time]: not measured on the base side" in done.stdout
    assert "NEW" in done.stdout


def test_a_base_side_that_cannot_import_is_reported_per_test(repo: Path) -> None:
    (repo / "test_work.py").write_text("import not_a_module\n")
    git(repo, "commit", "-qam", "broken base")
    (repo / "test_work.py").write_text(AB_SUITE.format(work=1))
    done = perfgate_ab(repo, "--base", "HEAD", "--rounds", "2", "--", "pytest")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not measured on the base side" in done.stdout
    assert "base run 1: pytest exited with 2" in done.stdout


def test_an_unknown_base_ref_is_a_clear_error(repo: Path) -> None:
    done = perfgate_ab(repo, "--base", "no-such-branch", "--", "pytest")
    assert done.returncode == 2
    assert "perfgate ab: git rev-parse" in done.stderr
    assert "no-such-branch" in done.stderr


def test_one_round_is_refused(repo: Path) -> None:
    done = perfgate_ab(repo, "--base", "HEAD", "--rounds", "1", "--", "pytest")
    assert done.returncode == 2
    assert "at least 2 rounds" in done.stderr


def test_paired_workers_get_paired_defaults_for_what_the_project_leaves_unset() -> None:
    from pytest_perfgate.ab import paired_worker_options
    from pytest_perfgate.paired import PAIRED_THRESHOLD, PAIRED_WARMUP_TIME

    assert paired_worker_options({}, None) == [
        f"--perf-threshold={PAIRED_THRESHOLD:g}",
        f"--perf-warmup-time={PAIRED_WARMUP_TIME:g}",
    ]
    # The project's own choices stand (either spelling of a key), a command-line
    # threshold stands over both.
    assert paired_worker_options({"threshold": 0.05, "warmup-time": 0.1}, None) == []
    assert paired_worker_options({"threshold": 0.05, "warmup_time": 0.1}, "0.03") == [
        "--perf-threshold=0.03"
    ]


def test_paired_verdicts_split_alpha_over_the_measurements_judged() -> None:
    # One test with two paired measurements: each gets alpha / 2 (q = 2 p), the way the
    # gate splits it, though the coordinator saw one perf test.
    from pytest_perfgate.ab import ABOutcome, _apply_pairs
    from pytest_perfgate.model import Comparison, Direction, Measurement, Summary, Verdict
    from pytest_perfgate.paired import PairedResult, PairRules
    from pytest_perfgate.results import TestResults

    summary = Summary(8, 1e-3, 1e-3, 1e-5, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3)

    def rounds(name: str) -> list[PairedResult]:
        base = tuple(1e-3 * (1 + 0.003 * (i % 3)) for i in range(8))
        candidate = tuple(b * 1.04 * (1 + 0.002 * (i % 2)) for i, b in enumerate(base))
        key = ("t.py::test_x", name)
        return [PairedResult(key, base, candidate, None, 1, "clear", 0.2, 0.01, 0.05)] * 3

    results = []
    for name in ("a", "b"):
        measurement = Measurement(name, "s", Direction.LOWER_IS_BETTER, (1e-3,) * 8, loops=1)
        whole_run = Comparison(
            "t.py::test_x", name, Verdict.UNCHANGED, "s", Direction.LOWER_IS_BETTER, summary
        )
        results.append((measurement, whole_run))
    outcome = ABOutcome(
        tests=[TestResults("t.py::test_x", "t.py", "test_x", "passed", tuple(results))],
        paired={("t.py::test_x", name): rounds(name) for name in ("a", "b")},
    )
    _apply_pairs(outcome, {}, PairRules())
    for comparison in outcome.comparisons:
        assert comparison.verdict is Verdict.REGRESSED
        assert comparison.p_value is not None
        assert comparison.p_value > 0
        assert comparison.q_value == pytest.approx(min(1.0, 2 * comparison.p_value))
