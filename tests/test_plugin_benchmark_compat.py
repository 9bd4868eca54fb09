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

        def pytest_perfgate_results(config, results):
            with open("extra_info.json", "a") as file:
                for test in results.tests:
                    file.write(json.dumps([test.test_id, dict(test.extra_info)]) + "\\n")
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


def test_extra_info_reaches_the_json_markdown_and_html_reports(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_m="""
        def test_info(benchmark):
            benchmark.extra_info["rows"] = 42
            benchmark.extra_info["note"] = "after"
            benchmark(sum, range(10))
        """
    )
    reports = ("--perf-json=r.json", "--perf-markdown=r.md", "--perf-html=r.html")
    pytester.runpytest(*NO_BENCHMARK, *reports).assert_outcomes(passed=1)
    results = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    assert results["tests"][0]["extra_info"] == {"note": "after", "rows": 42}
    assert "note=after, rows=42" in (pytester.path / "r.md").read_text(encoding="utf-8")
    assert "extra info: note=after, rows=42" in (pytester.path / "r.html").read_text(
        encoding="utf-8"
    )


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


# --- pytest-benchmark's conftest hooks and options -----------------------------------------

HOOKS_CONFTEST = """
import json

def pytest_benchmark_scale_unit(config, unit, benchmarks, best, worst, sort):
    raise AssertionError("accepted, never called")

def pytest_benchmark_generate_machine_info(config):
    raise AssertionError("accepted, never called")

def pytest_benchmark_update_machine_info(config, machine_info):
    assert machine_info["python"].startswith("CPython") or machine_info["python"]
    machine_info["runner"] = "ci-7"
    machine_info["cpu"] = "not the fingerprint"

def pytest_benchmark_generate_commit_info(config):
    raise AssertionError("accepted, never called")

def pytest_benchmark_update_commit_info(config, commit_info):
    raise AssertionError("accepted, never called")

def pytest_benchmark_group_stats(config, benchmarks, group_by):
    raise AssertionError("accepted, never called")

def pytest_benchmark_generate_json(config, benchmarks, include_data, machine_info, commit_info):
    raise AssertionError("accepted, never called")

def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["team"] = "storage"
    output_json["seen"] = sorted(
        [b.name, b.extra_info, b.stats.rounds > 0] for b in benchmarks
    )

def pytest_benchmark_compare_machine_info(
    config, benchmarksession, machine_info, compared_benchmark
):
    raise AssertionError("accepted, never called")
"""


def test_pytest_benchmark_hooks_in_a_conftest_load_and_two_are_called(
    pytester: pytest.Pytester,
) -> None:
    write_settings(pytester)
    pytester.makeconftest(HOOKS_CONFTEST)
    pytester.makepyfile(
        test_m="""
        def test_info(benchmark):
            benchmark.extra_info["rows"] = 42
            benchmark(sum, range(10))

        def test_perf(perf):
            perf(sum, range(10))
        """
    )
    result = pytester.runpytest(*NO_BENCHMARK, "--perf-json=results.json")
    result.assert_outcomes(passed=2)
    document = json.loads((pytester.path / "results.json").read_text())
    assert document["team"] == "storage"
    assert document["seen"] == [["test_info", {"rows": 42}, True]]
    environment = document["environment"]
    assert environment["info"]["runner"] == "ci-7"
    assert environment["machine"]["cpu"] != "not the fingerprint"  # info only
    tests = {test["test"]: test for test in document["tests"]}
    assert tests["test_info"]["extra_info"] == {"rows": 42}
    assert "extra_info" not in tests["test_perf"]


