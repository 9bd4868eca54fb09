"""The pytest-benchmark compatible ``benchmark`` fixture, marker and options.

pytest-benchmark is a dev dependency here but absent in CI: every run of a benchmark
suite passes ``-p no:benchmark``, so that perfgate owns the fixture in both places.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from plugin_support import (
    REGRESSION_MESSAGE,
    SLOWDOWN,
    load_baseline,
    record_baselines,
    write_settings,
)

NO_BENCHMARK = ("-p", "no:benchmark")


def refresh(pytester: pytest.Pytester, source: str, *args: str) -> dict[str, Any]:
    """Write ``source`` as test_m.py, record its baselines, return the tests' entries."""
    write_settings(pytester)
    pytester.makepyfile(test_m=source)
    record_baselines(pytester, *NO_BENCHMARK, *args)
    tests: dict[str, Any] = load_baseline(pytester, "test_m")["tests"]
    return tests


def test_call_returns_the_result_and_is_gated(pytester: pytest.Pytester) -> None:
    tests = refresh(
        pytester,
        """
        import pytest

        def add(a, b, scale=1):
            return (a + b) * scale

        def test_call(benchmark):
            assert benchmark(add, 2, 3, scale=10) == 50
            assert benchmark.name == "test_call"
            assert benchmark.enabled and not benchmark.disabled
            stats = benchmark.stats
            assert stats.rounds == len(stats.data) >= 10
            assert stats["median"] == stats.median > 0
            assert stats.min <= stats.q1 <= stats.median <= stats.q3 <= stats.max
            assert stats.iqr == stats.q3 - stats.q1
            assert stats.ops == pytest.approx(1 / stats.mean)
            assert stats.total == pytest.approx(sum(stats.data))
            assert stats.iterations >= 1 and stats.stddev >= 0
            assert stats.stats["mean"] == stats.mean  # as in pytest-benchmark

        @pytest.mark.parametrize("size", [10, 100])
        def test_sized(benchmark, size):
            assert benchmark(sum, range(size)) == sum(range(size))
            assert benchmark.param == str(size)
        """,
    )
    assert sorted(tests) == ["test_call", "test_sized[100]", "test_sized[10]"]
    assert sorted(tests["test_call"]) == ["time"]
    result = pytester.runpytest(*NO_BENCHMARK)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines_random(
        ["test_m.py::test_call *", "test_m.py::test_sized?10? *", "test_m.py::test_sized?100? *"]
    )
    result.stdout.fnmatch_lines(["perfgate: * (3 perf tests, *"])
    result.stdout.no_fnmatch_line("*NEW*")


def test_pedantic_takes_exactly_its_rounds(pytester: pytest.Pytester) -> None:
    tests = refresh(
        pytester,
        """
        calls, teardowns = [], []

        def target(x, k=0):
            calls.append(x)
            return x * 2 + k

        def test_setup(benchmark):
            rounds = iter(range(100))

            def setup():
                return (next(rounds),), {"k": 1}

            result = benchmark.pedantic(
                target,
                setup=setup,
                teardown=lambda x, k: teardowns.append((x, k)),
                rounds=5,
                warmup_rounds=2,
            )
            assert result == 6 * 2 + 1  # the last round's arguments
            assert calls == list(range(7))
            assert teardowns == [(i, 1) for i in range(7)]
            assert benchmark.stats.rounds == 5
            assert benchmark.stats.iterations == 1

        def test_iterations(benchmark):
            assert benchmark.pedantic(sum, args=([1, 2],), rounds=4, iterations=3) == 3
            assert benchmark.stats.rounds == 4
            assert benchmark.stats.iterations == 3
        """,
    )
    assert tests["test_setup"]["time"]["summary"]["n"] == 5
    assert tests["test_setup"]["time"]["loops"] == 1
    assert tests["test_iterations"]["time"]["summary"]["n"] == 4
    assert tests["test_iterations"]["time"]["loops"] == 3


