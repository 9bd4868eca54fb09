"""Absolute budgets per measurement: ``budget="5 ms"``, ``budget="2 GB/s"``.

A budget is declared in the marker (``@pytest.mark.perf(budget="5 ms")``, or one per
measurement: ``budget={"time": "5 ms", "write.throughput": "2 GB/s"}``) or in
``[tool.perfgate.budgets]`` of pyproject.toml, keyed by test id (parameters optional) and
optionally ``::name`` for one measurement; the marker wins. It is checked against the
measurement's unit when the measurement exists, converted into that unit and stored in the
results file as ``Measurement.details["budget"]``, where the history picks it up.

Units: times (``ns``, ``us``, ``ms``, ``s``, ``min``, ``h``), sizes as probes/units.py
reads them but with the ``B`` written (``kB``, ``MiB``, ``GB``...), rates as a size per
second (``500 MiB/s``, ``2 GB/s``), any other unit written as the measurement's own
(``20000 IO/s``), and a bare number, read in the measurement's unit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, final

from ..model import Comparison, Direction, Measurement, format_quantity
from ..probes.units import SIZE_UNITS

#: Seconds per time unit, by the unit's name.
TIME_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "min": 60.0,
    "h": 3600.0,
}

_NUMBER = re.compile(r"^\s*(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")

#: Where a declared budget goes in a measurement's details, in the measurement's unit.
DETAILS_KEY = "budget"


class BudgetError(ValueError):
    """A budget that cannot be read, or does not fit its measurement's unit."""


@final
@dataclass(frozen=True, slots=True)
class Budget:
    """A budget as declared, before it meets its measurement's unit."""

    amount: float  #: in seconds, bytes or bytes per second; else in ``unit``
    dimension: str  #: "time", "size", "rate", or "plain" (a unit of the measurement's own)
    unit: str  #: for "plain": the unit written ("" for a bare number); else the base unit
    text: str  #: as written, for messages

    def in_unit(self, unit: str) -> float:
        """The budget in a measurement's ``unit``; BudgetError when it does not fit."""
        dimension, scale = dimension_of(unit)
        if self.dimension == "plain" and (self.unit == "" or self.unit.lower() == unit.lower()):
            return self.amount
        if self.dimension == dimension and dimension != "plain":
            return self.amount / scale
        shown = f"in {unit!r}" if unit else "without a unit"
        raise BudgetError(f"budget {self.text!r} is {_kind(self)}, but the measurement is {shown}")


def _kind(budget: Budget) -> str:
    if budget.dimension == "plain":
        return f"in {budget.unit!r}"
    return {"time": "a time", "size": "a size", "rate": "a rate"}[budget.dimension]


def dimension_of(unit: str) -> tuple[str, float]:
    """What a measurement's ``unit`` measures and its size in base units: ("time", 1e-3)
    for "ms", ("rate", 2**20) for "MiB/s"; ("plain", 1.0) for any other unit."""
    if unit in TIME_UNITS:
        return "time", TIME_UNITS[unit]
    per_second = unit.endswith("/s")
    size = unit[:-2] if per_second else unit
    if size.lower().endswith("b") and size.lower() in SIZE_UNITS:
        return ("rate" if per_second else "size"), float(SIZE_UNITS[size.lower()])
    return "plain", 1.0


def parse_budget(value: object) -> Budget:
    """``"5 ms"``, ``"2 GB/s"``, ``"20000 IO/s"``, ``0.005``: a BudgetError when it is not a
    positive finite number with an optional unit."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BudgetError(f"budget {value!r} is not a number with a unit, such as '5 ms'")
    if isinstance(value, int | float):
        amount, unit = float(value), ""
    else:
        match = _NUMBER.match(value)
        if match is None:
            raise BudgetError(f"budget {value!r} is not a number with a unit, such as '5 ms'")
        amount, unit = float(match.group(1)), match.group(2)
    if not (math.isfinite(amount) and amount > 0.0):
        raise BudgetError(f"budget {value!r} must be a positive number")
    text = value if isinstance(value, str) else repr(value)
    dimension, scale = dimension_of(unit)
    if dimension == "plain":
        return Budget(amount, "plain", unit, text)
    return Budget(amount * scale, dimension, unit, text)


#: A marker's budget: one for every measurement of the test, or one per measurement name.
MarkerBudget = Budget | Mapping[str, Budget]


def parse_marker_budget(value: object) -> MarkerBudget:
    """The marker's ``budget=``: a budget, or a mapping of measurement names to budgets."""
    if isinstance(value, Mapping):
        budgets = {}
        for name, item in value.items():
            if not isinstance(name, str) or not name:
                raise BudgetError(f"budget keys are measurement names, got {name!r}")
            try:
                budgets[name] = parse_budget(item)
            except BudgetError as error:
                raise BudgetError(f"{error} (for measurement {name!r})") from None
        return budgets
    return parse_budget(value)