def test_without_results_file_update_json_is_not_called(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makeconftest(
        """
        def pytest_benchmark_update_json(config, benchmarks, output_json):
            raise AssertionError("no results file, nothing to update")
        """
    )
    pytester.makepyfile(test_m="def test_b(benchmark):\n    benchmark(sum, range(10))\n")
    pytester.runpytest(*NO_BENCHMARK).assert_outcomes(passed=1)


def test_a_hook_of_no_plugin_is_still_an_error(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makeconftest("def pytest_benchmark_update_jsn(config):\n    pass\n")
    pytester.makepyfile(test_m="def test_b(benchmark):\n    benchmark(sum, range(10))\n")
    result = pytester.runpytest(*NO_BENCHMARK)
    result.stdout.fnmatch_lines(["*unknown hook 'pytest_benchmark_update_jsn'*"])


#: A sample value for each option that takes one, as a CI command line would give it.
OPTION_VALUES = {
    "min-time": "0.0001",
    "max-time": "0.5",
    "min-rounds": "12",
    "precision": "0.01",
    "warmup": "off",
    "confidence": "0.95",
    "timer": "time.process_time",
    "calibration-precision": "10",
    "warmup-iterations": "1000",
    "save": "run",
    "storage": "file://./.benchmarks",
    "netrc": "~/.netrc",
    "json": "out.json",
    "compare": "0001",
    "compare-fail": "min:5%",
    "cprofile": "tottime",
    "cprofile-loops": "1",
    "cprofile-top": "5",
    "cprofile-dump": "prof",
    "sort": "mean",
    "group-by": "name",
    "columns": "min,max",
    "name": "short",
    "time-unit": "us",
    "histogram": "hist",
    "csv": "out.csv",
}


def test_every_pytest_benchmark_option_is_listed() -> None:
    from pytest_perfgate.plugin.benchmark_compat import BENCHMARK_OPTIONS

    names = {option.name for option in BENCHMARK_OPTIONS}
    switches = {"disable-gc", "autosave", "save-data", "verbose", "quiet"}
    selection = {"only", "skip", "disable", "enable"}
    assert names == set(OPTION_VALUES) | switches
    assert not names & selection  # those select tests: add_options defines them
    # pytest-benchmark 5.3 adds 34 options, and its `compare` command --benchmark-csv.
    assert len(names) + len(selection) == 35


@pytest.mark.parametrize(
    "option",
    [
        *(f"--benchmark-{name}={value}" for name, value in OPTION_VALUES.items()),
        "--benchmark-autosave",
        "--benchmark-save-data",
        "--benchmark-verbose",
        "--benchmark-quiet",
        "--benchmark-disable-gc",
        "--benchmark-enable",
    ],
)
def test_every_pytest_benchmark_option_is_accepted(pytester: pytest.Pytester, option: str) -> None:
    from pytest_perfgate.plugin.benchmark_compat import BENCHMARK_OPTIONS

    write_settings(pytester)
    pytester.makepyfile(test_m="def test_b(benchmark):\n    benchmark(sum, range(10))\n")
    result = pytester.runpytest(*NO_BENCHMARK, option, "-W", "always::pytest.PytestConfigWarning")
    result.assert_outcomes(passed=1)
    name = option.removeprefix("--benchmark-").partition("=")[0]
    ignored = any(o.name == name and not o.setting for o in BENCHMARK_OPTIONS)
    warning = f"*perfgate: --benchmark-{name} is accepted and ignored: *"
    if ignored:
        result.stdout.fnmatch_lines([warning])
        assert sum(f"--benchmark-{name} is accepted" in line for line in result.outlines) == 1
    else:
        result.stdout.no_fnmatch_line(warning)


def test_mapped_options_set_perfgates_settings_and_perf_options_win(
    pytester: pytest.Pytester,
) -> None:
    tests = refresh(
        pytester,
        "def test_b(benchmark):\n    benchmark(sum, range(10))\n",
        "--benchmark-min-rounds=40",
        "--benchmark-max-time",
        "5",
    )
    assert tests["test_b"]["time"]["summary"]["n"] >= 40
    tests = refresh(
        pytester,
        "def test_b(benchmark):\n    benchmark(sum, range(10))\n",
        "--perf-min-samples=60",
        "--benchmark-min-rounds=40",
        "--benchmark-max-time=5",
    )
    assert tests["test_b"]["time"]["summary"]["n"] >= 60


def test_a_bad_mapped_value_names_the_setting(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(test_m="def test_b(benchmark):\n    benchmark(sum, range(10))\n")
    result = pytester.runpytest(*NO_BENCHMARK, "--benchmark-max-time=soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--perf-max-time must be a number, got 'soon'*"])


def test_benchmark_enable_overrides_benchmark_disable(pytester: pytest.Pytester) -> None:
    tests = refresh(
        pytester,
        "def test_b(benchmark):\n    benchmark(sum, range(10))\n    assert benchmark.enabled\n",
        "--benchmark-disable",
        "--benchmark-enable",
    )
    assert sorted(tests) == ["test_b"]


def test_marker_keyword_typos_suggest_the_keyword_meant(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_m="""
        import pytest

        @pytest.mark.benchmark(min_round=3)
        def test_typo(benchmark):
            benchmark(sum, range(10))
        """
    )
    result = pytester.runpytest(*NO_BENCHMARK)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*test_m.py::test_typo: unknown keyword 'min_round' (did you mean 'min_rounds'?)*"]
    )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (("--benchmark-precision=0.01",), {"target_precision": "0.02"}),
        (("--benchmark-warmup=off",), {"warmup_time": "0"}),
        (("--benchmark-warmup",), {"warmup_time": None}),
        (("--benchmark-warmup=on",), {"warmup_time": None}),
        (("--benchmark-disable-gc",), {"disable_gc": "true"}),
        (("--perf-max-time=3", "--benchmark-max-time=1"), {"max_time": "3"}),
        (("--benchmark-max-time=1", "--perf-max-time=3"), {"max_time": "3"}),
        (("--benchmark-min-time=0.01",), {"min_sample_time": "0.01"}),
    ],
)
def test_mapped_options_convert_to_perfgates_meaning(
    pytester: pytest.Pytester, options: tuple[str, ...], expected: dict[str, Any]
) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_m=f"""
        def test_options(pytestconfig):
            for name, value in {expected!r}.items():
                assert pytestconfig.getoption("perfgate_" + name) == value, name
        """
    )
    pytester.runpytest(*NO_BENCHMARK, *options).assert_outcomes(passed=1)
