"""Citus (docs/citus.md): how a table is distributed, and locks taken one shard at a time.

On a plain server this costs one catalog lookup per model load; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from tokenfix import queries
from tokenfix.db.session import Connection


@dataclass(frozen=True)
class Placement:
    """How Citus holds one table."""

    method: str
    """'h' hash-distributed; 'n' not distributed (a reference or coordinator-local table);
    '' a plain table Citus does not know."""
    replication: str
    """'t' for a reference table (a copy on every node)."""
    column: str | None
    colocation: int | None

    @property
    def distributed(self) -> bool:
        return self.method == "h"

    @property
    def reference(self) -> bool:
        return self.method == "n" and self.replication == "t"


def present(conn: Connection) -> bool:
    """Whether the Citus extension is installed in this database."""
    row = conn.execute(queries.get("citus_present")).fetchone()
    return bool(row and row[0])


def placement(conn: Connection, table: sql.Composable) -> Placement | None:
    """How Citus holds `table` (an identifier); None when there is no such table."""
    name = table.as_string(conn)
    row = conn.execute(queries.get("citus_distribution"), {"table": name}).fetchone()
    if row is None:
        return None
    return Placement(
        method=row[0] or "", replication=row[1] or "", column=row[2], colocation=row[3]
    )


def shard_groups(
    conn: Connection, table: sql.Composable, key_type: sql.Composable, keys: Sequence[str]
) -> list[list[str]]:
    """`keys` grouped by the shard of `table` that holds them, each group in key order, the
    groups in the order of their first key (so every batch locks in one global order)."""
    statement = queries.compose("citus_shard_keys", key_type=key_type)
    rows = conn.execute(statement, {"table": table.as_string(conn), "keys": list(keys)})
    groups: dict[int, list[str]] = {}
    for shard, key in rows.fetchall():
        groups.setdefault(shard, []).append(key)
    return list(groups.values())


def lock_by_shard(
    conn: Connection,
    statement: sql.Composed,
    table: sql.Composable,
    key_type: sql.Composable,
    keys: Sequence[str],
) -> list[Any]:
    """Run the lock statement (which takes `keys`) once per shard: Citus runs FOR UPDATE
    only on a statement that touches one shard."""
    rows: list[Any] = []
    for group in shard_groups(conn, table, key_type, keys):
        rows.extend(conn.execute(statement, {"keys": group}).fetchall())
    return rows


def work_mem_on_workers(conn: Connection, work_mem: str) -> None:
    """The transaction's work_mem on the workers too (docs/citus.md): Citus passes on SET LOCAL
    (not set_config) once citus.propagate_set_commands is 'local', with the BEGIN it sends each
    worker connection, so the shards' aggregates get the memory the tool sets for its own."""
    conn.execute("SET LOCAL citus.propagate_set_commands = 'local'")
    conn.execute(sql.SQL("SET LOCAL work_mem = {}").format(sql.Literal(work_mem)))
