"""`doctor`: is this database set up so that tokenfix, and the app, can work? (SPEC §4)

Each check is plain data (name, status, message, fix); a check that cannot run is a failed
check, never a crash, so one missing table does not hide every other finding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg

from tokenfix import catalog, db
from tokenfix.errors import TokenfixError, first_line, from_database_error
from tokenfix.settings import Settings

Status = Literal["ok", "warn", "fail"]
_RANK = {"ok": 0, "warn": 1, "fail": 2}


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    message: str
    fix: str | None = None


def ok(name: str, message: str) -> Check:
    return Check(name, "ok", message)


def warn(name: str, message: str, fix: str) -> Check:
    return Check(name, "warn", message, fix)


def fail(name: str, message: str, fix: str) -> Check:
    return Check(name, "fail", message, fix)


@dataclass
class Report:
    checks: list[Check]

    @property
    def status(self) -> Status:
        return max((c.status for c in self.checks), key=_RANK.__getitem__, default="ok")


@dataclass
class Context:
    """What every check may look at."""

    conn: psycopg.Connection[Any]
    settings: Settings
    probe: bool
    server: dict[str, Any] = field(default_factory=dict)
    tables: catalog.Catalog | None = None

    def quoted(self, name: Any) -> str:
        return str(name.identifier.as_string(self.conn))


CheckFunction = Callable[[Context], list[Check]]


def run_doctor(settings: Settings, *, probe: bool = True) -> Report:
    from tokenfix.doctor import (
        access,
        claims,
        connection,
        definers,
        ledger,
        ledger_access,
        schema,
        trust,
        views,
    )

    try:
        conn = db.connect(settings)
    except TokenfixError as exc:
        return Report([fail("connection", exc.message, exc.hint or "check TOKENFIX_DATABASE_URL")])
    checks: list[Check] = []
    with conn:
        context = Context(conn=conn, settings=settings, probe=probe)
        for check in (
            connection.connection,
            connection.pooler,
            schema.tables,
            access.privileges,
            access.tool_rls,
            access.profiles_rls,
            trust.api_roles_check,
            views.writable_views,
            claims.user_metadata_policies,
            access.definer_functions,
            definers.callable_definers,
            ledger_access.ledger_writes,
            ledger_access.ledger_reads,
            ledger_access.overrides_writes,
            ledger_access.overrides_reads,
            schema.indexes,
            ledger.ambiguous_overrides,
            ledger.ledger_health,
        ):
            # Only the trust-boundary probes write, each in a savepoint that is always rolled
            # back; everything else is read-only.
            probes = (
                trust.api_roles_check,
                views.writable_views,
                ledger_access.ledger_writes,
                ledger_access.overrides_writes,
            )
            read_only = check not in probes or bool(context.server.get("standby"))
            checks.extend(_safely(check, context, read_only=read_only))
    return Report(checks)


def _safely(check: CheckFunction, context: Context, *, read_only: bool) -> list[Check]:
    name = check.__name__
    try:
        with db.transaction(
            context.conn, context.settings, read_only=read_only, large_aggregate=True
        ):
            return check(context)
    except psycopg.Error as exc:
        if context.conn.broken:
            raise from_database_error(exc) from exc
        return [
            fail(
                name,
                f"could not check: {first_line(str(from_database_error(exc)))}",
                "run with a role that can read the catalogs and tables, or see --debug",
            )
        ]
