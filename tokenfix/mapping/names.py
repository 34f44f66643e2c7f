"""The names a mapping expression sees (docs/mapping.md, "Names inside expressions").

A balance-side expression sees its row as `balance`, a ledger-side one as `ledger`, and both
also under their table's own name (`profiles.credits`, `public.profiles.credits`); the element
of a ledger's `each` is `item`. Every statement reads the tables under those aliases, and an
expression that names its table is rewritten once, when the mapping is read, to name the
alias instead: doctor, diagnose, dry runs, writes and revert compile one and the same text.
"""

from __future__ import annotations

import re

from psycopg import sql

from tokenfix.base.identifiers import QualifiedName

BALANCE = "balance"
LEDGER = "ledger"
ITEM = "item"

_LITERAL = r"'(?:[^']|'')*'"
_PLAIN = r"[A-Za-z_][A-Za-z0-9_$]*"
_NAME = rf'(?:{_PLAIN}|"(?:[^"]|"")+")'


def _spelled(name: str) -> str:
    """A pattern for how an expression may spell the identifier `name`."""
    quoted = '"' + re.escape(name.replace('"', '""')) + '"'
    if name == name.lower():  # unquoted names fold to lower case
        return rf"(?:(?i:{re.escape(name)})(?![A-Za-z0-9_$])|{quoted})"
    return quoted


def own_names(text: str, table: QualifiedName, alias: str) -> str:
    """`text` with every qualification by `table`'s own name (with or without a schema)
    replaced by `alias`; string literals are left alone."""
    qualified = re.compile(
        rf'(?<![A-Za-z0-9_$."])(?:{_NAME}\s*\.\s*)?{_spelled(table.table_name)}\s*\.(?=\s*[A-Za-z_"])'
    )
    pieces = re.split(f"({_LITERAL})", text)
    return "".join(
        piece if index % 2 else qualified.sub(alias + ".", piece)
        for index, piece in enumerate(pieces)
    )


def balance_from(table: QualifiedName) -> sql.Composable:
    """The balance table as balance-side expressions see it."""
    return sql.SQL("{} AS {}").format(table.identifier, sql.Identifier(BALANCE))


def ledger_from(
    table: QualifiedName, each: sql.Composable | None = None, *, ordinal: bool = False
) -> sql.Composable:
    """A ledger's table as ledger-side expressions see it: with `each`, one row per element
    of the set `each` returns, the element as `item` (with `ordinal`, its position in the
    set, from 1, as item_ordinal)."""
    source = sql.SQL("{} AS {}").format(table.identifier, sql.Identifier(LEDGER))
    if each is None:
        return source
    if not ordinal:
        return sql.SQL("{} CROSS JOIN LATERAL (SELECT ({}) AS item) AS tf_items").format(
            source, each
        )
    return sql.SQL(
        "{} CROSS JOIN LATERAL (SELECT tf_each.item, row_number() OVER () AS item_ordinal"
        " FROM (SELECT ({}) AS item) AS tf_each) AS tf_items"
    ).format(source, each)
