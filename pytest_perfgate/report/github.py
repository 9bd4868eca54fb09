"""GitHub Actions: workflow-command annotations for regressions, and the job summary.

An ``::error file=...,line=...::`` line on stdout puts the message on the test's line in
the pull request's diff. Escaping follows the Actions toolkit (``@actions/core``,
command.ts): ``%``, CR and LF in the message; also ``:`` and ``,`` in properties.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..model import Verdict, explain
from ..results import RunResults


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def running_in_actions(environ: Mapping[str, str] | None = None) -> bool:
    return (os.environ if environ is None else environ).get("GITHUB_ACTIONS") == "true"


def annotation_file(file: str, rootdir: Path | None, workspace: str | None) -> str:
    """``file`` (relative to pytest's rootdir) relative to the checkout, which is what
    GitHub resolves annotation paths against; as given where that cannot be worked out."""
    if rootdir is None or not workspace:
        return file
    try:
        return (rootdir / file).resolve().relative_to(Path(workspace).resolve()).as_posix()
    except ValueError:  # the rootdir lies outside the checkout
        return file


def workflow_commands(
    run: RunResults,
    *,
    level: str = "error",
    rootdir: Path | None = None,
    workspace: str | None = None,
) -> list[str]:
    """One workflow command per REGRESSED measurement: ``level`` is ``"error"`` where
    the regression fails its test, ``"warning"`` where it is only reported."""
    lines = []
    for test in run.tests:
        for _, comparison in test.results:
            if comparison.verdict is not Verdict.REGRESSED:
                continue
            properties = []
            if test.location is not None:
                file, line = test.location
                properties += [
                    f"file={escape_property(annotation_file(file, rootdir, workspace))}",
                    f"line={line}",
                ]
            title = f"performance regression in {comparison.label}"
            properties.append(f"title={escape_property(title)}")
            lines.append(f"::{level} {','.join(properties)}::{escape_data(explain(comparison))}")
    return lines


def append_step_summary(text: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append ``text`` to the job summary file ($GITHUB_STEP_SUMMARY) where there is one;
    returns its path. Appends: other steps' summaries in the same file stay."""
    path = (os.environ if environ is None else environ).get("GITHUB_STEP_SUMMARY")
    if not path:
        return None
    with open(path, "a", encoding="utf-8") as file:
        file.write(text if text.endswith("\n") else text + "\n")
    return Path(path)


__all__: Sequence[str] = (
    "annotation_file",
    "append_step_summary",
    "escape_data",
    "escape_property",
    "running_in_actions",
    "workflow_commands",
)
