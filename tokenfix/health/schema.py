"""The tables and columns of docs/balance-model.md under their configured names, their types, and
indexes."""

from __future__ import annotations

from psycopg import sql

from tokenfix import queries
from tokenfix.health.report import Check, Context, fail, ok, warn
from tokenfix.ledger import catalog
from tokenfix.ledger.catalog import Table

# Types are judged by family (docs/mapping.md): any integer or numeric amount is exact; a key or an
# id may be of any type; a timestamp without time zone is read as UTC (said in a note).
INTEGER = {"smallint", "integer", "bigint"}
NUMBER = INTEGER | {"numeric"}
TEXT = {"text", "character varying", "character", "name"}
NAIVE_TIMESTAMP = "timestamp without time zone"
TIMESTAMP = {"timestamp with time zone", NAIVE_TIMESTAMP}
ANY: set[str] = set()
"""Any type at all."""

# column -> (compatible types, whether the column must exist)
USAGE_COLUMNS: dict[str, tuple[set[str], bool]] = {
    "id": (ANY, True),
    "user_id": (ANY, True),
    "action_type": (TEXT, True),
    "model_used": (TEXT, True),
    "tokens_used": (NUMBER, True),
    "success": ({"boolean"}, True),
    "created_at": (TIMESTAMP, True),
}
OVERRIDE_COLUMNS: dict[str, tuple[set[str], bool]] = {
    "id": (ANY, True),
    "action_type": (TEXT, True),
    "model_used": (TEXT, True),
    "token_cost": (NUMBER, True),
    "is_active": ({"boolean"}, True),
    "valid_from": (TIMESTAMP, False),
    "valid_until": (TIMESTAMP, False),
}


def _base_type(type_name: str) -> str:
    return type_name.split("(")[0].strip()


def _table_check(
    name: str, table: Table, columns: dict[str, tuple[set[str], bool]], setting: str
) -> Check:
    if not table.exists:
        return fail(
            name,
            f"table {table.name} does not exist",
            f"point {setting} at the right table, or create it (sql/schema.sql)",
        )
    missing = [c for c, (_, required) in columns.items() if required and not table.has(c)]
    if missing:
        return fail(
            name,
            f"table {table.name} lacks column(s) {', '.join(missing)}",
            f"add them, or set the TOKENFIX_* names (see {setting})",
        )
    wrong = [
        f"{c} is {table.columns[c]}, expected {_family(types)}"
        for c, (types, _) in columns.items()
        if table.has(c) and types and _base_type(table.columns[c]) not in types
    ]
    if wrong:
        return fail(
            name,
            f"table {table.name}: " + "; ".join(wrong),
            "change the column types to those of sql/schema.sql, or describe the table in a "
            "mapping file (docs/mapping.md)",
        )
    naive = [c for c in columns if table.columns.get(c) == NAIVE_TIMESTAMP]
    note = f" (note: {', '.join(naive)} without time zone, read as UTC)" if naive else ""
    return ok(
        name, f"table {table.name} has every column tokenfix needs, with compatible types{note}"
    )


def _family(types: set[str]) -> str:
    if types >= NUMBER:
        return "a number (integer, bigint or numeric)"
    if types == TIMESTAMP:
        return "a timestamp"
    if types == TEXT:
        return "text"
    return " or ".join(sorted(types))


def tables(context: Context) -> list[Check]:
    if context.tables is None:
        return []
    s = context.settings
    remaining, used = s.remaining_column.table_name, s.used_column.table_name
    profile_columns: dict[str, tuple[set[str], bool]] = {
        "user_id": (ANY, True),
        remaining: (NUMBER, True),
        used: (NUMBER, True),
        "created_at": (TIMESTAMP, True),
        "updated_at": (TIMESTAMP, True),
    }
    checks = [
        _table_check("usage_table", context.tables.usage, USAGE_COLUMNS, "TOKENFIX_USAGE_TABLE"),
        _table_check(
            "profiles_table", context.tables.profiles, profile_columns, "TOKENFIX_PROFILES_TABLE"
        ),
    ]
    if context.tables.profiles.exists:
        checks.append(_unique_user_id(context))
    usage_key = context.tables.usage.columns.get("user_id")
    balance_key = context.tables.profiles.columns.get("user_id")
    if usage_key and balance_key and usage_key != balance_key:
        usage, profiles = context.settings.usage_table, context.settings.profiles_table
        checks.append(
            warn(
                "key_types",
                f"{usage}.user_id is {usage_key} but {profiles}.user_id is {balance_key}: "
                f"each ledger key is cast to {balance_key} (a value that does not cast stops "
                "the run)",
                f"give both columns the same type (ALTER TABLE {usage} ALTER user_id TYPE "
                f"{balance_key} USING user_id::{balance_key})",
            )
        )
    overrides = context.tables.overrides
    if not overrides.exists:
        checks.append(
            ok(
                "overrides_table",
                f"no table {overrides.name}: every charge costs its tokens_used (no overrides)",
            )
        )
    else:
        check = _table_check(
            "overrides_table", overrides, OVERRIDE_COLUMNS, "TOKENFIX_OVERRIDES_TABLE"
        )
        if check.status == "ok" and not (
            overrides.has("valid_from") and overrides.has("valid_until")
        ):
            check = ok(
                "overrides_table",
                f"table {overrides.name} has no validity window "
                "columns: every override is unbounded in time",
            )
        checks.append(check)
    return checks


