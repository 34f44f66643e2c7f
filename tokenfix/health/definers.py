"""SECURITY DEFINER functions that write the balance, the ledger or the prices (docs/doctor.md):
they
run with their owner's rights whoever calls them, so the caller's only limit is the function's
own argument checking. Judged from the catalogs; never called."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tokenfix import queries
from tokenfix.base.identifiers import QualifiedName
from tokenfix.health.grants import PUBLIC, shown
from tokenfix.health.report import Check, Context, ok, warn
from tokenfix.health.roles import api_roles, judged, supabase_shaped
from tokenfix.health.target import TrustTarget, trust_target

NAME = "security_definer_callable"


@dataclass(frozen=True)
class DefinerFunction:
    function: str
    owner: str
    fixed_search_path: bool
    writes: tuple[QualifiedName, ...]
    updates_balance: bool
    callers: tuple[str, ...]
    """Who among PUBLIC, anon and authenticated may EXECUTE it."""
    calls: tuple[str, ...] = ()
    """The functions it calls down to the one that writes (empty: it writes itself)."""


def _writes(table: QualifiedName) -> str:
    name = re.escape(table.table_name)
    qualified = rf'("?[A-Za-z_][A-Za-z0-9_$]*"?\s*\.\s*)?"?{name}"?'
    return rf"(update|insert\s+into|delete\s+from|merge\s+into)\s+{qualified}\M"


def definer_writers(
    conn: psycopg.Connection[Any], target: TrustTarget, roles: list[str]
) -> list[DefinerFunction]:
    tables = target.tables
    patterns = [_writes(t) for t in tables]
    name = re.escape(target.balance_table.table_name)
    columns = "|".join(re.escape(c) for c in target.balance_columns)
    updates = rf'update\s+("?[A-Za-z_][A-Za-z0-9_$]*"?\s*\.\s*)?"?{name}"?\M.*\m({columns})\M'
    # The recursive query's estimate crosses jit_above_cost, yet it reads a few catalog rows:
    # compiling it took 2 s of every doctor run (twice: the API roles check uses it too).
    if conn.info.server_version >= 110000:  # jit exists from PostgreSQL 11
        conn.execute("SELECT set_config('jit', 'off', true)")
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            queries.get("doctor_definer_writers"),
            {
                "writes": patterns,
                "writes_any": "|".join(f"({p})" for p in patterns),
                "updates_balance": updates,
                "roles": roles,
            },
        ).fetchall()
    return [
        DefinerFunction(
            function=row["function"],
            owner=row["owner"],
            fixed_search_path=row["fixed_search_path"],
            writes=tuple(tables[i - 1] for i in row["writes"]),
            updates_balance=row["updates_balance"],
            callers=tuple(row["callers"]),
            calls=tuple(row["calls"]),
        )
        for row in rows
    ]


def callable_definers(context: Context) -> list[Check]:
    roles = api_roles(context.conn)
    if not supabase_shaped(roles):
        return []
    target = trust_target(context.settings, context.mapping)
    callable_ = [f for f in definer_writers(context.conn, target, judged(roles)) if f.callers]
    names = ", ".join(map(str, target.tables))
    if not callable_:
        return [
            ok(
                NAME,
                f"no SECURITY DEFINER function writing {names} may be called by anon, "
                "authenticated or PUBLIC",
            )
        ]
    described = "; ".join(
        f"{f.function} writes {', '.join(map(str, f.writes))}"
        f"{' (through ' + ' -> '.join(f.calls) + ')' if f.calls else ''} as {f.owner} and "
        "may be called "
        f"by {', '.join(map(shown, f.callers))}"
        f"{'' if f.fixed_search_path else ' (and has no fixed search_path)'}"
        for f in callable_
    )
    revoke = " ".join(
        f"REVOKE EXECUTE ON FUNCTION {f.function} FROM PUBLIC, anon, authenticated;"
        for f in callable_
    )
    everyone = any(PUBLIC in f.callers for f in callable_)
    return [
        warn(
            NAME,
            f"SECURITY DEFINER function(s) that bypass the tables' privileges and RLS can be "
            f"called through the Data API: {described}. The caller picks the arguments "
            "(a negative cost raises a balance)"
            + (
                "; EXECUTE is PUBLIC's by default, anon and authenticated included"
                if everyone
                else ""
            )
            + ". doctor never calls them",
            f"{revoke} then GRANT EXECUTE only to the roles that need it (service_role for "
            "server-side calls); or make each function validate its arguments (refuse a "
            "negative amount, take the user from auth.uid(), not from an argument)",
        )
    ]
