"""doctor under a mapping file (docs/mapping.md): every expression compiled on its table (LIMIT 0,
no
row read) and judged by its type family, the key's uniqueness, an index leading with each
ledger's key and time, and the privileges on every table and written column."""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

from tokenfix import queries
from tokenfix.base.identifiers import QualifiedName
from tokenfix.db.expressions import compile_probe
from tokenfix.health.report import Check, Context, fail, ok, warn
from tokenfix.ledger import catalog
from tokenfix.mapping import names
from tokenfix.mapping.types import Expr, LedgerSource

NUMBER = ("smallint", "integer", "bigint", "numeric", "real", "double precision")
FAMILIES = {
    "remaining": "number",
    "used": "number",
    "starting": "number",
    "tolerance": "number",
    "created_at": "timestamp",
    "period_start": "timestamp",
    "period_end": "timestamp",
    "period_length": "interval",
    "expires_at": "timestamp",
    "voided_at": "timestamp",
    "priority": "number",
    "where": "boolean",
    "at": "timestamp",
    "amount": "number",
    "kind": "text",
    "counted": "boolean",
    "action": "text",
    "model": "text",
}
_COLUMN = re.compile(r'^\s*"?([A-Za-z_][A-Za-z0-9_$]*)"?\s*$')


def _family(type_name: str) -> str:
    base = type_name.split("(")[0].strip()
    if base in NUMBER:
        return "number"
    if base.startswith("timestamp") or base == "date":
        return "timestamp"
    if base in ("text", "character varying", "character", "name", "unknown"):
        return "text"
    if base == "boolean":
        return "boolean"
    return base


def _compile(
    context: Context, table: sql.Composable, named: list[tuple[str, Expr]]
) -> tuple[dict[str, str], list[str]]:
    """Each expression's type over `table` (a FROM item: the table under the alias its
    expressions use, the same text every command runs), and a problem for each one the
    database refuses."""
    types: dict[str, str] = {}
    problems = []
    conn = context.conn
    for label, expr in named:
        name = label.rsplit(" ", 1)[-1]
        statement = sql.SQL("SELECT ({}) FROM {} LIMIT 0").format(expr.sql, table)
        try:
            with conn.transaction():
                cursor = compile_probe(conn, statement, expr.params)
                oid = cursor.description[0].type_code if cursor.description else 0
        except psycopg.Error as exc:
            if conn.broken:
                raise
            reason = (exc.diag.message_primary or str(exc)).splitlines()[0]
            problems.append(f"{label} = {expr.text!r} is rejected: {reason}")
            continue
        row = conn.execute(queries.get("type_names"), {"oids": [oid]}).fetchone()
        types[name] = str(row[0]) if row else "unknown"
        wanted = FAMILIES.get(name)
        if wanted and _family(types[name]) != wanted:
            problems.append(f"{label} = {expr.text!r} is {types[name]}, expected a {wanted}")
    return types, problems


def _source_fields(source: LedgerSource) -> list[tuple[str, Expr]]:
    fields = (
        ("key", source.key), ("at", source.at), ("amount", source.amount),
        ("kind", source.kind), ("counted", source.counted), ("where", source.where),
        ("action", source.action), ("model", source.model), ("id", source.id),
    )  # fmt: skip
    return [(f"[[ledger]] {source.name!r} {name}", e) for name, e in fields if e is not None]


