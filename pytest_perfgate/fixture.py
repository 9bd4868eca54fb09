"""The ``perf`` object a test receives: what users call to measure.

It lives in the core, not in the pytest layer, so it can be used from a script or a
notebook too: everything it needs from a session (settings, baselines, the gate policy)
is handed to it as a :class:`TestContext`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, final

from .gate import GatePolicy, Judgement, judge
from .model import BaselineEntry, Comparison, Direction, Environment, Measurement
from .probes import ProbeUnavailable
from .probes.callgrind import TIMING_UNDER_VALGRIND, under_valgrind
from .probes.cpu import CpuProbe, Setup
from .probes.host import ProbeHost
from .sampling import Batch, Clock, Progress, SamplingPlan, Turns
from .settings import Measure, Mode, PerfSpec, Settings

if TYPE_CHECKING:
    # Imported on first use: most perf tests time a call, and these cost a suite's
    # first perf test some 150 ms of imports.
    from .probes.collective import CollectiveProbe
    from .probes.gpu import GpuProbe
    from .probes.instructions import InstructionProbe
    from .probes.network import NetProbe
    from .probes.storage import StorageProbe


@final
@dataclass(frozen=True, slots=True)
class TestContext:
    """What the fixture needs to know about the test it serves and its session."""

    __test__ = False  # not a test class, whatever pytest's collection thinks of the name

    test_id: str  #: pytest node id
    settings: Settings
    spec: PerfSpec  #: the test's @pytest.mark.perf arguments
    policy: GatePolicy
    environment: Environment
    baselines: Callable[[str], BaselineEntry | None]  #: measurement name -> stored entry
    code_hash: str | None = None
    source_digest: str | None = None  #: of the file ``code_hash`` was taken from
    progress: Callable[[str], Progress | None] = lambda name: None
    clock: Clock = time.perf_counter_ns
    cpu_clock: Clock = time.process_time_ns
    #: Run after every sample to adjust for machine-speed swings; None to go without.
    speed_reference: Batch | None = None
    #: Paired A/B: (test id, threshold, measurement name) -> its turns; None otherwise.
    pairing: Callable[[str, float, str], Turns | None] | None = None


@final
@dataclass(frozen=True, slots=True)
class Result:
    """One measurement of a test and its verdict."""

    measurement: Measurement
    comparison: Comparison


@dataclass(slots=True)
class _Region:
    samples: list[float] = field(default_factory=list)
    cpu_samples: list[float] = field(default_factory=list)


class PerfFixture:
    """Measures code inside a perf test.

    ``perf(fn, *args, **kwargs)`` measures a callable and returns its result;
    ``perf.call(...)`` does the same with options; ``with perf.measure("name"):`` times a
    block, one sample per entry; ``perf.record(...)`` takes numbers measured elsewhere.
    """

    def __init__(self, context: TestContext) -> None:
        self._context = context
        self._results: list[Result] = []
        self._names: set[str] = set()
        self._regions: dict[str, _Region] = {}
        self._recorded: dict[str, Measurement] = {}
        self._finished = False
        self._gpu: GpuProbe | None = None

    @property
    def test_id(self) -> str:
        return self._context.test_id

    @property
    def code_hash(self) -> str | None:
        """Hash of the test function's code, stored with its baselines."""
        return self._context.code_hash

    @property
    def source_digest(self) -> str | None:
        """Digest of the file the code hash was taken from, stored beside it."""
        return self._context.source_digest

    @property
    def results(self) -> tuple[Result, ...]:
        """Every measurement judged so far."""
        return tuple(self._results)

    @property
    def mode(self) -> Mode:
        """The session's mode: with ``Mode.OFF`` nothing is measured."""
        return self._context.settings.mode

    @property
    def counts_instructions(self) -> bool:
        """Whether ``perf(fn)`` counts instructions in this test rather than timing it
        (the marker's ``measure=`` over the session's ``--perf-measure``)."""
        return self._context.spec.measure_for(self._context.settings) is Measure.INSTRUCTIONS

    @property
    def plan(self) -> SamplingPlan:
        """How this test samples: its marker's values over the session settings."""
        return self._context.spec.plan(self._context.settings)

    @functools.cached_property
    def storage(self) -> StorageProbe:
        """Storage: ``perf.storage.write(dir, size=..., block=..., fsync=True)`` (and
        read, randread, randwrite) runs fio-like workloads on a real file;
        ``with perf.storage.region("save", bytes=n):`` times the test's own I/O."""
        from .probes.storage import StorageProbe

        return StorageProbe(self._probe_host())

    @functools.cached_property
    def net(self) -> NetProbe:
        """Network: ``perf.net.echo_server()`` starts a loopback server in a subprocess
        (stopped when the test ends); ``perf.net.latency(server_or_callable)`` gates
        round-trip percentiles, ``perf.net.throughput(server)`` stream throughput."""
        from .probes.network import NetProbe

        return NetProbe(self._probe_host())

    def close(self) -> None:
        """Stop what the test's probes started (loopback servers); the plugin calls it
        at teardown, whether the test passed, failed or was interrupted."""
        net: NetProbe | None = self.__dict__.get("net")  # only if the test used perf.net
        if net is not None:
            net.close()

    @functools.cached_property
    def _cpu(self) -> CpuProbe | InstructionProbe:
        context = self._context
        if self.counts_instructions:
            from .probes.instructions import InstructionProbe

            return InstructionProbe(
                self._probe_host(), memory=context.spec.memory_for(context.settings)
            )
        if under_valgrind() and context.settings.mode is not Mode.OFF:
            raise ProbeUnavailable(TIMING_UNDER_VALGRIND)
        return CpuProbe(
            self._probe_host(),
            speed_reference=(
                context.speed_reference
                if context.spec.speed_reference_for(context.settings)
                else None
            ),
            memory=context.spec.memory_for(context.settings),
            turns_for=(
                None
                if context.pairing is None
                else functools.partial(context.pairing, context.test_id, context.policy.threshold)
            ),
        )

    @functools.cached_property
    def _collective(self) -> CollectiveProbe:
        from .probes.collective import CollectiveProbe  # on first use: most tests never need it

        return CollectiveProbe(self._probe_host())

    def _probe_host(self) -> ProbeHost:
        """The one interface every probe meets the fixture through (probes/host.py)."""
        context = self._context
        return ProbeHost(
            measuring=context.settings.mode is not Mode.OFF,
            plan=self.plan,
            claim=self._claim,
            judge=self._judge,
            judge_at_finish=self._judge_at_finish,
            clock=context.clock,
            cpu_clock=context.cpu_clock,
            test_id=context.test_id,
            baseline=context.baselines,
            environment=context.environment,
            code_hash=context.code_hash,
            progress=context.progress,
        )

    def collective(
        self,
        op: str,
        sizes: Iterable[str | int] = ("1MiB",),
        *,
        dtype: str = "fp32",
        backend: str | None = None,
        processes: int | None = None,
        name: str | None = None,
        timeout: float | None = None,
    ) -> tuple[Result, ...]:
        """Time a torch.distributed collective (all_reduce, all_gather, reduce_scatter,
        broadcast, all_to_all) in worker processes: one measurement per message size,
        named ``<op>.<size>`` (``all_reduce.64MiB``), seconds per operation, with algbw and
        busbw (nccl-tests' conventions) in its details. NCCL on every GPU by default (a
        skip with fewer than two); ``backend="gloo"`` runs ``processes`` CPU processes (2).
        Returns the results, judged now. See probes/collective.py."""
        __tracebackhide__ = True
        first = len(self._results)
        self._collective(
            op, sizes, dtype=dtype, backend=backend, processes=processes, name=name, timeout=timeout
        )
        return tuple(self._results[first:])

    def __call__(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Measure ``fn(*args, **kwargs)`` as the measurement "time"; return its result."""
        __tracebackhide__ = True
        return self.call(fn, args=args, kwargs=kwargs)

    def call(
        self,
        fn: Callable[..., Any],
        *,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        name: str = "time",
        setup: Setup | None = None,
        loops: int | None = None,
        memory: bool | None = None,
    ) -> Any:
        """Measure a callable (sync or async) and return the result of its last call.

        ``setup`` runs before every call, outside the timed span; it may return an
        ``(args, kwargs)`` pair for the call. ``loops`` pins the calls per sample instead
        of calibrating. ``memory`` also measures peak memory (tracemalloc) as
        ``<name>.peak_memory``.
        """
        __tracebackhide__ = True
        return self._cpu.call(
            fn, tuple(args), kwargs, name=name, setup=setup, loops=loops, memory=memory
        )

    @contextlib.contextmanager
    def measure(self, name: str = "time") -> Iterator[None]:
        """Time the block as one sample of ``name``; enter it repeatedly for more samples.

        The samples are judged when the test's call ends. Use ``perf(...)`` where you can:
        it calibrates and samples adaptively; a block can only be timed as often as the
        test enters it.
        """
        if under_valgrind() and self._context.settings.mode is not Mode.OFF:
            raise ProbeUnavailable(TIMING_UNDER_VALGRIND)
        region = self._regions.get(name)
        if region is None:
            self._claim(name)
            region = self._regions[name] = _Region()
        clock, cpu_clock = self._context.clock, self._context.cpu_clock
        wall0, cpu0 = clock(), cpu_clock()
        yield
        wall1, cpu1 = clock(), cpu_clock()
        region.samples.append((wall1 - wall0) / 1e9)
        region.cpu_samples.append((cpu1 - cpu0) / 1e9)

    def record(
        self,
        name: str,
        values: Iterable[float],
        *,
        unit: str = "",
        higher_is_better: bool = False,
    ) -> None:
        """Gate numbers measured elsewhere (throughputs, latencies...), judged at the end
        of the test's call. Values must be positive: changes are compared as ratios."""
        __tracebackhide__ = True
        samples = tuple(float(v) for v in values)
        if not samples:
            raise ValueError(f"perf.record({name!r}): no values given")
        bad = [v for v in samples if not (math.isfinite(v) and v > 0)]
        if bad:
            raise ValueError(
                f"perf.record({name!r}): values must be positive finite numbers "
                f"(changes are compared as ratios), got {bad[0]!r}"
            )
        self._claim(name)
        self._recorded[name] = Measurement(
            name, unit, Direction.from_flag(higher_is_better), samples
        )

    @property
    def gpu(self) -> GpuProbe:
        """GPU work: ``perf.gpu(fn, *args, bytes=..., flops=..., mode="cold")`` times a
        callable with CUDA events; ``with perf.gpu.region("step"):`` times a block.
        Skips the test where there is no GPU."""
        if self._gpu is None:
            from .probes.gpu import GpuProbe

            telemetry_hz = self._context.settings.gpu_telemetry_hz
            self._gpu = GpuProbe(self._probe_host(), telemetry_hz=telemetry_hz)
        return self._gpu

    def add_samples(
        self,
        name: str,
        wall_samples: Iterable[float],
        *,
        loops: int,
        cpu_samples: Iterable[float] = (),
        stop_reason: str = "rounds",
    ) -> Result:
        """Judge a timing measured elsewhere, now: seconds per call, one value per sample
        of ``loops`` calls (what ``benchmark.pedantic`` takes). Returns its result."""
        __tracebackhide__ = True
        samples = tuple(float(v) for v in wall_samples)
        if not samples:
            raise ValueError(f"perf.add_samples({name!r}): no samples given")
        if loops < 1:
            raise ValueError(f"perf.add_samples({name!r}): loops must be at least 1")
        self._claim(name)
        self._judge(
            Measurement(
                name,
                "s",
                Direction.LOWER_IS_BETTER,
                samples,
                loops=loops,
                cpu_samples=tuple(float(v) for v in cpu_samples),
                stop_reason=stop_reason,
            )
        )
        return self._results[-1]

    def finish(self) -> tuple[Result, ...]:
        """Judge the timed blocks and recorded values; called once when the test's call ends."""
        if not self._finished:
            self._finished = True
            if self._gpu is not None:
                self._gpu.finish()
            if self._context.settings.mode is not Mode.OFF:
                for name, region in self._regions.items():
                    if region.samples:
                        self._judge(
                            Measurement(
                                name,
                                "s",
                                Direction.LOWER_IS_BETTER,
                                tuple(region.samples),
                                cpu_samples=tuple(region.cpu_samples),
                                stop_reason="block entries",
                            )
                        )
                for measurement in self._recorded.values():
                    self._judge(measurement)
        return self.results

    def _claim(self, name: str) -> None:
        if not name or not isinstance(name, str):
            raise ValueError(f"a measurement name must be a non-empty string, got {name!r}")
        if name in self._names:
            raise ValueError(
                f"measurement {name!r} is already taken in {self.test_id}: "
                "give each measurement its own name="
            )
        self._names.add(name)

    def _judge(
        self, measurement: Measurement, resample: Callable[[], Measurement] | None = None
    ) -> None:
        context = self._context
        judgement: Judgement = judge(
            context.test_id,
            measurement,
            context.baselines(measurement.name),
            context.policy,
            environment=context.environment,
            code_hash=context.code_hash,
            # Refreshing records the first look as it is: the second look exists to
            # protect a verdict, and a refresh fails nothing.
            resample=None if context.settings.update_baselines else resample,
        )
        measurement = self._with_budget(judgement.measurement)
        self._results.append(Result(measurement, judgement.comparison))

    def _with_budget(self, measurement: Measurement) -> Measurement:
        """``measurement`` with its declared budget in its details, in its unit."""
        context = self._context
        if context.spec.budget is None and not context.settings.budgets:
            return measurement
        from .history.budgets import budget_for, with_budget

        name = measurement.name
        budget = budget_for(context.test_id, name, context.spec.budget, context.settings.budgets)
        if budget is None:
            return measurement
        where = f"{context.test_id} measurement {name!r}"
        details = with_budget(measurement.details, budget, measurement.unit, where)
        return dataclasses.replace(measurement, details=details)

    def _judge_at_finish(self, measurement: Measurement) -> None:
        """Judge ``measurement`` when the test's call ends; its name is claimed already,
        and a later one of the same name (a region entered again) replaces it."""
        self._recorded[measurement.name] = measurement
