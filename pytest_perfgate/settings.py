"""Settings and the option definitions shared by the pytest plugin and the CLI.

Precedence, lowest first: built-in defaults, ``[tool.perfgate]`` in pyproject.toml, the
command line, and for one test, ``@pytest.mark.perf(...)`` keyword arguments. Every value
is checked where it enters, and an error names where it came from and what is wrong.
"""

from __future__ import annotations

import difflib
import enum
import math
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, final

from .model import MAX_LOOPS
from .model import OnMismatch as OnMismatch  # the gate's enum, re-exported for callers

if TYPE_CHECKING:  # sampling imports numpy: pytest loads this module in every run
    from .history.budgets import Budget, MarkerBudget
    from .sampling import SamplingPlan

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]


class SettingsError(ValueError):
    """A setting has a bad value; the message names its source."""


class Mode(enum.Enum):
    GATE = "gate"  #: a regression fails its test
    WARN = "warn"  #: regressions are reported, never failed
    OFF = "off"  #: perf tests run their code once, unmeasured


class Measure(enum.Enum):
    """What ``perf(fn)`` measures of a callable."""

    TIME = "time"  #: wall and CPU seconds per call
    INSTRUCTIONS = "instructions"  #: instructions per call, counted under Valgrind


def _fraction(value: Any) -> float:
    number = _number(value)
    if not 0.0 <= number < 1.0:
        raise ValueError(f"must be a fraction in [0, 1), got {value!r}")
    return number


def _threshold(value: Any) -> float:
    # Above 1 is allowed: a metric that swings between regimes (loopback latency on a
    # shared VM) may only be worth gating against a slowdown of several times.
    number = _number(value)
    if not 0.0 <= number < 10.0:
        raise ValueError(f"must be a relative change in [0, 10) (0.05 means 5%), got {value!r}")
    return number


def _open_fraction(value: Any) -> float:
    number = _number(value)
    if not 0.0 < number < 1.0:
        raise ValueError(f"must be a fraction in (0, 1), got {value!r}")
    return number


#: Longest a time option may ask for: a day. Far beyond any sensible budget, and a
#: typo such as 1e9 is refused instead of hanging the run.
MAX_SECONDS = 86_400.0
#: Fastest telemetry a GPU measurement may ask for (NVML itself updates at about 1 kHz).
MAX_TELEMETRY_HZ = 10_000.0


def _seconds(value: Any, *, zero: bool) -> float:
    number = _number(value)
    if not zero and not 0 < number <= MAX_SECONDS:
        raise ValueError(
            f"must be a positive number of seconds up to {MAX_SECONDS:g}, got {value!r}"
        )
    if zero and not 0 <= number <= MAX_SECONDS:
        raise ValueError(f"must not be negative, nor above {MAX_SECONDS:g} seconds, got {value!r}")
    return number


def _positive(value: Any) -> float:
    """A time budget: positive, at most a day."""
    return _seconds(value, zero=False)


def _non_negative(value: Any) -> float:
    """A duration that may be 0, at most a day."""
    return _seconds(value, zero=True)


def _rate(value: Any) -> float:
    number = _number(value)
    if not 0 <= number <= MAX_TELEMETRY_HZ:
        raise ValueError(f"must not be negative, nor above {MAX_TELEMETRY_HZ:g} Hz, got {value!r}")
    return number


def _number(value: Any) -> float:
    """A finite number: NaN compares false with every bound, so it must go first."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"must be a finite number, got {value!r}")
    return number


def _count(value: Any) -> int:
    if isinstance(value, bool) or (
        isinstance(value, float) and not (math.isfinite(value) and value.is_integer())
    ):
        raise ValueError(f"must be a whole number, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be a whole number, got {value!r}") from None
    if number < 1:
        raise ValueError(f"must be at least 1, got {value!r}")
    if number > MAX_COUNT:
        raise ValueError(f"must be at most {MAX_COUNT}, got {value!r}")
    return number


#: Largest count an option or marker argument may give (samples, rounds, loops, history):
#: the bound on calls per sample that a baseline file has too.
MAX_COUNT = MAX_LOOPS


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"must be true or false, got {value!r}")


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a non-empty string, got {value!r}")
    return value


def _path(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a path, got {value!r}")
    return value


def _choice(enum_type: type[enum.Enum]) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if isinstance(value, enum_type):
            return value
        try:
            return enum_type(str(value).lower())
        except ValueError:
            allowed = ", ".join(m.value for m in enum_type)
            raise ValueError(f"must be one of {allowed}, got {value!r}") from None

    return parse


@final
@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its name in pyproject (``name``) and on the command line (``flag``)."""

    name: str
    parse: Callable[[Any], Any]
    help: str
    metavar: str = ""
    is_flag: bool = False  #: a command-line switch without a value
    #: true or false: a bare flag means true, ``--perf-memory=false`` says false
    is_boolean: bool = False

    @property
    def flag(self) -> str:
        return "--perf-" + self.name.replace("_", "-")


