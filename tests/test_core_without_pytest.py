"""The core must work in scripts and notebooks where pytest is not installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest_perfgate

PACKAGE_ROOT = Path(pytest_perfgate.__file__).parent
#: The pytest layer: the one package that may import pytest.
PYTEST_LAYER = "plugin"
#: Optional dependencies: blocked as well, so a probe that needs one must still import.
OPTIONAL = ("torch", "cupy", "pynvml")


def core_modules() -> list[str]:
    """Every module of the package outside the pytest layer, found on disk (a new module
    is covered without being listed)."""
    names = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        parts = path.relative_to(PACKAGE_ROOT).with_suffix("").parts
        if parts[0] == PYTEST_LAYER:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join((pytest_perfgate.__name__, *parts)))
    return names


def test_core_modules_are_found_on_disk() -> None:
    modules = core_modules()
    assert "pytest_perfgate" in modules
    assert {"pytest_perfgate.gate", "pytest_perfgate.probes.gpu", "pytest_perfgate.cli"} <= set(
        modules
    )
    assert not [m for m in modules if m.startswith("pytest_perfgate.plugin")]
    assert len(modules) == len(set(modules)) > 30


BLOCK_PYTEST = (
    f"BLOCKED = {('pytest', '_pytest', *OPTIONAL)!r}\n"
    + """
import importlib.abc
import sys


class NoPytest(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is blocked for this test", name=name)
        return None


sys.meta_path.insert(0, NoPytest())
"""
)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_core_modules_import_without_pytest() -> None:
    """pytest and the optional dependencies blocked: every core module imports, and none
    of them loads pytest."""
    modules = core_modules()
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
failed = []
for name in {modules!r}:
    try:
        importlib.import_module(name)
    except ImportError as error:
        failed.append(f"{{name}}: {{error}}")
assert not failed, "\\n".join(failed)
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in ("pytest", "_pytest"))
assert not loaded, loaded
print("imported", len({modules!r}))
"""
    )
    assert result.returncode == 0, result.stderr
    assert f"imported {len(modules)}" in result.stdout


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
