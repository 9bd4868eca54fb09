"""The test-code hash: what changes it and what does not."""

from __future__ import annotations

import ast
import hashlib
import inspect
import io
import textwrap
import tokenize
from pathlib import Path

import pytest

from pytest_perfgate import code_hash as code_hash_module
from pytest_perfgate.code_hash import code_hash, identify


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


TRICKY = '''
import pytest


@pytest.mark.perf(
    threshold=0.1,  # a comment inside a decorator
)
def test_hash_in_strings(perf):
    """A docstring # with a hash."""
    perf(len, "a # not a comment")  # a comment
    perf(len, f"{'#'}é # still a string")  # é a comment after non-ASCII text
    perf(len, b"#bytes" + b"")
    text = """
# inside a string, not a comment
"""
    perf(len, text)


class TestGroup:
    @pytest.mark.perf
    def test_method(self, perf):
        perf(len, "x")  # measured

    async def test_async(self, perf):
        perf(len, "#")

    def test_string_at_the_left_margin(self, perf):
        perf(len, """
left""")


def test_nested(perf):
    def inner():  # a helper
        return "#"

    perf(inner)
'''


def reference_hash(function: object) -> str | None:
    """The hash as first written (tokenize finds the comments, one function at a time):
    the module-wide parse must give the same, or stored baselines would look changed."""
    try:
        source = textwrap.dedent(inspect.getsource(function))  # type: ignore[arg-type]
        node = ast.parse(source).body[0]
    except (OSError, TypeError, SyntaxError):
        return None
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    dropped: set[int] = set()
    for decorator in node.decorator_list:
        dropped.update(range(decorator.lineno, (decorator.end_lineno or decorator.lineno) + 1))
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        dropped.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    lines = source.splitlines()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            row, column = token.start
            lines[row - 1] = lines[row - 1][:column]
    kept = "".join(line for number, line in enumerate(lines, 1) if number not in dropped)
    return hashlib.sha256("".join(kept.split()).encode()).hexdigest()[:16]


def load_module(tmp_path: Path, name: str, source: str) -> dict[str, object]:
    module = tmp_path / f"{name}.py"
    module.write_text(source, encoding="utf-8")
    namespace: dict[str, object] = {"__name__": name}
    exec(compile(source, str(module), "exec"), namespace)
    return namespace


def test_hashes_from_the_module_parse_are_those_of_each_function_alone(tmp_path: Path) -> None:
    namespace = load_module(tmp_path, "mod_tricky", TRICKY)
    group = namespace["TestGroup"]
    functions = [
        namespace["test_hash_in_strings"],
        namespace["test_nested"],
        group.test_method,  # type: ignore[attr-defined]
        group.test_async,  # type: ignore[attr-defined]
        group().test_method,  # type: ignore[operator]  # a bound method, as pytest has it
        group.test_string_at_the_left_margin,  # type: ignore[attr-defined]
    ]
    for function in functions:
        assert code_hash(function) == reference_hash(function), function
    # Comments and the docstring are out, strings with "#" in them are in.
    assert code_hash(namespace["test_hash_in_strings"]) is not None
    assert code_hash(group.test_string_at_the_left_margin) is None  # type: ignore[attr-defined]


def test_a_hash_in_a_string_is_code_and_after_it_a_comment_is_not(tmp_path: Path) -> None:
    base = 'def test_a(perf):\n    perf(len, "a # b")  # one\n'
    first = load_module(tmp_path, "mod_one", base)["test_a"]
    second = load_module(tmp_path, "mod_two", base.replace("# one", "# two"))["test_a"]
    third = load_module(tmp_path, "mod_three", base.replace("# b", "# c"))["test_a"]
    assert code_hash(first) == code_hash(second) != code_hash(third)


def test_an_edited_module_is_hashed_again(tmp_path: Path) -> None:
    source = "def test_a(perf):\n    perf(len, 'a')\n"
    before = code_hash(load_module(tmp_path, "mod_edited", source)["test_a"])
    edited = load_module(tmp_path, "mod_edited", source.replace("'a'", "'bb'"))["test_a"]
    after = code_hash(edited)  # linecache is asked to look at the file again
    assert before is not None
    assert after not in (None, before)


def test_a_hash_stored_from_the_same_file_text_is_taken_without_a_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    function = load_module(tmp_path, "mod_same", "def test_a(perf):\n    perf(len, 'a')\n")[
        "test_a"
    ]
    first = identify(function)
    assert first.hash == code_hash(function) is not None
    assert first.source_digest is not None

    def no_parse(lines: object) -> None:
        raise AssertionError("the module was parsed")

    monkeypatch.setattr(code_hash_module, "_modules", {})
    monkeypatch.setattr(code_hash_module, "_hash_module", no_parse)
    stored = identify(function, [("from-the-baseline", first.source_digest)])
    assert stored.hash == "from-the-baseline"
    with pytest.raises(AssertionError, match="parsed"):  # another file text: hashed again
        identify(function, [("from-the-baseline", "0" * 16), (None, first.source_digest)])


def test_an_edited_file_is_not_taken_for_the_recorded_one(tmp_path: Path) -> None:
    source = "def test_a(perf):\n    perf(len, 'a')\n"
    before = identify(load_module(tmp_path, "mod_moved", source)["test_a"])
    edited = load_module(tmp_path, "mod_moved", source.replace("'a'", "'bb'"))["test_a"]
    after = identify(edited, [(before.hash, before.source_digest)])
    assert after.source_digest not in (None, before.source_digest)
    assert after.hash not in (None, before.hash)


def test_code_in_no_file_has_no_digest() -> None:
    namespace: dict[str, object] = {}
    exec("def test_a(perf):\n    perf(len, 'a')\n", namespace)
    assert identify(namespace["test_a"]) == code_hash_module.CodeIdentity(None, None)
