"""Same-job A/B: measure the base ref and the candidate alternately, in one job, and judge.

Two ways: :func:`run_paired` (the default) starts pairs of long-lived pytest processes
that take turns batch by batch under a coordinator (paired.py) and judges each
measurement on its pairs; :func:`run_ab` alternates whole runs, as described below, and
judges what pairing does not reach.

On a shared CI runner the machine's speed drifts between jobs by more than the changes
worth catching. Measuring both sides in the same job, alternating whole runs (A B A B
...), exposes both to the same drift; each test is then judged on its pooled base
samples against its pooled candidate samples, with the spread of the base side's
per-run medians as the run-to-run noise (the stored-baseline gate has to assume it until
a baseline has history).

The base ref is checked out into a temporary git worktree. Both sides run the same pytest
command with this installed perfgate; on the base side the worktree's directories come
first on PYTHONPATH, so the code under test (also an editable install of it) is the
base's. Each run writes a results file (--perf-json) into a scratch directory, with an
empty scratch baseline directory so no stored baseline is read or written.

No pytest import here: pytest runs in subprocesses. The ``perfgate ab`` command line is
cli.py's.
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import final

from .gate import GatePolicy, judge
from .model import BaselineEntry, Comparison, Environment, Measurement, Verdict
from .paired import (
    PAIRED_THRESHOLD,
    PAIRED_WARMUP_TIME,
    Key,
    PairedResult,
    PairRules,
    process_noise,
    rounds_decision,
)
from .results import ResultsError, RunResults, TestResults, read_results
from .stats import Decision, bonferroni, speed_adjusted, summarize


class ABError(Exception):
    """The A/B run cannot go on (no git, unknown ref...); the message says why."""


@final
@dataclass(frozen=True, slots=True)
class SideRun:
    """One pytest run of one side."""

    side: str  #: "base" or "candidate"
    round: int
    exit_code: int
    results: RunResults | None  #: None when pytest wrote no results file
    seconds: float
    output_tail: str


@dataclass(slots=True)
class ABOutcome:
    runs: list[SideRun] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    tests: list[TestResults] = field(default_factory=list)  #: the candidate side, judged
    problems: list[str] = field(default_factory=list)  #: per-test notes from the base side
    #: Paired mode: each round's pairs, per (test id, measurement name).
    paired: dict[Key, list[PairedResult]] = field(default_factory=dict)

    @property
    def regressed(self) -> bool:
        return any(c.verdict is Verdict.REGRESSED for c in self.comparisons)


@contextmanager
def base_worktree(repo: Path, ref: str) -> Iterator[Path]:
    """A detached git worktree of ``ref``, removed afterwards whatever happens."""
    if shutil.which("git") is None:
        raise ABError("git is not on PATH: A/B mode checks the base ref out with git worktree")
    root = str(repository_root(repo))
    commit = _git(Path(root), "rev-parse", "--verify", f"{ref}^{{commit}}").strip()
    scratch = Path(tempfile.mkdtemp(prefix="perfgate-ab-base-"))
    path = scratch / "base"
    _git(Path(root), "worktree", "add", "--detach", str(path), commit)
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "-C", root, "worktree", "remove", "--force", str(path)],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(scratch, ignore_errors=True)


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise ABError(f"git {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def run_ab(
    command: Sequence[str],
    *,
    candidate_dir: Path,
    base_dir: Path,
    rounds: int,
    policy: GatePolicy,
    scratch: Path,
    env: dict[str, str] | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> ABOutcome:
    """Run ``command`` (a pytest command line) ``rounds`` times on each side, alternating
    (base first, then candidate, then base...), and judge every measurement."""
    if rounds < 2:
        raise ABError("A/B needs at least 2 rounds: the base side's spread is the noise")
    outcome = ABOutcome()
    (scratch / "baselines").mkdir(parents=True, exist_ok=True)
    for round_index in range(rounds):
        # Alternate which side goes first, so neither always runs on a warmer machine.
        order = ("base", "candidate") if round_index % 2 == 0 else ("candidate", "base")
        for side in order:
            directory = base_dir if side == "base" else candidate_dir
            run = _run_side(command, side, round_index, directory, base_dir, scratch, env)
            outcome.runs.append(run)
            progress(
                f"perfgate ab: round {round_index + 1}/{rounds} {side}: exit {run.exit_code}, "
                f"{run.seconds:.1f}s"
            )
    _note_exit_codes(outcome)
    _judge(outcome, policy)
    return outcome


def _note_exit_codes(outcome: ABOutcome) -> None:
    for run in outcome.runs:
        if run.exit_code not in (0, 1):  # 1: tests failed; anything else: pytest did not run
            last = "\n    ".join(run.output_tail.strip().splitlines()[-5:])
            outcome.problems.append(
                f"{run.side} run {run.round + 1}: pytest exited with {run.exit_code}; "
                f"its output ended with:\n    {last}"
            )


def run_paired(
    command: Sequence[str],
    *,
    candidate_dir: Path,
    base_dir: Path,
    rules: PairRules,
    policy: GatePolicy,
    scratch: Path,
    env: dict[str, str] | None = None,
    progress: Callable[[str], None] = lambda line: None,
    cpu: int | None = None,
) -> ABOutcome:
    """Run ``command`` once on each side, both processes at once, taking turns batch by
    batch under a coordinator (paired.py); judge every paired measurement on its pairs
    and every other one (probes that do not sample through the Sampler, tests on one
    side only) as a one-round whole-run A/B. With ``cpu``, both processes run on that
    one CPU, so a neighbour that occupies a core slows both sides alike."""
    from .paired import CoordinatorServer

    if not hasattr(socket, "AF_UNIX"):
        raise ABError("paired A/B needs Unix sockets; use --whole-runs on this platform")
    outcome = ABOutcome()
    (scratch / "baselines").mkdir(parents=True, exist_ok=True)
    # The rounds measure at the same time, sharing the clock: each round's coordinator
    # gets the whole budget, and the turns in it are shared between the rounds.
    per_round = rules
    with CoordinatorServer(scratch / "pair.sock", per_round, log=progress) as server:
        started = time.perf_counter()
        processes = {
            (index, side): _start_worker(command, side, index, base_dir, candidate_dir,
                                         scratch, env, per_round, cpu)
            for index in range(rules.rounds)
            for side in ("base", "candidate")
        }  # fmt: skip
        for (index, side), process in processes.items():
            exit_code = process.wait()
            tail = (scratch / f"{side}-{index}.out").read_text(errors="replace")[-2000:]
            results = _results_or_none(scratch / f"{side}-{index}.json")
            seconds = time.perf_counter() - started
            outcome.runs.append(SideRun(side, index, exit_code, results, seconds, tail))
            progress(
                f"perfgate ab: round {index + 1}/{rules.rounds} {side} (paired): "
                f"exit {exit_code}, {seconds:.1f}s"
            )
    unpaired: dict[Key, str] = {}
    for coordinator in server.coordinators:
        for key, result in coordinator.results.items():
            outcome.paired.setdefault(key, []).append(result)
        unpaired.update(coordinator.unpaired)
    _note_exit_codes(outcome)
    _judge(outcome, policy)
    _apply_pairs(outcome, unpaired, rules)
    return outcome


def _start_worker(
    command: Sequence[str],
    side: str,
    round_index: int,
    base_dir: Path,
    candidate_dir: Path,
    scratch: Path,
    env: dict[str, str] | None,
    rules: PairRules,
    cpu: int | None,
) -> subprocess.Popen[bytes]:
    from .paired_protocol import (
        BATCH_TIME_VARIABLE,
        CPU_VARIABLE,
        ROUND_VARIABLE,
        SIDE_VARIABLE,
        SOCKET_VARIABLE,
    )

    environment = _side_environment(side, base_dir, env)
    environment[SOCKET_VARIABLE] = str(scratch / "pair.sock")
    environment[SIDE_VARIABLE] = side
    environment[BATCH_TIME_VARIABLE] = repr(rules.batch_time)
    environment[ROUND_VARIABLE] = str(round_index)
    if cpu is not None:
        environment[CPU_VARIABLE] = str(cpu)
    results = scratch / f"{side}-{round_index}.json"
    with (scratch / f"{side}-{round_index}.out").open("w") as output:
        process = subprocess.Popen(
            [*_side_command(command, results, scratch), *PAIRED_ARGS],
            cwd=base_dir if side == "base" else candidate_dir,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return process


def paired_worker_options(configured: Mapping[str, object], threshold: str | None) -> list[str]:
    """Options for both sides' pytest in paired mode: ``perfgate ab --threshold`` (the
    workers judge each pair with it), else paired defaults for what the project's
    ``[tool.perfgate]`` (``configured``) leaves unset. A test's own marker still wins."""
    keys = {str(key).replace("-", "_") for key in configured}
    options = []
    if threshold is not None:
        options.append(f"--perf-threshold={threshold}")
    elif "threshold" not in keys:
        options.append(f"--perf-threshold={PAIRED_THRESHOLD:g}")
    if "warmup_time" not in keys:
        options.append(f"--perf-warmup-time={PAIRED_WARMUP_TIME:g}")
    return options


