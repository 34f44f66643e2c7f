"""What a mapping's expressions are on this database: each one compiled, with its type.

Every expression is compiled as `SELECT expr FROM table LIMIT 0` (no row read): an expression
the database rejects ends the command naming the expression and the table, before anything
else runs, and the types tell how to cast parameters (keys are compared in their own type,
so that ledger filters stay on the index) and whether amounts are numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from tokenfix import catalog, queries
from tokenfix.db import Connection
from tokenfix.errors import DatabaseProblem, TokenfixError, first_line, from_database_error
from tokenfix.mapping import Expr, LedgerSource, Mapping
from tokenfix.settings import QualifiedName


class ExpressionRejected(DatabaseProblem):
    """The database refused an expression of the mapping."""


@dataclass(frozen=True)
class SourceShape:
    key: str
    """The SQL type of the source's key expression."""
    types: dict[str, str] = field(default_factory=dict)
    """field (at, amount, kind, ...) -> SQL type of its expression."""


@dataclass(frozen=True)
class Shape:
    key: str
    """The SQL type of the balance key column (format_type, e.g. uuid, text, bigint)."""
    balance_columns: dict[str, str]
    balance_types: dict[str, str]
    """field (remaining, used, starting, created_at, tolerance) -> SQL type."""
    sources: tuple[SourceShape, ...]
    pricing_columns: dict[str, str]
    """The overrides table's columns; empty when it does not exist."""
    key_unique: bool
    balance_kind: str = "r"

    def source(self, index: int) -> SourceShape:
        return self.sources[index]


def _types(conn: Connection, oids: Sequence[int]) -> list[str]:
    rows = conn.execute(queries.get("type_names"), {"oids": list(oids)}).fetchall()
    return [str(row[0]) for row in rows]


def _compile(
    conn: Connection, table: QualifiedName, named: list[tuple[str, Expr]], where: Expr | None
) -> dict[str, str]:
    """The types of `named` expressions over `table`, or ExpressionRejected for the first
    one the database refuses."""
    if not named:
        return {}
    params = {k: v for _, e in named for k, v in e.params.items()}
    statement = sql.SQL("SELECT {} FROM {} WHERE {} LIMIT 0").format(
        sql.SQL(", ").join(sql.SQL("({})").format(e.sql) for _, e in named),
        table.identifier,
        where.sql if where is not None else sql.SQL("true"),
    )
    try:
        with conn.transaction():
            cursor = conn.execute(statement, {**params, **(where.params if where else {})})
            oids = [column.type_code for column in cursor.description or ()]
    except psycopg.Error as exc:
        if conn.broken:
            raise
        raise _rejected(conn, table, named, where, exc) from None
    return dict(zip((name for name, _ in named), _types(conn, oids), strict=True))


def _rejected(
    conn: Connection,
    table: QualifiedName,
    named: list[tuple[str, Expr]],
    where: Expr | None,
    error: psycopg.Error,
) -> TokenfixError:
    # Only an expression's own fault (a syntax error, an unknown column or function, a type
    # mismatch: class 42) is the mapping's; locks, timeouts and privileges are the database's.
    state = error.sqlstate or ""
    if not state.startswith("42") or state in ("42501", "42P01"):
        return from_database_error(error)
    candidates = ([("where", where)] if where is not None else []) + named
    for name, expr in candidates:
        probe = sql.SQL("SELECT ({}) FROM {} LIMIT 0").format(expr.sql, table.identifier)
        try:
            with conn.transaction():
                conn.execute(probe, dict(expr.params))
        except psycopg.Error as exc:
            if conn.broken:
                raise
            return ExpressionRejected(
                f"the mapping's {name} = {expr.text!r} is rejected on table {table}: "
                f"{first_line(exc.diag.message_primary or str(exc))}",
                hint="fix the expression in the mapping ('tokenfix doctor' checks them all)",
            )
    return from_database_error(error)


def _source_fields(source: LedgerSource) -> list[tuple[str, Expr]]:
    fields = [
        ("key", source.key),
        ("at", source.at),
        ("amount", source.amount),
        ("kind", source.kind),
        ("counted", source.counted),
        ("action", source.action),
        ("model", source.model),
        ("id", source.id),
    ]
    return [(f"ledger {source.name!r} {name}", e) for name, e in fields if e is not None]


def describe(conn: Connection, mapping: Mapping) -> Shape:
    """Compile every expression of `mapping` on this database; their types."""
    balance = mapping.balance
    tables = catalog.describe(
        conn, [balance.table, *(s.table for s in mapping.ledgers), *_pricing(mapping)]
    )
    balance_table = tables[0]
    if not balance_table.exists:
        raise catalog.missing_table(balance_table, "[balance] table")
    if balance.key not in balance_table.columns:
        raise ExpressionRejected(
            f"the mapping's [balance] key {balance.key!r} is not a column of {balance.table}"
        )
    for source, table in zip(mapping.ledgers, tables[1:], strict=False):
        if not table.exists:
            raise catalog.missing_table(table, f"[[ledger]] {source.name!r} table")
    balance_fields = [
        (name, e)
        for name, e in (
            ("remaining", balance.remaining),
            ("used", balance.used),
            ("starting", balance.starting),
            ("created_at", balance.created_at),
            ("tolerance", balance.tolerance),
            ("changed_at", balance.changed_at),
        )
        if e is not None
    ]
    balance_types = _compile(
        conn, balance.table, [(f"[balance] {n}", e) for n, e in balance_fields], balance.where
    )
    sources = []
    for source in mapping.ledgers:
        found = _compile(conn, source.table, _source_fields(source), source.where)
        types = {name.rsplit(" ", 1)[1]: t for name, t in found.items()}
        sources.append(SourceShape(key=types["key"], types=types))
    pricing_columns = tables[-1].columns if mapping.pricing is not None else {}
    if mapping.pricing is not None and not tables[-1].exists and not mapping.from_settings:
        raise catalog.missing_table(tables[-1], "[pricing] overrides")
    return Shape(
        key=balance_table.columns[balance.key],
        balance_columns=balance_table.columns,
        balance_types={name.split(" ", 1)[1]: t for name, t in balance_types.items()},
        sources=tuple(sources),
        pricing_columns=pricing_columns,
        key_unique=catalog.key_is_unique(conn, balance.table, balance.key),
        balance_kind=balance_table.kind,
    )


def _pricing(mapping: Mapping) -> list[QualifiedName]:
    return [mapping.pricing] if mapping.pricing is not None else []
