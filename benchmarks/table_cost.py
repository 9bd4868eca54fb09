"""What the end-of-run table costs: the plain-text renderer beside rich's Table.

Renders 100, 200 and 1,000 generated rows (the table lists 200 at most) with
``report/terminal.render_table`` and, where rich is installed (it is no longer a
dependency), with a rich ``Table`` laid out as the renderer did until 2026-11-28: no box,
two spaces between columns, the verdict coloured, 200 rows at most. Each figure is the
median of ``--repeat`` renders, both renderers in one process, one size after the other;
then the import of rich in a fresh interpreter, against an empty one.

Usage:  python benchmarks/table_cost.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import functools
import io
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from pytest_perfgate.model import Comparison, Direction, Verdict
from pytest_perfgate.report.terminal import render_table
from pytest_perfgate.stats import summarize


def comparisons(rows: int) -> list[Comparison]:
    verdicts = list(Verdict)
    out = []
    for i in range(rows):
        samples = tuple(1e-6 * (1 + (i % 7) / 100 + k / 1000) for k in range(5))
        out.append(
            Comparison(
                f"tests/test_gen{i // 100:04d}.py::test_t{i}", "time", verdicts[i % len(verdicts)],
                "s", Direction.LOWER_IS_BETTER, summarize(samples), summarize(samples),
                ratio=1.0 + (i % 9) / 100, ci_low=0.9, ci_high=1.2, detectable_change=0.12,
            )
        )  # fmt: skip
    return out


def rich_table(rows: Sequence[Comparison]) -> str:
    """The same rows as rich rendered them (report/terminal.py before 2026-11-28)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("test", no_wrap=True)
    for header in ("verdict", "baseline", "now", "change", "95% CI", "detects"):
        table.add_column(header, justify="left" if header == "verdict" else "right", no_wrap=True)
    for c in rows[:200]:
        table.add_row(Text(c.label), Text(c.verdict.value, style="yellow"),
                      "1 us", "1 us", "+1.0%", "-10.0%..+20.0%", ">=12%")  # fmt: skip
    buffer = io.StringIO()
    Console(file=buffer, width=200, force_terminal=True, color_system="standard").print(table)
    return buffer.getvalue()


def median_ms(render: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        render()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def import_ms(module: str, repeat: int) -> float:
    """Median wall time of a fresh interpreter importing ``module``, less an empty one's."""

    def run(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - start

    with_it = statistics.median(run(f"import {module}") for _ in range(repeat))
    without = statistics.median(run("pass") for _ in range(repeat))
    return (with_it - without) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    try:
        import rich  # noqa: F401
    except ImportError:
        has_rich = False
    else:
        has_rich = True
    print(f"{'rows':>6} {'plain ms':>9} {'rich ms':>9} {'rich / plain':>12}")
    for size in (100, 200, 1000):
        rows = comparisons(size)
        render_table(rows, width=200, color=True)  # warm both before timing
        plain = median_ms(functools.partial(render_table, rows, width=200, color=True), args.repeat)
        if has_rich:
            rich_table(rows)
            fancy = median_ms(functools.partial(rich_table, rows), args.repeat)
            print(f"{size:>6} {plain:>9.2f} {fancy:>9.2f} {fancy / plain:>11.1f}x")
        else:
            print(f"{size:>6} {plain:>9.2f} {'-':>9} {'(rich not installed)':>12}")
    if has_rich:
        print(f"importing rich's console and table: {import_ms('rich.table', 7):.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