def mapping_expressions(context: Context) -> list[Check]:
    """One check per table the mapping names: its expressions compile, with the right types."""
    m = context.mapping
    b = m.balance
    checks = []
    (balance_table,) = catalog.describe(context.conn, [b.table])
    if not balance_table.exists:
        return [fail("mapping_balance", f"table {b.table} does not exist", "fix [balance] table")]
    balance_fields = [
        (n, e)
        for n, e in (
            ("remaining", b.remaining), ("used", b.used), ("starting", b.starting),
            ("created_at", b.created_at), ("tolerance", b.tolerance), ("where", b.where),
            ("subject", b.subject), ("period_start", b.period_start),
            ("period_end", b.period_end), ("period_length", b.period_length),
        )
        if e is not None
    ]  # fmt: skip
    _, problems = _compile(
        context, names.balance_from(b.table), [(f"[balance] {n}", e) for n, e in balance_fields]
    )
    columns = set(balance_table.columns)
    for section, pairs in (("write", b.write), ("create", b.create or ())):
        problems += [
            f"[balance.{section}] {c} is not a column of {b.table}"
            for c, _ in pairs
            if c not in columns
        ]
    if b.key not in columns:
        problems.append(f"key {b.key} is not a column of {b.table}")
    checks.append(_verdict("mapping_balance", b.table, problems, len(balance_fields)))
    key_type = balance_table.columns.get(b.key, "")
    for source in m.ledgers:
        each: sql.Composable | None = None
        problems = []
        if source.each is not None:
            label = f"[[ledger]] {source.name!r} each"
            _, problems = _compile(context, names.ledger_from(source.table), [(label, source.each)])
            each = source.each.sql
        types: dict[str, str] = {}
        if not problems:
            source_from = names.ledger_from(source.table, each)
            if source.names_balance_row:  # in scope, no row joined: compiling only
                source_from = names.balance_row_in_scope(source_from, b.table, b.key)
            types, problems = _compile(context, source_from, _source_fields(source))
        if key_type and types.get("key") and types["key"] != key_type:
            problems_note = (
                f"; note: its key is {types['key']}, cast to the balance key's {key_type}"
            )
        else:
            problems_note = ""
        check = _verdict(f"mapping_ledger_{source.name}", source.table, problems, len(types))
        if check.status == "ok" and problems_note:
            check = ok(check.name, check.message + problems_note)
        checks.append(check)
    for lot in m.lots:
        named = [(f"[[lots]] {lot.name!r} {n}", e) for n, e in lot.fields()]
        if lot.where is not None:
            named.append((f"[[lots]] {lot.name!r} where", lot.where))
        (table,) = catalog.describe(context.conn, [lot.table])
        if not table.exists:
            checks.append(
                fail(f"mapping_lots_{lot.name}", f"table {lot.table} does not exist", "fix it")
            )
            continue
        lots = names.ledger_from(lot.table)
        if lot.names_balance_row:
            lots = names.balance_row_in_scope(lots, b.table, b.key)
        types, problems = _compile(context, lots, named)
        checks.append(_verdict(f"mapping_lots_{lot.name}", lot.table, problems, len(types)))
    return checks


def _verdict(name: str, table: QualifiedName, problems: list[str], compiled: int) -> Check:
    if problems:
        return fail(
            name,
            f"{table}: " + "; ".join(problems),
            "fix the expressions in the mapping file (each is SQL over the table's columns)",
        )
    return ok(name, f"{table}: {compiled} expressions compile, with the right types")


def mapping_key(context: Context) -> list[Check]:
    b = context.mapping.balance
    if b.latest is not None and b.row_id is not None:
        # Snapshots: many rows per owner by design; rows are written by row_id.
        unique = catalog.row_id_unique(context.conn, b.table, b.row_id, b.key)
        if unique is not None:
            named = unique[0] if len(unique) == 1 else f"({', '.join(unique)})"
            return [
                ok(
                    "mapping_key",
                    f"{b.table}.{named} is unique: each owner's newest row by "
                    f"{b.latest.text} is its balance",
                )
            ]
        return [
            fail(
                "mapping_key",
                f"{b.table}.{b.row_id} (row_id) has no unique index, alone or beside {b.key}: "
                "a write could not name the one row it changes, so write runs refuse to run",
                f"map as row_id a column with a unique index (the table's primary key, or "
                f"({b.key}, row_id) where Citus needs the owner key in it); never a unique key "
                f"on {b.key} alone, which would forbid the table's history",
            )
        ]
    if catalog.key_is_unique(context.conn, b.table, b.key):
        return [ok("mapping_key", f"{b.table}.{b.key} is unique")]
    fix = sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
        b.table.identifier, sql.Identifier(b.key)
    )
    return [
        fail(
            "mapping_key",
            f"{b.table}.{b.key} has no unique index: an owner may have two balance rows, so "
            "write runs refuse to run",
            fix.as_string(context.conn) + " (after removing duplicates) if the table holds one"
            " row per owner; if it keeps history (several rows per owner), map [balance] latest"
            " and row_id instead: a key constraint would destroy that history",
        )
    ]


