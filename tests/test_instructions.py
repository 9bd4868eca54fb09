"""Instruction counting: the pure parts, without Valgrind (dump parsing, the restart's
command line, the verdict rule, the options, the counting loop with a scripted counter)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from pytest_perfgate.environment import current_environment
from pytest_perfgate.gate import GatePolicy, judge
from pytest_perfgate.model import (
    BaselineEntry,
    Direction,
    Measurement,
    Verdict,
    explain,
    format_quantity,
)
from pytest_perfgate.probes import ProbeUnavailable
from pytest_perfgate.probes.callgrind import (
    DUMP_DIR_VARIABLE,
    INSTALL_HINT,
    Callgrind,
    CountedBatch,
    InstructionsUnavailable,
    callgrind_command,
    callgrind_environment,
    helper_library,
    parse_dump_total,
)
from pytest_perfgate.probes.cpu import CallProbe
from pytest_perfgate.probes.instructions import (
    FULL_WARMUP_CALLS,
    MAX_LOOPS,
    MIN_WARMUP_CALLS,
    CountPlan,
    count_instructions,
    loops_for,
    measurement_name,
    warmup_calls,
)
from pytest_perfgate.settings import Measure, PerfSpec, Settings, SettingsError
from pytest_perfgate.stats import compare_counts, summarize

DUMP = """\
# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 4242
cmd:  /usr/bin/python3 -m pytest
part: 3

desc: Trigger: Client Request: perfgate
events: Ir
summary: 5720404
fn=(1) 0x0000000000401000
0x401000 12

