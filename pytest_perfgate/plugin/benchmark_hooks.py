"""pytest-benchmark's hooks, declared where perfgate owns the ``benchmark`` fixture.

A conftest.py written for pytest-benchmark implements some of these; without their specs,
pytest stops at collection with "unknown hook". The names and arguments are
pytest-benchmark's (5.x), so the same conftest.py loads with either plugin. perfgate calls
two of them (see docs/how-to/migrate-from-pytest-benchmark.md); the others are accepted,
never called, since perfgate has no step they would customize.
"""

from __future__ import annotations

from typing import Any

import pytest

#: The hooks perfgate calls; the rest of this module is only accepted.
CALLED = ("pytest_benchmark_update_machine_info", "pytest_benchmark_update_json")


@pytest.hookspec(firstresult=True)
def pytest_benchmark_scale_unit(
    config: pytest.Config, unit: str, benchmarks: Any, best: Any, worst: Any, sort: Any
) -> Any:
    """Accepted, not called: perfgate scales units itself."""


@pytest.hookspec(firstresult=True)
def pytest_benchmark_generate_machine_info(config: pytest.Config) -> Any:
    """Accepted, not called: the machine fingerprint decides which baselines compare."""


def pytest_benchmark_update_machine_info(
    config: pytest.Config, machine_info: dict[str, Any]
) -> None:
    """Called once at session start with the environment's fields; keys an
    implementation adds or changes are kept as environment info (shown in reports and
    stored with refreshed baselines, never compared)."""


@pytest.hookspec(firstresult=True)
def pytest_benchmark_generate_commit_info(config: pytest.Config) -> Any:
    """Accepted, not called: perfgate records the git commit itself."""


def pytest_benchmark_update_commit_info(config: pytest.Config, commit_info: Any) -> None:
    """Accepted, not called."""


@pytest.hookspec(firstresult=True)
def pytest_benchmark_group_stats(config: pytest.Config, benchmarks: Any, group_by: Any) -> Any:
    """Accepted, not called: perfgate's table is not grouped."""


@pytest.hookspec(firstresult=True)
def pytest_benchmark_generate_json(
    config: pytest.Config,
    benchmarks: Any,
    include_data: Any,
    machine_info: Any,
    commit_info: Any,
) -> Any:
    """Accepted, not called: the results file (--perf-json) has perfgate's schema."""


def pytest_benchmark_update_json(
    config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]
) -> None:
    """Called before the results file (--perf-json) is written for good: ``output_json``
    is its content (docs/reference/results-schema.json), ``benchmarks`` the ``benchmark``
    fixtures of the run; keys an implementation adds are written with it."""


def pytest_benchmark_compare_machine_info(
    config: pytest.Config, benchmarksession: Any, machine_info: Any, compared_benchmark: Any
) -> None:
    """Accepted, not called: perfgate compares machine classes with every baseline."""