#: What the workers of a paired run add to the command: both sides must meet the same
#: tests in the same order.
PAIRED_ARGS = ("-p", "no:randomly")


def _apply_pairs(outcome: ABOutcome, unpaired: Mapping[Key, str], rules: PairRules) -> None:
    """Replace the whole-run verdict of every paired measurement by its paired one."""
    noise = process_noise(list(outcome.paired.values()))
    # The suite's level split over the measurements judged, as in the gate (Bonferroni):
    # only now are they known; the coordinator's early stops split it over perf tests.
    measurements = max(sum(len(test.results) for test in outcome.tests), 1)
    tests: list[TestResults] = []
    for test in outcome.tests:
        judged = []
        for measurement, comparison in test.results:
            key = (test.test_id, measurement.name)
            rounds = outcome.paired.get(key, [])
            decided = (
                rounds_decision(
                    rounds, noise=noise, threshold=rounds[0].threshold,
                    alpha=rules.alpha / measurements,
                    direction=measurement.direction,
                )
                if rounds
                else None
            )  # fmt: skip
            if decided is not None:
                comparison = _paired_comparison(comparison, rounds, decided, noise, measurements)
            else:
                why = unpaired.get(key) or "fewer than 3 pairs"
                note = f"not paired ({why}): judged on whole runs of each side"
                comparison = replace(comparison, notes=(*comparison.notes, note))
            judged.append((measurement, comparison))
        tests.append(replace(test, results=tuple(judged)))
    outcome.tests = tests
    outcome.comparisons = [c for test in tests for _, c in test.results]


