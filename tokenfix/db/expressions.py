"""A mapping expression is one SQL expression, never a way to send statements of its own.

A mapping arrives by pull request and is tried with a dry run first, so a dry run must be safe
on anything a mapping says (docs/safety.md). Two guards, each enough on its own for the
statements it covers:
- `problem()` reads an expression as PostgreSQL's lexer would (string literals, quoted
  identifiers, dollar quotes, comments) and refuses a `;` or parentheses that do not pair:
  bad input naming the key, before anything connects;
- `compile_probe()` sends a statement through the extended query protocol, which carries
  exactly one statement: `…; COMMIT; UPDATE …` is a syntax error there, never a commit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tokenfix.base.errors import BadInput

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

# Written as what they are not (the ASCII a tag or a name cannot hold; every character
# beyond ASCII can be in either): the same sets as [A-Za-z_\x80-\U0010ffff] and
# [A-Za-z0-9_$\x80-\U0010ffff], which cost 5 ms each to compile on every start-up.
_DOLLAR_TAG = re.compile(
    r"\$([^\x00-\x40\x5b-\x5e\x60\x7b-\x7f][^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]*)?\$"
)
_IDENTIFIER_CHAR = re.compile(r"[^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]")
# What the server answers when a statement sent through the extended protocol holds several.
SEVERAL_STATEMENTS = "cannot insert multiple commands into a prepared statement"


def _quoted_end(text: str, start: int, quote: str, *, backslashes: bool) -> int:
    """The index just past the literal opened at `start`, or -1 when it is never closed."""
    i = start + 1
    while i < len(text):
        char = text[i]
        if backslashes and char == "\\":
            i += 2
            continue
        if char == quote:
            if text.startswith(quote, i + 1):  # a doubled quote stands for itself
                i += 2
                continue
            return i + 1
        i += 1
    return -1


def _comment_end(text: str, start: int) -> int:
    """The index just past the (nestable) block comment opened at `start`, or -1."""
    depth, i = 0, start
    while i < len(text):
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return -1


def problem(text: str) -> str | None:
    """Why `text` is not one SQL expression (None: it is one, as far as a lexer can tell)."""
    depth, i = 0, 0
    while i < len(text):
        char = text[i]
        follows_word = i > 0 and bool(_IDENTIFIER_CHAR.match(text[i - 1]))
        if char in "'\"":
            escaped = (
                char == "'"
                and i > 0
                and text[i - 1] in "eE"
                and not (i > 1 and _IDENTIFIER_CHAR.match(text[i - 2]))
            )
            end = _quoted_end(text, i, char, backslashes=escaped)
            if end < 0:
                return "a quote is never closed"
            i = end
            continue
        dollar = _DOLLAR_TAG.match(text, i) if char == "$" and not follows_word else None
        if dollar is not None:
            end = text.find(dollar.group(0), dollar.end())
            if end < 0:
                return f"the dollar quote {dollar.group(0)} is never closed"
            i = end + len(dollar.group(0))
            continue
        if text.startswith("--", i):
            newline = text.find("\n", i)
            if newline < 0:
                return "a -- comment runs to its end (it would hide what follows it)"
            i = newline + 1
            continue
        if text.startswith("/*", i):
            end = _comment_end(text, i)
            if end < 0:
                return "a /* comment is never closed"
            i = end
            continue
        if char == ";":
            return "it holds a ';' (more than one statement)"
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return "it closes a parenthesis it never opened"
        i += 1
    if depth > 0:
        return "a parenthesis is never closed"
    return None


def compile_probe(
    conn: psycopg.Connection[Any], statement: sql.Composed | sql.SQL, params: Mapping[str, Any]
) -> psycopg.Cursor[Any]:
    """Run `statement` through the extended query protocol, whatever its parameters.

    psycopg sends a statement without parameters as a simple query, which may hold several
    statements; asking for binary results makes it use the extended protocol, which holds
    one (only the description of these probes is read, so the format does not matter).
    """
    cursor = conn.cursor()
    return cursor.execute(statement, dict(params), binary=True)


def several_statements(error: BaseException) -> bool:
    """Whether the server refused a statement because it was several."""
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(error)
    return SEVERAL_STATEMENTS in primary


class NotOneExpression(BadInput):
    """A mapping expression that is several statements, or not a whole expression."""


class ExpressionWrote(BadInput):
    """An expression of the mapping (a function it calls) tried to write in a read-only
    transaction: the mapping is at fault, not the server (it is not a standby)."""


def wrote(error: BaseException) -> ExpressionWrote:
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(error)
    context = (getattr(diag, "context", None) or "").strip().splitlines()
    # PL/pgSQL says where: "PL/pgSQL function steal(bigint) line 1 at SQL statement".
    where = f", in {context[-1].strip()}" if context else ""
    return ExpressionWrote(
        f"the expression tried to write ({primary.strip()}{where}); nothing was written",
        hint="a mapping's expressions (and the functions they call) may only read",
    )
