"""The ``perfgate`` command. Never imports the pytest layer: it shares settings.py instead."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .baseline import BaselineError, BaselineStore
from .importers import SavedRunError, import_saved_runs
from .model import format_quantity


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="perfgate", description="pytest-perfgate: inspect performance baselines."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    show = commands.add_parser("show", help="list the baselines in a directory")
    show.add_argument("baseline_dir", nargs="?", default="baselines", type=Path)
    importer = commands.add_parser(
        "import-benchmark",
        help="turn pytest-benchmark saved runs (.benchmarks/**/*.json) into baselines",
    )
    importer.add_argument("paths", nargs="+", type=Path, help="saved-run files or directories")
    importer.add_argument(
        "--baseline-dir",
        default="baselines",
        type=Path,
        help="where to write baselines (default: baselines)",
    )
    args = parser.parse_args(argv)
    if args.command == "import-benchmark":
        return _import_benchmark(args.paths, args.baseline_dir)
    if args.command == "show":
        try:
            return _show(args.baseline_dir)
        except BrokenPipeError:  # `perfgate show | head`: the reader left, not an error
            sys.stderr.close()
            return 0
    parser.print_help()
    return 2


def _show(root: Path) -> int:
    store = BaselineStore(root)
    files = store.files()
    if not files:
        print(f"perfgate: no baseline files under {root}", file=sys.stderr)
        return 1
    status = 0
    for path in files:
        module = str(path.relative_to(root).with_suffix(".py"))
        try:
            loaded = store.load(module)
        except BaselineError as error:
            print(f"error: {error}", file=sys.stderr)
            status = 1
            continue
        for test, measurements in sorted(loaded.tests.items()):
            for name, entry in sorted(measurements.items()):
                label = f"{module}::{test}" + ("" if name == "time" else f" [{name}]")
                print(
                    f"{label}  median {format_quantity(entry.summary.median, entry.unit)}  "
                    f"n={entry.summary.n}  runs={len(entry.history)}  "
                    f"recorded {entry.recorded_at or '?'}"
                )
    return status


def _import_benchmark(paths: list[Path], root: Path) -> int:
    try:
        report = import_saved_runs(paths, BaselineStore(root))
    except SavedRunError as error:
        print(f"perfgate import-benchmark: error: {error}", file=sys.stderr)
        return 1
    if not report.imported:
        print(
            "perfgate import-benchmark: no benchmarks found in " + ", ".join(map(str, paths)),
            file=sys.stderr,
        )
        return 1
    print(
        f"imported {len(report.imported)} benchmark(s) from {len(report.files)} saved "
        f"run(s) into {root}"
    )
    for label in report.imported:
        print(f"  {label}")
    if report.summary_only:
        print(
            f"{len(report.summary_only)} of them are summary-only: their runs were saved "
            "without --benchmark-save-data, so only the median is known and the gate "
            "cannot see the spread of those runs. Save with --benchmark-save-data, or "
            "refresh with `pytest --perf-update-baselines`, for full baselines."
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
