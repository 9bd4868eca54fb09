"""The test-code hash: what changes it and what does not."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_perfgate.code_hash import code_hash


def hash_of(tmp_path: Path, source: str) -> str | None:
    module = tmp_path / f"mod_{abs(hash(source))}.py"
    module.write_text("import pytest\n\n" + textwrap.dedent(source))
    namespace: dict[str, object] = {"__name__": module.stem}
    exec(compile(module.read_text(), str(module), "exec"), namespace)
    return code_hash(namespace["test_a"])


BASE = """
@pytest.mark.perf
def test_a(perf):
    perf(len, f"{1:>5} {2.5:8.2f}")
"""


@pytest.mark.parametrize(
    "variant",
    [
        # a comment, blank lines and other spacing
        """
        @pytest.mark.perf
        def test_a(perf):  # measures len

            perf( len,  f"{1:>5} {2.5:8.2f}" )
        """,
        # other marker arguments and a docstring
        '''
        @pytest.mark.perf(threshold=0.1)
        def test_a(perf):
            """Length of a formatted string."""
            perf(len, f"{1:>5} {2.5:8.2f}")
        ''',
    ],
)
def test_comments_spacing_docstring_and_markers_do_not_change_the_hash(
    tmp_path: Path, variant: str
) -> None:
    assert hash_of(tmp_path, variant) == hash_of(tmp_path, BASE)


def test_a_changed_body_changes_the_hash(tmp_path: Path) -> None:
    changed = BASE.replace("2.5", "3.5")
    assert hash_of(tmp_path, changed) != hash_of(tmp_path, BASE)


def test_no_source_gives_no_hash() -> None:
    assert code_hash(len) is None
