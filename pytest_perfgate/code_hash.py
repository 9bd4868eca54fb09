"""The hash of a test function's code, stored with its baselines: a baseline recorded for
other code is flagged, not silently compared."""

from __future__ import annotations

import ast
import hashlib
import inspect
import io
import textwrap
import tokenize


def code_hash(function: object) -> str | None:
    """Hash of a test function's code, blind to comments, whitespace, docstring and
    decorators (marker arguments are not the measured code).

    Works on the source text, not on the AST: ``ast.dump`` and ``ast.unparse`` both
    change between Python versions (3.12 reworked f-strings), and a baseline recorded
    under one Python must not look like changed code under the next.
    """
    try:
        source = textwrap.dedent(inspect.getsource(function))  # type: ignore[arg-type]
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return None
    dropped: set[int] = set()  # 1-based line numbers
    for decorator in node.decorator_list:
        dropped.update(range(decorator.lineno, (decorator.end_lineno or decorator.lineno) + 1))
    first = node.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        dropped.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    lines = source.splitlines()
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                row, column = token.start
                lines[row - 1] = lines[row - 1][:column]
    except (tokenize.TokenError, SyntaxError):
        return None
    kept = "".join(line for number, line in enumerate(lines, 1) if number not in dropped)
    return hashlib.sha256("".join(kept.split()).encode()).hexdigest()[:16]
