"""The hash of a test function's code, stored with its baselines: a baseline recorded for
other code is flagged, not silently compared.

A suite hashes every test function, so a module is read, parsed and tokenized once, for
all of its functions (``_ModuleHashes``), not once per function: the cost per test stays
flat however many tests a module holds.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import linecache
import textwrap
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import final

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def code_hash(function: object) -> str | None:
    """Hash of a test function's code, blind to comments, whitespace, docstring and
    decorators (marker arguments are not the measured code).

    Works on the source text, not on the AST: ``ast.dump`` and ``ast.unparse`` both
    change between Python versions (3.12 reworked f-strings), and a baseline recorded
    under one Python must not look like changed code under the next.
    """
    code = _code_of(function)
    if code is not None:
        hashes = _module_hashes(code.co_filename)
        if hashes is not None:
            found = hashes.functions.get(code.co_firstlineno)
            if found is not None and found[0] == code.co_name:
                return found[1]
    return _hash_of_own_source(function)


def _code_of(function: object) -> types.CodeType | None:
    """The code object ``inspect.getsource`` would find the source of, if a plain one."""
    try:
        function = inspect.unwrap(function)  # type: ignore[arg-type]
    except ValueError:  # a __wrapped__ cycle
        return None
    function = getattr(function, "__func__", function)  # a bound method
    return function.__code__ if isinstance(function, types.FunctionType) else None


@final
@dataclass(frozen=True, slots=True)
class _ModuleHashes:
    """The hash of every function of one source file, from one parse."""

    lines: list[str]  #: linecache's lines the hashes were taken from (compared by identity)
    functions: dict[int, tuple[str, str | None]]  #: first line (decorators incl.) -> (name, hash)


_modules: dict[str, _ModuleHashes | None] = {}


def _module_hashes(filename: str) -> _ModuleHashes | None:
    """The hashes of a file's functions, taken again only when linecache's text of the
    file changed (it is what ``inspect.getsource`` reads too); None when it has none."""
    lines = linecache.getlines(filename)
    if not lines:
        return None
    cached = _modules.get(filename)
    if cached is not None and cached.lines is lines:
        return cached
    hashes = _hash_module(lines)
    _modules[filename] = hashes
    return hashes


def _hash_module(lines: list[str]) -> _ModuleHashes | None:
    try:
        tree = ast.parse("".join(lines))
    except (SyntaxError, ValueError):
        return None
    nodes = list(ast.walk(tree))
    comments = _comment_columns(lines, nodes)
    functions = {}
    for node in nodes:
        if isinstance(node, FunctionNode):
            first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            hashed = _hash_function(node, lines, comments, first)
            functions[first] = (node.name, hashed if _dedents(lines, first, node) else None)
    return _ModuleHashes(lines, functions)


def _dedents(lines: Sequence[str], first: int, node: FunctionNode) -> bool:
    """Whether the function's source dedents to a parseable snippet: not where a line
    (of a multi-line string) starts left of the ``def``. Such functions have always
    had no hash (``textwrap.dedent`` leaves them indented), and keep none: a hash
    appearing would restart their baselines' history."""
    margin = lines[first - 1][: len(lines[first - 1]) - len(lines[first - 1].lstrip())]
    return not margin or all(
        line.startswith(margin) or not line.strip()
        for line in lines[first - 1 : node.end_lineno or node.lineno]
    )


def _hash_of_own_source(function: object) -> str | None:
    """The hash from the function's own source: for what no module's parse holds (code
    made by ``exec`` from a string, a callable object)."""
    try:
        source = textwrap.dedent(inspect.getsource(function))  # type: ignore[arg-type]
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, ValueError):
        return None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, FunctionNode):
        return None
    lines = source.splitlines()
    return _hash_function(node, lines, _comment_columns(lines, list(ast.walk(node))), 1)


def _comment_columns(lines: Sequence[str], nodes: Sequence[ast.AST]) -> dict[int, int]:
    """1-based line -> the column where its comment starts.

    A ``#`` starts a comment unless it lies inside a string literal, and the parse says
    where those are: the module need not be tokenized (pure Python, slower than the parse).
    """
    marked = {number for number, line in enumerate(lines, 1) if "#" in line}
    if not marked:
        return {}
    strings: dict[int, list[tuple[int, int]]] = {}  # line -> [start, end) columns in strings
    for node in nodes:
        if not isinstance(node, ast.JoinedStr | ast.Constant) or not _is_string(node):
            continue
        start, end = node.lineno, node.end_lineno or node.lineno
        for number in marked.intersection(range(start, end + 1)):
            line = lines[number - 1]
            low = _column(line, node.col_offset) if number == start else 0
            high = _column(line, node.end_col_offset) if number == end else len(line)
            strings.setdefault(number, []).append((low, high))
    columns = {}
    for number in sorted(marked):
        line, spans = lines[number - 1], strings.get(number, [])
        column = line.find("#")
        while column >= 0 and any(low <= column < high for low, high in spans):
            column = line.find("#", column + 1)
        if column >= 0:
            columns[number] = column
    return columns


def _is_string(node: ast.JoinedStr | ast.Constant) -> bool:
    return isinstance(node, ast.JoinedStr) or isinstance(node.value, str | bytes)


def _column(line: str, byte_offset: int | None) -> int:
    """The character column of a parse's offset (UTF-8 bytes) into ``line``."""
    if byte_offset is None:
        return len(line)
    if line.isascii():
        return byte_offset
    return len(line.encode()[:byte_offset].decode(errors="ignore"))


def _hash_function(
    node: FunctionNode, lines: Sequence[str], comments: dict[int, int], first: int
) -> str:
    """The hash of the lines ``first`` to the end of ``node`` (1-based), less decorators,
    docstring, comments and every space."""
    dropped: set[int] = set()
    for decorator in node.decorator_list:
        dropped.update(range(decorator.lineno, (decorator.end_lineno or decorator.lineno) + 1))
    body = node.body[0]
    if (
        isinstance(body, ast.Expr)
        and isinstance(body.value, ast.Constant)
        and isinstance(body.value.value, str)
    ):
        dropped.update(range(body.lineno, (body.end_lineno or body.lineno) + 1))
    last = node.end_lineno or node.lineno
    kept = "".join(
        lines[number - 1][: comments.get(number)]
        for number in range(first, last + 1)
        if number not in dropped
    )
    return hashlib.sha256("".join(kept.split()).encode()).hexdigest()[:16]
