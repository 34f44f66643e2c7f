"""Who may read and write what: the tool's own privileges, and the seed incident's question —
which roles can update a balance under row-level security — judged from the catalogs and
proven by a probe that is always rolled back."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.rows import dict_row

from tokenfix import audit, queries
from tokenfix.doctor import Check, Context, fail, ok, warn
from tokenfix.settings import QualifiedName

API_ROLES = ("anon", "authenticated", "service_role")
PROBE_LOCK_TIMEOUT = "1s"
PROBE_STATEMENT_TIMEOUT = "5s"


def _access(context: Context, table: QualifiedName) -> dict[str, Any] | None:
    with context.conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            queries.get("doctor_table_access"), {"table": context.quoted(table)}
        ).fetchone()


def _grant(context: Context, privileges: str, tables: list[QualifiedName]) -> str:
    return (
        sql.SQL("GRANT {} ON {} TO {};")
        .format(
            sql.SQL(privileges),
            sql.SQL(", ").join(t.identifier for t in tables),
            sql.Identifier(context.server.get("role", "current_user")),
        )
        .as_string(context.conn)
    )


def privileges(context: Context) -> list[Check]:
    if context.tables is None:
        return []
    s = context.settings
    readable = [
        t
        for t in (context.tables.usage, context.tables.profiles, context.tables.overrides)
        if t.exists
    ]
    cannot_read = [
        t.name for t in readable if not (_access(context, t.name) or {}).get("can_select")
    ]
    checks = [
        fail(
            "privileges_dry_run",
            f"role {context.server.get('role')} cannot read {', '.join(map(str, cannot_read))}",
            _grant(context, "SELECT", cannot_read),
        )
        if cannot_read
        else ok("privileges_dry_run", "the role can read every table a dry run needs")
    ]
    if not context.tables.profiles.exists:
        return checks
    profiles = _access(context, s.profiles_table) or {}
    missing = [
        p
        for p, key in (("UPDATE", "can_update"), ("INSERT", "can_insert"), ("DELETE", "can_delete"))
        if not profiles.get(key)
    ]
    problems = []
    fixes = []
    if missing:
        problems.append(
            f"{' and '.join(missing)} on {s.profiles_table} (UPDATE: fixes; INSERT: "
            "--create-missing; DELETE: revert of a created profile)"
        )
        fixes.append(_grant(context, ", ".join(missing), [s.profiles_table]))
    problems_audit, fix_audit = _audit_access(context)
    problems += problems_audit
    fixes += fix_audit
    if problems:
        checks.append(
            warn(
                "privileges_write",
                "this role can dry-run only: it lacks " + "; ".join(problems),
                " ".join(fixes),
            )
        )
    else:
        checks.append(ok("privileges_write", "the role can write fixes and keep the audit trail"))
    return checks


def _audit_access(context: Context) -> tuple[list[str], list[str]]:
    s = context.settings
    schema = sql.Identifier(s.audit_schema)
    tables = [audit.table(s, name).as_string(context.conn) for name in ("runs", "changes", "lease")]
    row = context.conn.execute(
        queries.get("doctor_audit_access"),
        {"schema": schema.as_string(context.conn), "tables": tables},
    ).fetchone()
    assert row is not None
    can_create, exists, usage, writable = row
    role = sql.Identifier(context.server.get("role", "current_user"))
    if not exists and not can_create:
        fix = sql.SQL("CREATE SCHEMA {} AUTHORIZATION {};").format(schema, role)
        return (
            [f"CREATE on the database, to create the audit schema {s.audit_schema}"],
            [fix.as_string(context.conn) + " (as an admin)"],
        )
    if exists and not (usage and writable):
        fix = sql.SQL(
            "GRANT USAGE ON SCHEMA {s} TO {r}; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES "
            "IN SCHEMA {s} TO {r};"
        ).format(s=schema, r=role)
        return [f"access to the audit schema {s.audit_schema}"], [fix.as_string(context.conn)]
    return [], []


def _rls_applies(access: dict[str, Any], context: Context) -> bool:
    if not access["rls_enabled"] or context.server.get("bypasses_rls"):
        return False
    return not (access["acts_as_owner"] and not access["rls_forced"])


def tool_rls(context: Context) -> list[Check]:
    """Row-level security on the tool's own role would hide rows: missing profiles that exist."""
    if context.tables is None:
        return []
    role = context.server.get("role")
    hidden = []
    for table in (context.tables.usage, context.tables.profiles):
        access = _access(context, table.name) if table.exists else None
        if access and _rls_applies(access, context):
            hidden.append(str(table.name))
    if hidden:
        return [
            fail(
                "tool_rls",
                f"row-level security applies to role {role} on "
                f"{', '.join(hidden)}: tokenfix would see only the rows the "
                "policies allow and take the others for missing",
                "connect as the table owner, postgres, or a BYPASSRLS role (service_role "
                "on Supabase)",
            )
        ]
    return [ok("tool_rls", f"role {role} sees every row (owner, superuser, BYPASSRLS, or RLS off)")]


