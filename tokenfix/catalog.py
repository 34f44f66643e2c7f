"""What the database holds: which configured tables and columns exist, and their types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

from tokenfix.errors import BadInput, MissingObject
from tokenfix.queries import get
from tokenfix.settings import QualifiedName, Settings

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
OVERRIDE_WINDOW_COLUMNS = ("valid_from", "valid_until")


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


@dataclass(frozen=True)
class Catalog:
    usage: Table
    profiles: Table
    overrides: Table
    profiles_key_unique: bool = True
    """Whether a unique index on user_id alone guards the profiles table (ON CONFLICT needs
    one, and without it a user may have two cached balances)."""

    @property
    def has_overrides(self) -> bool:
        return self.overrides.exists


def describe(
    conn: psycopg.Connection[tuple[object, ...]], names: Sequence[QualifiedName]
) -> list[Table]:
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


def load(conn: psycopg.Connection[tuple[object, ...]], settings: Settings) -> Catalog:
    usage, profiles, overrides = describe(
        conn, [settings.usage_table, settings.profiles_table, settings.overrides_table]
    )
    unique = True
    if profiles.exists:
        quoted = settings.profiles_table.identifier.as_string(conn)
        row = conn.execute(get("doctor_unique_user_id"), {"table": quoted}).fetchone()
        unique = bool(row and row[0])
    return Catalog(usage=usage, profiles=profiles, overrides=overrides, profiles_key_unique=unique)


# The largest value each integer type holds; numeric(p, s) holds 10^(p-s) - 10^-s.
INTEGER_LIMITS = {"smallint": 2**15 - 1, "integer": 2**31 - 1, "bigint": 2**63 - 1}


def fits(value: int, type_name: str) -> bool:
    """Whether `value` can be stored in a column of `type_name` (format_type's text)."""
    base = type_name.split("(")[0].strip()
    if base in INTEGER_LIMITS:
        return -INTEGER_LIMITS[base] - 1 <= value <= INTEGER_LIMITS[base]
    if base == "numeric" and "(" in type_name:
        precision, _, scale = type_name.split("(")[1].rstrip(")").partition(",")
        whole_digits = int(precision) - int(scale or 0)
        return bool(abs(value) < 10**whole_digits)
    return True


def check_starting_balance(catalog: Catalog, settings: Settings) -> None:
    """A starting balance the balance columns cannot hold is bad input (exit 2), not a
    database error half-way through a run."""
    column = settings.remaining_column.table_name
    type_name = catalog.profiles.columns.get(column)
    if type_name and not fits(settings.starting_balance, type_name):
        raise BadInput(
            f"the starting balance {settings.starting_balance} (--starting-balance or "
            f"TOKENFIX_STARTING_BALANCE) does not fit {settings.profiles_table}.{column}, "
            f"which is {type_name}"
        )


def _require(table: Table, columns: Sequence[tuple[str, str | None]], setting: str) -> None:
    if not table.exists:
        raise MissingObject(
            f"table {table.name} does not exist",
            hint=f"create it (sql/schema.sql) or point {setting} at the right table",
        )
    for column, column_setting in columns:
        if not table.has(column):
            where = f"set {column_setting}" if column_setting else "see SPEC §2"
            raise MissingObject(f"table {table.name} has no column {column}", hint=where)


def require_balance_tables(catalog: Catalog, settings: Settings) -> None:
    """Fail with a message naming the table or column when the §2 schema is incomplete."""
    _require(catalog.usage, [(c, None) for c in USAGE_COLUMNS], "TOKENFIX_USAGE_TABLE")
    _require(
        catalog.profiles,
        [
            ("user_id", None),
            (settings.remaining_column.table_name, "TOKENFIX_REMAINING_COLUMN"),
            (settings.used_column.table_name, "TOKENFIX_USED_COLUMN"),
            ("created_at", None),
            ("updated_at", None),
        ],
        "TOKENFIX_PROFILES_TABLE",
    )
    if catalog.overrides.exists:
        _require(
            catalog.overrides, [(c, None) for c in OVERRIDE_COLUMNS], "TOKENFIX_OVERRIDES_TABLE"
        )
