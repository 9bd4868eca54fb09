"""The refresh command the reports suggest, rebuilt from the run's own arguments."""

from __future__ import annotations

import pytest

from pytest_perfgate.gate import INCOMPARABLE_HINT
from pytest_perfgate.report.hints import refresh_command, with_command


@pytest.mark.parametrize(
    ("args", "command"),
    [
        ((), "pytest --perf-update-baselines"),
        (
            ("example_suite", "-p", "no:randomly"),
            "pytest example_suite -p no:randomly --perf-update-baselines",
        ),
        (
            ("tests/perf", "--perf-json", "r.json", "--perf-markdown=r.md", "-x", "-k", "fast"),
            "pytest tests/perf -k fast --perf-update-baselines",
        ),
        (("t.py", "--perf-update-baselines"), "pytest t.py --perf-update-baselines"),
        (
            ("t.py", "--perf-mode=warn", "--junitxml", "j.xml"),
            "pytest t.py --perf-update-baselines",
        ),
        (("tests/test_a b.py",), "pytest 'tests/test_a b.py' --perf-update-baselines"),
    ],
)
def test_the_refresh_repeats_the_runs_paths_and_options(
    args: tuple[str, ...], command: str
) -> None:
    assert refresh_command(args) == command


def test_without_the_runs_arguments_the_command_is_the_generic_one() -> None:
    assert refresh_command(None) == "pytest --perf-update-baselines"


def test_the_gates_hints_take_the_runs_command() -> None:
    command = "pytest suite --perf-update-baselines"
    assert f"`{command}`" in with_command(INCOMPARABLE_HINT, command)
    code_changed = "the test's code changed; refresh it with --perf-update-baselines"
    assert with_command(code_changed, command).endswith(f"refresh it with `{command}`")
