"""The commands the reports suggest, rebuilt from the run's own command line.

A hint that says ``pytest --perf-update-baselines`` drops the paths the user gave: run from
the repository's root, it collects every test there (the plugin's own suite included). So
the hint repeats the run's arguments, less those that make no sense for a refresh.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

#: The hint a core note gives (gate.py), before the run's own arguments are known.
GENERIC_REFRESH = "pytest --perf-update-baselines"

#: Options with a value that steer the verdict or write reports: a refresh needs neither.
_VALUED = frozenset(
    {
        "--perf-mode",
        "--perf-json",
        "--perf-markdown",
        "--perf-html",
        "--perf-threshold",
        "--perf-alpha",
        "--perf-max-looks",
        "--perf-on-mismatch",
        "--perf-normalize-margin",
        "--perf-run-noise",
        "--junitxml",
        "--junit-xml",
        "--basetemp",
    }
)
#: Switches a refresh has no use for (stopping at the first failure refreshes half a suite).
_SWITCHES = frozenset({"-x", "--exitfirst", "--perf-update-baselines", "--lf", "--last-failed"})


def refresh_command(args: Sequence[str] | None) -> str:
    """``pytest <the run's paths and options> --perf-update-baselines``; the generic
    command where the arguments are not known (a results file read back)."""
    if args is None:
        return GENERIC_REFRESH
    kept: list[str] = []
    value_follows = False
    for arg in args:
        if value_follows:
            value_follows = False
            continue
        name, equals, _ = arg.partition("=")
        if name in _VALUED:
            value_follows = not equals
        elif arg not in _SWITCHES:
            kept.append(arg)
    return shlex.join(["pytest", *kept, "--perf-update-baselines"])


def with_command(note: str, command: str) -> str:
    """``note`` with the generic refresh hint (gate.py's notes) replaced by ``command``."""
    note = note.replace(f"`{GENERIC_REFRESH}`", f"`{command}`")
    return note.replace("with --perf-update-baselines", f"with `{command}`")


#: The change every gated measurement should be able to see; the summary counts those that cannot.
TARGET_CHANGE = 0.05


def blind_spot_hint(detectable: Sequence[float | None], change: float = TARGET_CHANGE) -> str:
    """How many measurements cannot see a slowdown of ``change``, and what would let them;
    "" when all can (or none was judged). ``detectable`` holds each measurement's minimum
    detectable change (None where it has none)."""
    judged = [d for d in detectable if d is not None]
    blind = sorted(d for d in judged if d > change)
    if not blind:
        return ""
    return (
        f"{len(blind)} of {len(judged)} judged measurements cannot see a {change:.0%} "
        f"slowdown (they detect {blind[0]:.0%}..{blind[-1]:.0%}): refresh their baselines "
        "more times (`perfgate calibrate --runs 10 -- pytest ...`), compare base and "
        "candidate in one job (`perfgate ab`), count instructions for pure CPU code "
        "(`--perf-measure=instructions`), or give noisy tests a longer max_time"
    )


__all__: Sequence[str] = (
    "GENERIC_REFRESH",
    "TARGET_CHANGE",
    "blind_spot_hint",
    "refresh_command",
    "with_command",
)