OPTIONS: tuple[Option, ...] = (
    Option(
        "mode",
        _choice(Mode),
        "gate: regressions fail their test; warn: report only; "
        "off: run perf tests unmeasured (default: gate)",
        "gate|warn|off",
    ),
    Option(
        "update_baselines",
        _flag,
        "measure and write baselines for the perf tests that "
        "pass; regressions are reported, not failed",
        is_flag=True,
    ),
    Option(
        "baseline_dir",
        _text,
        "directory of baseline files, relative to the rootdir (default: baselines)",
        "DIR",
    ),
    Option(
        "json",
        _path,
        "write every measurement, comparison and the environment to this results file "
        "(relative to the rootdir; schema in docs/reference/results-schema.json)",
        "PATH",
    ),
    Option(
        "markdown",
        _path,
        "write a Markdown report for a pull-request comment to this file (relative to the "
        "rootdir); under GitHub Actions it is also appended to the job summary",
        "PATH",
    ),
    Option(
        "html",
        _path,
        "write a self-contained HTML report with plots to this file (relative to the "
        "rootdir; it opens offline, in any browser)",
        "PATH",
    ),
    Option(
        "threshold",
        _threshold,
        "practical threshold: relative changes below it do not count; 0.02 means 2%%, "
        "1.5 means 2.5 times (default: 0.02)",
        "FRACTION",
    ),
    Option(
        "measure",
        _choice(Measure),
        "what perf(fn) measures: time, or instructions counted under Valgrind (the run "
        "restarts itself under valgrind; default: time)",
        "time|instructions",
    ),
    Option(
        "instructions_threshold",
        _threshold,
        "practical threshold for instruction counts (default: 0.005; counts repeat "
        "between runs to a few parts in 100,000)",
        "FRACTION",
    ),
    Option(
        "alpha",
        _open_fraction,
        "false-alarm level for the whole suite; each test gets "
        "alpha / number of perf tests (default: 0.05)",
        "FRACTION",
    ),
    Option(
        "max_time",
        _positive,
        "time budget in seconds for sampling one measurement (default: 2.0)",
        "SECONDS",
    ),
    Option("min_samples", _count, "fewest samples per measurement (default: 20)", "N"),
    Option(
        "target_precision",
        _open_fraction,
        "stop sampling once the median's 95%% CI is this wide, relative to it (default: 0.02)",
        "FRACTION",
    ),
    Option(
        "min_sample_time",
        _non_negative,
        "calibrate the inner loop so a sample lasts at least this many seconds (default: 0.001)",
        "SECONDS",
    ),
    Option(
        "warmup_time",
        _non_negative,
        "seconds of warm-up before calibrating (default: 0.05)",
        "SECONDS",
    ),
    Option(
        "disable_gc",
        _flag,
        "disable the garbage collector while sampling (default: true)",
        "BOOL",
        is_boolean=True,
    ),
    Option(
        "memory",
        _flag,
        "also measure and gate peak memory (tracemalloc) of every perf(...) call (default: false)",
        "BOOL",
        is_boolean=True,
    ),
    Option(
        "speed_reference",
        _flag,
        "run a fixed reference workload after every CPU sample and compare "
        "speed-adjusted times (default: true)",
        "BOOL",
        is_boolean=True,
    ),
    Option(
        "run_noise",
        _fraction,
        "run-to-run noise of timings (relative standard deviation) assumed until a "
        "baseline's history measures it, for every kind of measurement (default: each "
        "kind's own: CPU 0.025, GPU 0.01, network and collectives 0.05 (NCCL messages "
        "of 16 MiB or more 0.02), storage 0.10)",
        "FRACTION",
    ),
    Option(
        "max_looks",
        _count,
        "sampling rounds when the first is not conclusive (default: 2; 1 disables re-sampling)",
        "N",
    ),
    Option(
        "gpu_telemetry_hz",
        _rate,
        "rate of NVML telemetry readings while a GPU measurement runs; 0 turns "
        "telemetry off (default: 50)",
        "HZ",
    ),
    Option("history", _count, "run-level medians kept per baseline (default: 10)", "N"),
    Option(
        "history_db",
        _path,
        "record every gated run and refresh in this run history: an SQLite file (relative "
        "to the rootdir) or a postgresql:// URL (default: none)",
        "PATH|URL",
    ),
    Option("max_stored_samples", _count, "raw samples kept per baseline entry (default: 400)", "N"),
    Option(
        "on_mismatch",
        _choice(OnMismatch),
        "baselines from another machine class: "
        "incomparable (default) or normalize through the machine-speed calibration",
        "incomparable|normalize",
    ),
    Option(
        "normalize_margin",
        _fraction,
        "extra threshold when comparing across machine classes (default: 0.5)",
        "FRACTION",
    ),
)
OPTIONS += (
    Option(
        "fail_over_budget",
        _flag,
        "fail a test whose measurement is past its declared budget; without it, the "
        "summary notes it (default: false)",
        "BOOL",
        is_boolean=True,
    ),
)
OPTIONS_BY_NAME: Mapping[str, Option] = {option.name: option for option in OPTIONS}


