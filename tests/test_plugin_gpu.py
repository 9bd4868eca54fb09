"""perf.gpu through pytest on a machine without a GPU (CI): GPU tests skip with NVML's
reason, the rest of the suite runs as usual, and mistakes still fail."""

from __future__ import annotations

import pytest
from plugin_support import load_baseline, record_baselines, write_settings

SUITE = """
import pytest


@pytest.mark.perf
def test_gpu_call(perf):
    perf.gpu(lambda: None)
    raise AssertionError("perf.gpu returned without a GPU and without sync=")


@pytest.mark.perf
def test_gpu_required(perf):
    perf.gpu.require()
    raise AssertionError("perf.gpu.require() returned without a GPU")


@pytest.mark.perf
def test_gpu_region(perf):
    with perf.gpu.region("step"):
        raise AssertionError("perf.gpu.region entered without a GPU")


@pytest.mark.perf
def test_cpu(perf):
    assert perf(sum, range(100)) == 4950


def test_plain():
    assert True
"""


@pytest.fixture(autouse=True)
def _no_gpu_here() -> None:
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return
    pynvml.nvmlShutdown()
    pytest.skip("NVML works on this machine: these tests are about a machine without a GPU")


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    write_settings(pytester)
    pytester.makepyfile(test_gpu=SUITE)
    return pytester


def test_gpu_tests_skip_with_nvmls_error_and_the_rest_runs(suite: pytest.Pytester) -> None:
    passed, skipped, failed = suite.inline_run().listoutcomes()
    assert failed == []
    assert sorted(str(r.head_line) for r in passed) == ["test_cpu", "test_plain"]
    reasons = {r.head_line: r.longrepr[2] for r in skipped}  # type: ignore[index]
    assert set(reasons) == {"test_gpu_call", "test_gpu_required", "test_gpu_region"}
    for reason in reasons.values():
        assert reason.startswith("Skipped: NVML unavailable: NVMLError_"), reason
    # Without sync=, the reason also says what the call would have needed.
    assert "pass sync=" in reasons["test_gpu_call"]
    assert "pass sync=" in reasons["test_gpu_region"]


def test_the_skip_reason_is_shown_and_nothing_else_goes_wrong(suite: pytest.Pytester) -> None:
    result = suite.runpytest("-rs")
    result.assert_outcomes(passed=2, skipped=3)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["SKIPPED [[]*NVML unavailable: NVMLError_*"])
    result.stdout.no_fnmatch_line("*AssertionError*")
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.fnmatch_lines(["*test_gpu.py::test_cpu*NEW*"])


def test_skipped_gpu_tests_record_no_baseline(suite: pytest.Pytester) -> None:
    record_baselines(suite)
    tests = load_baseline(suite, "test_gpu")["tests"]
    assert set(tests) == {"test_cpu"}
    result = suite.runpytest()
    result.assert_outcomes(passed=2, skipped=3)


def test_with_measuring_off_perf_gpu_just_calls_the_function(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_off="""
        import pytest

        calls = []


        @pytest.mark.perf
        def test_gpu_call(perf):
            assert perf.gpu(lambda x, y: calls.append((x, y)) or "done", 1, y=2) == "done"
            assert calls == [(1, 2)]
            with perf.gpu.region("step"):
                calls.append("region")
            assert calls == [(1, 2), "region"]
        """
    )
    result = pytester.runpytest("--perf-mode=off")
    result.assert_outcomes(passed=1)


def test_a_usage_mistake_fails_even_without_a_gpu(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_bad="""
        import pytest


        @pytest.mark.perf
        def test_bad_mode(perf):
            perf.gpu(lambda: None, mode="warm")


        @pytest.mark.perf
        def test_bad_bytes(perf):
            perf.gpu(lambda: None, bytes=0)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*GpuUsageError: perf.gpu: mode must be one of cold, batch, graph, got 'warm'*",
            "*GpuUsageError: bytes= must be a positive number, got 0*",
        ],
        consecutive=False,
    )


def test_a_fixture_that_requires_a_gpu_skips_its_tests(pytester: pytest.Pytester) -> None:
    write_settings(pytester)
    pytester.makepyfile(
        test_gpu_fixture="""
        import pytest

        @pytest.fixture
        def cuda(perf):
            perf.gpu.require(backend="torch")
            raise AssertionError("require() returned without a GPU")

        @pytest.mark.perf
        def test_kernel(perf, cuda):
            raise AssertionError("ran without a GPU")
        """
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*test_gpu_fixture.py:*: NVML unavailable: NVMLError_*"])


def test_probe_unavailable_outside_a_perf_test_is_an_error_not_a_skip(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_plain="""
        from pytest_perfgate import ProbeUnavailable

        def test_bug():
            raise ProbeUnavailable("escaped from a unit test")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ProbeUnavailable: escaped from a unit test*"])
