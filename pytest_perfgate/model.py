"""Value types shared by every layer: what was measured, what is stored, what was decided.

Everything here is a frozen dataclass or an enum, so a value can be passed between the
sampler, the statistics, the baseline store and the reports without anyone mutating it.
Each type knows how to turn itself into plain JSON-able data and back; the baseline file
format and the reports are built from these dictionaries.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, final


class Verdict(enum.Enum):
    """The outcome of comparing one measurement with its baseline."""

    #: Significantly worse than the baseline, beyond the practical threshold.
    REGRESSED = "REGRESSED"
    #: Not shown worse, and the best estimate lies inside the threshold.
    UNCHANGED = "UNCHANGED"
    #: Significantly better than the baseline, beyond the threshold. Reported, never failed.
    IMPROVED = "IMPROVED"
    #: Neither a regression nor no-change could be shown, even after sampling more.
    INCONCLUSIVE = "INCONCLUSIVE"
    #: No baseline exists for this measurement yet.
    NEW = "NEW"
    #: A baseline exists but was recorded somewhere it cannot be compared with (other
    #: machine class, changed test code, other unit).
    INCOMPARABLE = "INCOMPARABLE"

    @property
    def fails(self) -> bool:
        return self is Verdict.REGRESSED


class Direction(enum.Enum):
    """Which way is better for a metric."""

    LOWER_IS_BETTER = "lower"
    HIGHER_IS_BETTER = "higher"

    @classmethod
    def from_flag(cls, higher_is_better: bool) -> Direction:
        return cls.HIGHER_IS_BETTER if higher_is_better else cls.LOWER_IS_BETTER


class OnMismatch(enum.Enum):
    """What the gate does with a baseline recorded on another machine class."""

    INCOMPARABLE = "incomparable"  #: baselines from another machine class are not compared
    NORMALIZE = "normalize"  #: compare through the machine-speed calibration, wider threshold


@final
@dataclass(frozen=True, slots=True)
class Summary:
    """Descriptive statistics of one sample set (values in the measurement's unit)."""

    n: int  #: number of samples
    median: float  #: the headline figure
    mean: float
    stdev: float  #: sample standard deviation (0 for a single sample)
    min: float
    max: float
    q1: float  #: 25th percentile
    q3: float  #: 75th percentile
    median_ci_low: float  #: lower end of the distribution-free 95% CI of the median
    median_ci_high: float  #: upper end of that CI

    @property
    def relative_ci_width(self) -> float:
        """Width of the median's 95% CI relative to the median (0.02 means +-1%)."""
        if self.median == 0:
            return math.inf
        return (self.median_ci_high - self.median_ci_low) / abs(self.median)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Summary:
        data = _mapping(data, "summary")
        n = _optional_int(data["n"], "summary.n")
        if n is None or n < 1:
            raise ValueError(f"summary.n: must be a whole number of at least 1, got {n!r}")
        return cls(
            n=n,
            **{
                name: _number(data[name], f"summary.{name}")
                for name in cls.__dataclass_fields__
                if name != "n"
            },
        )


@final
@dataclass(frozen=True, slots=True)
class Environment:
    """Where a measurement was taken.

    ``machine`` holds the fields that define a machine class: a baseline is only compared
    with a measurement whose ``machine`` fields are equal (or through a speed calibration,
    when the user asks for it). ``info`` is kept for people and is never compared.
    """

    machine: Mapping[str, str]  #: machine-class fingerprint (CPU model, cores, Python, OS)
    info: Mapping[str, str] = field(default_factory=dict)  #: host, versions; shown, not compared
    calibration_ns: float | None = None  #: machine-speed score: ns for the calibration workload

    def mismatches(self, other: Environment) -> list[str]:
        """Human-readable differences in machine-class fields, empty when they match."""
        keys = sorted(set(self.machine) | set(other.machine))
        return [
            f"{key}: {self.machine.get(key, '-')!r} vs {other.machine.get(key, '-')!r}"
            for key in keys
            if self.machine.get(key) != other.machine.get(key)
        ]

    def extended(self, machine: Mapping[str, str]) -> Environment:
        """This environment with a measurement's own machine-class fields added (the GPU
        it ran on, the filesystem it wrote to): they gate like the session's fields."""
        if not machine:
            return self
        return Environment({**self.machine, **machine}, self.info, self.calibration_ns)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"machine": dict(self.machine), "info": dict(self.info)}
        if self.calibration_ns is not None:
            data["calibration_ns"] = self.calibration_ns
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Environment:
        data = _mapping(data, "environment")
        calibration = data.get("calibration_ns")
        return cls(
            machine=_texts(data["machine"], "environment.machine"),
            info=_texts(data.get("info", {}), "environment.info"),
            calibration_ns=(
                None if calibration is None else _positive(calibration, "calibration_ns")
            ),
        )


