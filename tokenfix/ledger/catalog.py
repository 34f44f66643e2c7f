"""What the database holds: which tables and columns exist, and their types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from tokenfix.base.errors import MissingObject
from tokenfix.base.identifiers import QualifiedName
from tokenfix.base.records import Amount
from tokenfix.config.settings import Settings
from tokenfix.db.session import Connection
from tokenfix.queries import get

USAGE_COLUMNS = (
    "id",
    "user_id",
    "action_type",
    "model_used",
    "tokens_used",
    "success",
    "created_at",
)
OVERRIDE_COLUMNS = ("id", "action_type", "model_used", "token_cost", "is_active")


@dataclass(frozen=True)
class Table:
    name: QualifiedName
    exists: bool
    columns: dict[str, str] = field(default_factory=dict)
    """column name -> type as PostgreSQL prints it (format_type)."""
    kind: str = "r"
    """pg_class.relkind: r table, p partitioned table, v view, m materialized view, f foreign."""

    def has(self, column: str) -> bool:
        return column in self.columns


def describe(conn: Connection, names: Sequence[QualifiedName]) -> list[Table]:
    """Existence and columns of each named table, resolved as the server would (search_path)."""
    quoted = [name.identifier.as_string(conn) for name in names]
    rows = conn.execute(get("describe_tables"), {"names": quoted}).fetchall()
    tables: list[Table] = []
    for position, name in enumerate(names, start=1):
        mine = [row for row in rows if row[0] == position]
        exists = any(row[1] for row in mine)
        kind = next((str(row[2]) for row in mine if row[2] is not None), "r")
        columns = {str(row[3]): str(row[4]) for row in mine if row[3] is not None}
        tables.append(Table(name=name, exists=exists, columns=columns, kind=kind))
    return tables


def key_is_unique(conn: Connection, table: QualifiedName, column: str) -> bool:
    quoted = table.identifier.as_string(conn)
    row = conn.execute(get("unique_key"), {"table": quoted, "column": column}).fetchone()
    return bool(row and row[0])


def row_id_unique(
    conn: Connection, table: QualifiedName, row_id: str, key: str
) -> tuple[str, ...] | None:
    """Snapshots: the columns of the unique index naming one row by `row_id`, alone or with
    the owner `key` (the writes name both), or None when there is none."""
    quoted = table.identifier.as_string(conn)
    row = conn.execute(
        get("row_id_unique"), {"table": quoted, "row_id": row_id, "key": key}
    ).fetchone()
    return tuple(row[0]) if row else None


def key_references(
    conn: Connection, ledger: QualifiedName, column: str, balance: QualifiedName, key: str
) -> bool:
    """A validated foreign key, its checks enabled, from `ledger`.`column` to `balance`.`key`."""
    return _ledger_key_holds(conn, "key_references", ledger, column, balance, key)


def key_indexed(
    conn: Connection, ledger: QualifiedName, column: str, balance: QualifiedName, key: str
) -> bool:
    """A btree index on `ledger` leads with `column` (default order), of the same type and
    collation as `balance`.`key`: the ledger's keys can be walked in the balance key's order."""
    return _ledger_key_holds(conn, "key_index", ledger, column, balance, key)


def _ledger_key_holds(
    conn: Connection,
    query: str,
    ledger: QualifiedName,
    column: str,
    balance: QualifiedName,
    key: str,
) -> bool:
    """Catalog `query` about `ledger`.`column` and `balance`.`key` answers true."""
    row = conn.execute(
        get(query),
        {
            "ledger": ledger.identifier.as_string(conn),
            "column": column,
            "balance": balance.identifier.as_string(conn),
            "key": key,
        },
    ).fetchone()
    return bool(row and row[0])


def missing_table(table: Table, what: str) -> MissingObject:
    return MissingObject(
        f"table {table.name} does not exist ({what})",
        hint="create it (sql/schema.sql for the default schema) or point the mapping or the "
        "TOKENFIX_*_TABLE setting at the right table",
    )


def _require(table: Table, columns: Sequence[tuple[str, str | None]], setting: str) -> None:
    if not table.exists:
        raise MissingObject(
            f"table {table.name} does not exist",
            hint=f"create it (sql/schema.sql) or point {setting} at the right table",
        )
    for column, column_setting in columns:
        if not table.has(column):
            where = f"set {column_setting}" if column_setting else "see docs/balance-model.md"
            raise MissingObject(f"table {table.name} has no column {column}", hint=where)


def require_default_schema(conn: Connection, settings: Settings) -> None:
    """The default mapping needs the schema: say which table or column is missing, and
    which setting names it, before any expression is compiled."""
    usage, profiles, overrides = describe(
        conn, [settings.usage_table, settings.profiles_table, settings.overrides_table]
    )
    _require(usage, [(c, None) for c in USAGE_COLUMNS], "TOKENFIX_USAGE_TABLE")
    _require(
        profiles,
        [
            ("user_id", None),
            (settings.remaining_column.table_name, "TOKENFIX_REMAINING_COLUMN"),
            (settings.used_column.table_name, "TOKENFIX_USED_COLUMN"),
            ("created_at", None),
            ("updated_at", None),
        ],
        "TOKENFIX_PROFILES_TABLE",
    )
    if overrides.exists:
        _require(overrides, [(c, None) for c in OVERRIDE_COLUMNS], "TOKENFIX_OVERRIDES_TABLE")


# The largest value each integer type holds; numeric(p, s) holds 10^(p-s) - 10^-s.
INTEGER_LIMITS = {"smallint": 2**15 - 1, "integer": 2**31 - 1, "bigint": 2**63 - 1}


def fits(value: Amount, type_name: str) -> bool:
    """Whether `value` can be stored in a column of `type_name` (format_type's text)."""
    base = type_name.split("(")[0].strip()
    if base in INTEGER_LIMITS:
        return -INTEGER_LIMITS[base] - 1 <= value <= INTEGER_LIMITS[base] and value == int(value)
    if base == "numeric" and "(" in type_name:
        precision, _, scale = type_name.split("(")[1].rstrip(")").partition(",")
        whole_digits = int(precision) - int(scale or 0)
        return bool(abs(Decimal(value)) < 10**whole_digits)
    return True