def _paired_comparison(
    comparison: Comparison,
    rounds: Sequence[PairedResult],
    decided: tuple[Decision, str],
    noise: float,
    measurements: int,
) -> Comparison:
    decision, remark = decided
    pairs = sum(r.pairs for r in rounds)
    seconds = sum(r.seconds for r in rounds)
    note = (
        f"paired: {pairs} pairs in {len(rounds)} rounds, {seconds:.1f}s; process noise {noise:.1%}"
    )
    return replace(
        comparison,
        verdict=decision.verdict,
        ratio=decision.ratio,
        ci_low=decision.ci_low,
        ci_high=decision.ci_high,
        p_value=decision.p_worse,
        q_value=bonferroni(decision.p_worse, measurements),
        threshold=rounds[0].threshold,
        looks=sum(r.looks for r in rounds),
        notes=(note, remark) if remark else (note,),
        detectable_change=(
            decision.detectable_change if math.isfinite(decision.detectable_change) else None
        ),
    )


def shared_cpu() -> int | None:
    """The CPU both sides of a paired run share: the last this process may use (the
    first is where interrupts land on most machines); None where affinity cannot be set
    or only one CPU is there."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[-1] if len(cpus) > 1 else None


def pairs_document(paired: Mapping[Key, Sequence[PairedResult]]) -> dict[str, object]:
    """The batch levels of every paired measurement, round by round, for ``--pairs-json``."""
    measurements = []
    for round_index, result in ((i, r) for rounds in paired.values() for i, r in enumerate(rounds)):
        decision = result.decision
        measurements.append(
            {
                "test_id": result.key[0],
                "name": result.key[1],
                "round": round_index,
                "base": list(result.base),
                "candidate": list(result.candidate),
                "verdict": None if decision is None else decision.verdict.value,
                "ratio": None if decision is None else decision.ratio,
                "looks": result.looks,
                "stop_reason": result.stop_reason,
                "seconds": result.seconds,
                "threshold": result.threshold,
                "alpha": result.alpha,
            }
        )
    return {"format": "perfgate-pairs", "version": 1, "measurements": measurements}


def _run_side(
    command: Sequence[str],
    side: str,
    round_index: int,
    directory: Path,
    base_dir: Path,
    scratch: Path,
    env: dict[str, str] | None,
) -> SideRun:
    results_path = scratch / f"{side}-{round_index}.json"
    started = time.perf_counter()
    done = subprocess.run(
        _side_command(command, results_path, scratch),
        cwd=directory,
        env=_side_environment(side, base_dir, env),
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    tail = (done.stdout + done.stderr)[-2000:]
    return SideRun(
        side, round_index, done.returncode, _results_or_none(results_path), seconds, tail
    )


def _side_command(command: Sequence[str], results_path: Path, scratch: Path) -> list[str]:
    return [
        *command,
        f"--perf-json={results_path}",
        f"--perf-baseline-dir={scratch / 'baselines'}",
        "--perf-mode=warn",  # the verdicts of these runs are ours to make, not theirs
        "-p",
        "no:cacheprovider",
    ]


def _side_environment(side: str, base_dir: Path, env: dict[str, str] | None) -> dict[str, str]:
    environment = dict(os.environ if env is None else env)
    if side == "base":
        # The base's code first on the path, ahead of an editable install of the candidate.
        paths = [str(base_dir), *(str(p) for p in (base_dir / "src",) if p.is_dir())]
        old = environment.get("PYTHONPATH")
        environment["PYTHONPATH"] = os.pathsep.join(paths + ([old] if old else []))
    return environment


def _results_or_none(path: Path) -> RunResults | None:
    try:
        return read_results(path)
    except ResultsError:
        return None


def _judge(outcome: ABOutcome, policy: GatePolicy) -> None:
    base_runs = [r for r in outcome.runs if r.side == "base" and r.results is not None]
    candidate_runs = [r for r in outcome.runs if r.side == "candidate" and r.results is not None]
    candidate_results = [r.results for r in candidate_runs if r.results is not None]
    if not candidate_results:
        tail = next((r.output_tail for r in outcome.runs if r.side == "candidate"), "")
        raise ABError(f"the candidate side produced no results; its output ended with:\n{tail}")
    if not base_runs:
        outcome.problems.append(
            "the base side produced no results (the command failed there); every "
            "measurement is NEW. Its output ended with:\n"
            + next((r.output_tail for r in outcome.runs if r.side == "base"), "")
        )
    base = _pooled(base_runs)
    candidate = _pooled(candidate_runs)
    environment = candidate_results[0].environment
    tests_by_id = {t.test_id: t for results in candidate_results for t in results.tests}
    if policy.tests < 1:  # alpha is shared among the measurements, as in the gate
        policy = replace(policy, tests=len(candidate))
    judged: dict[str, list[tuple[Measurement, Comparison]]] = {}
    for key, (measurements, _) in sorted(candidate.items()):
        test_id, name = key
        current = _concatenate(measurements)
        base_side = base.get(key)
        entry = _base_entry(base_side, environment) if base_side else None
        if entry is None:
            outcome.problems.append(
                f"{test_id} [{name}]: not measured on the base side (new test, or it "
                "failed or was skipped there)"
            )
        runs = replace(policy, current_runs=len(measurements))
        judgement = judge(test_id, current, entry, runs, environment=environment)
        comparison = judgement.comparison
        if entry is None:
            comparison = replace(
                comparison, notes=(*comparison.notes, "not measured on the base side")
            )
        outcome.comparisons.append(comparison)
        judged.setdefault(test_id, []).append((judgement.measurement, comparison))
    for test_id, results in judged.items():
        test = tests_by_id[test_id]
        outcome.tests.append(
            TestResults(
                test_id, test.module, test.test, test.outcome, tuple(results), test.location
            )
        )
    for key in sorted(set(base) - set(candidate)):
        outcome.problems.append(f"{key[0]} [{key[1]}]: measured on the base side only")


def _pooled(
    runs: Sequence[SideRun],
) -> dict[tuple[str, str], tuple[list[Measurement], list[float]]]:
    """(test id, measurement name) -> every run's measurement, and each run's level."""
    pooled: dict[tuple[str, str], tuple[list[Measurement], list[float]]] = {}
    for run in runs:
        assert run.results is not None
        for test in run.results.tests:
            for measurement, _ in test.results:
                measurements, levels = pooled.setdefault((test.test_id, measurement.name), ([], []))
                measurements.append(measurement)
                levels.append(_level(measurement))
    return pooled


def _level(measurement: Measurement) -> float:
    """A run's level, as the gate compares it: speed-adjusted where there is a reference."""
    if measurement.reference:
        return summarize(speed_adjusted(measurement.samples, measurement.reference)).median
    return summarize(measurement.samples).median