@final
@dataclass(frozen=True, slots=True)
class Measurement:
    """Samples of one metric from one test run.

    For a timed call, ``samples`` are seconds per call (the batch time divided by ``loops``)
    and ``cpu_samples`` the process CPU seconds per call over the same batches.
    """

    name: str  #: the measurement's name inside its test ("time" by default)
    unit: str  #: "s" for times, "B" for bytes, or the user's unit
    direction: Direction
    samples: tuple[float, ...]
    loops: int | None = None  #: calls per sample for timed calls; None for recorded values
    cpu_samples: tuple[float, ...] = ()  #: process CPU time per call, beside wall time
    stop_reason: str = ""  #: why sampling stopped ("precision", "time budget", ...)
    reference: tuple[float, ...] = ()  #: speed-reference seconds after each sample
    #: Machine-class fields of this measurement alone (e.g. ``gpu.name``, ``fs.type``),
    #: added to the session's fingerprint: a baseline gates only where they are equal.
    machine: Mapping[str, str] = field(default_factory=dict)
    #: What the probe knows about how it measured (timer, mode, telemetry, throughput):
    #: plain JSON data, stored with the baseline and shown in reports.
    details: Mapping[str, Any] = field(default_factory=dict)
    #: What the gate compares: "median" (the median test), or a tail quantile such as
    #: "p99" (a test on that quantile, for latencies whose tail is what matters).
    statistic: str = "median"

    def to_dict(self) -> dict[str, Any]:
        return {
            "statistic": self.statistic,
            "reference": list(self.reference),
            "name": self.name,
            "unit": self.unit,
            "direction": self.direction.value,
            "samples": list(self.samples),
            "loops": self.loops,
            "cpu_samples": list(self.cpu_samples),
            "stop_reason": self.stop_reason,
            "machine": dict(self.machine),
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Measurement:
        data = _mapping(data, "measurement")
        return cls(
            name=_string(data["name"], "name"),
            unit=_string(data["unit"], "unit"),
            direction=_direction(data["direction"]),
            samples=_positive_floats(data["samples"], "samples", empty=False),
            loops=_loops(data.get("loops")),
            cpu_samples=_floats(data.get("cpu_samples", ()), "cpu_samples"),
            stop_reason=_string(data.get("stop_reason", ""), "stop_reason"),
            reference=_positive_floats(data.get("reference", ()), "reference"),
            machine=_texts(data.get("machine", {}), "machine"),
            details=dict(_mapping(data.get("details", {}), "details")),
            statistic=_string(data.get("statistic", "median"), "statistic"),
        )


@final
@dataclass(frozen=True, slots=True)
class BaselineEntry:
    """What a baseline file keeps for one measurement of one test."""

    unit: str
    direction: Direction
    samples: tuple[float, ...]  #: raw samples of the recording run (capped)
    summary: Summary  #: of the full, uncapped sample set
    history: tuple[float, ...]  #: run-level medians of the last K refreshes, oldest first
    #: (speed-adjusted when ``reference`` is present, like the comparison that uses them)
    environment: Environment
    loops: int | None = None  #: calls per sample when recorded; reused so both sides match
    cpu_samples: tuple[float, ...] = ()
    code_hash: str | None = None  #: hash of the test function's code (comments ignored)
    #: Digest of the text of the file ``code_hash`` was taken from: while the file is
    #: unchanged, so is the hash, and the gate need not parse the file (code_hash.identify).
    source_digest: str | None = None
    commit: str | None = None  #: VCS commit the baseline was recorded at
    recorded_at: str = ""  #: UTC time, ISO 8601
    reference: tuple[float, ...] = ()  #: speed-reference seconds after each stored sample
    #: Imported without raw samples (pytest-benchmark without --benchmark-save-data):
    #: ``samples`` holds the median alone.
    summary_only: bool = False
    #: The recording measurement's ``details`` (timer, telemetry...); omitted when empty.
    details: Mapping[str, Any] = field(default_factory=dict)
    #: The gated statistic ("median", or a tail quantile such as "p99"): a baseline is only
    #: compared with a measurement of the same statistic. Written only when not "median".
    statistic: str = "median"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {} if not self.summary_only else {"summary_only": True}
        if self.details:
            data["details"] = dict(self.details)
        if self.statistic != "median":
            data["statistic"] = self.statistic
        if self.source_digest is not None:
            data["source_digest"] = self.source_digest
        return data | {
            "reference": list(self.reference),
            "unit": self.unit,
            "direction": self.direction.value,
            "samples": list(self.samples),
            "summary": self.summary.to_dict(),
            "history": list(self.history),
            "environment": self.environment.to_dict(),
            "loops": self.loops,
            "cpu_samples": list(self.cpu_samples),
            "code_hash": self.code_hash,
            "commit": self.commit,
            "recorded_at": self.recorded_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BaselineEntry:
        data = _mapping(data, "entry")
        return cls(
            unit=_string(data["unit"], "unit"),
            direction=_direction(data["direction"]),
            samples=_positive_floats(data["samples"], "samples", empty=False),
            summary=Summary.from_dict(data["summary"]),
            history=_positive_floats(data.get("history", ()), "history"),
            environment=Environment.from_dict(data["environment"]),
            loops=_loops(data.get("loops")),
            cpu_samples=_floats(data.get("cpu_samples", ()), "cpu_samples"),
            code_hash=_optional_string(data.get("code_hash"), "code_hash"),
            source_digest=_optional_string(data.get("source_digest"), "source_digest"),
            commit=_optional_string(data.get("commit"), "commit"),
            recorded_at=_string(data.get("recorded_at", ""), "recorded_at"),
            reference=_positive_floats(data.get("reference", ()), "reference"),
            summary_only=_flag(data.get("summary_only", False), "summary_only"),
            details=dict(_mapping(data.get("details", {}), "details")),
            statistic=_string(data.get("statistic", "median"), "statistic"),
        )


@final
@dataclass(frozen=True, slots=True)
class Comparison:
    """The verdict on one measurement, with the evidence behind it."""

    test_id: str  #: pytest node id of the test
    name: str  #: measurement name
    verdict: Verdict
    unit: str
    direction: Direction
    current: Summary
    baseline: Summary | None = None
    ratio: float | None = None  #: current median / baseline centre (speed-adjusted if possible)
    ci_low: float | None = None  #: 95% CI of that ratio
    ci_high: float | None = None
    p_value: float | None = None  #: one-sided test of "worse beyond the threshold"
    q_value: float | None = None  #: p adjusted for the number of perf tests (Bonferroni)
    threshold: float = 0.0  #: practical threshold, relative (0.03 means 3%)
    looks: int = 1  #: how many sampling rounds the decision took
    notes: tuple[str, ...] = ()  #: why INCOMPARABLE/INCONCLUSIVE, throttling, normalization...
    statistic: str = "median"  #: what was compared: "median" or a tail quantile ("p99")
    #: The compared statistic's current value where it is not the median (the p99).
    value: float | None = None
    #: The baseline's figure of that statistic where it is not the median (its p99).
    baseline_value: float | None = None
    #: The smallest slowdown (relative, 0.08 means 8%) this measurement would be flagged
    #: for at its level with about 80% power, given its noise and sample sizes; None where
    #: there is nothing to judge (NEW, INCOMPARABLE) or no test of significance (counts).
    detectable_change: float | None = None

    @property
    def now(self) -> float:
        """The current figure of the compared statistic (the median, or e.g. the p99)."""
        return self.current.median if self.value is None else self.value

    @property
    def reference_median(self) -> float | None:
        """The baseline figure the change was measured against: the baseline's centre
        (mean of its run history, speed-adjusted to this run) when a ratio was taken."""
        if self.ratio:
            return self.now / self.ratio
        if self.statistic != "median":
            return self.baseline_value  # a p99 row compares p99s, never the p99 with a median
        return None if self.baseline is None else self.baseline.median

    @property
    def label(self) -> str:
        """The test id, and the measurement's name unless "time", as every report shows
        them: control and bidirectional characters made visible (see ``printable``)."""
        label = self.test_id if self.name == "time" else f"{self.test_id} [{self.name}]"
        return printable(label)

    def to_dict(self) -> dict[str, Any]:
        return {
            "test_id": self.test_id,
            "name": self.name,
            "verdict": self.verdict.value,
            "unit": self.unit,
            "direction": self.direction.value,
            "current": self.current.to_dict(),
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
            "ratio": self.ratio,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "q_value": self.q_value,
            "threshold": self.threshold,
            "looks": self.looks,
            "notes": list(self.notes),
            "detectable_change": self.detectable_change,
        } | (
            {}
            if self.statistic == "median"
            else {
                "statistic": self.statistic,
                "value": self.value,
                "baseline_value": self.baseline_value,
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        data = _mapping(data, "comparison")
        baseline = data.get("baseline")

        def optional(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else _number(value, key)

        return cls(
            test_id=_string(data["test_id"], "test_id"),
            name=_string(data["name"], "name"),
            verdict=_verdict(data["verdict"]),
            unit=_string(data["unit"], "unit"),
            direction=_direction(data["direction"]),
            current=Summary.from_dict(data["current"]),
            baseline=None if baseline is None else Summary.from_dict(baseline),
            ratio=optional("ratio"),
            ci_low=optional("ci_low"),
            ci_high=optional("ci_high"),
            p_value=optional("p_value"),
            q_value=optional("q_value"),
            threshold=_number(data.get("threshold", 0.0), "threshold"),
            looks=_optional_int(data.get("looks", 1), "looks") or 1,
            notes=tuple(_string(n, "notes[]") for n in _list(data.get("notes", []), "notes")),
            statistic=_string(data.get("statistic", "median"), "statistic"),
            value=optional("value"),
            baseline_value=optional("baseline_value"),
            detectable_change=optional("detectable_change"),
        )


def format_quantity(value: float, unit: str) -> str:
    """``0.0123, "s"`` -> ``"12.3 ms"``; bytes in KiB/MiB; other units as given, with a
    k/M/G/T prefix from 10,000 up."""
    if unit == "s":
        for scale, suffix in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns")):
            if abs(value) >= scale or suffix == "ns":
                return f"{_three_digits(value / scale)} {suffix}"
    if unit == "B":
        for scale, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"), (1, "B")):
            if abs(value) >= scale or suffix == "B":
                return f"{_three_digits(value / scale)} {suffix}"
    if unit == "instructions":  # counts resolve a tenth of a percent: four digits
        for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= scale:
                return f"{value / scale:.4g}{suffix} instr"
        return f"{value:.4g} instr"
    if abs(value) >= 1e4:  # 17860 IO/s reads "17.9k IO/s", not "1.786e+04 IO/s"
        for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= scale:
                return f"{_three_digits(value / scale)}{suffix} {unit}".rstrip()
    return f"{value:.4g} {unit}".rstrip()


def _three_digits(value: float) -> str:
    """Three significant digits, never in exponent notation (999.7 -> "1000", 1023 -> "1023")."""
    text = f"{value:.3g}"
    return f"{value:.0f}" if "e" in text else text


def format_change(ratio: float) -> str:
    """``1.218`` -> ``"+21.8%"``."""
    return f"{(ratio - 1.0) * 100:+.1f}%"


def format_detectable(change: float | None) -> str:
    """A minimum detectable change as reports show it: ``0.081`` -> ``">=8.1%"``,
    ``0.25`` -> ``">=25%"``, None -> ``"-"``."""
    if change is None:
        return "-"
    percent = change * 100
    return f">={percent:.2g}%" if percent < 10 else f">={percent:.0f}%"


def explain(comparison: Comparison) -> str:
    """The one-line message a person reads, e.g. in a failing test.

    ``median 12.3 ms vs baseline 10.1 ms (+21.8%, 95% CI +18.0..+25.1%), q=0.001, threshold 5%``
    """
    c = comparison
    now = format_quantity(c.now, c.unit)
    if c.baseline is None or c.ratio is None:
        text = f"{c.statistic} {now} ({c.verdict.value})"
    else:
        reference = format_quantity(c.now / c.ratio, c.unit)
        text = f"{c.statistic} {now} vs baseline {reference} ({format_change(c.ratio)}"
        if c.ci_low is not None and c.ci_high is not None:
            text += f", 95% CI {format_change(c.ci_low)}..{format_change(c.ci_high)}"
        text += ")"
        if c.q_value is not None:
            # A tail probability can underflow to 0; print the floor, not a false zero.
            text += f", q={c.q_value:.2g}" if c.q_value > 0 else ", q<1e-300"
        text += f", threshold {c.threshold * 100:.3g}%"
        if c.direction is Direction.HIGHER_IS_BETTER:
            text += " (higher is better)"
    if c.notes:
        text += "; " + "; ".join(c.notes)
    return printable(text)


#: Characters a test id or measurement name must not carry into a report as they are:
#: C0 and C1 controls (a newline starts a GitHub Actions workflow command, ESC a terminal
#: sequence) and the invisible bidirectional marks and overrides (U+202E shows text
#: reversed in a review).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every control or bidirectional character written as its Python
    escape (a newline as ``\\n``, U+202E as ``\\u202e``): what a person reads in a
    terminal, CI log, Markdown or HTML report is what the text holds."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


#: Most calls per sample a stored or imported run may ask for: far above what calibration
#: picks (a 10 ns call at a 1 s sample is 1e8), low enough that a damaged file cannot make
#: a test run for days.
MAX_LOOPS = 10**9
#: Most values in one stored list (samples, history): a baseline keeps thousands at most.
MAX_VALUES = 1_000_000


def _number(value: Any, field_name: str) -> float:
    """A finite JSON number (never a bool or a string) as a float."""
    if type(value) is float and math.isfinite(value):  # most are: no more to check
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{field_name}: must be a number, got {_shown(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{field_name}: number out of range") from None
    if not math.isfinite(number):
        raise ValueError(f"{field_name}: must be finite, got {number!r}")
    return number


#: Range of a stored sample or run-level figure, in any unit (seconds, bytes, FLOP/s):
#: far beyond any measurement, and narrow enough that the gate's ratios, logs and
#: exponentials of them stay finite (a 1e-300 history overflowed the prediction interval).
STORED_RANGE = (1e-30, 1e30)


def _positive(value: Any, field_name: str) -> float:
    """A positive float within STORED_RANGE: ratios, logs and powers of it are finite."""
    number = _number(value, field_name)
    low, high = STORED_RANGE
    if number <= 0:
        raise ValueError(f"{field_name}: must be a positive number, got {number!r}")
    if not low <= number <= high:
        raise ValueError(f"{field_name}: must lie between {low:g} and {high:g}, got {number!r}")
    return number


def _floats(values: Any, field_name: str = "values") -> tuple[float, ...]:
    """A JSON list of finite numbers as a tuple of floats (a string is not a list)."""
    return tuple(_number(x, f"{field_name}[{i}]") for i, x in enumerate(_list(values, field_name)))


def _positive_floats(values: Any, field_name: str, *, empty: bool = True) -> tuple[float, ...]:
    """A JSON list of positive finite numbers: samples and run-level figures, compared as
    ratios."""
    items = _list(values, field_name)
    if not items and not empty:
        raise ValueError(f"{field_name}: must not be empty")
    low, high = STORED_RANGE
    # Floats in range, as files hold them: one pass, not a call per value (NaN fails it).
    if all(type(x) is float and low <= x <= high for x in items):
        return tuple(items)
    return tuple(_positive(x, f"{field_name}[{i}]") for i, x in enumerate(items))


def _list(values: Any, field_name: str) -> list[Any] | tuple[Any, ...]:
    if not isinstance(values, list | tuple):
        raise ValueError(f"{field_name}: must be a list of numbers, got {_shown(values)}")
    if len(values) > MAX_VALUES:
        raise ValueError(f"{field_name}: more than {MAX_VALUES} values")
    return values


def _optional_int(value: Any, field_name: str = "value") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field_name}: must be a whole number, got {_shown(value)}")
    return value


def _loops(value: Any) -> int | None:
    loops = _optional_int(value, "loops")
    if loops is not None and not 1 <= loops <= MAX_LOOPS:
        raise ValueError(f"loops: must be a whole number from 1 to {MAX_LOOPS}, got {loops}")
    return loops


def _string(value: Any, field_name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field_name}: must be a string, got {_shown(value)}")
    return value


def _optional_string(value: Any, field_name: str) -> str | None:
    return None if value is None else _string(value, field_name)


def _mapping(value: Any, field_name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{field_name}: must be an object, got {_shown(value)}")
    return value


def _flag(value: Any, field_name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{field_name}: must be true or false, got {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    """A wrong value as an error message shows it: its type, and a short repr."""
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


def _texts(value: Any, field_name: str) -> dict[str, str]:
    """A JSON object of strings (numbers are kept as their text: fingerprints hold counts)."""
    texts = {}
    for key, item in _mapping(value, field_name).items():
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ValueError(f"{field_name}.{key}: must be a string, got {_shown(item)}")
        texts[str(key)] = str(item)
    return texts


def _direction(value: Any) -> Direction:
    try:
        return Direction(value)
    except (ValueError, TypeError):
        allowed = ", ".join(repr(d.value) for d in Direction)
        raise ValueError(f"direction: must be {allowed}, got {_shown(value)}") from None


def _verdict(value: Any) -> Verdict:
    try:
        return Verdict(value)
    except (ValueError, TypeError):
        raise ValueError(f"verdict: unknown verdict {_shown(value)}") from None