totals: 5720404
"""


# -- the dump and the command line -------------------------------------------------------------


def test_the_count_is_the_dumps_totals_line() -> None:
    assert parse_dump_total(DUMP) == 5720404


def test_a_dump_with_only_a_summary_line_gives_it() -> None:
    assert parse_dump_total("events: Ir\nsummary: 77\n") == 77


def test_a_dump_without_a_total_is_an_error() -> None:
    with pytest.raises(ValueError, match="totals"):
        parse_dump_total("events: Ir\n")


def test_the_restart_runs_pytest_under_callgrind_with_instrumentation_off() -> None:
    command = callgrind_command("/usr/bin/valgrind", "/venv/bin/python", ["-q", "tests"], "/d")
    assert command[:2] == ["/usr/bin/valgrind", "--tool=callgrind"]
    assert "--instr-atstart=no" in command
    assert "--collect-atstart=no" in command
    assert "--callgrind-out-file=/d/callgrind.out.%p" in command
    assert command[-5:] == ["/venv/bin/python", "-m", "pytest", "-q", "tests"]


def test_the_restart_fixes_the_hash_seed_and_single_threads_numeric_libraries() -> None:
    environment = callgrind_environment({"PATH": "/bin", "PYTHONHASHSEED": "random"}, "/d")
    assert environment["PYTHONHASHSEED"] == "0"
    assert environment[DUMP_DIR_VARIABLE] == "/d"
    assert environment["OPENBLAS_NUM_THREADS"] == "1"
    assert environment["PATH"] == "/bin"


def test_outside_the_restarted_run_counting_is_unavailable_and_says_why() -> None:
    with pytest.raises(InstructionsUnavailable) as raised:
        Callgrind.attach({})
    assert isinstance(raised.value, ProbeUnavailable)  # so the test skips, with the reason
    message = str(raised.value)
    assert "Valgrind" in message


def test_without_a_compiler_the_helper_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(InstructionsUnavailable, match="C compiler"):
        helper_library(tmp_path, compiler="no-such-compiler-perfgate")


def test_the_install_hint_names_the_debian_package() -> None:
    assert "apt-get install -y valgrind" in INSTALL_HINT


# -- the verdict rule --------------------------------------------------------------------------


def counts(median: float, *, spread: float = 0.0, n: int = 5) -> tuple[float, ...]:
    """``n`` counts around ``median``, spread evenly over +-``spread`` (relative)."""
    if n == 1 or spread == 0:
        return (median,) * n
    return tuple(median * (1 + spread * (2 * i / (n - 1) - 1)) for i in range(n))


def decide(base: Sequence[float], now: Sequence[float], **kwargs: object) -> Verdict:
    options: dict[str, object] = {"direction": Direction.LOWER_IS_BETTER, "threshold": 0.005}
    options.update(kwargs)
    return compare_counts(base, now, **options).verdict  # type: ignore[arg-type]


def test_one_percent_more_instructions_is_a_regression() -> None:
    assert decide(counts(1e6), counts(1.01e6)) is Verdict.REGRESSED


def test_a_change_inside_the_threshold_is_unchanged() -> None:
    assert decide(counts(1e6), counts(1.002e6)) is Verdict.UNCHANGED


def test_fewer_instructions_beyond_the_threshold_is_an_improvement() -> None:
    assert decide(counts(1e6), counts(0.98e6)) is Verdict.IMPROVED


def test_samples_that_differ_within_a_run_do_not_widen_the_rule() -> None:
    # The allocator's state alternates between counts, the same way in every run.
    alternating = (1.011e6, 0.993e6, 1.011e6, 0.993e6, 1.011e6)
    assert decide(alternating, alternating) is Verdict.UNCHANGED
    assert decide(alternating, tuple(x * 1.01 for x in alternating)) is Verdict.REGRESSED


def test_a_history_that_moved_between_runs_widens_the_rule() -> None:
    history = (1e6, 1.012e6, 0.995e6)  # the baseline's runs of unchanged code
    assert decide(counts(1e6), counts(1.01e6)) is Verdict.REGRESSED
    assert decide(counts(1e6), counts(1.01e6), history=history) is Verdict.INCONCLUSIVE


def test_a_deterministic_decision_has_no_p_value() -> None:
    decision = compare_counts(
        counts(1e6), counts(1.02e6), direction=Direction.LOWER_IS_BETTER, threshold=0.005
    )
    assert math.isnan(decision.p_worse)
    assert decision.ratio == pytest.approx(1.02)


def counted(samples: tuple[float, ...]) -> Measurement:
    return Measurement("instructions", "instructions", Direction.LOWER_IS_BETTER, samples, loops=1)


def stored(samples: tuple[float, ...], unit: str = "instructions") -> BaselineEntry:
    return BaselineEntry(
        unit=unit,
        direction=Direction.LOWER_IS_BETTER,
        samples=samples,
        summary=summarize(samples),
        history=(),
        environment=current_environment(),
        loops=1,
    )


def test_the_failure_message_says_instructions_change_and_threshold() -> None:
    environment = current_environment()
    baseline = stored(counts(1.21e6))
    judged = judge(
        "t.py::test_parse",
        counted(counts(1.234e6)),
        baseline,
        GatePolicy(threshold=0.005),
        environment=environment,
    )
    comparison = judged.comparison
    assert comparison.verdict is Verdict.REGRESSED
    assert comparison.q_value is None
    assert comparison.ci_low is None
    message = explain(comparison)
    assert message.startswith("median 1.234M instr vs baseline 1.21M instr (+2.0%)")
    assert "threshold 0.5%" in message
    assert "q=" not in message


def test_a_time_baseline_is_not_compared_with_a_count() -> None:
    environment = current_environment()
    baseline = stored((0.001,) * 5, unit="s")
    judged = judge("t.py::t", counted(counts(1e6)), baseline, GatePolicy(), environment=environment)
    assert judged.comparison.verdict is Verdict.INCOMPARABLE


def test_counts_are_shown_with_four_digits_and_a_prefix() -> None:
    assert format_quantity(1_234_567, "instructions") == "1.235M instr"
    assert format_quantity(590_913, "instructions") == "590.9k instr"
    assert format_quantity(950, "instructions") == "950 instr"


# -- options ---------------------------------------------------------------------------------


def test_measure_is_an_option_of_the_command_line_and_of_pyproject() -> None:
    assert Settings.resolve(cli={"measure": "instructions"}).measure is Measure.INSTRUCTIONS
    assert Settings.resolve({"measure": "instructions"}).measure is Measure.INSTRUCTIONS
    assert Settings().measure is Measure.TIME


def test_a_wrong_measure_names_the_choices() -> None:
    with pytest.raises(SettingsError, match="time, instructions"):
        Settings.resolve(cli={"measure": "cycles"})


def test_the_marker_chooses_the_measure_of_one_test() -> None:
    spec = PerfSpec.from_marker((), {"measure": "instructions"})
    assert spec.measure_for(Settings()) is Measure.INSTRUCTIONS
    assert PerfSpec().measure_for(Settings(measure=Measure.INSTRUCTIONS)) is Measure.INSTRUCTIONS


def test_counting_uses_its_own_threshold_unless_the_test_gives_one() -> None:
    settings = Settings(instructions_threshold=0.004, threshold=0.05)
    assert PerfSpec(measure=Measure.INSTRUCTIONS).threshold_for(settings) == 0.004
    assert PerfSpec(measure=Measure.INSTRUCTIONS, threshold=0.01).threshold_for(settings) == 0.01
    assert PerfSpec().threshold_for(settings) == 0.05


def test_perf_fn_counts_under_the_name_instructions() -> None:
    assert measurement_name("time") == "instructions"
    assert measurement_name("parse") == "parse.instructions"


# -- the counting loop, with a scripted counter ------------------------------------------------


class ScriptedCounter:
    """Counts what the measured code declares it executes (``executed``), plus a fixed
    cost per count for the toggles; a stand-in for callgrind's client requests."""

    def __init__(self, per_count: int = 700) -> None:
        self.executed = 0
        self.per_count = per_count
        self.collecting = False
        self.instrumented = False
        self.batches_on_cpython_allocator = 0
        self.fallback_from_now = False  #: count every batch as the allocator's fallback

    def toggle(self) -> None:
        self.collecting = not self.collecting

    def start(self) -> None:
        self.instrumented = True

    def stop(self) -> None:
        self.instrumented = False

    def count(self, runs: Sequence[tuple[CountedBatch, int]]) -> list[int]:
        assert self.instrumented
        totals = []
        for batch, loops in runs:
            before = self.executed
            self.batches_on_cpython_allocator += self.fallback_from_now
            batch(loops, self.toggle)
            assert not self.collecting
            totals.append(self.executed - before + self.per_count)
        return totals


