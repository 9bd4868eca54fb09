"""Helpers shared by the pytester acceptance tests of the pytest layer (tests/test_plugin_*.py).

Every generated suite measures with tiny budgets (see FAST_SETTINGS), and the only timing a
test relies on is an injected slowdown of several times: verdicts on unchanged code are
never asserted beyond "not failed", with a wide practical threshold.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_perfgate import environment
from pytest_perfgate.baseline import samples_path

# pytester's in-process runs unload every module a run imported; hypothesis's pytest
# plugin imports hypothesis at the end of each run, which costs a second every time unless
# it is already imported here, outside the runs.
with contextlib.suppress(ImportError):  # hypothesis is a dev dependency
    import hypothesis  # noqa: F401

#: [tool.perfgate] values for generated suites: fast sampling, and a wide practical
#: threshold so that unchanged code never fails on a noisy machine.
FAST_SETTINGS: dict[str, Any] = {
    "max_time": 0.1,
    "warmup_time": 0.01,
    "min_sample_time": 0.0005,
    "min_samples": 10,
    "threshold": 0.5,
}

#: The same settings as command-line flags.
FAST_FLAGS: tuple[str, ...] = (
    "--perf-max-time=0.1",
    "--perf-warmup-time=0.01",
    "--perf-min-sample-time=0.0005",
    "--perf-min-samples=10",
    "--perf-threshold=0.5",
)

#: The injected slowdown: the work of test_slow is multiplied by WORK. Large, because on a
#: 2-core machine running 10 times its load a 6-fold slowdown once measured as 1.7 ms against
#: 61 us with a 95% CI of -33%..+116367% (INCONCLUSIVE): a real regression must fail every time.
SLOWDOWN = "50"


#: The suite of the A/B acceptance tests (tests/test_ab*.py): test_slow does WORK times the
#: work of test_steady.
AB_SUITE = """
import os

import pytest

WORK = {work}


def spin(n):
    total = 0
    for i in range(n):
        total += i
    return total


@pytest.mark.perf
def test_slow(perf):
    perf(spin, 2000 * WORK)


@pytest.mark.perf
def test_steady(perf):
    perf(spin, 2000)
"""


def git(repo: Path, *args: str) -> None:
    """Run git in ``repo`` with a committer identity of its own."""
    identity = ("-c", "user.name=t", "-c", "user.email=t@t")
    subprocess.run(["git", "-C", str(repo), *identity, *args], check=True, capture_output=True)


def committed_repo(tmp_path: Path) -> Path:
    """A git repository whose HEAD holds AB_SUITE at WORK = 1, with FAST_SETTINGS."""
    repo = tmp_path / "project"
    repo.mkdir()
    settings = "\n".join(f"{key} = {value!r}" for key, value in FAST_SETTINGS.items())
    (repo / "pyproject.toml").write_text(f"[tool.perfgate]\n{settings}\n")
    (repo / "test_work.py").write_text(AB_SUITE.format(work=1))
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    return repo


#: A suite whose test_slow does WORK times more work (WORK from the environment, read at
#: call time: the test's code, and so its code hash, stays the same).
WORK_SUITE = """
import os

import pytest


def spin(n):
    total = 0
    for i in range(n):
        total += i
    return total


@pytest.mark.perf
def test_slow(perf):
    perf(spin, 3000 * int(os.environ.get("WORK", "1")))


@pytest.mark.perf
def test_steady(perf):
    perf(spin, 3000)
"""

#: The failure message of a regressed measurement.
REGRESSION_MESSAGE = "*performance regression in*median*vs baseline*(+*%, 95% CI*q*threshold*"


def write_settings(pytester: pytest.Pytester, **overrides: Any) -> Path:
    """pyproject.toml with FAST_SETTINGS (plus overrides) in [tool.perfgate]."""
    values = {**FAST_SETTINGS, **overrides}
    body = "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
    return pytester.makepyprojecttoml("[tool.perfgate]\n" + body)


def baseline_path(pytester: pytest.Pytester, module: str, baseline_dir: str = "baselines") -> Path:
    """The baseline file of a test module given without .py, e.g. ``"suite/test_work"``."""
    return pytester.path / baseline_dir / f"{module}.json"


def load_baseline(
    pytester: pytest.Pytester, module: str, baseline_dir: str = "baselines"
) -> dict[str, Any]:
    path = baseline_path(pytester, module, baseline_dir)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    # Format 3 keeps raw samples and details in a sidecar: merged back, entries read whole.
    sidecar = samples_path(path)
    if sidecar.is_file():
        for line in sidecar.read_text(encoding="utf-8").splitlines():
            raw = json.loads(line)
            entry = data["tests"][raw.pop("test")][raw.pop("measurement")]
            entry.update(raw)
    return data


def save_baseline(
    pytester: pytest.Pytester, module: str, data: dict[str, Any], baseline_dir: str = "baselines"
) -> None:
    baseline_path(pytester, module, baseline_dir).write_text(
        json.dumps(data, indent=2), encoding="utf-8"
    )


def rewrite(path: Path, text: str) -> None:
    """Replace a test module's source so that the next run surely imports the new one.

    Assertion rewriting caches bytecode keyed by mtime (in seconds) and size: move the
    mtime on and drop the cache, so an edit of the same length is never missed.
    """
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    os.utime(path, (stat.st_atime + 5, stat.st_mtime + 5))
    shutil.rmtree(path.parent / "__pycache__", ignore_errors=True)


def record_baselines(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run the suite in-process with --perf-update-baselines; it must pass.

    The machine-speed calibration (0.7 s a refresh) only matters to
    --perf-on-mismatch=normalize: these refreshes store a fixed score instead.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(environment, "calibrate_machine", lambda: 100_000.0)
        result = pytester.runpytest("--perf-update-baselines", *args)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    return result
