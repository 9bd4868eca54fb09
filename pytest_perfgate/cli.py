"""The ``perfgate`` command. Never imports the pytest layer: it shares settings.py instead."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .baseline import BaselineError, BaselineStore
from .model import format_quantity


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="perfgate", description="pytest-perfgate: inspect performance baselines."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    show = commands.add_parser("show", help="list the baselines in a directory")
    show.add_argument("baseline_dir", nargs="?", default="baselines", type=Path)
    args = parser.parse_args(argv)
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
