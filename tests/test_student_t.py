"""The Student-t without scipy (issue 18): scipy's figures, to well below any level the
gate decides at, on the degrees of freedom a history gives and far beyond."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_perfgate.student_t import quantile, upper_tail

special = pytest.importorskip("scipy.special")

#: From a history of three runs (the prior's weight plus two) to far longer ones.
FREEDOMS = [0.5, 1.5, 2.5, 3.0, 3.5, 4.5, 6.0, 7.5, 10.0, 12.5, 30.0, 100.0, 1000.0]
POINTS = [1e-12, 1e-6, 0.01, 0.3, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 30.0, 100.0, 1e4, 1e10]
LEVELS = [1e-15, 1e-12, 1e-8, 1e-5, 1e-3, 0.01, 0.025, 0.2, 0.8, 0.975, 0.99, 1 - 1e-5, 1 - 1e-8]
#: Relative agreement with scipy (measured: 5e-13 for the tail, 1e-13 for the quantile).
CLOSE = 1e-11


@pytest.mark.parametrize("df", FREEDOMS)
def test_the_upper_tail_is_scipys(df: float) -> None:
    for t in [0.0, *POINTS, *(-p for p in POINTS)]:
        expected = float(special.stdtr(df, -t))
        if expected > 1e-290:  # beyond, both are zero or denormal
            assert upper_tail(t, df) == pytest.approx(expected, rel=CLOSE, abs=0), t


@pytest.mark.parametrize("df", FREEDOMS)
def test_the_quantile_is_scipys(df: float) -> None:
    for p in LEVELS:
        assert quantile(p, df) == pytest.approx(float(special.stdtrit(df, p)), rel=CLOSE), p
    assert quantile(0.5, df) == 0.0


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0.5, max_value=200), st.floats(min_value=-40, max_value=40))
def test_the_tail_agrees_with_scipy_anywhere_the_gate_looks(df: float, t: float) -> None:
    expected = float(special.stdtr(df, -t))
    assert upper_tail(t, df) == pytest.approx(expected, rel=CLOSE, abs=1e-300)


def test_one_degree_of_freedom_is_the_cauchy() -> None:
    # Exact in closed form (scipy itself is off by 3e-11 at t = 1e-6).
    for t in (1e-6, 0.5, 1.0, 40.0):
        assert upper_tail(t, 1.0) == pytest.approx(0.5 - math.atan(t) / math.pi, rel=1e-14)


def test_the_quantile_undoes_the_tail() -> None:
    for df in (2.5, 7.5):
        for p in (1e-9, 0.05, 0.5, 0.95):
            assert upper_tail(-quantile(p, df), df) == pytest.approx(p, rel=1e-12)


def test_edges() -> None:
    assert upper_tail(math.inf, 3.0) == 0.0
    assert upper_tail(-math.inf, 3.0) == 1.0
    assert math.isnan(upper_tail(math.nan, 3.0))
    assert quantile(0.0, 3.0) == -math.inf
    assert quantile(1.0, 3.0) == math.inf
    assert math.isnan(quantile(1.5, 3.0))


def test_a_decision_on_a_history_imports_neither_scipy_nor_numpy() -> None:
    # scipy's import was a quarter of a second at the first decision of every run.
    code = (
        "import sys\n"
        "from pytest_perfgate.model import Direction\n"
        "from pytest_perfgate.stats import compare\n"
        "compare([1.0, 1.1, 0.9], [1.0, 1.2, 1.1], direction=Direction.LOWER_IS_BETTER,"
        " threshold=0.02, alpha=0.01, history=[1.0, 1.05, 0.97], run_noise=0.02)\n"
        "print(sorted({'scipy', 'numpy'} & set(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
