"""Interrupted refreshes (issue 14 item 7): a refresh killed or interrupted at any point
leaves every baseline file whole (old or new), a SIGINT leaves all of them old or all new,
and the next refresh removes the temporary files a killed one left.

A child process refreshes 12 modules over and over, each generation's entries marked with
their generation; the parent signals it after a seeded random delay, then reads every file.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_perfgate.baseline import TEMP_SUFFIX, BaselineStore, samples_path

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

MODULES = 12
CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pytest_perfgate.baseline import BaselineStore
    from pytest_perfgate.model import BaselineEntry, Direction, Environment
    from pytest_perfgate.stats import summarize

    store = BaselineStore(Path(sys.argv[1]))
    modules = int(sys.argv[2])

    def generation(number):
        samples = tuple(float(number) + i / 10 for i in range(1, 200))
        entry = BaselineEntry(
            unit="s", direction=Direction.LOWER_IS_BETTER, samples=samples,
            summary=summarize(samples), history=(float(number),),
            environment=Environment({"cpu": "x"}), commit=f"g{number}",
        )
        tests = {f"test_{i}": {"time": entry} for i in range(20)}
        return {f"test_mod{m}.py": tests for m in range(modules)}

    number = 1
    store.update_many(generation(number))
    print("ready", flush=True)
    while True:
        number += 1
        if store.update_many(generation(number)).interrupted:
            print(f"interrupted at {number}", flush=True)
            break
    """
)


def generations(root: Path) -> dict[Path, int]:
    """Every baseline file's generation (and its sidecar's), each file read whole."""
    store = BaselineStore(root)
    found: dict[Path, int] = {}
    for module in range(MODULES):
        loaded = store.load(f"test_mod{module}.py")  # raises on a half-written file
        commits = {e.commit for ms in loaded.tests.values() for e in ms.values()}
        histories = {e.history for ms in loaded.tests.values() for e in ms.values()}
        samples = {e.samples[0] for ms in loaded.tests.values() for e in ms.values()}
        assert len(commits) == 1, commits  # one file is one generation
        assert len(histories) == 1
        assert len(samples) == 1
        (commit,) = commits
        found[loaded.path] = int(str(commit)[1:])
        found[samples_path(loaded.path)] = round(next(iter(samples)) - 0.1)
    return found


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith((TEMP_SUFFIX, ".tmp"))]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_refresh_leaves_every_file_whole(
    tmp_path: Path, signum: int, seed: int
) -> None:
    root = tmp_path / "baselines"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), str(MODULES)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "ready\n"
    time.sleep(random.Random(seed).uniform(0.0, 0.4))
    child.send_signal(signum)
    _, err = child.communicate(timeout=60)
    seen = generations(root)
    if signum == signal.SIGINT:
        # All or nothing: a Ctrl-C never leaves some modules refreshed and others not.
        assert len(set(seen.values())) == 1, seen
        assert "Traceback" not in err or "KeyboardInterrupt" in err  # only between refreshes
        assert not leftovers(root)
    # A killed refresh may leave temporary files; the next refresh removes them.
    BaselineStore(root).update_many({})
    assert not leftovers(root)


def test_the_next_refresh_removes_leftovers_of_ours_only(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    ours = [
        tmp_path / f".test_x.json.abc{TEMP_SUFFIX}",
        tmp_path / "sub" / ".test_y.samples.jsonl.k2j3.tmp",  # an earlier version's name
    ]
    theirs = [tmp_path / "notes.tmp", tmp_path / ".editor.swp", tmp_path / "test_x.json"]
    for path in ours + theirs:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}", encoding="utf-8")
    store.update_many({})
    assert [p for p in ours if p.exists()] == []
    assert [p for p in theirs if not p.exists()] == []


def test_a_ctrl_c_while_files_are_staged_writes_none_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_perfgate import baseline
    from pytest_perfgate.model import BaselineEntry, Direction, Environment
    from pytest_perfgate.stats import summarize

    def entries(median: float) -> dict[str, dict[str, dict[str, BaselineEntry]]]:
        samples = (median, median * 1.01)
        entry = BaselineEntry(
            "s", Direction.LOWER_IS_BETTER, samples, summarize(samples), (median,), Environment({})
        )
        return {f"test_m{i}.py": {"test_a": {"time": entry}} for i in range(4)}

    store = BaselineStore(tmp_path)
    store.update_many(entries(1.0))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    staged = 0
    real_stage = baseline.stage

    def stage_then_interrupt(path: Path, text: str) -> Path:
        nonlocal staged
        staged += 1
        if staged == 5:  # the third module's sidecar: two modules are staged already
            raise KeyboardInterrupt
        return real_stage(path, text)

    monkeypatch.setattr(baseline, "stage", stage_then_interrupt)
    outcome = store.update_many(entries(2.0))
    assert outcome.interrupted
    assert outcome.written == ()
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
