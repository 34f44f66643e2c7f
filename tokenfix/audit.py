"""The audit trail (SPEC §7): its schema, the runs, and `history`."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tokenfix import __version__, queries
from tokenfix.db import transaction
from tokenfix.settings import Settings

Connection = psycopg.Connection[Any]


@dataclass(frozen=True)
class Origin:
    """Who writes: recorded with every run, change and lease."""

    host: str
    pid: int
    tool_version: str

    @classmethod
    def here(cls) -> Origin:
        return cls(host=socket.gethostname(), pid=os.getpid(), tool_version=__version__)


def table(settings: Settings, name: str) -> sql.Identifier:
    return sql.Identifier(settings.audit_schema, name)


def fragments(settings: Settings) -> dict[str, sql.Composable]:
    return {
        "schema": sql.Identifier(settings.audit_schema),
        "runs": table(settings, "runs"),
        "changes": table(settings, "changes"),
        "lease": table(settings, "lease"),
    }


def compose(name: str, settings: Settings) -> sql.Composed:
    return queries.compose(name, **fragments(settings))


def exists(conn: Connection, settings: Settings) -> bool:
    names = {name: table(settings, name).as_string(conn) for name in ("runs", "changes", "lease")}
    row = conn.execute(queries.get("audit_exists"), names).fetchone()
    return bool(row and row[0])


def ensure_schema(conn: Connection, settings: Settings) -> None:
    """Create the audit schema on the first write, closed to the Data API roles."""
    with transaction(conn, settings):
        if exists(conn, settings):
            return
        # Two first runs at once must not race on CREATE TABLE IF NOT EXISTS.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('tokenfix audit schema'))")
        if exists(conn, settings):
            return
        conn.execute(compose("audit_schema", settings))
        for (role,) in conn.execute(queries.get("api_roles")).fetchall():
            conn.execute(
                sql.SQL(
                    "REVOKE ALL ON SCHEMA {schema} FROM {role};"
                    " REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role};"
                    " REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {role}"
                ).format(schema=sql.Identifier(settings.audit_schema), role=sql.Identifier(role))
            )


def start_run(
    conn: Connection,
    settings: Settings,
    *,
    run_id: uuid.UUID,
    command: str,
    origin: Origin,
    options: dict[str, Any],
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


def record_failure(
    conn: Connection, settings: Settings, run_id: uuid.UUID, exc: BaseException
) -> None:
    """Mark a run failed, reconnecting if its connection died; never masks the real error."""
    from tokenfix import db
    from tokenfix.errors import first_line

    error = first_line(str(exc)) or type(exc).__name__
    try:
        if conn.broken or conn.closed:
            with db.connect(settings) as fresh:
                finish_run(fresh, settings, run_id, "failed", {"error": error})
        else:
            finish_run(conn, settings, run_id, "failed", {"error": error})
    except Exception:
        return  # the run stays 'running' in history; the lease still expires on its own


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
    reverted_by: uuid.UUID | None


def history(conn: Connection, settings: Settings, limit: int) -> list[RunSummary]:
    """The latest writing runs, newest first; none when nothing was ever written."""
    with transaction(conn, settings, read_only=True):
        if not exists(conn, settings):
            return []
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(compose("history", settings), {"limit": limit}).fetchall()
    return [RunSummary(**row) for row in rows]
