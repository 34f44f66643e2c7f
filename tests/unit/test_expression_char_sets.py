"""The lexer behind mapping expressions (tokenfix/db/expressions.py) writes its character sets
as their complements, which compile in a fraction of the time: they must still be the same
sets as the ones PostgreSQL's identifiers and dollar-quote tags are defined by."""

from __future__ import annotations

import re

import pytest

from tokenfix.db import expressions

# PostgreSQL's definitions, as written before (docs/mapping.md, expressions).
NAME_CHAR = re.compile(r"[A-Za-z0-9_$\x80-\U0010ffff]")
DOLLAR_TAG = re.compile(r"\$([A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)?\$")

# Every ASCII character, the edges of the ranges beyond it, and a sample of the rest.
CHARS = [chr(c) for c in (*range(0x80), 0x80, 0xFF, 0x100, 0xD7FF, 0xD800, 0xDFFF, 0xE000)]
CHARS += [chr(c) for c in (0xFFFF, 0x10000, 0x10FFFF, *range(0x81, 0x10FFFF, 7919))]


def test_a_name_character_is_the_same_set() -> None:
    differ = [
        c for c in CHARS if bool(NAME_CHAR.match(c)) != bool(expressions._IDENTIFIER_CHAR.match(c))
    ]
    assert differ == []


@pytest.mark.parametrize("position", ["first", "later"])
def test_a_dollar_tag_is_the_same_set(position: str) -> None:
    def tag(c: str) -> str:
        return f"${c}$" if position == "first" else f"$a{c}$"

    differ = [
        c
        for c in CHARS
        if (DOLLAR_TAG.fullmatch(tag(c)) is None)
        != (expressions._DOLLAR_TAG.fullmatch(tag(c)) is None)
    ]
    assert differ == []


def test_the_lexer_still_reads_quotes_and_names() -> None:
    assert expressions.problem("$tag$ a ; b $tag$ || $é1$x$é1$") is None
    assert expressions.problem("x$1$") is None  # a $ inside a name opens no quote
    assert expressions.problem("$a1$ unclosed") == "the dollar quote $a1$ is never closed"