def parse_budget_table(table: object, source: str) -> tuple[tuple[str, Budget], ...]:
    """``[tool.perfgate.budgets]``: test ids (``path::test``, ``path::test[param]``,
    optionally ``::name``) to budgets. A SettingsError-ready BudgetError naming ``source``."""
    if not isinstance(table, Mapping):
        raise BudgetError(f"{source}: budgets must be a table of test ids to budgets")
    parsed = []
    for key, value in table.items():
        if not isinstance(key, str) or "::" not in key:
            raise BudgetError(
                f"{source}: {key!r} is not a test id such as 'tests/test_x.py::test_y'"
            )
        try:
            parsed.append((key, parse_budget(value)))
        except BudgetError as error:
            raise BudgetError(f"{source}: {key!r}: {error}") from None
    return tuple(parsed)


def budget_for(
    test_id: str,
    name: str,
    marker: MarkerBudget | None,
    table: Sequence[tuple[str, Budget]],
) -> Budget | None:
    """The budget declared for measurement ``name`` of test ``test_id``: the marker's, then
    the table's, most specific key first (with the measurement's name, with parameters)."""
    if isinstance(marker, Budget):
        return marker
    if marker is not None and name in marker:
        return marker[name]
    by_key = dict(table)
    bare = test_id.split("[", 1)[0]
    for key in (f"{test_id}::{name}", f"{bare}::{name}", test_id, bare):
        if key in by_key:
            return by_key[key]
    return None


def with_budget(
    details: Mapping[str, Any], budget: Budget | None, unit: str, where: str
) -> dict[str, Any]:
    """``details`` with the budget in ``unit`` under ``"budget"``; ``where`` names the test
    and measurement in a BudgetError."""
    if budget is None:
        return dict(details)
    try:
        amount = budget.in_unit(unit)
    except BudgetError as error:
        raise BudgetError(
            f"{where}: {error}; declare budgets per measurement, e.g. budget={{'time': '5 ms'}}"
        ) from None
    return {**details, DETAILS_KEY: amount}


def over_budget(level: float, budget: float, lower_is_better: bool) -> float | None:
    """How far ``level`` is past ``budget``, relative (0.08 is 8% over); None within it."""
    excess = level / budget - 1.0 if lower_is_better else 1.0 - level / budget
    return excess if excess > 0.0 else None


def budget_notes(measured: Iterable[tuple[Measurement, Comparison]]) -> list[str]:
    """One line per measurement past its budget in this run: what the terminal summary
    notes, and what ``--perf-fail-over-budget`` fails a test with."""
    notes = []
    for measurement, comparison in measured:
        budget = measurement.details.get(DETAILS_KEY)
        if not isinstance(budget, int | float) or isinstance(budget, bool) or budget <= 0:
            continue
        lower_is_better = comparison.direction is Direction.LOWER_IS_BETTER
        excess = over_budget(comparison.now, budget, lower_is_better)
        if excess is None:
            continue
        side = "over" if lower_is_better else "under"
        notes.append(
            f"{comparison.label}: {comparison.statistic} "
            f"{format_quantity(comparison.now, comparison.unit)} is {side} its budget of "
            f"{format_quantity(budget, comparison.unit)} ({excess:.1%} past it)"
        )
    return notes


__all__: Sequence[str] = (
    "DETAILS_KEY",
    "Budget",
    "BudgetError",
    "MarkerBudget",
    "budget_for",
    "budget_notes",
    "dimension_of",
    "over_budget",
    "parse_budget",
    "parse_budget_table",
    "parse_marker_budget",
    "with_budget",
)