@dataclass(frozen=True)
class Policy:
    name: str
    command: str
    permissive: bool
    roles: list[str]
    using_expression: str | None
    check_expression: str | None

    def permits_update_by(self, role: str) -> bool:
        return (
            self.permissive
            and self.command in ("UPDATE", "ALL")
            and (role in self.roles or "public" in self.roles)
        )


def _policies(context: Context) -> list[Policy]:
    with context.conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            queries.get("doctor_policies"),
            {"table": context.quoted(context.settings.profiles_table)},
        ).fetchall()
    return [Policy(**row) for row in rows]


def _api_roles(context: Context) -> list[dict[str, Any]]:
    s = context.settings
    with context.conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            queries.get("doctor_api_roles"),
            {
                "table": context.quoted(s.profiles_table),
                "remaining": s.remaining_column.table_name,
                "used": s.used_column.table_name,
            },
        ).fetchall()


def profiles_rls(context: Context) -> list[Check]:
    if context.tables is None or not context.tables.profiles.exists:
        return []
    profiles = context.settings.profiles_table
    access = _access(context, profiles) or {}
    supabase_shaped = bool(_api_roles(context))
    if not access.get("rls_enabled"):
        if not supabase_shaped:
            return [
                ok(
                    "profiles_rls",
                    f"row-level security is off on {profiles} (no Data API roles in this cluster)",
                )
            ]
        statement = sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY;").format(profiles.identifier)
        return [
            warn(
                "profiles_rls",
                f"row-level security is off on {profiles}: the Data API "
                "roles' access rests on grants alone",
                statement.as_string(context.conn),
            )
        ]
    updates = [p for p in _policies(context) if p.command in ("UPDATE", "ALL")]
    described = (
        "; ".join(
            f"{p.name} ({p.command} to {', '.join(p.roles)}"
            f"{'' if p.permissive else ', restrictive'}: {p.using_expression or 'true'})"
            for p in updates
        )
        or "none"
    )
    forced = ", forced for the owner too" if access.get("rls_forced") else ""
    return [
        ok(
            "profiles_rls",
            f"row-level security is on for {profiles}{forced}; policies that "
            f"allow UPDATE: {described}",
        )
    ]


def api_roles(context: Context) -> list[Check]:
    """anon / authenticated / service_role: could each update a balance? Catalogs, then proof."""
    if context.tables is None or not context.tables.profiles.exists:
        return []
    roles = _api_roles(context)
    if not roles:
        return []
    access = _access(context, context.settings.profiles_table) or {}
    policies = _policies(context)
    probe_user = _probe_user(context)
    definers = [f for f, _, updates in _definer_functions(context) if updates]
    checks = []
    for role in roles:
        by_catalog, why = _catalog_verdict(role, access, policies)
        probe = _probe(context, role, probe_user)
        can_update = by_catalog if probe.rows is None else probe.rows > 0
        evidence = f"{why}; {probe.description}"
        checks.append(_verdict(context, role["role"], can_update, evidence, definers))
    return checks


def _catalog_verdict(
    role: dict[str, Any], access: dict[str, Any], policies: list[Policy]
) -> tuple[bool, str]:
    name = role["role"]
    if not role["may_update_balance"]:
        return False, f"no UPDATE privilege on the balance columns for {name}"
    if role["bypasses_rls"]:
        return True, f"UPDATE granted and {name} bypasses RLS"
    if not access.get("rls_enabled"):
        return True, "UPDATE granted and RLS is off"
    permitting = [p.name for p in policies if p.permits_update_by(name)]
    if permitting:
        return True, f"UPDATE granted and policy {', '.join(permitting)} permits it"
    return False, f"UPDATE granted but no RLS policy lets {name} update"


@dataclass(frozen=True)
class ProbeResult:
    rows: int | None  # None: not probed
    description: str


def _probe_user(context: Context) -> uuid.UUID | None:
    row = context.conn.execute(
        queries.compose("probe_user", profiles=context.settings.profiles_table.identifier)
    ).fetchone()
    return row[0] if row else None


def _probe(context: Context, role: dict[str, Any], user: uuid.UUID | None) -> ProbeResult:
    name = role["role"]
    if not context.probe:
        return ProbeResult(None, "probe off (--no-probe): catalog verdict")
    if context.server.get("standby"):
        return ProbeResult(None, "probe skipped on a standby: catalog verdict")
    if not role["can_set_role"]:
        return ProbeResult(
            None,
            f"probe skipped: role {context.server.get('role')} cannot SET "
            f"ROLE {name}: catalog verdict",
        )
    if user is None:
        return ProbeResult(None, "probe skipped: no profile row to probe with: catalog verdict")
    try:
        rows = _probe_update(context, name, user)
    except pg_errors.InsufficientPrivilege:
        return ProbeResult(0, f"probe: UPDATE as {name} was refused (permission denied)")
    except pg_errors.LockNotAvailable:
        return ProbeResult(None, "probe skipped: the probe row was locked: catalog verdict")
    return ProbeResult(
        rows,
        f"probe: UPDATE as {name} with a JWT for user {user} touched "
        f"{rows} row{'s' if rows != 1 else ''} (rolled back)",
    )


