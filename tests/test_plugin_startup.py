"""Start-up cost: pytest loads the plugin in every run, so loading it imports nothing heavy;
the core (numpy, scipy, rich...) comes in with the first perf test (issue 13)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: What a run without perf tests must not import: each costs tenths of a second.
HEAVY = ("numpy", "scipy", "rich", "pynvml")
#: The core modules that import them.
HEAVY_CORE = (
    "pytest_perfgate.stats",
    "pytest_perfgate.baseline",
    "pytest_perfgate.fixture",
    "pytest_perfgate.gate",
    "pytest_perfgate.environment",
    "pytest_perfgate.report.terminal",
)

REPORT_IMPORTS = f"""
import json
import sys

import pytest


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    names = {list(HEAVY + HEAVY_CORE)!r}
    loaded = [name for name in names if name in sys.modules]
    (config.rootpath / "imported.json").write_text(json.dumps(loaded))
"""


def imported_by(code: str) -> list[str]:
    """The heavy modules in sys.modules after running ``code`` in a fresh interpreter."""
    names = HEAVY + HEAVY_CORE
    check = (
        f"{code}\nimport sys, json\nprint(json.dumps([m for m in {names!r} if m in sys.modules]))"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    assert imported_by("import pytest_perfgate.plugin") == []


def test_the_facade_imports_a_name_when_asked() -> None:
    assert imported_by("import pytest_perfgate") == []
    assert "pytest_perfgate.stats" in imported_by("from pytest_perfgate import summarize")


def test_a_suite_without_perf_tests_imports_nothing_heavy(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(REPORT_IMPORTS)
    pytester.makepyfile("def test_plain():\n    assert 1 + 1 == 2\n")
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    assert json.loads((pytester.path / "imported.json").read_text()) == []


def test_a_perf_test_imports_the_core(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(REPORT_IMPORTS)
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.perf\ndef test_p(perf):\n    perf.record('x', [1.0] * 5)\n"
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    loaded = json.loads((pytester.path / "imported.json").read_text())
    assert "pytest_perfgate.fixture" in loaded
    # A median's gate is plain Python (issue 18): numpy and scipy come with tail statistics.
    assert "numpy" not in loaded
    assert "scipy" not in loaded


def test_a_perf_fixture_asked_for_at_run_time_is_still_judged(pytester: pytest.Pytester) -> None:
    """No mark and no ``perf`` argument: collection sees no perf test, yet the fixture's
    measurement is recorded, and a 10x slower run fails against it."""
    pytester.makepyfile(
        test_dynamic="""
import os, time


def test_dynamic(request):
    perf = request.getfixturevalue("perf")
    pause = float(os.environ.get("PAUSE", "0.002"))
    perf(time.sleep, pause)
"""
    )
    # Sleeps: a loaded machine does not shrink a 10x difference; no speed reference to
    # rescale them by the CPU's speed.
    options = ("-p", "no:randomly", "--perf-speed-reference=false", "--perf-max-time=0.3")
    refresh = pytester.runpytest_subprocess("--perf-update-baselines", *options)
    refresh.assert_outcomes(passed=1)
    assert (pytester.path / "baselines" / "test_dynamic.json").is_file()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PAUSE", "0.02")
        slower = pytester.runpytest_subprocess(*options)
    slower.assert_outcomes(failed=1)
    assert "performance regression in test_dynamic.py::test_dynamic" in slower.stdout.str()
