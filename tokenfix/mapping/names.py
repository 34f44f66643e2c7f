"""The names a mapping expression sees (docs/mapping.md, "Names inside expressions").

A balance-side expression sees its row as `balance`, a ledger-side one as `ledger`, and both
also under their table's own name (`profiles.credits`, `public.profiles.credits`); the element
of a ledger's `each` is `item`. A ledger- or lot-side expression also sees its owner's balance
row as `balance` (`balance.column` only, so that an unqualified name is always the
expression's own row): such an expression is rewritten once, when the mapping is read, to read
the balance row as one composite column of a join that only the statements of a source that
names it make (with_balance_row). Every statement reads the tables under those aliases, and an
expression that names its table is rewritten once, when the mapping is read, to name the
alias instead: doctor, diagnose, dry runs, writes and revert compile one and the same text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from psycopg import sql

from tokenfix.base.identifiers import QualifiedName

BALANCE = "balance"
LEDGER = "ledger"
ITEM = "item"
BALANCE_ROW = "tf_balance"
"""The balance row as a ledger- or lot-side expression reads it: one composite column
(tf_balance.tf_row), so the balance table's columns never make a ledger's unqualified name
ambiguous."""

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


def balance_row_names(text: str) -> str:
    """A ledger- or lot-side `text` with every `balance.column` (outside string literals)
    reading the owner's balance row, as with_balance_row joins it."""
    qualified = re.compile(rf'(?<![A-Za-z0-9_$."]){_spelled(BALANCE)}\s*\.(?=\s*[A-Za-z_"])')
    pieces = re.split(f"({_LITERAL})", text)
    return "".join(
        piece if index % 2 else qualified.sub(f"({BALANCE_ROW}.tf_row).", piece)
        for index, piece in enumerate(pieces)
    )


def names_balance_row(exprs: Iterable[sql.Composable | None]) -> bool:
    """Whether any of these expressions (as balance_row_names left them) reads the balance
    row: only then do a source's statements join it."""
    marker = f"({BALANCE_ROW}.tf_row)."
    return any(isinstance(e, sql.SQL) and marker in e.as_string() for e in exprs)


def with_balance_row(
    source: sql.Composable,
    balance: sql.Composable,
    key: sql.Composable,
    owner: sql.Composable | None,
    *,
    where: sql.Composable | None = None,
    latest: sql.Composable | None = None,
) -> sql.Composable:
    """`source` (a FROM item, as ledger_from makes it) LEFT JOINed to its owner's balance row,
    as the table's row type (a column named like the table's alias cannot hide it)
    (`balance`: the table, `key`: its key column): the rows of the balance table where `where`
    holds, with `latest` (snapshots) the owner's first in that order. `owner`: the
    source's key as the balance key's type; None: no row, for compiling expressions only."""
    on = sql.SQL("{}.tf_key = {}").format(sql.Identifier(BALANCE_ROW), owner) if owner else None
    if latest is not None and owner is not None:
        # Snapshots: the owner's chosen row by the balance table's key index, once per owner
        # (PostgreSQL memoizes the lookup), for one owner, a batch or all of them alike. The
        # owner is taken first so that the source's unqualified key names the source's row.
        return sql.SQL(
            "{source} CROSS JOIN LATERAL (SELECT {owner} AS tf_owner) AS tf_owner"
            " LEFT JOIN LATERAL (SELECT ROW(balance.*)::{table} AS tf_row FROM {balance}"
            " WHERE balance.{key} = tf_owner.tf_owner AND {where} ORDER BY {latest} LIMIT 1)"
            " AS {alias} ON true"
        ).format(
            source=source,
            owner=owner,
            table=balance,
            balance=balance_from_item(balance),
            key=key,
            where=where if where is not None else sql.SQL("true"),
            latest=latest,
            alias=sql.Identifier(BALANCE_ROW),
        )
    return sql.SQL(
        "{source} LEFT JOIN (SELECT ROW(balance.*)::{table} AS tf_row,"
        " balance.{key} AS tf_key FROM {balance} WHERE {where}) AS {alias} ON {on}"
    ).format(
        source=source,
        table=balance,
        key=key,
        balance=balance_from_item(balance),
        where=where if where is not None else sql.SQL("true"),
        alias=sql.Identifier(BALANCE_ROW),
        on=on if on is not None else sql.SQL("false"),
    )


def balance_row_in_scope(source: sql.Composable, table: QualifiedName, key: str) -> sql.Composable:
    """`source` with the balance row in scope, no row joined: for compiling expressions
    (doctor, and every command before it runs; the statements join the owner's row)."""
    return with_balance_row(source, table.identifier, sql.Identifier(key), None)


def balance_from_item(table: sql.Composable) -> sql.Composable:
    return sql.SQL("{} AS {}").format(table, sql.Identifier(BALANCE))


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
