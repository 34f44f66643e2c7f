"""`doctor`: is this database set up so that tokenfix, and the app, can work? (SPEC §4)

Each check is plain data (name, status, message, fix); a check that cannot run is a failed
check, never a crash, so one missing table does not hide every other finding.
"""

from __future__ import annotations

import psycopg

from tokenfix import db
from tokenfix.errors import TokenfixError, first_line, from_database_error
from tokenfix.health import (
    access,
    adjust,
    claims,
    connection,
    definers,
    ledger,
    ledger_access,
    mapping_checks,
    schema,
    trust,
    views,
)
from tokenfix.health.checks import Check, CheckFunction, Context, Report, Status, fail
from tokenfix.mapping import Mapping
from tokenfix.settings import Settings

__all__ = ["Check", "Report", "Status", "run_doctor"]

CHECKS: tuple[CheckFunction, ...] = (
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
    adjust.adjust_rows,
)
# Under a mapping file, the checks of the default schema's tables and indexes give way to the
# mapping's own: its expressions, key, indexes and privileges (SPEC §10).
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
        conn = db.connect(settings)
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
        with db.transaction(
            context.conn, context.settings, read_only=read_only, large_aggregate=True
        ):
            return check(context)
    except TokenfixError as exc:  # a mapping expression the database rejects, a missing table
        return [fail(name, f"could not check: {exc.message}", exc.hint or "see --debug")]
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
