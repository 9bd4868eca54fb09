"""A ``benchmark`` fixture compatible with pytest-benchmark's, measured and gated by perfgate.

Tests written for pytest-benchmark run unchanged: ``benchmark(fn, *args, **kwargs)`` is
sampled like ``perf(fn, ...)``, ``benchmark.pedantic(...)`` takes exactly the rounds it
asks for, and both are judged against the test's baselines like any perf test.

This module is registered as a plugin (``perfgate-benchmark``) by ``pytest_configure``
only when neither pytest-benchmark nor pytest-codspeed is loaded: otherwise that plugin
owns the fixture and its marker (and pytest-benchmark its options), perfgate leaves them
alone and says so in the header (``-p no:benchmark`` / ``-p no:codspeed`` hands them to
perfgate).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.metadata
import json
import os
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, final

import pytest

from ..probes import ProbeUnavailable
from ..probes.callgrind import TIMING_UNDER_VALGRIND, under_valgrind
from ..settings import Mode, PerfSpec, SettingsError, did_you_mean
from . import benchmark_hooks
from .session import extra_info_key, session_key

if TYPE_CHECKING:  # the core imports numpy: pytest loads this module in every run
    from ..fixture import PerfFixture, Result

__all__ = [
    "BENCHMARK_OPTIONS",
    "BenchmarkFixture",
    "BenchmarkStats",
    "FixtureAlreadyUsed",
    "benchmark",
    "benchmark_spec",
]

#: The name pytest-benchmark's plugin is registered under (its pytest11 entry point).
PYTEST_BENCHMARK = "benchmark"

#: @pytest.mark.benchmark keywords that perfgate maps onto @pytest.mark.perf ones.
_MAPPED = {
    "min_rounds": "min_samples",
    "max_time": "max_time",
    "min_time": "min_sample_time",
    "disable_gc": "disable_gc",
}
#: Keywords accepted and ignored: perfgate always times with perf_counter_ns and
#: decides itself when it has sampled enough.
_IGNORED = frozenset(
    {
        "timer",
        "calibration_precision",
        "warmup_iterations",
        "precision",
        "confidence",
        "cprofile",
    }
)
_KNOWN = frozenset({*_MAPPED, *_IGNORED, "group", "warmup"})

MARKER_HELP = (
    "benchmark(group=None, min_rounds=None, max_time=None, min_time=None, warmup=None, "
    "warmup_iterations=None, disable_gc=None, timer=None, calibration_precision=None): "
    "settings of a test using the pytest-benchmark compatible `benchmark` fixture "
    "(pytest-perfgate)"
)

#: Plugins that bring a `benchmark` fixture of their own: plugin name -> distribution.
#: Whichever is loaded owns the fixture and its marker; perfgate then stays out.
OTHER_OWNERS = {PYTEST_BENCHMARK: "pytest-benchmark", "codspeed": "pytest-codspeed"}


def benchmark_owner(pluginmanager: pytest.PytestPluginManager) -> str | None:
    """The loaded plugin that owns `benchmark`, or None when perfgate may own it."""
    return next((name for name in OTHER_OWNERS if pluginmanager.hasplugin(name)), None)


def coexistence_message(owner: str) -> str:
    return (
        f"perfgate: {OTHER_OWNERS[owner]} is installed and owns the `benchmark` fixture; "
        f"run with -p no:{owner} to have perfgate measure and gate benchmark tests"
    )


class FixtureAlreadyUsed(Exception):
    """The ``benchmark`` fixture measures once per test, as in pytest-benchmark."""


def benchmark_plugin_expected(pluginmanager: pytest.PytestPluginManager) -> bool:
    """Whether pytest-benchmark is, or is about to be, loaded in this run.

    Asked while options are added, when pytest-benchmark's entry point may not be loaded
    yet; registering its options first would make pytest-benchmark fail on them.
    """
    if pluginmanager.hasplugin(PYTEST_BENCHMARK):
        return True
    if pluginmanager.is_blocked(PYTEST_BENCHMARK) or os.environ.get(
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD"
    ):
        return False
    return any(
        entry_point.name == PYTEST_BENCHMARK
        for entry_point in importlib.metadata.entry_points(group="pytest11")
    )


@final
@dataclass(frozen=True, slots=True)
class BenchmarkOption:
    """One of pytest-benchmark's ``--benchmark-*`` options, as perfgate takes it."""

    name: str  #: the option without ``--benchmark-``
    metavar: str = ""  #: "" for a switch that takes no value
    nargs: str | None = None  #: "?" (value optional) or "+" where pytest-benchmark has them
    #: The perfgate setting it maps onto, "" where there is none (then it is ignored).
    setting: str = ""
    #: The option's value -> the setting's (None: leave the setting as it is); a switch
    #: sets "true".
    convert: Callable[[str], str | None] = str
    instead: str = ""  #: for an ignored option, what perfgate does instead

    @property
    def flag(self) -> str:
        return f"--benchmark-{self.name}"

    @property
    def dest(self) -> str:
        return f"perfgate_{self.setting}" if self.setting else self._ignored_dest

    @property
    def _ignored_dest(self) -> str:
        return "perfgate_benchmark_" + self.name.replace("-", "_")