def test_a_sample_is_the_callables_own_count_per_call() -> None:
    counter = ScriptedCounter()
    calls: list[int] = []

    def work() -> int:
        calls.append(1)
        if counter.collecting:
            counter.executed += 2500
        return 7

    probe = CallProbe(work)
    measurement = count_instructions("instructions", probe, counter, CountPlan(samples=3, loops=4))  # type: ignore[arg-type]
    assert measurement.samples == (2500.0, 2500.0, 2500.0)
    assert measurement.unit == "instructions"
    assert measurement.loops == 4
    assert probe.result == 7
    assert not counter.instrumented  # instrumentation is off again after counting


def test_a_count_without_the_counting_allocator_says_so() -> None:
    counter = ScriptedCounter()
    plan = CountPlan(samples=2, loops=2)
    fine = count_instructions("instructions", CallProbe(int), counter, plan)  # type: ignore[arg-type]
    assert "allocator" not in fine.details
    counter.fallback_from_now = True
    fallen = count_instructions("instructions", CallProbe(int), counter, plan)  # type: ignore[arg-type]
    assert "depends on what the run allocated before" in fallen.details["allocator"]


def test_setup_runs_outside_the_counted_span() -> None:
    counter = ScriptedCounter()

    def setup() -> tuple[tuple[int], dict[str, int]]:
        if counter.collecting:
            counter.executed += 10**6  # would show in the count
        return (5,), {}

    def work(x: int) -> int:
        if counter.collecting:
            counter.executed += 100 * x
        return x

    probe = CallProbe(work, setup=setup)
    measurement = count_instructions("instructions", probe, counter, CountPlan(samples=2, loops=1))  # type: ignore[arg-type]
    assert measurement.samples == (500.0, 500.0)


def test_loops_and_warmup_follow_the_count_of_one_call() -> None:
    assert loops_for(10) == MAX_LOOPS
    assert loops_for(500_000) == 2
    assert loops_for(300_000) == 4
    assert loops_for(50_000_000) == 1
    assert warmup_calls(1_000) == FULL_WARMUP_CALLS
    assert warmup_calls(60_000_000) == MIN_WARMUP_CALLS
