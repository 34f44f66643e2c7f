"""Citus (docs/citus.md): when the extension is in the database, the distribution tokenfix
needs. The balance table, every ledger and every [[lots]] table distributed on the owner key
and co-located, the price table a reference table; a ledger whose key is no column of it (an
element of `each`: a row names several owners) distributed on a column of its own or a
reference table. Anything else fails, naming the table and the call that fixes it. On a server
without Citus this check says nothing."""

from __future__ import annotations

import re

from tokenfix.base.identifiers import QualifiedName
from tokenfix.health.report import Check, Context, fail, ok
from tokenfix.ledger import citus
from tokenfix.mapping import names

NAME = "citus"
_BARE = re.compile(r"^[a-z_][a-z0-9_$]*$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


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


def _names_a_column(text: str) -> bool:
    """Whether a ledger key is a column of its table (else an expression, such as an element
    of `each`, which no distribution column can be)."""
    text = text.strip()
    prefix = f"{names.LEDGER}."
    if text.lower().startswith(prefix):
        text = text[len(prefix) :].strip()
    if len(text) > 1 and text[0] == text[-1] == '"':
        return '"' not in text[1:-1].replace('""', "")
    return _IDENTIFIER.match(text) is not None


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
    shared: list[str] = []
    sources = [("ledger", s.table, s.key.text) for s in ctx.mapping.ledgers] + [
        ("[[lots]] table", s.table, s.key.text) for s in ctx.mapping.lots
    ]
    for what, source_table, key_text in sources:
        column = _column(key_text)
        placed = citus.placement(conn, source_table.identifier)
        if placed is None:
            continue
        if not _names_a_column(key_text) and what != "ledger":
            # The lots stream folds an owner's lots with its ledger rows on the owner's shard:
            # only a key that is the column the table is distributed on puts them there.
            problems.append(
                (
                    f"{what} {source_table}: its key {key_text} is no column, so tokenfix "
                    "cannot tell that an owner's lots are on the owner's shard",
                    f"map [[lots]] key as the column of {source_table} holding the owner and "
                    f"distribute {source_table} on it, co-located with {balance}",
                )
            )
            continue
        if not _names_a_column(key_text):
            # Its rows name several owners (`each`): no distribution column places a row with
            # all of them. Distributed on a column of its own (the app's tenant), each shard
            # sums its rows by owner and the sums meet the balance rows on the coordinator; a
            # reference table is read on one node.
            if placed.distributed:
                shared.append(
                    f"{source_table} distributed on {placed.column} (its key {key_text} is no "
                    "column: summed by owner on its shards)"
                )
                continue
            if placed.reference:
                shared.append(f"{source_table} a reference table (its key {key_text} is no column)")
                continue
            name = _literal(ctx, source_table)
            problems.append(
                (
                    f"{what} {source_table} is not distributed (its key {key_text} is no column: "
                    "a row may name several owners): tokenfix needs it distributed on a column "
                    "of its own, or a reference table",
                    f"SELECT create_reference_table({name});",
                )
            )
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
                    f"{what} {source_table} is {shape}: tokenfix needs it distributed on "
                    f"{column} and co-located with {balance}",
                    _redistribute(ctx, source_table, column, placed, balance),
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
    together = [str(balance)] + [str(t) for _, t, text in sources if _names_a_column(text)]
    placed_together = " and ".join(
        [", ".join(together[:-1]), together[-1]] if together[1:] else together
    )
    if ctx.pricing_table is not None and citus.placement(conn, ctx.pricing_table.identifier):
        shared.append(f"{ctx.pricing_table} a reference table")
    others = "".join(f"; {line}" for line in shared)
    return [
        ok(
            NAME,
            f"Citus: {placed_together} distributed by the owner key"
            f"{' and co-located' if together[1:] else ''}{others}",
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
