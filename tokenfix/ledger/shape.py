"""What a mapping's expressions are on this database: each one compiled, with its type.

Every expression is compiled as `SELECT expr FROM table LIMIT 0` (no row read, one statement
through the extended protocol, in a read-only transaction): an expression
the database rejects ends the command naming the expression and the table, before anything
else runs, and the types tell how to cast parameters (keys are compared in their own type,
so that ledger filters stay on the index) and whether amounts are numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from tokenfix import queries
from tokenfix.base.errors import DatabaseProblem, TokenfixError, first_line, from_database_error
from tokenfix.base.identifiers import QualifiedName
from tokenfix.db.expressions import NotOneExpression, compile_probe, several_statements, wrote
from tokenfix.db.session import Connection
from tokenfix.ledger import catalog
from tokenfix.mapping import names
from tokenfix.mapping.types import Expr, LedgerSource, LotSource, Mapping


class ExpressionRejected(DatabaseProblem):
    """The database refused an expression of the mapping."""


@dataclass(frozen=True)
class SourceShape:
    key: str
    """The SQL type of the source's key expression."""
    types: dict[str, str] = field(default_factory=dict)
    """field (at, amount, kind, ...) -> SQL type of its expression."""
    owned: bool = False
    """Every row with a key belongs to a balance row: the key is a column a validated foreign
    key ties to the balance key (looked up only for a mapping with periods)."""
    indexed: bool = False
    """Without that foreign key, a btree index leads with the key column, of the balance key's
    type and collation: the keys without a balance row are found through it (periods only)."""


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
    lots: tuple[SourceShape, ...] = ()
    """Each [[lots]] source's expression types, in the mapping's order."""

    def source(self, index: int) -> SourceShape:
        return self.sources[index]


def _types(conn: Connection, oids: Sequence[int]) -> list[str]:
    rows = conn.execute(queries.get("type_names"), {"oids": list(oids)}).fetchall()
    return [str(row[0]) for row in rows]


def _compile(
    conn: Connection,
    table: sql.Composable,
    named: list[tuple[str, Expr]],
    where: Expr | None,
    origin: str = "the mapping",
    table_name: object = "its table",
) -> dict[str, str]:
    """The types of `named` expressions over `table` (a FROM item: the table under the alias
    its expressions use, tokenfix.mapping.names), or ExpressionRejected for the first one the
    database refuses."""
    if not named:
        return {}
    params = {k: v for _, e in named for k, v in e.params.items()}
    statement = sql.SQL("SELECT {} FROM {} WHERE {} LIMIT 0").format(
        sql.SQL(", ").join(sql.SQL("({})").format(e.sql) for _, e in named),
        table,
        where.sql if where is not None else sql.SQL("true"),
    )
    try:
        with conn.transaction():
            cursor = compile_probe(conn, statement, {**params, **(where.params if where else {})})
            oids = [column.type_code for column in cursor.description or ()]
    except psycopg.Error as exc:
        if conn.broken:
            raise
        raise _rejected(conn, table, named, where, exc, origin, str(table_name)) from None
    return dict(zip((name for name, _ in named), _types(conn, oids), strict=True))


def _rejected(
    conn: Connection,
    table: sql.Composable,
    named: list[tuple[str, Expr]],
    where: Expr | None,
    error: psycopg.Error,
    origin: str,
    table_name: str,
) -> TokenfixError:
    # Only an expression's own fault (a syntax error, an unknown column, table name or
    # function, a type mismatch: class 42; the tables exist, describe checked) is the
    # mapping's; locks, timeouts and privileges are the database's.
    state = error.sqlstate or ""
    if isinstance(error, pg_errors.ReadOnlySqlTransaction):
        return wrote(error)
    if not state.startswith("42") or state == "42501":
        return from_database_error(error)
    section = named[0][0].rsplit(" ", 1)[0] if named else "[balance]"
    candidates = ([(f"{section} where", where)] if where is not None else []) + named
    for name, expr in candidates:
        probe = sql.SQL("SELECT ({}) FROM {} LIMIT 0").format(expr.sql, table)
        try:
            with conn.transaction():
                compile_probe(conn, probe, expr.params)
        except psycopg.Error as exc:
            if conn.broken:
                raise
            if several_statements(exc):
                return NotOneExpression(
                    f"the mapping's {name} = {expr.text!r} is not one SQL expression: it holds "
                    "several statements; nothing of it was run",
                    hint="a mapping expression is one SQL expression over the table's columns",
                )
            return ExpressionRejected(
                f"{origin}: {name} = {expr.text!r} is rejected on table {table_name}: "
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
    return [(f"[[ledger]] {source.name!r} {name}", e) for name, e in fields if e is not None]


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
            ("period_start", balance.period_start),
            ("period_end", balance.period_end),
            ("period_length", balance.period_length),
            ("changed_at", balance.changed_at),
        )
        if e is not None
    ]
    balance_types = _compile(
        conn,
        names.balance_from(balance.table),
        [(f"[balance] {n}", e) for n, e in balance_fields],
        balance.where,
        mapping.origin,
        balance.table,
    )
    if balance.latest is not None:
        _compile_order(conn, mapping)
    sources = []
    for source, table in zip(mapping.ledgers, tables[1:], strict=False):
        each = source.each.sql if source.each is not None else None
        if source.each is not None:  # the set itself first: every other expression needs it
            label = f"[[ledger]] {source.name!r} each"
            _compile(
                conn,
                names.ledger_from(source.table),
                [(label, source.each)],
                None,
                mapping.origin,
                source.table,
            )
        found = _compile(
            conn,
            _compiled_from(mapping, names.ledger_from(source.table, each), source),
            _source_fields(source),
            source.where,
            mapping.origin,
            source.table,
        )
        types = {name.rsplit(" ", 1)[1]: t for name, t in found.items()}
        owned = _owned(conn, mapping, source, table)
        indexed = not owned and _indexed(conn, mapping, source, table)
        sources.append(SourceShape(key=types["key"], types=types, owned=owned, indexed=indexed))
    lots = tuple(_lot_shape(conn, mapping, lot) for lot in mapping.lots)
    pricing_columns = tables[-1].columns if mapping.pricing is not None else {}
    if mapping.pricing is not None and not tables[-1].exists and not mapping.from_settings:
        raise catalog.missing_table(tables[-1], "[pricing] overrides")
    return Shape(
        key=balance_table.columns[balance.key],
        balance_columns=balance_table.columns,
        balance_types={name.split(" ", 1)[1]: t for name, t in balance_types.items()},
        sources=tuple(sources),
        pricing_columns=pricing_columns,
        # Snapshots: many rows per owner; the rows are written by owner and row_id, which
        # must name one row (unique alone, or beside the owner key as Citus needs it).
        key_unique=(
            catalog.row_id_unique(conn, balance.table, balance.row_id, balance.key) is not None
            if balance.row_id is not None
            else catalog.key_is_unique(conn, balance.table, balance.key)
        ),
        balance_kind=balance_table.kind,
        lots=lots,
    )