def _twice(value: str) -> str:
    # pytest-benchmark's precision is a margin (+-2% is 0.02); perfgate's a CI width.
    try:
        return str(2 * float(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a fraction, got {value!r}") from None


def _warmup_off(value: str) -> str | None:
    # perfgate always warms up: only "off" says something it can honour.
    return "0" if value.lower() in {"off", "no", "false"} else None


_STORAGE = "perfgate keeps baselines in --perf-baseline-dir; refresh with --perf-update-baselines"
_DISPLAY = "perfgate's end-of-run table has one layout (see --perf-markdown and --perf-html)"
_PROFILE = "perfgate does not profile; run cProfile on the test separately"
#: Every option of pytest-benchmark 5 but the run-selection ones (add_options).
BENCHMARK_OPTIONS: tuple[BenchmarkOption, ...] = (
    BenchmarkOption("min-time", "SECONDS", setting="min_sample_time"),
    BenchmarkOption("max-time", "SECONDS", setting="max_time"),
    BenchmarkOption("min-rounds", "NUM", setting="min_samples"),
    BenchmarkOption("precision", "FRACTION", setting="target_precision", convert=_twice),
    BenchmarkOption("warmup", "KIND", "?", setting="warmup_time", convert=_warmup_off),
    BenchmarkOption("disable-gc", setting="disable_gc"),
    BenchmarkOption(
        "confidence", "FRACTION", instead="perfgate stops on the median's 95% CI width"
    ),
    BenchmarkOption("timer", "FUNC", instead="perfgate times with time.perf_counter_ns"),
    BenchmarkOption(
        "calibration-precision",
        "NUM",
        instead="perfgate calibrates calls per sample to --perf-min-sample-time",
    ),
    BenchmarkOption(
        "warmup-iterations", "NUM", instead="perfgate warms up for --perf-warmup-time seconds"
    ),
    BenchmarkOption("save", "NAME", instead=_STORAGE),
    BenchmarkOption("autosave", instead=_STORAGE),
    BenchmarkOption("save-data", instead=_STORAGE),
    BenchmarkOption("storage", "URI", instead=_STORAGE),
    BenchmarkOption("netrc", "PATH", "?", instead=_STORAGE),
    BenchmarkOption(
        "json",
        "PATH",
        instead="--perf-json writes perfgate's results file (its own schema); "
        "see docs/reference/results-schema.json",
    ),
    BenchmarkOption(
        "compare",
        "NUM|_ID",
        "?",
        instead="perfgate compares every run with its baselines",
    ),
    BenchmarkOption(
        "compare-fail",
        "EXPR",
        "+",
        instead="perfgate fails a significant regression itself (see --perf-threshold)",
    ),
    BenchmarkOption("cprofile", "COLUMN", instead=_PROFILE),
    BenchmarkOption("cprofile-loops", "LOOPS", instead=_PROFILE),
    BenchmarkOption("cprofile-top", "COUNT", instead=_PROFILE),
    BenchmarkOption("cprofile-dump", "FILENAME-PREFIX", "?", instead=_PROFILE),
    BenchmarkOption("sort", "COL", instead=_DISPLAY),
    BenchmarkOption("group-by", "LABEL", instead=_DISPLAY),
    BenchmarkOption("columns", "LABELS", instead=_DISPLAY),
    BenchmarkOption("name", "FORMAT", instead=_DISPLAY),
    BenchmarkOption("time-unit", "COLUMN", instead=_DISPLAY),
    BenchmarkOption("histogram", "FILENAME-PREFIX", "?", instead=_DISPLAY),
    BenchmarkOption("csv", "FILENAME", "?", instead=_DISPLAY),
    BenchmarkOption("verbose", instead="pytest's -v shows each perf test's verdict"),
    BenchmarkOption("quiet", instead="pytest's -q"),
)


class _SetsSetting(argparse.Action):
    """Stores a ``--benchmark-*`` value (converted by its ``type``) as a perfgate setting,
    unless the setting's own ``--perf-*`` option gave one: that wins, wherever it stands."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        mapped: set[str] = getattr(namespace, "perfgate_benchmark_mapped", set())
        if getattr(namespace, self.dest, None) is not None and self.dest not in mapped:
            return
        value = self.const if values is None or values == [] else values
        if value is not None:
            setattr(namespace, self.dest, value)
            namespace.perfgate_benchmark_mapped = mapped | {self.dest}


def _argparse_keywords(option: BenchmarkOption) -> dict[str, Any]:
    """How pytest's parser takes ``option``: the same value syntax as pytest-benchmark's."""
    if option.setting:
        keywords: dict[str, Any] = {
            "action": _SetsSetting,
            "dest": option.dest,
            "help": f"sets --perf-{option.setting.replace('_', '-')} (pytest-perfgate)",
        }
        if not option.metavar:  # a switch
            return keywords | {"nargs": 0, "const": "true"}
        keywords |= {"type": option.convert, "metavar": option.metavar}
    else:
        instead = option.instead.replace("%", "%%")  # argparse formats help with %
        keywords = {
            "dest": option.dest,
            "default": None,
            "help": f"accepted and ignored: {instead} (pytest-perfgate)",
        }
        if not option.metavar:
            return keywords | {"action": "store_const", "const": True}
        keywords["metavar"] = option.metavar
    if option.nargs is not None:
        keywords["nargs"] = option.nargs
    if option.nargs == "?":
        keywords["const"] = None if option.setting else ""
    return keywords


def add_options(parser: pytest.Parser) -> None:
    """pytest-benchmark's options (only where it is not installed)."""
    group = parser.getgroup("perfgate")
    group.addoption(
        "--benchmark-only",
        action="store_true",
        default=False,
        dest="perfgate_benchmark_only",
        help="only run tests that use the benchmark or perf fixture (pytest-perfgate)",
    )
    group.addoption(
        "--benchmark-skip",
        action="store_true",
        default=False,
        dest="perfgate_benchmark_skip",
        help="skip tests that use the benchmark fixture (pytest-perfgate)",
    )
    group.addoption(
        "--benchmark-disable",
        action="store_true",
        default=False,
        dest="perfgate_benchmark_disable",
        help="run benchmarked functions once, unmeasured (pytest-perfgate)",
    )
    group.addoption(
        "--benchmark-enable",
        action="store_true",
        default=False,
        dest="perfgate_benchmark_enable",
        help="measure benchmarked functions even with --benchmark-disable (pytest-perfgate)",
    )
    for option in BENCHMARK_OPTIONS:
        group.addoption(option.flag, **_argparse_keywords(option))


def ignored_options(config: pytest.Config) -> list[BenchmarkOption]:
    """The ``--benchmark-*`` options of this run that perfgate has no equivalent for."""
    return [
        option
        for option in BENCHMARK_OPTIONS
        if not option.setting and config.getoption(option.dest, default=None) is not None
    ]


def _option(config: pytest.Config, name: str) -> bool:
    if name == "disable" and _option(config, "enable"):  # as in pytest-benchmark
        return False
    return bool(config.getoption(f"perfgate_benchmark_{name}", default=False))


@final
@dataclass(frozen=True, slots=True)
class _MarkerOptions:
    spec: PerfSpec
    group: str | None


def benchmark_spec(marker: pytest.Mark | None, nodeid: str) -> _MarkerOptions:
    """The perf settings of a ``@pytest.mark.benchmark(...)`` test; fails the test with a
    message naming it and the marker when a keyword is unknown or bad."""
    if marker is None:
        return _MarkerOptions(PerfSpec(), None)
    problem = ""
    values: dict[str, Any] = {}
    if marker.args:
        problem = "takes no positional arguments"
    unknown = sorted(set(marker.kwargs) - _KNOWN)
    if unknown and not problem:
        known = ", ".join(sorted(_KNOWN))
        hint = did_you_mean(unknown[0], _KNOWN)
        problem = f"unknown keyword {unknown[0]!r}{hint} (known: {known})"
    for key, perf_key in _MAPPED.items():
        value = marker.kwargs.get(key)
        if value is None or problem:
            continue
        try:
            PerfSpec(**{perf_key: value})
        except SettingsError as error:
            problem = f"{key} {str(error).removeprefix(perf_key).strip()}"
        values[perf_key] = value
    warmup = marker.kwargs.get("warmup")
    if warmup is not None and not warmup:
        values["warmup_time"] = 0.0
    if problem:  # failed outside any except block: no "During handling of..." chain
        pytest.fail(f"@pytest.mark.benchmark on {nodeid}: {problem}", pytrace=False)
    group = marker.kwargs.get("group")
    return _MarkerOptions(PerfSpec(**values), None if group is None else str(group))


@final
@dataclass(frozen=True, slots=True)
class BenchmarkStats:
    """Statistics of a benchmarked function, in seconds per call, like pytest-benchmark's
    ``benchmark.stats``: read as attributes or as ``stats["median"]``."""

    data: tuple[float, ...]  #: seconds per call, one value per round (sample)
    iterations: int  #: calls per round
    min: float
    max: float
    mean: float
    stddev: float
    median: float
    q1: float
    q3: float

    @classmethod
    def of(cls, data: Sequence[float], iterations: int) -> BenchmarkStats:
        from ..stats import summarize

        summary = summarize(data)
        return cls(
            data=tuple(data),
            iterations=iterations,
            min=summary.min,
            max=summary.max,
            mean=summary.mean,
            stddev=summary.stdev,
            median=summary.median,
            q1=summary.q1,
            q3=summary.q3,
        )

    @property
    def rounds(self) -> int:
        return len(self.data)

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @property
    def ops(self) -> float:
        """Calls per second (1 / mean)."""
        return 1.0 / self.mean if self.mean else 0.0

    @property
    def total(self) -> float:
        return sum(self.data)

    @property
    def stats(self) -> BenchmarkStats:
        """Itself: pytest-benchmark's ``benchmark.stats.stats.mean`` reads the same."""
        return self

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def as_dict(self) -> dict[str, Any]:
        names = ("min", "max", "mean", "stddev", "median", "iqr", "q1", "q3")
        return {
            **{name: getattr(self, name) for name in names},
            "rounds": self.rounds,
            "iterations": self.iterations,
            "ops": self.ops,
            "total": self.total,
            "data": list(self.data),
        }


#: pedantic's setup: None, or an (args, kwargs) pair for the round.
PedanticSetup = Callable[[], "tuple[Sequence[Any], Mapping[str, Any]] | None"]


class BenchmarkFixture:
    """pytest-benchmark's ``benchmark`` fixture, measured by perfgate's sampler and gate."""

    def __init__(
        self,
        perf: PerfFixture | None,
        *,
        name: str,
        fullname: str,
        group: str | None = None,
        param: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name  #: the test's name
        self.fullname = fullname  #: the test's node id
        self.group = group
        self.param = param
        self.params = None if params is None else dict(params)
        self.extra_info: dict[str, Any] = {}
        self.has_error = False
        self.stats: BenchmarkStats | None = None  #: set once measured
        #: --benchmark-disable (or --perf-mode=off): the function runs once, unmeasured.
        self.disabled = perf is None or perf.mode is Mode.OFF
        self._perf = perf
        self._mode: str | None = None

    @property
    def enabled(self) -> bool:
        return not self.disabled

    def __call__(
        self, function_to_benchmark: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Any:
        """Measure ``function_to_benchmark(*args, **kwargs)``; return its result."""
        __tracebackhide__ = True
        self._use("benchmark(...)")
        try:
            if self._perf is None or self.disabled:
                return function_to_benchmark(*args, **kwargs)
            result = self._perf.call(function_to_benchmark, args=args, kwargs=kwargs)
            self._set_stats()
            return result
        except Exception:
            self.has_error = True
            raise

    def pedantic(
        self,
        target: Callable[..., Any],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        setup: PedanticSetup | None = None,
        teardown: Callable[..., Any] | None = None,
        rounds: int = 1,
        warmup_rounds: int = 0,
        iterations: int = 1,
    ) -> Any:
        """Exactly ``rounds`` samples of ``iterations`` calls each, after
        ``warmup_rounds`` untimed rounds; ``setup`` runs before and ``teardown`` after
        every round, untimed. Returns the last call's result."""
        __tracebackhide__ = True
        self._use("benchmark.pedantic(...)")
        try:
            return self._pedantic(
                target, args, kwargs or {}, setup, teardown, rounds, warmup_rounds, iterations
            )
        except Exception:
            self.has_error = True
            raise

    def _pedantic(
        self,
        target: Callable[..., Any],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        setup: PedanticSetup | None,
        teardown: Callable[..., Any] | None,
        rounds: int,
        warmup_rounds: int,
        iterations: int,
    ) -> Any:
        __tracebackhide__ = True
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise ValueError("Must have positive int for `iterations`.")
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise ValueError("Must have positive int for `rounds`.")
        if (
            isinstance(warmup_rounds, bool)
            or not isinstance(warmup_rounds, int)
            or warmup_rounds < 0
        ):
            raise ValueError("Must have positive int for `warmup_rounds`.")
        if iterations > 1 and setup is not None:
            raise ValueError(
                "Can't use more than 1 `iterations` with a `setup` function "
                "(setup runs once per round, before its calls)."
            )
        has_args = bool(args or kwargs)

        def arguments() -> tuple[Sequence[Any], Mapping[str, Any]]:
            if setup is not None:
                prepared = setup()
                if prepared:
                    if has_args:
                        raise TypeError(
                            "Can't use `args` or `kwargs` if `setup` returns the arguments."
                        )
                    new_args, new_kwargs = prepared
                    return new_args, new_kwargs
            return args, kwargs

        if self._perf is None or self.disabled:
            call_args, call_kwargs = arguments()
            return target(*call_args, **call_kwargs)

        if self._perf.counts_instructions:
            return self._counted_pedantic(target, arguments, teardown)
        if under_valgrind():
            raise ProbeUnavailable(TIMING_UNDER_VALGRIND)

        for _ in range(warmup_rounds):
            call_args, call_kwargs = arguments()
            target(*call_args, **call_kwargs)
            if teardown is not None:
                teardown(*call_args, **call_kwargs)

        disable_gc = self._perf.plan.disable_gc
        clock, cpu_clock = time.perf_counter_ns, time.process_time_ns
        wall: list[float] = []
        cpu: list[float] = []
        result: Any = None
        for _ in range(rounds):
            call_args, call_kwargs = arguments()
            with _gc_disabled(disable_gc):
                wall0, cpu0 = clock(), cpu_clock()
                for _ in range(iterations):
                    result = target(*call_args, **call_kwargs)
                wall1, cpu1 = clock(), cpu_clock()
            wall.append((wall1 - wall0) / iterations / 1e9)
            cpu.append((cpu1 - cpu0) / iterations / 1e9)
            if teardown is not None:
                teardown(*call_args, **call_kwargs)
        self._perf.add_samples("time", wall, loops=iterations, cpu_samples=cpu)
        self._set_stats()
        return result

    def _counted_pedantic(
        self,
        target: Callable[..., Any],
        arguments: Callable[[], tuple[Sequence[Any], Mapping[str, Any]]],
        teardown: Callable[..., Any] | None,
    ) -> Any:
        """``pedantic`` when counting instructions: the probe chooses the calls (rounds,
        iterations and warm-up rounds are a timing's), ``setup`` runs before each call,
        outside the count."""
        __tracebackhide__ = True
        assert self._perf is not None
        if teardown is not None:
            raise ValueError(
                "benchmark.pedantic(teardown=...) is not supported when counting "
                "instructions: count a target that cleans up after itself, or measure time"
            )

        def prepared() -> tuple[tuple[Any, ...], dict[str, Any]]:
            call_args, call_kwargs = arguments()
            return tuple(call_args), dict(call_kwargs)

        return self._perf.call(target, setup=prepared)

    def _use(self, mode: str) -> None:
        __tracebackhide__ = True
        if self._mode is not None:
            self.has_error = True
            raise FixtureAlreadyUsed(
                f"Fixture can only be used once. Previously it was used in {self._mode} mode."
            )
        self._mode = mode

    def _set_stats(self) -> None:
        assert self._perf is not None
        result: Result | None = next(
            (r for r in reversed(self._perf.results) if r.measurement.name == "time"), None
        )
        if result is not None:
            measurement = result.measurement
            self.stats = BenchmarkStats.of(measurement.samples, measurement.loops or 1)


@contextlib.contextmanager
def _gc_disabled(disable: bool) -> Iterator[None]:
    was_enabled = gc.isenabled()
    if disable:
        gc.disable()
    try:
        yield
    finally:
        if disable and was_enabled:
            gc.enable()


# -- the plugin: registered by pytest_configure only where perfgate owns `benchmark` -------
@pytest.fixture
def benchmark(request: pytest.FixtureRequest) -> BenchmarkFixture:
    """pytest-benchmark compatible: ``benchmark(fn, *args)``, ``benchmark.pedantic(...)``;
    measured and gated against baselines/ like a perf test (pytest-perfgate)."""
    node = request.node
    options = benchmark_spec(node.get_closest_marker("benchmark"), node.nodeid)
    session = request.config.stash[session_key]
    perf = (
        None if _option(request.config, "disable") else session.fixture_for(node, spec=options.spec)
    )
    callspec = getattr(node, "callspec", None)
    fixture = BenchmarkFixture(
        perf,
        name=node.name,
        fullname=node.nodeid,
        group=options.group,
        param=None if callspec is None else callspec.id,
        params=None if callspec is None else callspec.params,
    )
    node.stash[extra_info_key] = fixture.extra_info
    request.config.stash[fixtures_key].append(fixture)
    return fixture


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    only, skip = _option(config, "only"), _option(config, "skip")
    if not (only or skip):
        return
    session = config.stash[session_key]
    skip_bench = pytest.mark.skip(reason="Skipping benchmark (--benchmark-skip active).")
    skip_other = pytest.mark.skip(reason="Skipping non-benchmark (--benchmark-only active).")
    for item in items:
        if only:  # overrides --benchmark-skip, as in pytest-benchmark
            if not session.is_perf_item(item):
                item.add_marker(skip_other)
        elif "benchmark" in getattr(item, "fixturenames", ()):
            item.add_marker(skip_bench)


# -- pytest-benchmark's conftest hooks and options, where perfgate owns `benchmark` ---------
#: The ``benchmark`` fixtures of this run, in the order the tests asked for them.
fixtures_key = pytest.StashKey[list[BenchmarkFixture]]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    # Historic: called when this plugin registers, before any test module is collected.
    pluginmanager.add_hookspecs(benchmark_hooks)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[fixtures_key] = []
    if hasattr(config, "workerinput"):  # said once, by the pytest-xdist controller
        return
    for option in ignored_options(config):
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                f"perfgate: {option.flag} is accepted and ignored: {option.instead}"
            ),
            stacklevel=2,
        )


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """pytest_benchmark_update_machine_info: what it adds becomes environment info."""
    hook = session.config.hook.pytest_benchmark_update_machine_info
    if not hook.get_hookimpls():  # reading the environment costs time: only when asked
        return
    perf_session = session.config.stash[session_key]
    environment = perf_session.environment
    machine_info: dict[str, Any] = {**environment.info, **environment.machine}
    before = dict(machine_info)
    hook(config=session.config, machine_info=machine_info)
    added = {
        str(key): str(value)
        for key, value in machine_info.items()
        if key not in before or before[key] != value
    }
    if added:  # info only: the machine-class fingerprint stays what perfgate measured
        perf_session.add_environment_info(added)


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session: pytest.Session) -> Generator[None, None, None]:
    """pytest_benchmark_update_json, on the results file the session has just written."""
    result = yield
    config = session.config
    settings = config.stash[session_key].settings
    path = config.rootpath / settings.json
    hook = config.hook.pytest_benchmark_update_json
    if not settings.json or hasattr(config, "workerinput") or not hook.get_hookimpls():
        return result
    try:
        output_json = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # not written (interrupted run): nothing to update
        return result
    benchmarks = config.stash[fixtures_key].copy()
    hook(config=config, benchmarks=benchmarks, output_json=output_json)
    from ..baseline import write_atomically

    # As results.py writes it.
    text = json.dumps(output_json, indent=1, sort_keys=True, allow_nan=False) + "\n"
    write_atomically(path, text)
    return result
