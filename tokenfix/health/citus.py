"""Citus (docs/citus.md): when the extension is in the database, the distribution tokenfix
needs. The balance table and every ledger distributed on the owner key and co-located, the
price table a reference table; anything else fails, naming the table and the call that fixes
it. On a server without Citus this check says nothing."""

from __future__ import annotations

import re

from tokenfix.base.identifiers import QualifiedName
from tokenfix.health.report import Check, Context, fail, ok
from tokenfix.ledger import citus
from tokenfix.mapping import names

NAME = "citus"
_BARE = re.compile(r"^[a-z_][a-z0-9_$]*$")


def _literal(ctx: Context, name: QualifiedName) -> str:
    """The table as a regclass literal for a psql line: bare names where they read the same."""
    parts = [part if _BARE.match(part) else '"' + part.replace('"', '""') + '"' for part in name]
    return "'" + ".".join(parts).replace("'", "''") + "'"


def _column(text: str) -> str:
    """A ledger key as the column it names (a bare or double-quoted identifier, or one
    qualified with the ledger's alias, as its expressions may write it)."""
    text = text.strip()
    prefix = f"{names.LEDGER}."
    if text.lower().startswith(prefix):
        text = text[len(prefix) :].strip()
    if len(text) > 1 and text[0] == text[-1] == '"':
        return text[1:-1].replace('""', '"')
    return text


def distribution(ctx: Context) -> list[Check]:
    conn = ctx.conn
    if not citus.present(conn):
        return []
    balance = ctx.balance_table
    key = ctx.mapping.balance.key
    problems: list[tuple[str, str]] = []
    found = citus.placement(conn, balance.identifier)
    if found is not None and (not found.distributed or found.column != key):
        where = f"on {found.column}" if found.distributed else "not distributed"
        problems.append(
            (
                f"{balance} is {where}: tokenfix needs it distributed on its owner key {key}",
                _redistribute(ctx, balance, key, found, None),
            )
        )
    for source in ctx.mapping.ledgers:
        column = _column(source.key.text)
        placed = citus.placement(conn, source.table.identifier)
        if placed is None:
            continue
        right = (
            placed.distributed
            and placed.column == column
            and found is not None
            and found.distributed
            and placed.colocation == found.colocation
        )
        if not right:
            shape = (
                f"distributed on {placed.column}, co-location group {placed.colocation}"
                if placed.distributed
                else "not distributed"
            )
            problems.append(
                (
                    f"ledger {source.table} is {shape}: tokenfix needs it distributed on "
                    f"{column} and co-located with {balance}",
                    _redistribute(ctx, source.table, column, placed, balance),
                )
            )
    if ctx.pricing_table is not None:
        priced = citus.placement(conn, ctx.pricing_table.identifier)
        if priced is not None and not priced.reference:
            table = _literal(ctx, ctx.pricing_table)
            undo = f"SELECT undistribute_table({table}); " if priced.method else ""
            problems.append(
                (
                    f"price table {ctx.pricing_table} is not a reference table",
                    f"{undo}SELECT create_reference_table({table});",
                )
            )
    if problems:
        return [fail(NAME, f"Citus: {message}", fix) for message, fix in problems]
    ledgers = ", ".join(str(s.table) for s in ctx.mapping.ledgers)
    pricing = (
        f"; {ctx.pricing_table} a reference table"
        if ctx.pricing_table is not None
        and citus.placement(conn, ctx.pricing_table.identifier) is not None
        else ""
    )
    return [
        ok(
            NAME,
            f"Citus: {balance} and {ledgers} distributed by the owner key and co-located{pricing}",
        )
    ]


def _redistribute(
    ctx: Context,
    table: QualifiedName,
    column: str,
    placed: citus.Placement,
    colocate_with: QualifiedName | None,
) -> str:
    name = _literal(ctx, table)
    undo = f"SELECT undistribute_table({name}); " if placed.method else ""
    with_ = f", colocate_with => {_literal(ctx, colocate_with)}" if colocate_with else ""
    quoted_column = "'" + column.replace("'", "''") + "'"
    return f"{undo}SELECT create_distributed_table({name}, {quoted_column}{with_});"
