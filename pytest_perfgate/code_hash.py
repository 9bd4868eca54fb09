"""The hash of a test function's code, stored with its baselines: a baseline recorded for
other code is flagged, not silently compared.

A suite hashes every test function, so a module is read and parsed once, for all of its
functions (``_ModuleHashes``), not once per function: the cost per test stays flat however
many tests a module holds. Parsing is still most of a trivial perf test's cost to the
plugin (about 30 us a test), so a baseline also stores the digest of the file its hash
was taken from (``identify``): while that file's text is unchanged, the stored hash is
the hash, and the file is not parsed at all.
"""

from __future__ import annotations

import ast
import bisect
import gc
import hashlib
import inspect
import linecache
import textwrap
import types
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import final

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


@final
@dataclass(frozen=True, slots=True)
class CodeIdentity:
    """A test function's code hash and where it came from."""

    hash: str | None  #: see ``code_hash``; None where the source cannot be read
    #: Digest of the text of the file the function is defined in (None for code that is
    #: in no file, made by ``exec``): the same text holds the same code.
    source_digest: str | None


def identify(
    function: object, recorded: Iterable[tuple[str | None, str | None]] = ()
) -> CodeIdentity:
    """The function's code hash and its file's digest. ``recorded`` holds the (code hash,
    source digest) pairs stored with its baselines: one taken from the same file text
    is the function's hash still, and nothing is parsed."""
    code = _code_of(function)
    digest = None if code is None else _source_digest(code.co_filename)
    if digest is not None:
        for stored_hash, stored_digest in recorded:
            if stored_digest == digest and stored_hash is not None:
                return CodeIdentity(stored_hash, digest)
    return CodeIdentity(code_hash(function), digest)


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
_digests: dict[str, tuple[list[str], str]] = {}  #: file -> (linecache's lines, their digest)


def _current_lines(filename: str) -> list[str]:
    """linecache's text of the file as it is now on disk. As ``inspect.getsource`` does,
    check first (one stat): linecache keeps a text until told to look, and a second
    session in the same process after an edit must not hash the old one."""
    linecache.checkcache(filename)
    return linecache.getlines(filename)


def _source_digest(filename: str) -> str | None:
    """Digest of linecache's text of ``filename`` (what the hash is taken from), taken
    again only when that text changed; None when linecache has none."""
    lines = _current_lines(filename)
    if not lines:
        return None
    cached = _digests.get(filename)
    if cached is not None and cached[0] is lines:
        return cached[1]
    digest = hashlib.sha256("".join(lines).encode(errors="surrogatepass")).hexdigest()[:16]
    _digests[filename] = (lines, digest)
    return digest


def _module_hashes(filename: str) -> _ModuleHashes | None:
    """The hashes of a file's functions, taken again only when linecache's text of the
    file changed (it is what ``inspect.getsource`` reads too); None when it has none."""
    lines = _current_lines(filename)
    if not lines:
        return None
    cached = _modules.get(filename)
    if cached is not None and cached.lines is lines:
        return cached
    # The parse makes tens of thousands of objects, none of them in a cycle: without a
    # pause, the young generation's passes would run through them over and over.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        hashes = _hash_module(lines)
    finally:
        if was_enabled:
            gc.enable()
    _modules[filename] = hashes
    return hashes


def _hash_module(lines: list[str]) -> _ModuleHashes | None:
    try:
        tree = ast.parse("".join(lines))
    except (SyntaxError, ValueError):
        return None
    statements = list(_statements(tree))
    comments = _comment_columns(lines, _strings_near_comments(lines, statements))
    functions = {}
    for node in statements:
        if isinstance(node, FunctionNode):
            first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            hashed = _hash_function(node, lines, comments, first)
            functions[first] = (node.name, hashed if _dedents(lines, first, node) else None)
    return _ModuleHashes(lines, functions)


def _statements(node: ast.AST) -> Iterator[ast.stmt]:
    """Every statement under ``node``, at any depth: functions are statements, and the
    expressions between them (most of a tree) need not be visited to find them."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.stmt):
            yield child
            yield from _statements(child)
        elif isinstance(child, ast.excepthandler | ast.match_case):
            yield from _statements(child)


def _strings_near_comments(lines: Sequence[str], statements: Sequence[ast.stmt]) -> list[ast.AST]:
    """The expressions of the statements that reach a line holding a ``#``: only there
    can a string hide a ``#`` that starts no comment (``_comment_columns``)."""
    marked = [number for number, line in enumerate(lines, 1) if "#" in line]
    if not marked:
        return []
    nodes: list[ast.AST] = []
    for statement in statements:
        first = min(
            [statement.lineno, *(d.lineno for d in getattr(statement, "decorator_list", ()))]
        )
        last = statement.end_lineno or statement.lineno
        at = bisect.bisect_left(marked, first)
        if at < len(marked) and marked[at] <= last:
            nodes.extend(_own_expressions(statement))
    return nodes


def _own_expressions(node: ast.AST) -> Iterator[ast.AST]:
    """The expression nodes of a statement, not those of the statements inside it."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.stmt):
            continue
        if isinstance(child, ast.excepthandler | ast.match_case):
            yield from _own_expressions(child)
        else:
            yield from ast.walk(child)


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
