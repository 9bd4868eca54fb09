"""Per-test settings (``@pytest.mark.perf(...)`` keywords) and the ways to measure."""

from __future__ import annotations

from typing import Any

import pytest
from plugin_support import load_baseline, record_baselines, write_settings


def refresh(pytester: pytest.Pytester, source: str, *args: str) -> dict[str, Any]:
    """Write ``source`` as test_m.py, record its baselines, return the tests' entries."""
    write_settings(pytester)
    pytester.makepyfile(test_m=source)
    record_baselines(pytester, *args)
    tests: dict[str, Any] = load_baseline(pytester, "test_m")["tests"]
    return tests


def test_rounds_takes_exactly_that_many_samples(pytester: pytest.Pytester) -> None:
    tests = refresh(
        pytester,
        """
        import pytest

        @pytest.mark.perf(rounds=7)
        def test_seven(perf):
            perf(sum, range(50))

        @pytest.mark.perf(rounds=3, loops=2)
        def test_three(perf):
            perf(sum, range(50))
        """,
    )
    assert tests["test_seven"]["time"]["summary"]["n"] == 7
    assert len(tests["test_seven"]["time"]["samples"]) == 7
    assert tests["test_three"]["time"]["summary"]["n"] == 3


def test_rounds_beyond_the_stored_sample_cap(pytester: pytest.Pytester) -> None:
    tests = refresh(
        pytester,
        """
        import pytest

        @pytest.mark.perf(rounds=30, loops=1)
        def test_many(perf):
            perf(sum, range(5))
        """,
        "--perf-max-stored-samples=12",
    )
    entry = tests["test_many"]["time"]
    assert entry["summary"]["n"] == 30  # the summary is of every sample taken
    assert len(entry["samples"]) == 12  # the raw samples kept are capped


def test_loops_pins_the_calls_per_sample(pytester: pytest.Pytester) -> None:
    tests = refresh(
        pytester,
        """
        import pytest

        @pytest.mark.perf(loops=37)
        def test_marker_loops(perf):
            perf(sum, range(50))

        @pytest.mark.perf
        def test_call_loops(perf):
            perf.call(sum, args=(range(50),), loops=5)
        """,
    )
    assert tests["test_marker_loops"]["time"]["loops"] == 37
    assert tests["test_call_loops"]["time"]["loops"] == 5


def test_max_time_bounds_the_sampling(pytester: pytest.Pytester) -> None:
    # Each sample sleeps at least 2 ms: within a budget of 0.05 s, at most 26 samples fit,
    # whatever the machine does. The session budget (5 s) would allow thousands.
    tests = refresh(
        pytester,
        """
        import time

        import pytest

        @pytest.mark.perf(max_time=0.05, min_samples=3, target_precision=0.0001, loops=1)
        def test_budget(perf):
            perf(time.sleep, 0.002)
        """,
        "--perf-max-time=5",
    )
    n = tests["test_budget"]["time"]["summary"]["n"]
    assert 3 <= n <= 26


def test_memory_adds_a_peak_memory_measurement(pytester: pytest.Pytester) -> None:
    tests = refresh(
        pytester,
        """
        import pytest

        @pytest.mark.perf(memory=True)
        def test_alloc(perf):
            perf(lambda: [0] * 10_000)

        @pytest.mark.perf
        def test_no_memory(perf):
            perf(lambda: [0] * 10_000)
        """,
    )
    assert sorted(tests["test_alloc"]) == ["time", "time.peak_memory"]
    peak = tests["test_alloc"]["time.peak_memory"]
    assert peak["unit"] == "B"
    assert peak["direction"] == "lower"
    assert peak["summary"]["median"] >= 80_000  # a list of 10,000 pointers
    assert sorted(tests["test_no_memory"]) == ["time"]


def test_memory_for_every_test_from_the_command_line(pytester: pytest.Pytester) -> None:
    tests = refresh(
        pytester,
        """
        import pytest

        @pytest.mark.perf
        def test_alloc(perf):
            perf(lambda: [0] * 1000)

        @pytest.mark.perf(memory=False)
        def test_opted_out(perf):
            perf(lambda: [0] * 1000)
        """,
        "--perf-memory=true",
    )
    assert sorted(tests["test_alloc"]) == ["time", "time.peak_memory"]
    assert sorted(tests["test_opted_out"]) == ["time"]