def test_pedantic_argument_errors(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_m="""
        import pytest

        def test_setup_and_args(benchmark):
            with pytest.raises(TypeError, match="Can't use `args` or `kwargs` if `setup`"):
                benchmark.pedantic(abs, args=(1,), setup=lambda: ((2,), {}))

        def test_setup_and_iterations(benchmark):
            with pytest.raises(ValueError, match="more than 1 `iterations` with a `setup`"):
                benchmark.pedantic(abs, setup=lambda: ((2,), {}), iterations=2)

        def test_rounds(benchmark):
            with pytest.raises(ValueError, match="positive int for `rounds`"):
                benchmark.pedantic(abs, args=(1,), rounds=0)
        """
    )
    result = pytester.runpytest(*NO_BENCHMARK)
    result.assert_outcomes(passed=3)


def test_the_fixture_is_used_once(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_m="""
        def test_twice(benchmark):
            benchmark(sum, range(10))
            benchmark(sum, range(10))

        def test_call_then_pedantic(benchmark):
            benchmark(sum, range(10))
            benchmark.pedantic(sum, args=(range(10),))
        """
    )
    result = pytester.runpytest(*NO_BENCHMARK)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*FixtureAlreadyUsed: Fixture can only be used once. "
            "Previously it was used in benchmark(...) mode.",
        ]
    )


def test_extra_info_reaches_the_report(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makeconftest(
        """
        import json

        def pytest_runtest_logreport(report):
            payload = getattr(report, "perfgate", None)
            if payload is not None:
                with open("extra_info.json", "a") as file:
                    file.write(json.dumps([report.nodeid, payload["extra_info"]]) + "\\n")
        """
    )
    pytester.makepyfile(
        test_m="""
        def test_info(benchmark):
            benchmark.extra_info["rows"] = 42
            benchmark(sum, range(10))
            benchmark.extra_info["note"] = "after"

        def test_perf(perf):
            perf(sum, range(10))
        """
    )
    result = pytester.runpytest(*NO_BENCHMARK)
    result.assert_outcomes(passed=2)
    lines = (pytester.path / "extra_info.json").read_text().splitlines()
    assert sorted(json.loads(line) for line in lines) == [
        ["test_m.py::test_info", {"note": "after", "rows": 42}],
        ["test_m.py::test_perf", {}],
    ]


def test_marker_keywords(pytester: pytest.Pytester) -> None:
    tests = refresh(
        pytester,
        """
        import time

        import pytest

        @pytest.mark.benchmark(
            group="g", min_rounds=25, max_time=0.5, min_time=0.0001, warmup=False,
            warmup_iterations=10, disable_gc=True, timer=time.perf_counter,
            calibration_precision=10,
        )
        def test_marked(benchmark):
            benchmark(sum, range(10))
            assert benchmark.group == "g"
            assert benchmark.stats.rounds >= 25

        @pytest.mark.benchmark(min_rounds=3)
        def test_pedantic_marked(benchmark):
            benchmark.pedantic(sum, args=(range(10),), rounds=2)
        """,
        "--strict-markers",
    )
    assert tests["test_marked"]["time"]["summary"]["n"] >= 25
    assert tests["test_pedantic_marked"]["time"]["summary"]["n"] == 2  # rounds is exact


def test_marker_errors_name_the_test(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_m="""
        import pytest

        @pytest.mark.benchmark(rounds=3)
        def test_unknown(benchmark):
            benchmark(sum, range(10))

        @pytest.mark.benchmark(min_rounds=0)
        def test_bad_value(benchmark):
            benchmark(sum, range(10))
        """
    )
    result = pytester.runpytest(*NO_BENCHMARK)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines_random(
        [
            "*@pytest.mark.benchmark on test_m.py::test_unknown: unknown keyword 'rounds'*",
            "*@pytest.mark.benchmark on test_m.py::test_bad_value: min_rounds must be at least 1*",
        ]
    )


SELECTION_SUITE = """
calls = []

def test_bench(benchmark):
    assert benchmark(calls.append, 1) is None
    if benchmark.disabled:
        assert calls == [1] and benchmark.stats is None

def test_perf(perf):
    perf(sum, range(10))

def test_plain():
    pass
"""


@pytest.mark.parametrize(
    ("option", "outcomes", "skipped"),
    [
        ("--benchmark-skip", {"passed": 2, "skipped": 1}, "*Skipping benchmark*"),
        ("--benchmark-only", {"passed": 2, "skipped": 1}, "*Skipping non-benchmark*"),
        ("--benchmark-disable", {"passed": 3}, None),
    ],
)
def test_run_selection_options(
    pytester: pytest.Pytester, option: str, outcomes: dict[str, int], skipped: str | None
) -> None:
    write_settings(pytester)
    pytester.makepyfile(test_m=SELECTION_SUITE)
    result = pytester.runpytest(*NO_BENCHMARK, option, "-rs")
    result.assert_outcomes(**outcomes)
    if skipped is not None:
        result.stdout.fnmatch_lines([skipped])
    else:  # disabled: run once, unmeasured, and not in perfgate's table
        result.stdout.no_fnmatch_line("test_m.py::test_bench *")
        result.stdout.no_fnmatch_line("*measured nothing*")
        result.stdout.fnmatch_lines(["test_m.py::test_perf *"])


def test_a_slowdown_fails_the_benchmark_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_work="""
        import os

        def spin(n):
            total = 0
            for i in range(n):
                total += i
            return total

        def test_slow(benchmark):
            benchmark(spin, 3000 * int(os.environ.get("WORK", "1")))

        def test_steady(benchmark):
            benchmark.pedantic(spin, args=(3000,), rounds=15, iterations=5)
        """
    )
    monkeypatch.setenv("WORK", "1")
    record_baselines(pytester, *NO_BENCHMARK)
    monkeypatch.setenv("WORK", SLOWDOWN)
    result = pytester.runpytest(*NO_BENCHMARK)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*_ test_slow _*", REGRESSION_MESSAGE])