@final
@dataclass(frozen=True, slots=True)
class Settings:
    """Session-wide settings, after defaults, pyproject.toml and command line."""

    mode: Mode = Mode.GATE
    update_baselines: bool = False
    baseline_dir: str = "baselines"
    json: str = ""  #: results file to write; "" for none
    markdown: str = ""  #: Markdown report to write; "" for none
    html: str = ""  #: HTML report to write; "" for none
    threshold: float = 0.02
    measure: Measure = Measure.TIME
    #: Counts repeat between runs to 0.003% (0.3% for code hashing object addresses):
    #: 0.5% leaves room for that and still sees a 1% change (docs/performance.md).
    instructions_threshold: float = 0.005
    alpha: float = 0.05
    max_time: float = 2.0
    min_samples: int = 20
    target_precision: float = 0.02
    min_sample_time: float = 0.001
    warmup_time: float = 0.05
    disable_gc: bool = True
    memory: bool = False
    speed_reference: bool = True
    #: Run-to-run noise assumed for every timed measurement; None: each kind's own prior.
    run_noise: float | None = None
    max_looks: int = 2
    gpu_telemetry_hz: float = 50.0
    history: int = 10
    history_db: str = ""  #: run history to record into (file or URL); "" for none
    max_stored_samples: int = 400
    on_mismatch: OnMismatch = OnMismatch.INCOMPARABLE
    normalize_margin: float = 0.5
    fail_over_budget: bool = False
    #: ``[tool.perfgate.budgets]``: test id (optionally ``::name``) and its budget
    budgets: tuple[tuple[str, Budget], ...] = ()

    @classmethod
    def resolve(
        cls,
        pyproject: Mapping[str, Any] | None = None,
        cli: Mapping[str, Any] | None = None,
        *,
        pyproject_source: str = "[tool.perfgate] in pyproject.toml",
    ) -> Settings:
        """Defaults, then ``pyproject`` values, then ``cli`` values (None means unset)."""
        values: dict[str, Any] = {}
        for key, raw in (pyproject or {}).items():
            if key == "budgets":  # a table of its own, not an option
                values["budgets"] = _budget_table(raw, f"{pyproject_source}: budgets")
                continue
            option = OPTIONS_BY_NAME.get(key.replace("-", "_"))
            if option is None or option.name == "update_baselines":
                names = [o.name for o in OPTIONS if o.name != "update_baselines"]
                hint = did_you_mean(key.replace("-", "_"), names)
                raise SettingsError(
                    f"{pyproject_source}: unknown key {key!r}{hint} (known: {', '.join(names)})"
                )
            values[option.name] = _parse(option, raw, f"{pyproject_source}: {key}")
        for key, raw in (cli or {}).items():
            if raw is None:
                continue
            option = OPTIONS_BY_NAME[key]
            try:
                values[key] = _parse(option, raw, option.flag)
            except SettingsError as error:
                if not option.is_boolean:
                    raise
                raise SettingsError(
                    f"{error} (a bare {option.flag} takes a following argument that does not "
                    f"start with '-' as its value: write {option.flag}=true before test paths)"
                ) from None
        return replace(cls(), **values)


