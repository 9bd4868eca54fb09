"""JUnit XML: each measurement's figures as ``<property>`` elements of its test case.

pytest writes the XML (``--junitxml``); the plugin hands it these pairs through the test
item's ``user_properties``, the list that pytest's ``record_property`` fixture fills.
Values are plain numbers in the measurement's unit (changes as fractions: 0.218 is
+21.8%), so a CI system can chart them; a figure that does not exist is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..model import Comparison

PREFIX = "perfgate"


def _number(value: float) -> str:
    return f"{value:.6g}"


def junit_properties(comparisons: Iterable[Comparison]) -> list[tuple[str, str]]:
    """``perfgate.<measurement>.<figure>`` pairs: verdict, unit, median, baseline, change,
    ci_low, ci_high, q, detectable_change (and the gated statistic's value where it is not
    the median)."""
    pairs: list[tuple[str, str]] = []
    for c in comparisons:
        figures: dict[str, str] = {"verdict": c.verdict.value, "unit": c.unit}
        figures["median"] = _number(c.current.median)
        if c.statistic != "median":
            figures["statistic"] = c.statistic
            figures["value"] = _number(c.now)
        reference = c.reference_median
        if reference is not None:
            figures["baseline"] = _number(reference)
        if c.ratio is not None:
            figures["change"] = _number(c.ratio - 1.0)
        if c.ci_low is not None and c.ci_high is not None:
            figures["ci_low"] = _number(c.ci_low - 1.0)
            figures["ci_high"] = _number(c.ci_high - 1.0)
        if c.q_value is not None:
            figures["q"] = f"{c.q_value:.3g}"
        if c.detectable_change is not None:
            figures["detectable_change"] = _number(c.detectable_change)
        pairs.extend((f"{PREFIX}.{c.name}.{key}", value) for key, value in figures.items())
    return pairs


__all__: Sequence[str] = ("PREFIX", "junit_properties")
