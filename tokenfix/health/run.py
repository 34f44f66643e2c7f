"""`doctor`: is this database set up so that tokenfix, and the app, can work? (docs/commands.md)

Each check is plain data (name, status, message, fix); a check that cannot run is a failed
check, never a crash, so one missing table does not hide every other finding.
"""

from __future__ import annotations

import psycopg

from tokenfix.base.errors import TokenfixError, first_line, from_database_error
from tokenfix.config.settings import Settings
from tokenfix.db import session
from tokenfix.health import (
    access,
    adjust,
    citus,
    claims,
    connection,
    deadlocks,
    definers,
    ledger,
    ledger_access,
    legacy,
    mapping_checks,
    schema,
    trust,
    views,
)
from tokenfix.health.report import Check, CheckFunction, Context, Report, Status, fail
from tokenfix.mapping.types import Mapping

__all__ = ["Check", "Report", "Status", "run_doctor"]

CHECKS: tuple[CheckFunction, ...] = (
    connection.connection,
    connection.pooler,
    deadlocks.deadlock_victim,
    schema.tables,
    access.privileges,
    access.tool_rls,
    access.profiles_rls,
    trust.api_roles_check,
    views.writable_views,
    claims.user_metadata_policies,
    legacy.legacy_jwt_settings,
    access.definer_functions,
    definers.callable_definers,
    ledger_access.ledger_writes,
    ledger_access.ledger_reads,
    ledger_access.overrides_writes,
    ledger_access.overrides_reads,
    schema.indexes,
    ledger.ambiguous_overrides,
    ledger.ledger_health,
    adjust.adjust_rows,
    citus.distribution,
)
# Under a mapping file, the checks of the default schema's tables and indexes give way to the
# mapping's own: its expressions, key, indexes and privileges (docs/mapping.md).
MAPPING_CHECKS: tuple[CheckFunction, ...] = (
    mapping_checks.mapping_expressions,
    mapping_checks.mapping_key,
    mapping_checks.mapping_privileges,
)
DEFAULT_SCHEMA_ONLY = (schema.tables, access.privileges)


def checks_for(mapping: Mapping) -> tuple[CheckFunction, ...]:
    if mapping.from_settings:
        return CHECKS
    kept = tuple(c for c in CHECKS if c not in DEFAULT_SCHEMA_ONLY)
    at = kept.index(schema.indexes)
    return (
        *kept[:2],
        *MAPPING_CHECKS,
        *kept[2:at],
        mapping_checks.mapping_indexes,
        *kept[at + 1 :],
    )


# Only the trust-boundary probes write, each in a savepoint that is always rolled back;
# everything else is read-only.
PROBES: tuple[CheckFunction, ...] = (
    trust.api_roles_check,
    views.writable_views,
    ledger_access.ledger_writes,
    ledger_access.overrides_writes,
)


def run_doctor(settings: Settings, *, probe: bool = True, mapping: Mapping | None = None) -> Report:
    try:
        conn = session.connect(settings)
    except TokenfixError as exc:
        return Report([fail("connection", exc.message, exc.hint or "check TOKENFIX_DATABASE_URL")])
    checks: list[Check] = []
    with conn:
        context = Context(conn=conn, settings=settings, probe=probe, mapping=mapping)  # type: ignore[arg-type]
        for check in checks_for(context.mapping):
            read_only = check not in PROBES or bool(context.server.get("standby"))
            checks.extend(_safely(check, context, read_only=read_only))
    return Report(checks)


def _safely(check: CheckFunction, context: Context, *, read_only: bool) -> list[Check]:
    name = check.__name__
    try:
        with session.transaction(
            context.conn, context.settings, read_only=read_only, large_aggregate=True
        ):
            return check(context)
    except TokenfixError as exc:  # a mapping expression the database rejects, a missing table
        return [fail(name, f"could not check: {exc.message}", exc.hint or _FIX_MAPPING)]
    except psycopg.Error as exc:
        if context.conn.broken:
            raise from_database_error(exc) from exc
        translated = from_database_error(exc)
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            fix = "run with a role that can read the catalogs and tables"
        elif (exc.sqlstate or "").startswith(("22", "42")):  # the data or an expression
            fix = _FIX_MAPPING
        else:
            fix = translated.hint or "re-run doctor; if it persists, check the server's log"
        return [fail(name, f"could not check: {first_line(translated.message)}", fix)]


_FIX_MAPPING = (
    "fix the mapping's expressions for the rows the tables hold ('tokenfix mapping' shows "
    "the mapping in effect)"
)