def _owned(conn: Connection, mapping: Mapping, source: LedgerSource, table: catalog.Table) -> bool:
    """Whether no row of `source` with a key can belong to an owner without a balance row
    (periods only: the pass then drops the rows outside every owner's period first)."""
    column = _key_column(mapping, source, table)
    if column is None:
        return False
    return catalog.key_references(
        conn, source.table, column, mapping.balance.table, mapping.balance.key
    )


def _indexed(
    conn: Connection, mapping: Mapping, source: LedgerSource, table: catalog.Table
) -> bool:
    """Whether the keys of `source` without a balance row can be found through an index on its
    key column (periods only: the pass then drops the rows outside every period but theirs)."""
    column = _key_column(mapping, source, table)
    if column is None:
        return False
    return catalog.key_indexed(
        conn, source.table, column, mapping.balance.table, mapping.balance.key
    )


def _key_column(mapping: Mapping, source: LedgerSource, table: catalog.Table) -> str | None:
    """The ledger's key column where a periods pass may drop the rows before every period: one
    balance row per owner (no `where`, no `latest`), one owner per row (no `each`)."""
    b = mapping.balance
    column = source.key.text.strip()
    if not b.has_periods or b.where is not None or b.latest is not None or source.each is not None:
        return None
    return column if column in table.columns else None


def _compile_order(conn: Connection, mapping: Mapping) -> None:
    """`[balance] latest` (an ORDER BY list) and `row_id`, compiled (no row read)."""
    b = mapping.balance
    assert b.latest is not None and b.row_id is not None
    statement = sql.SQL("SELECT {} FROM {} ORDER BY {} LIMIT 0").format(
        sql.Identifier(b.row_id), names.balance_from(b.table), b.latest.sql
    )
    try:
        with conn.transaction():
            conn.execute(statement)
    except psycopg.Error as exc:
        if conn.broken:
            raise
        raise ExpressionRejected(
            f"{mapping.origin}: [balance] latest = {b.latest.text!r} (row_id = {b.row_id!r}) is "
            f"rejected on table {b.table}: {first_line(exc.diag.message_primary or str(exc))}",
            hint="fix the expression in the mapping ('tokenfix doctor' checks them all)",
        ) from None


def _lot_shape(conn: Connection, mapping: Mapping, lot: LotSource) -> SourceShape:
    (table,) = catalog.describe(conn, [lot.table])
    if not table.exists:
        raise catalog.missing_table(table, f"[[lots]] {lot.name!r} table")
    named = [(f"[[lots]] {lot.name!r} {name}", e) for name, e in lot.fields()]
    lots = _compiled_from(mapping, names.ledger_from(lot.table), lot)
    found = _compile(conn, lots, named, lot.where, mapping.origin, lot.table)
    types = {name.rsplit(" ", 1)[1]: t for name, t in found.items()}
    return SourceShape(key=types["key"], types=types)


def _compiled_from(
    mapping: Mapping, table: sql.Composable, source: LedgerSource | LotSource
) -> sql.Composable:
    """A source's FROM item for compiling its expressions: with the balance row in scope
    when they name it (no row joined; every statement joins the owner's)."""
    if not source.names_balance_row:
        return table
    return names.balance_row_in_scope(table, mapping.balance.table, mapping.balance.key)


def _pricing(mapping: Mapping) -> list[QualifiedName]:
    return [mapping.pricing] if mapping.pricing is not None else []
