"""The audit trail (docs/safety.md): its schema, the runs, and `history`."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tokenfix import queries
from tokenfix.base.errors import BadInput, DatabaseProblem
from tokenfix.base.version import __version__
from tokenfix.config.settings import Settings
from tokenfix.db.session import Connection, transaction
from tokenfix.mapping.types import Mapping


@dataclass(frozen=True)
class Origin:
    """Who writes: recorded with every run, change and lease."""

    host: str
    pid: int
    tool_version: str

    @classmethod
    def here(cls) -> Origin:
        return cls(host=socket.gethostname(), pid=os.getpid(), tool_version=__version__)


# The audit layout this tokenfix writes. Layout N is layout 0 (audit_layout_0.sql) plus the
# additive migrations audit_layout_1.sql … audit_layout_N.sql; each is recorded in `layout`.
LAYOUT = 3
TABLES = ("runs", "changes", "lease", "layout")


def table(settings: Settings, name: str) -> sql.Identifier:
    return sql.Identifier(settings.audit_schema, name)


def fragments(settings: Settings) -> dict[str, sql.Composable]:
    return {
        "schema": sql.Identifier(settings.audit_schema),
        **{name: table(settings, name) for name in TABLES},
    }


def compose(name: str, settings: Settings) -> sql.Composed:
    return queries.compose(name, **fragments(settings))


# Columns later layouts added, with their types: what a table of an older layout lacks.
_ADDED = {
    "changes": (
        ("full_row", "jsonb"),
        ("key", "text"),
        ("before", "jsonb"),
        ("after", "jsonb"),
        ("adjustment", "jsonb"),
    ),
    "runs": (("balance_table", "text"), ("balance_key", "text"), ("mapping_hash", "text")),
}


def read_fragments(conn: Connection, settings: Settings) -> dict[str, sql.Composable]:
    """fragments() for statements that only read, whatever the layout: a table of an older
    layout reads as a subquery with the later columns as NULL. Reads never migrate (a dry run,
    a lookup on a standby cannot); writing runs migrate under the lease first."""
    found = fragments(settings)
    for name, added in _ADDED.items():
        have = {
            row[0]
            for row in conn.execute(
                "SELECT attname FROM pg_attribute"
                " WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
                (table(settings, name).as_string(conn),),
            )
        }
        missing = [(column, kind) for column, kind in added if column not in have]
        if missing:
            found[name] = sql.SQL("(SELECT t.*, {} FROM {} AS t)").format(
                sql.SQL(", ").join(
                    sql.SQL("NULL::{} AS {}").format(sql.SQL(kind), sql.Identifier(column))
                    for column, kind in missing
                ),
                table(settings, name),
            )
    return found


def exists(conn: Connection, settings: Settings) -> bool:
    names = {name: table(settings, name).as_string(conn) for name in ("runs", "changes", "lease")}
    row = conn.execute(queries.get("audit_exists"), names).fetchone()
    return bool(row and row[0])


@dataclass(frozen=True)
class SchemaState:
    exists: bool
    own_tables: tuple[str, ...]
    foreign_objects: tuple[str, ...]
    layout: int | None
    """None: none of tokenfix's tables yet; 0: the first release's tables, unnumbered."""


def inspect(conn: Connection, settings: Settings) -> SchemaState:
    row = conn.execute(
        compose("audit_inspect", settings), {"schema": settings.audit_schema}
    ).fetchone()
    assert row is not None
    schema_exists, own, foreign = bool(row[0]), tuple(row[1]), tuple(row[2])
    layout: int | None = None
    if "layout" in own:
        found = conn.execute(compose("audit_layout_version", settings)).fetchone()
        layout = int(found[0]) if found and found[0] is not None else 0
    elif own:
        layout = 0
    return SchemaState(schema_exists, own, foreign, layout)


def _refuse_foreign(state: SchemaState, settings: Settings) -> None:
    if state.foreign_objects:
        shown = ", ".join(state.foreign_objects)
        raise BadInput(
            f"the audit schema {settings.audit_schema} holds objects that are not tokenfix's "
            f"({shown}): tokenfix keeps its audit trail in a schema of its own and never "
            "changes one it does not own",
            hint="set TOKENFIX_AUDIT_SCHEMA to a new name (default tokenfix), or create an "
            "empty schema for it",
        )


def _refuse_newer(state: SchemaState, settings: Settings) -> None:
    if state.layout is not None and state.layout > LAYOUT:
        raise DatabaseProblem(
            f"the audit schema {settings.audit_schema} has layout {state.layout}, newer than "
            f"this tokenfix {__version__} writes (layout {LAYOUT}): nothing was written",
            hint="upgrade tokenfix to write here; reading history still works",
        )


def _close_to_api_roles(conn: Connection, settings: Settings, names: list[str]) -> None:
    """Revoke on the objects we just created (and only those) from PUBLIC and the API roles."""
    roles = [sql.SQL("PUBLIC")] + [
        sql.Identifier(role) for (role,) in conn.execute(queries.get("api_roles")).fetchall()
    ]
    for name in names:
        target = table(settings, name) if name != "schema" else None
        statement = (
            sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}")
            if target is None
            else sql.SQL("REVOKE ALL ON TABLE {} FROM {}")
        )
        conn.execute(
            statement.format(
                sql.Identifier(settings.audit_schema) if target is None else target,
                sql.SQL(", ").join(roles),
            )
        )


def _apply_layouts(conn: Connection, settings: Settings, current: int | None) -> None:
    """Layouts current+1 … LAYOUT (all of them, from layout 0, for a new schema)."""
    before = set(inspect(conn, settings).own_tables)
    start = 0 if current is None else current + 1
    for number in range(start, LAYOUT + 1):
        conn.execute(compose(f"audit_layout_{number}", settings))
        if number > 0:
            conn.execute(
                compose("audit_layout_record", settings),
                {"version": number, "tool_version": __version__},
            )
    created = [name for name in inspect(conn, settings).own_tables if name not in before]
    _close_to_api_roles(conn, settings, created)


def ensure_schema(conn: Connection, settings: Settings) -> None:
    """Make sure the audit schema is ours and usable, creating it on the first write.

    Ours means: created by tokenfix, or empty (an admin may create it for a role that lacks
    CREATE on the database), or holding only tokenfix's tables. Anything else is refused,
    and grants are only ever revoked on what this function itself created.
    """
    with transaction(conn, settings):
        # Two first runs at once must not race on CREATE TABLE IF NOT EXISTS.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('tokenfix audit schema'))")
        state = inspect(conn, settings)
        _refuse_foreign(state, settings)
        _refuse_newer(state, settings)
        if state.layout is not None and "lease" in state.own_tables:
            return  # an older layout is migrated under the lease (migrate)
        if not state.exists:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(settings.audit_schema)))
            _close_to_api_roles(conn, settings, ["schema"])
        # Every layout step is idempotent: a partial first-release schema is completed too.
        _apply_layouts(conn, settings, None)


class Fence(Protocol):
    """The writer lease as a migration sees it (audit.lease imports this module, not back)."""

    def renew(self, conn: Connection) -> None: ...


def migrate(conn: Connection, settings: Settings, lease: Fence) -> None:
    """Bring an older audit layout up to LAYOUT, under the writer lease (additive steps)."""
    with transaction(conn, settings):
        state = inspect(conn, settings)
        _refuse_newer(state, settings)
        if state.layout is None or state.layout >= LAYOUT:
            return
        lease.renew(conn)  # the fence: only the lease holder migrates
        _apply_layouts(conn, settings, state.layout)


def start_run(
    conn: Connection,
    settings: Settings,
    *,
    run_id: uuid.UUID,
    command: str,
    origin: Origin,
    options: dict[str, Any],
    mapping: Mapping,
    reverts_run_id: uuid.UUID | None = None,
) -> None:
    with transaction(conn, settings):
        conn.execute(
            compose("run_start", settings),
            {
                "run_id": run_id,
                "command": command,
                "reverts_run_id": reverts_run_id,
                "tool_version": origin.tool_version,
                "host": origin.host,
                "pid": origin.pid,
                "options": Jsonb(options),
                "balance_table": str(mapping.balance.table),
                "balance_key": mapping.balance.key,
                "mapping_hash": mapping.balance_hash(),
            },
        )


def finish_run(
    conn: Connection, settings: Settings, run_id: uuid.UUID, status: str, counts: dict[str, Any]
) -> None:
    params = {
        "run_id": run_id,
        "status": status,
        "error": None,
        **{
            key: None
            for key in (
                "users_checked",
                "users_updated",
                "profiles_created",
                "profiles_deleted",
                "users_deferred",
                "users_changed",
            )
        },
        **counts,
    }
    with transaction(conn, settings):
        conn.execute(compose("run_finish", settings), params)


@dataclass(frozen=True)
class RunSummary:
    run_id: uuid.UUID
    command: str
    reverts_run_id: uuid.UUID | None
    status: str
    started_at: datetime
    finished_at: datetime | None
    db_role: str
    tool_version: str
    host: str
    pid: int
    users_checked: int | None
    users_updated: int | None
    profiles_created: int | None
    profiles_deleted: int | None
    users_deferred: int | None
    users_changed: int | None
    error: str | None
    rows_written: int
    rows_updated: int
    rows_inserted: int
    rows_deleted: int
    reverted_by: uuid.UUID | None
    reason: str | None = None
    """Why (grant, deduct, reconcile --direction ledger: --reason)."""


def history(conn: Connection, settings: Settings, limit: int) -> list[RunSummary]:
    """The latest writing runs, newest first; none when nothing was ever written."""
    with transaction(conn, settings, read_only=True):
        if not exists(conn, settings):
            return []
        return _summaries(conn, settings, limit=limit, run_id=None)


def run_summary(conn: Connection, settings: Settings, run_id: uuid.UUID) -> RunSummary:
    """One recorded run as `history` lists it; an unknown run is bad input (exit 2)."""
    with transaction(conn, settings, read_only=True):
        found = _summaries(conn, settings, limit=1, run_id=run_id) if exists(conn, settings) else []
    if not found:
        raise unknown_run(run_id)
    return found[0]


def _summaries(
    conn: Connection, settings: Settings, *, limit: int, run_id: uuid.UUID | None
) -> list[RunSummary]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            compose("history", settings), {"limit": limit, "run_id": run_id}
        ).fetchall()
    return [RunSummary(**row) for row in rows]


def unknown_run(run_id: uuid.UUID) -> BadInput:
    return BadInput(f"unknown run {run_id}", hint="'tokenfix history' lists the recorded runs")
