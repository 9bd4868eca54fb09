"""The core must work in scripts and notebooks where pytest is not installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CORE_MODULES = [
    "pytest_perfgate",
    "pytest_perfgate.model",
    "pytest_perfgate.stats",
    "pytest_perfgate.sampling",
    "pytest_perfgate.settings",
    "pytest_perfgate.baseline",
    "pytest_perfgate.gate",
    "pytest_perfgate.fixture",
    "pytest_perfgate.environment",
    "pytest_perfgate.cli",
    "pytest_perfgate.importers",
    "pytest_perfgate.probes.cpu",
    "pytest_perfgate.probes.memory",
    "pytest_perfgate.contention",
    "pytest_perfgate.probes.cpuidle",
    "pytest_perfgate.probes.host",
    "pytest_perfgate.probes.iostats",
    "pytest_perfgate.probes.storage",
    "pytest_perfgate.probes.network",
    "pytest_perfgate.probes.netserver",
    "pytest_perfgate.report.terminal",
    "pytest_perfgate.report.json",
    "pytest_perfgate.results",
    "pytest_perfgate.report.markdown",
    "pytest_perfgate.report.github",
    "pytest_perfgate.report.junit",
    "pytest_perfgate.report.html",
    "pytest_perfgate.compare",
    "pytest_perfgate.code_hash",
    "pytest_perfgate.refresh",
    "pytest_perfgate.report.files",
    "pytest_perfgate.report.summary",
]

BLOCK_PYTEST = """
import importlib.abc
import sys


class NoPytest(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("pytest", "_pytest"):
            raise ImportError(f"{name} is blocked for this test")
        return None


sys.meta_path.insert(0, NoPytest())
"""


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_core_modules_import_without_pytest() -> None:
    result = run_python(
        BLOCK_PYTEST
        + f"""
import importlib

try:
    import pytest
except ImportError:
    pass
else:
    raise SystemExit("the blocker does not work")
for name in {CORE_MODULES!r}:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in ("pytest", "_pytest"))
assert not loaded, loaded
print("imported", len({CORE_MODULES!r}))
"""
    )
    assert result.returncode == 0, result.stderr
    assert f"imported {len(CORE_MODULES)}" in result.stdout


def test_cli_does_not_import_the_plugin() -> None:
    result = run_python(
        """
import sys
import pytest_perfgate.cli

assert "pytest_perfgate.plugin" not in sys.modules, "cli imported the pytest layer"
assert "pytest" not in sys.modules, "cli imported pytest"
print("ok")
"""
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