def did_you_mean(word: str, known: Collection[str]) -> str:
    """`` (did you mean 'threshold'?)`` for a misspelt ``word``, or "" when nothing is close."""
    close = difflib.get_close_matches(word, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _budget_table(raw: Any, source: str) -> tuple[tuple[str, Budget], ...]:
    from .history.budgets import BudgetError, parse_budget_table

    try:
        return parse_budget_table(raw, source)
    except BudgetError as error:
        raise SettingsError(str(error)) from None


def _parse(option: Option, raw: Any, source: str) -> Any:
    try:
        return option.parse(raw)
    except ValueError as error:
        raise SettingsError(f"{source} {error}") from None


def read_pyproject(path: Path) -> dict[str, Any]:
    """The ``[tool.perfgate]`` table of a pyproject.toml, or {} when it has none."""
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path}: not valid TOML: {error}") from None
    table = document.get("tool", {}).get("perfgate", {})
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: [tool.perfgate] must be a table")
    return table


def _marker_budget(value: Any) -> MarkerBudget:
    from .history.budgets import BudgetError, parse_marker_budget

    try:
        return parse_marker_budget(value)
    except BudgetError as error:  # the caller puts "budget" in front
        raise ValueError(str(error).removeprefix("budget ")) from None


#: Marker keywords that are no session option, and how each is read (others: a count).
_SPEC_PARSERS: Mapping[str, Callable[[Any], Any]] = {"budget": _marker_budget}


@final
@dataclass(frozen=True, slots=True)
class PerfSpec:
    """Per-test settings: the keyword arguments of ``@pytest.mark.perf``."""

    threshold: float | None = None
    max_time: float | None = None
    min_samples: int | None = None
    rounds: int | None = None  #: exactly this many samples (no adaptive stopping)
    target_precision: float | None = None
    min_sample_time: float | None = None
    warmup_time: float | None = None
    loops: int | None = None  #: calls per sample, instead of calibrating
    disable_gc: bool | None = None
    memory: bool | None = None
    speed_reference: bool | None = None
    measure: Measure | None = None  #: time or instructions, over the session's setting
    #: "5 ms", "2 GB/s", or {measurement name: budget}: absolute budgets, over pyproject's
    budget: MarkerBudget | None = None

    @classmethod
    def from_marker(cls, args: Sequence[Any], kwargs: Mapping[str, Any]) -> PerfSpec:
        """The spec of ``@pytest.mark.perf(*args, **kwargs)``; a misspelt keyword is a
        SettingsError that suggests the keyword meant."""
        known = [spec_field.name for spec_field in fields(cls)]
        for key in kwargs:
            if key not in known:
                raise SettingsError(f"unknown keyword {key!r}{did_you_mean(key, known)}")
        if args:
            # perf(5) read as threshold=5 meant a 500% threshold: say which keyword is meant.
            raise SettingsError(
                f"takes keyword arguments only (e.g. threshold=0.05), got {args[0]!r} "
                "without a name"
            )
        try:
            return cls(**kwargs)
        except TypeError as error:  # a keyword given positionally too
            raise SettingsError(str(error).split("() ", 1)[-1]) from None

    def __post_init__(self) -> None:
        for spec_field in fields(self):
            value = getattr(self, spec_field.name)
            if value is None:
                continue
            option = OPTIONS_BY_NAME.get(spec_field.name)
            parse = (
                option.parse if option is not None else _SPEC_PARSERS.get(spec_field.name, _count)
            )
            try:
                object.__setattr__(self, spec_field.name, parse(value))
            except ValueError as error:
                raise SettingsError(f"{spec_field.name} {error}") from None

    def plan(self, settings: Settings) -> SamplingPlan:
        """The sampling plan for this test: marker values over session settings."""
        from .sampling import SamplingPlan

        min_samples = self.rounds or self.min_samples or settings.min_samples
        return SamplingPlan(
            warmup_time=_pick(self.warmup_time, settings.warmup_time),
            min_sample_time=_pick(self.min_sample_time, settings.min_sample_time),
            target_precision=_pick(self.target_precision, settings.target_precision),
            min_samples=min_samples,
            max_time=_pick(self.max_time, settings.max_time),
            max_samples=self.rounds or max(10_000, min_samples),
            loops=self.loops,
            disable_gc=_pick(self.disable_gc, settings.disable_gc),
        )

    def threshold_for(self, settings: Settings) -> float:
        if self.threshold is not None:
            return self.threshold
        if self.measure_for(settings) is Measure.INSTRUCTIONS:
            return settings.instructions_threshold
        return settings.threshold

    def measure_for(self, settings: Settings) -> Measure:
        return settings.measure if self.measure is None else self.measure

    def memory_for(self, settings: Settings) -> bool:
        return settings.memory if self.memory is None else self.memory

    def speed_reference_for(self, settings: Settings) -> bool:
        return settings.speed_reference if self.speed_reference is None else self.speed_reference


def _pick(value: Any, default: Any) -> Any:
    return default if value is None else value
