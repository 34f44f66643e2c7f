"""Who may read and write what: the tool's own privileges, and the seed incident's question —
row-level security on the balance table; which API roles can raise a balance is the trust
boundary's job (trust.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from tokenfix import queries
from tokenfix.audit import trail
from tokenfix.base.identifiers import QualifiedName
from tokenfix.health.report import Check, Context, fail, ok, warn
from tokenfix.ledger.visibility import row_security


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
    profiles = _access(context, context.balance_table) or {}
    missing = [
        p
        for p, key in (("UPDATE", "can_update"), ("INSERT", "can_insert"), ("DELETE", "can_delete"))
        if not profiles.get(key)
    ]
    problems = []
    fixes = []
    if missing:
        problems.append(
            f"{' and '.join(missing)} on {context.balance_table} (UPDATE: fixes; INSERT: "
            "--create-missing; DELETE: revert of a created profile)"
        )
        fixes.append(_grant(context, ", ".join(missing), [context.balance_table]))
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
    tables = [trail.table(s, name).as_string(context.conn) for name in ("runs", "changes", "lease")]
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


def tool_rls(context: Context) -> list[Check]:
    """Row-level security on the tool's own role would hide rows: missing profiles that exist.
    The same catalog query diagnose and reconcile ask first, over every table of the mapping."""
    if context.tables is None:
        return []
    found = row_security(context.conn, context.mapping)
    if found.partial:
        off = (
            "; with row_security off, every query on them fails instead"
            if not found.row_security
            else ""
        )
        return [
            fail(
                "tool_rls",
                f"{found.finding}: tokenfix would see only the rows the policies allow and "
                f"take the others for missing{off}",
                "connect as the table owner, postgres, or a BYPASSRLS role (service_role "
                "on Supabase)",
            )
        ]
    role = context.server.get("role")
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
            {"table": context.quoted(context.balance_table)},
        ).fetchall()
    return [Policy(**row) for row in rows]


def _api_roles(context: Context) -> list[dict[str, Any]]:
    with context.conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            queries.get("doctor_api_roles"),
            {
                "table": context.quoted(context.balance_table),
                "columns": list(context.balance_columns),
            },
        ).fetchall()


def profiles_rls(context: Context) -> list[Check]:
    if context.tables is None or not context.tables.profiles.exists:
        return []
    profiles = context.balance_table
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


def _definer_functions(context: Context) -> list[tuple[str, bool, bool]]:
    table = re.escape(context.balance_table.table_name)
    qualified = rf'("?[A-Za-z_][A-Za-z0-9_$]*"?\s*\.\s*)?"?{table}"?'
    writes = rf"(update|insert\s+into|delete\s+from)\s+{qualified}\M"
    columns = "|".join(re.escape(c) for c in context.balance_columns)
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
                f"{context.balance_table} without a fixed search_path",
                fix + " (then schema-qualify the names they use)",
            )
        ]
    return [
        ok(
            "security_definer_functions",
            "no SECURITY DEFINER function writes the profiles table without a fixed search_path",
        )
    ]