def _concatenate(measurements: Sequence[Measurement]) -> Measurement:
    first = measurements[0]
    same_reference = all(bool(m.reference) == bool(first.reference) for m in measurements)
    return Measurement(
        name=first.name,
        unit=first.unit,
        direction=first.direction,
        samples=tuple(x for m in measurements for x in m.samples),
        loops=first.loops,
        cpu_samples=tuple(x for m in measurements for x in m.cpu_samples),
        stop_reason=first.stop_reason,
        reference=tuple(x for m in measurements for x in m.reference) if same_reference else (),
        statistic=first.statistic,
        machine=first.machine,
        details=first.details,
    )


def _base_entry(
    side: tuple[list[Measurement], list[float]], environment: Environment
) -> BaselineEntry:
    measurements, levels = side
    pooled = _concatenate(measurements)
    return BaselineEntry(
        unit=pooled.unit,
        direction=pooled.direction,
        samples=pooled.samples,
        summary=summarize(pooled.samples),
        # Each base run's level: with 3 or more, the gate measures the run-to-run noise
        # from them instead of assuming it.
        history=tuple(levels),
        environment=environment.extended(pooled.machine),
        loops=pooled.loops,
        cpu_samples=pooled.cpu_samples,
        reference=pooled.reference,
        statistic=pooled.statistic,
        details=pooled.details,
    )


def repository_root(directory: Path) -> Path:
    """The top of the git checkout that holds ``directory``."""
    return Path(_git(directory, "rev-parse", "--show-toplevel").strip())
