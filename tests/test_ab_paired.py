"""`perfgate ab` paired (the default): two long-lived pytest processes take turns, on real
git repositories, real sockets and real subprocesses.

The only timing relied on is an injected slowdown of several times, with a wide
threshold (plugin_support.FAST_SETTINGS), as in the other acceptance tests; every run
has a timeout, so a deadlock fails the test instead of hanging it.
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

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not hasattr(os, "sched_getaffinity"),
    reason="needs git and Linux (Unix sockets, CPU affinity)",
)


EXTRA = """

@pytest.mark.perf
def test_extra(perf):
    {body}
    perf(spin, 1000)
"""

#: Small budgets: the suite's verdicts come in seconds.
PAIRED = ("--rounds", "2", "--pair-time", "1.0")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository whose HEAD holds AB_SUITE at WORK = 1."""
    return committed_repo(tmp_path)


def perfgate_ab(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest_perfgate.cli", "ab", "--base", "HEAD", *PAIRED]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [*command, *args], cwd=repo, capture_output=True, text=True, env=env, timeout=240
    )


def test_a_slowdown_is_caught_in_pairs(repo: Path) -> None:
    (repo / "test_work.py").write_text(AB_SUITE.format(work=SLOWDOWN))
    done = perfgate_ab(repo, "--json", "ab.json", "--pairs-json", "pairs.json", "--", "pytest")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "REGRESSED test_work.py::test_slow:" in done.stdout
    assert "REGRESSED test_work.py::test_steady" not in done.stdout
    assert "2 rounds, paired" in done.stdout
    document = json.loads((repo / "ab.json").read_text())
    comparisons = {t["test"]: t["measurements"][0]["comparison"] for t in document["tests"]}
    assert comparisons["test_slow"]["verdict"] == "REGRESSED"
    assert any("paired:" in note for note in comparisons["test_slow"]["notes"])
    pairs = json.loads((repo / "pairs.json").read_text())
    slow = [m for m in pairs["measurements"] if m["test_id"].endswith("test_slow")]
    assert slow
    assert all(len(m["base"]) == len(m["candidate"]) for m in slow)
    assert not (repo / "baselines").exists()  # no stored baseline read or written


def test_nothing_changed_passes(repo: Path) -> None:
    done = perfgate_ab(repo, "--", "pytest")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "REGRESSED" not in done.stdout


def test_a_test_on_the_candidate_side_only_is_measured_alone(repo: Path) -> None:
    extra = EXTRA.format(body="pass")
    (repo / "test_work.py").write_text(AB_SUITE.format(work=1) + extra)
    done = perfgate_ab(repo, "--", "pytest")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_work.py::test_extra [time]: not measured on the base side" in done.stdout
    assert "NEW" in done.stdout


def test_a_test_skipped_on_one_side_does_not_hold_up_the_other(repo: Path) -> None:
    git_extra = EXTRA.format(body="pass")
    (repo / "test_work.py").write_text(AB_SUITE.format(work=1) + git_extra)
    git(repo, "commit", "-qam", "extra test")
    skipped = EXTRA.format(body='pytest.skip("not today")')
    (repo / "test_work.py").write_text(AB_SUITE.format(work=1) + skipped)
    done = perfgate_ab(repo, "--", "pytest")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_work.py::test_extra [time]: measured on the base side only" in done.stdout


def test_a_crashing_worker_does_not_hang_the_run(repo: Path) -> None:
    crash = EXTRA.format(body="os._exit(3)")  # the base's process dies mid-suite
    (repo / "test_work.py").write_text(AB_SUITE.format(work=1) + crash)
    git(repo, "commit", "-qam", "a base that crashes")
    (repo / "test_work.py").write_text(AB_SUITE.format(work=1) + EXTRA.format(body="pass"))
    done = perfgate_ab(repo, "--", "pytest")  # the timeout fails the test on a hang
    assert done.returncode == 0, done.stdout + done.stderr
    assert "base run 1: pytest exited with 3" in done.stdout
    assert "test_work.py::test_extra [time]: not measured on the base side" in done.stdout


def test_the_whole_run_fallback_still_alternates_runs(repo: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_perfgate.cli", "ab", "--base", "HEAD", "--whole-runs",
         "--rounds", "2", "--", "pytest"],
        cwd=repo, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(base HEAD, 2 rounds)" in done.stdout
    assert "paired" not in done.stderr


def test_the_threshold_given_to_perfgate_ab_reaches_the_paired_verdicts(repo: Path) -> None:
    # The project's pyproject.toml says 0.5; the command line wins over it, in the
    # workers that judge each pair too (they once kept the project's threshold).
    (repo / "test_work.py").write_text(AB_SUITE.format(work=SLOWDOWN))
    done = perfgate_ab(repo, "--threshold", "0.9", "--pairs-json", "pairs.json", "--", "pytest")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "threshold 90%" in done.stdout
    pairs = json.loads((repo / "pairs.json").read_text())
    assert {m["threshold"] for m in pairs["measurements"]} == {0.9}