@pytest.mark.parametrize(
    ("flags", "measured"),
    [
        (("--perf-memory",), ["time", "time.peak_memory"]),
        (("--perf-memory", "-q"), ["time", "time.peak_memory"]),
        (("--perf-memory=false",), ["time"]),
        (("--perf-memory=true", "--perf-memory=no"), ["time"]),
    ],
)
def test_boolean_options_work_bare_and_with_a_value(
    pytester: pytest.Pytester, flags: tuple[str, ...], measured: list[str]
) -> None:
    tests = refresh(
        pytester,
        """
        import pytest

        @pytest.mark.perf
        def test_alloc(perf):
            perf(lambda: [0] * 1000)
        """,
        *flags,
    )
    assert sorted(tests["test_alloc"]) == measured


def test_boolean_options_in_pyproject_take_toml_booleans(pytester: pytest.Pytester) -> None:
    write_settings(pytester, memory=True)
    pytester.makepyfile(
        test_m="""
        import pytest

        @pytest.mark.perf
        def test_alloc(perf):
            perf(lambda: [0] * 1000)
        """
    )
    record_baselines(pytester)
    assert sorted(load_baseline(pytester, "test_m")["tests"]["test_alloc"]) == [
        "time",
        "time.peak_memory",
    ]


def test_a_marker_keyword_typo_names_the_test_and_the_keyword_meant(
    pytester: pytest.Pytester,
) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_m="""
        import pytest

        @pytest.mark.perf(treshold=0.1)
        def test_typo(perf):
            perf(sum, range(10))
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*@pytest.mark.perf on test_m.py::test_typo: unknown keyword 'treshold' "
            "(did you mean 'threshold'?) (see `pytest --markers`)*"
        ]
    )


def test_named_calls_blocks_and_recorded_values(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_m="""
        import pytest

        def spin(n):
            return sum(i * i for i in range(n))

        @pytest.mark.perf
        def test_everything(perf):
            assert perf.call(spin, args=(200,), name="x") == spin(200)
            for _ in range(20):
                with perf.measure("block"):
                    spin(100)
            perf.record("rows", [900, 1000, 1100, 1000], unit="rows/s", higher_is_better=True)
            perf(spin, 50)
        """
    )
    result = record_baselines(pytester)
    result.stdout.fnmatch_lines_random(
        [
            "  added test_m.py::test_everything",
            "  added test_m.py::test_everything ?block?",
            "  added test_m.py::test_everything ?rows?",
            "  added test_m.py::test_everything ?x?",
        ]
    )
    entries = load_baseline(pytester, "test_m")["tests"]["test_everything"]
    assert sorted(entries) == ["block", "rows", "time", "x"]
    assert entries["x"]["unit"] == "s"
    assert entries["x"]["loops"] >= 1
    block = entries["block"]
    assert block["unit"] == "s"
    assert block["summary"]["n"] == 20
    assert block["loops"] is None
    rows = entries["rows"]
    assert rows["unit"] == "rows/s"
    assert rows["direction"] == "higher"
    assert rows["samples"] == [900, 1000, 1100, 1000]
    assert rows["summary"]["median"] == 1000
    # Compared on the next run, each under its own name.
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines_random(
        [
            "test_m.py::test_everything ?rows?*UNCHANGED*",
            "test_m.py::test_everything ?block?*",
            "test_m.py::test_everything ?x?*",
        ]
    )
    result.stdout.no_fnmatch_line("*NEW*")


def test_a_measurement_name_is_taken_once(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_m="""
        import pytest

        @pytest.mark.perf
        def test_twice(perf):
            perf(sum, range(10))
            perf(sum, range(20))
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*measurement 'time' is already taken in test_m.py::test_twice*name=*"]
    )


def test_parametrized_perf_tests_are_stored_by_id(pytester: pytest.Pytester) -> None:
    tests = refresh(
        pytester,
        """
        import pytest

        @pytest.mark.perf
        @pytest.mark.parametrize("size", [10, 100])
        def test_sized(perf, size):
            perf(sum, range(size))
        """,
    )
    assert sorted(tests) == ["test_sized[100]", "test_sized[10]"]
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines_random(
        ["test_m.py::test_sized?10? *", "test_m.py::test_sized?100? *"]
    )