def _probe_update(context: Context, role: str, user: uuid.UUID) -> int:
    """The app's balance update, as `role` with the user's JWT claims; always rolled back."""
    s = context.settings
    conn = context.conn
    claims = json.dumps({"sub": str(user), "role": role})
    with conn.transaction(savepoint_name="tokenfix_probe") as probe:
        conn.execute(
            "SELECT set_config('lock_timeout', %s, true),"
            " set_config('statement_timeout', %s, true),"
            " set_config('request.jwt.claim.sub', %s, true),"
            " set_config('request.jwt.claim.role', %s, true),"
            " set_config('request.jwt.claims', %s, true)",
            (PROBE_LOCK_TIMEOUT, PROBE_STATEMENT_TIMEOUT, str(user), role, claims),
        )
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        statement = queries.compose(
            "probe_update",
            profiles=s.profiles_table.identifier,
            remaining=sql.Identifier(s.remaining_column.table_name),
        )
        rows = conn.execute(statement, {"user_id": user}).rowcount
        raise psycopg.Rollback(probe)
    return rows  # pragma: no cover  (the rollback above always leaves the block)


def _verdict(
    context: Context, role: str, can_update: bool, evidence: str, definers: list[str]
) -> Check:
    name = f"api_role_{role}"
    s = context.settings
    table = s.profiles_table
    if role in ("anon", "authenticated") and can_update:
        who = "anyone with the anon key" if role == "anon" else "any signed-in user"
        revoke = (
            sql.SQL("REVOKE UPDATE ON {t} FROM {r}; REVOKE UPDATE ({a}, {b}) ON {t} FROM {r};")
            .format(
                t=table.identifier,
                r=sql.Identifier(role),
                a=sql.Identifier(s.remaining_column.table_name),
                b=sql.Identifier(s.used_column.table_name),
            )
            .as_string(context.conn)
        )
        return fail(
            name,
            f"{role} can update balances in {table}: {who} can set their own "  # noqa: S608 (advice text)
            f"balance through the Data API ({evidence})",
            f"{revoke} (or drop the UPDATE policy); update balances only with "
            "service_role or a SECURITY DEFINER function",
        )
    if role == "authenticated":
        if definers:
            return ok(
                name,
                f"authenticated cannot update balances directly ({evidence}); "
                f"SECURITY DEFINER function(s) {', '.join(definers)} do it",
            )
        return warn(
            name,
            f"authenticated cannot update balances ({evidence}): an app that "
            "updates balances with the user's session client silently updates 0 "
            "rows, the seed incident's failure",
            "update balances from the server with the service role key, or through a "
            "SECURITY DEFINER function granted to authenticated",
        )
    if role == "service_role" and not can_update:
        grant = sql.SQL("GRANT UPDATE ON {} TO service_role;").format(table.identifier)
        return warn(
            name,
            f"service_role cannot update balances ({evidence}): server-side balance updates fail",
            grant.as_string(context.conn),
        )
    return ok(name, f"{role}: {'can' if can_update else 'cannot'} update balances ({evidence})")


def _definer_functions(context: Context) -> list[tuple[str, bool, bool]]:
    s = context.settings
    table = re.escape(s.profiles_table.table_name)
    qualified = rf'("?[A-Za-z_][A-Za-z0-9_$]*"?\s*\.\s*)?"?{table}"?'
    writes = rf"(update|insert\s+into|delete\s+from)\s+{qualified}\M"
    columns = "|".join(re.escape(c.table_name) for c in (s.remaining_column, s.used_column))
    updates = rf"update\s+{qualified}\M.*\m({columns})\M"
    rows = context.conn.execute(
        queries.get("doctor_definer_functions"),
        {"writes_pattern": writes, "updates_pattern": updates},
    ).fetchall()
    return [(str(f), bool(fixed), bool(upd)) for f, fixed, upd in rows]


def definer_functions(context: Context) -> list[Check]:
    if context.tables is None:
        return []
    unsafe = [f for f, fixed, _ in _definer_functions(context) if not fixed]
    if unsafe:
        fix = "; ".join(f"ALTER FUNCTION {f} SET search_path = ''" for f in unsafe)
        return [
            warn(
                "security_definer_functions",
                f"SECURITY DEFINER function(s) {', '.join(unsafe)} write "
                f"{context.settings.profiles_table} without a fixed search_path",
                fix + " (then schema-qualify the names they use)",
            )
        ]
    return [
        ok(
            "security_definer_functions",
            "no SECURITY DEFINER function writes the profiles table without a fixed search_path",
        )
    ]