def mapping_indexes(context: Context) -> list[Check]:
    """An index leading with each ledger's key (batches, diagnose) and time (--since, the
    settle window): without them every batch scans the whole ledger."""
    checks = []
    for source in context.mapping.ledgers:
        (table,) = catalog.describe(context.conn, [source.table])
        rows = context.conn.execute(
            queries.get("doctor_indexes"), {"table": context.quoted(source.table)}
        ).fetchall()
        leading = {str(column) for _, column, _, _ in rows}
        for what, expr in (("key", source.key), ("at", source.at)):
            column = _COLUMN.match(expr.text)
            name = f"index_{source.name}_{what}"
            if column and column.group(1) in leading:
                checks.append(
                    ok(name, f"{source.table} has an index leading with {column.group(1)}")
                )
                continue
            message = (
                f"no index of {source.table} leads with its {what} ({expr.text}): each "
                "batch and --since read the whole table"
            )
            checks.append(warn(name, message, _index_advice(context, source, table, expr)))
    return checks


def _index_advice(context: Context, source: LedgerSource, table: catalog.Table, expr: Expr) -> str:
    """A CREATE INDEX PostgreSQL accepts, or what to do when none can serve (a view, a
    subquery, the element of `each`)."""
    if table.kind not in ("r", "p", "m"):
        return (
            f"{source.table} is a view: index the table it reads on the column behind "
            f"{expr.text}, or map that table directly"
        )
    if (
        re.search(r"(?i)\bselect\b", expr.text)
        or source.each is not None
        or expr.uses(names.BALANCE, names.ITEM)
    ):
        return (
            f"an index cannot hold {expr.text!r} (a subquery, or the element of `each`): "
            "map a column of the table, or accept a full read per batch"
        )
    # An index expression names no alias: drop `ledger.` (and the table's own name).
    text = re.sub(
        r'(?<![A-Za-z0-9_$."])ledger\s*\.\s*',
        "",
        names.own_names(expr.text, source.table, names.LEDGER),
    )
    column = _COLUMN.match(text)
    target = sql.Identifier(column.group(1)) if column else sql.SQL("({})").format(sql.SQL(text))
    statement = sql.SQL("CREATE INDEX CONCURRENTLY ON {} ({});").format(
        source.table.identifier, target
    )
    return statement.as_string(context.conn)


def mapping_privileges(context: Context) -> list[Check]:
    """SELECT on every table; UPDATE on every written column; INSERT for --create-missing."""
    m = context.mapping
    conn = context.conn
    tables = [m.balance.table, *(s.table for s in m.ledgers)]
    if m.pricing is not None:
        tables.append(m.pricing)
    missing = []
    for table in dict.fromkeys(tables):
        row = conn.execute(
            "SELECT has_table_privilege(to_regclass(%s), 'SELECT')", (context.quoted(table),)
        ).fetchone()
        if not (row and row[0]):
            missing.append(f"SELECT on {table}")
    quoted = context.quoted(m.balance.table)
    for column, _ in m.balance.write:
        row = conn.execute(
            "SELECT has_column_privilege(to_regclass(%s), %s, 'UPDATE')", (quoted, column)
        ).fetchone()
        if not (row and row[0]):
            missing.append(f"UPDATE ({column}) on {m.balance.table}")
    if missing:
        return [
            warn(
                "mapping_privileges",
                f"role {context.server.get('role')} lacks " + ", ".join(missing),
                "GRANT them to the role tokenfix connects as (dry runs need SELECT only)",
            )
        ]
    return [
        ok("mapping_privileges", "the role may read every table and write every written column")
    ]