def test_options_are_perfgates_without_pytest_benchmark(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*NO_BENCHMARK, "--help")
    result.stdout.fnmatch_lines(
        ["*--benchmark-only*only run tests that use the benchmark or perf*"]
    )
    result.stdout.no_fnmatch_line("*perfgate: pytest-benchmark is installed*")


def test_pytest_benchmark_owns_the_fixture_where_loaded(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_benchmark", reason="pytest-benchmark is not installed")
    write_settings(pytester)
    pytester.makepyfile(
        test_m="""
        def test_bench(benchmark):
            assert type(benchmark).__module__ == "pytest_benchmark.fixture"
            benchmark(sum, range(10))
        """
    )
    result = pytester.runpytest("--benchmark-disable")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "perfgate: pytest-benchmark is installed and owns the `benchmark` fixture; "
            "run with -p no:benchmark to have perfgate measure and gate benchmark tests"
        ]
    )
    result.stdout.no_fnmatch_line("*= perfgate =*")  # not a perf test
    assert not (pytester.path / "baselines").exists()


def test_a_loaded_pytest_codspeed_owns_the_fixture(pytester: pytest.Pytester) -> None:
    # A stand-in registered under pytest-codspeed's plugin name, with its own fixture.
    pytester.makepyfile(
        codspeed="""
        import pytest

        @pytest.fixture
        def benchmark():
            return "codspeed's fixture"
        """
    )
    pytester.syspathinsert()
    write_settings(pytester)
    pytester.makepyfile(
        test_m="""
        def test_bench(benchmark):
            assert benchmark == "codspeed's fixture"
        """
    )
    result = pytester.runpytest("-p", "no:benchmark", "-p", "codspeed")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "perfgate: pytest-codspeed is installed and owns the `benchmark` fixture; "
            "run with -p no:codspeed to have perfgate measure and gate benchmark tests"
        ]
    )
    assert not (pytester.path / "baselines").exists()