def _unique_user_id(context: Context) -> Check:
    balance = context.mapping.balance
    if catalog.key_is_unique(context.conn, balance.table, balance.key):
        return ok("profiles_key", f"{balance.table}.{balance.key} is unique")
    fix = sql.SQL("ALTER TABLE {} ADD PRIMARY KEY ({})").format(
        balance.table.identifier, sql.Identifier(balance.key)
    )
    # docs/safety.md: without it an owner may have two cached balances, and write runs refuse.
    return fail(
        "profiles_key",
        f"{balance.table}.{balance.key} has no unique index: an owner may have two balance "
        "rows, so write runs refuse to run (and --create-missing could not guard an insert)",
        fix.as_string(context.conn) + " (after removing duplicates)",
    )


# What reconcile's batches, --since and diagnose read of a user's rows: an index holding all
# of it serves them from the index alone, without visiting the table (BENCHMARKS.md).
PER_USER_COLUMNS = ("user_id", "action_type", "model_used", "tokens_used", "success", "created_at")
LARGE_LEDGER_ROWS = 1_000_000


def indexes(context: Context) -> list[Check]:
    if context.tables is None or not context.tables.usage.exists:
        return []
    usage = context.settings.usage_table
    if context.tables.usage.kind in ("v", "f"):
        what = "a view" if context.tables.usage.kind == "v" else "a foreign table"
        return [
            warn(
                "index_user_id",
                f"{usage} is {what}: tokenfix reads a user's rows through the indexes of the "
                "table(s) it reads from",
                f"make sure the table behind {usage} has indexes leading with user_id and "
                "created_at (CREATE INDEX CONCURRENTLY on that table, not on the view)",
            )
        ]
    rows = context.conn.execute(
        queries.get("doctor_indexes"), {"table": context.quoted(usage)}
    ).fetchall()
    leading = {str(column): str(index) for index, column, _, _ in rows}
    covering = [str(index) for index, column, columns, _ in rows
                if column == "user_id" and set(PER_USER_COLUMNS) <= set(columns)]  # fmt: skip
    estimated_rows = max((int(r[3]) for r in rows), default=0)
    checks = []
    for column, name, purpose in (
        ("user_id", "index_user_id", "diagnose and each reconcile batch read a user's rows"),
        ("created_at", "index_created_at", "reconcile --since finds recently active users"),
    ):
        if column in leading:
            message = f"index {leading[column]} leads with {usage}.{column}"
            if column == "user_id" and covering:
                message += f"; {covering[0]} covers every column a user's rows are read for"
            elif column == "user_id" and estimated_rows >= LARGE_LEDGER_ROWS:
                message += (
                    f"; with {estimated_rows:,} rows, a covering index would let --since and "
                    f"diagnose skip the table: {_covering_index(context)}"
                )
            checks.append(ok(name, message))
            continue
        checks.append(
            warn(
                name,
                f"no index leads with {usage}.{column}: {purpose} by scanning the whole table",
                _create_index(context, column),
            )
        )
    return checks


def _create_index(context: Context, column: str) -> str:
    usage = context.settings.usage_table
    name = sql.Identifier(f"{usage.table_name}_{column}_idx")
    if context.tables is not None and context.tables.usage.kind == "p":
        # A partitioned table takes no CONCURRENTLY index: build one per partition, attach.
        statement = sql.SQL("CREATE INDEX IF NOT EXISTS {} ON ONLY {} ({});").format(
            name, usage.identifier, sql.Identifier(column)
        )
        return (
            statement.as_string(context.conn)
            + " then CREATE INDEX CONCURRENTLY on each partition and ALTER INDEX … ATTACH "
            "PARTITION each one (a partitioned table takes no CONCURRENTLY index)"
        )
    statement = sql.SQL("CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} ({});").format(
        name, usage.identifier, sql.Identifier(column)
    )
    return statement.as_string(context.conn)


def _covering_index(context: Context) -> str:
    usage = context.settings.usage_table
    statement = sql.SQL("CREATE INDEX CONCURRENTLY {} ON {} (user_id) INCLUDE ({})").format(
        sql.Identifier(f"{usage.table_name}_user_id_covering_idx"),
        usage.identifier,
        sql.SQL(", ").join(sql.Identifier(c) for c in PER_USER_COLUMNS[1:]),
    )
    return statement.as_string(context.conn)
