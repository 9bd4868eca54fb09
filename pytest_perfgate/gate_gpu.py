"""What the gate adds for GPU measurements: clocks, throttling and drivers.

A GPU's time depends on its SM clock, which moves with load, temperature and the power
cap. Two rules follow:

* When the SM clock (median over the samples, from NVML) differs from the baseline's by
  more than ``CLOCK_TOLERANCE``, the comparison is made again in cycles (time x SM
  clock). A regression in time that is not one in cycles is the clock's doing, not the
  code's: it is reported as INCONCLUSIVE with both figures, never silently passed or
  failed. A change that is worse in time, though within the noise, and significantly
  worse in cycles is a regression: under a power cap the clock swings between runs,
  and cycles take that swing out. (A memory-bound kernel does not follow the SM clock;
  the message gives both numbers so a person can tell.)
* Samples taken while NVML reported a slowdown reason (power cap, thermal, power brake)
  are counted and named in the message, beside the baseline's count; they are not
  dropped, since on a loaded H100 the power cap is the normal state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from .model import BaselineEntry, Measurement, Verdict, format_change
from .stats import Decision

#: Relative SM-clock difference beyond which the cycles comparison is made.
CLOCK_TOLERANCE = 0.03


def gpu_details(details: Mapping[str, Any]) -> Mapping[str, Any]:
    gpu = details.get("gpu")
    return gpu if isinstance(gpu, Mapping) else {}


def pooled_details(first: Mapping[str, Any], fresh: Mapping[str, Any]) -> dict[str, Any]:
    """The details of two looks' pooled samples: counts add up, the clock is averaged."""
    a, b = gpu_details(first), gpu_details(fresh)
    if not a or not b:
        return dict(first)
    pooled = dict(a)
    n_a, n_b = int(a.get("samples", 0)), int(b.get("samples", 0))
    pooled["samples"] = n_a + n_b
    pooled["slowed_samples"] = int(a.get("slowed_samples", 0)) + int(b.get("slowed_samples", 0))
    reasons = dict(a.get("slowdown_reasons", {}))
    for reason, count in b.get("slowdown_reasons", {}).items():
        reasons[reason] = reasons.get(reason, 0) + count
    pooled["slowdown_reasons"] = reasons
    clock_a, clock_b = a.get("sm_clock_mhz"), b.get("sm_clock_mhz")
    if clock_a and clock_b and n_a + n_b:
        pooled["sm_clock_mhz"] = (clock_a * n_a + clock_b * n_b) / (n_a + n_b)
    return {**first, "gpu": pooled}


def review(
    decision: Decision,
    measurement: Measurement,
    baseline: BaselineEntry,
    in_cycles: Callable[[float, float], Decision],
    threshold: float,
) -> tuple[Decision, list[str]]:
    """The decision after the GPU rules, and the notes that explain it.

    ``in_cycles(baseline_clock, current_clock)`` repeats the comparison with each side's
    times multiplied by its SM clock.
    """
    now, before = gpu_details(measurement.details), gpu_details(baseline.details)
    if not now:
        return decision, []
    notes: list[str] = []
    clock_now, clock_before = now.get("sm_clock_mhz"), before.get("sm_clock_mhz")
    if clock_now and clock_before and abs(clock_now / clock_before - 1) > CLOCK_TOLERANCE:
        cycles = in_cycles(float(clock_before), float(clock_now))
        text = (
            f"SM clock {clock_now:.0f} MHz vs {clock_before:.0f} MHz in the baseline; "
            f"in cycles (time x SM clock) {format_change(cycles.ratio)} "
            f"(95% CI {format_change(cycles.ci_low)}..{format_change(cycles.ci_high)})"
        )
        if decision.verdict is Verdict.REGRESSED and cycles.verdict is not Verdict.REGRESSED:
            decision = replace(decision, verdict=Verdict.INCONCLUSIVE)
            text += ": slower in time but not in cycles, so the clock may explain it"
        elif (
            decision.verdict is Verdict.INCONCLUSIVE
            and decision.ratio > 1 + threshold
            and cycles.verdict is Verdict.REGRESSED
        ):
            # Time says "worse, but within the noise" because the clock moved; in cycles
            # the change stands out. Both point the same way: a regression.
            decision = replace(decision, verdict=Verdict.REGRESSED, p_worse=cycles.p_worse)
            text += ": slower in time, and significantly so in cycles"
        notes.append(text)
    if decision.verdict in (Verdict.REGRESSED, Verdict.INCONCLUSIVE):
        slowed = _slowdown_text(now)
        if slowed:
            notes.append(slowed + _baseline_share(before))
    driver_now = now.get("identity", {}).get("driver")
    driver_before = before.get("identity", {}).get("driver")
    if driver_now and driver_before and driver_now != driver_before:
        notes.append(f"GPU driver {driver_before} in the baseline, {driver_now} now")
    return decision, notes


def _slowdown_text(gpu: Mapping[str, Any]) -> str:
    slowed, total = int(gpu.get("slowed_samples", 0)), int(gpu.get("samples", 0))
    if not slowed:
        return ""
    reasons = ", ".join(
        f"{name} ({count})" for name, count in sorted(gpu.get("slowdown_reasons", {}).items())
    )
    return f"{slowed} of {total} samples ran while the GPU reported a slowdown: {reasons}"


def _baseline_share(gpu: Mapping[str, Any]) -> str:
    if "slowed_samples" not in gpu:
        return ""
    return f" (baseline: {gpu['slowed_samples']} of {gpu.get('samples', '?')})"
