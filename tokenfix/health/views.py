"""Views over the balance, ledger and price tables that API roles may write (docs/doctor.md).

A view without `security_invoker` reaches its table with its owner's rights: the table's
grants and row-level security are checked against the owner (often postgres, who bypasses
them), not against the caller. Such views are probed through the view itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from tokenfix import queries
from tokenfix.base.identifiers import QualifiedName
from tokenfix.health.expected import expected_balance
from tokenfix.health.fix_trial import rendered, trial, unverified
from tokenfix.health.grants import RoleAccess, role_access, shown
from tokenfix.health.ledger_probe import Probed, probe_ledger, probe_pricing
from tokenfix.health.raise_probe import LARGE, BalanceRow, first_row, probe_raises
from tokenfix.health.report import Check, Context, fail, ok
from tokenfix.health.roles import ApiRole, api_roles, judged, probed, supabase_shaped
from tokenfix.health.target import LedgerShape, TrustTarget, trust_target
from tokenfix.health.trust import WHO, skip_reason

NAME = "writable_views"
UPDATE, INSERT, DELETE = 4, 8, 16


@dataclass(frozen=True)
class View:
    name: QualifiedName
    base: QualifiedName
    kind: str  # balance, ledger or pricing
    owner: str
    security_invoker: bool
    events: int
    columns: tuple[str, ...]
    through: tuple[QualifiedName, ...] = ()
    """The views between this one and its table, outermost first (empty: directly over it)."""

    def accepts(self, event: int) -> bool:
        return bool(self.events & event)


def dependent_views(conn: psycopg.Connection[Any], target: TrustTarget) -> list[View]:
    tables = target.tables
    kinds = [
        "balance",
        *("ledger" for _ in target.ledgers),
        *(["pricing"] if target.pricing else []),
    ]
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            queries.get("doctor_dependent_views"),
            {"relations": [t.identifier.as_string(conn) for t in tables]},
        ).fetchall()
    return [
        View(
            name=QualifiedName([row["schema"], row["name"]]),
            base=tables[row["base"] - 1],
            kind=kinds[row["base"] - 1],
            owner=row["owner"],
            security_invoker=row["security_invoker"],
            events=row["events"],
            columns=tuple(row["columns"]),
            through=tuple(
                QualifiedName([schema, name])
                for schema, name in zip(row["through_schemas"], row["through_names"], strict=True)
            ),
        )
        for row in rows
    ]


def _writers(view: View, access: dict[str, RoleAccess], target: TrustTarget) -> list[str]:
    """Roles that may write the view in a way that matters for its table."""
    found = []
    for role, grants in access.items():
        if view.kind == "balance":
            may = (view.accepts(UPDATE) and bool(grants.may_update(target.balance_columns))) or (
                view.accepts(INSERT) and grants.may("INSERT")
            )
        else:
            may = (
                (view.accepts(INSERT) and grants.may("INSERT"))
                or (view.accepts(UPDATE) and grants.may("UPDATE"))
                or (view.accepts(DELETE) and grants.may("DELETE"))
            )
        if may:
            found.append(role)
    return found


def _columns_for(view: View, target: TrustTarget) -> tuple[str, ...]:
    if view.kind == "balance":
        return (target.key, *target.balance_columns)
    if view.kind == "pricing" and target.pricing:
        return target.pricing.columns
    ledger = next(ledger for ledger in target.ledgers if ledger.table == view.base)
    return (ledger.key, *(ledger.shape or LedgerShape()).columns)


def writable_views(context: Context) -> list[Check]:
    return _writable_views(context, verify=True)


def _writable_views(context: Context, *, verify: bool) -> list[Check]:
    roles = api_roles(context.conn)
    if not supabase_shaped(roles):
        return []
    target = trust_target(context.settings, context.mapping)
    views = dependent_views(context.conn, target)
    findings: list[str] = []
    harmless: list[str] = []
    open_views: list[QualifiedName] = []  # each open view, then the views it reads through
    for view in views:
        columns = target.balance_columns if view.kind == "balance" else _columns_for(view, target)
        access = role_access(context.conn, view.name, judged(roles), columns)
        writers = _writers(view, access, target)
        if not writers:
            continue
        if view.security_invoker:
            harmless.append(
                f"view {view.name} runs with the caller's rights (security_invoker): writes "
                f"through it meet {view.base}'s own grants and policies, judged above"
            )
            continue
        hole, finding = _probe_view(context, target, view, access, writers, roles)
        if hole:
            findings.append(finding)
            open_views += [view.name, *view.through]
        else:
            harmless.append(finding)
    if findings:
        chain = list(dict.fromkeys(open_views))
        invoker = [
            sql.SQL("ALTER VIEW {} SET (security_invoker = true)").format(name.identifier)
            for name in chain
        ]
        revoke = [
            sql.SQL("REVOKE INSERT, UPDATE, DELETE ON {} FROM PUBLIC, {}").format(
                name.identifier, sql.SQL(", ").join(sql.SQL(r.name) for r in probed(roles))
            )
            for name in chain
        ]
        check = fail(NAME, "; ".join(findings), "")
        if not verify:
            return [check]
        return [replace(check, fix=_verified_view_fix(context, chain[0], invoker, revoke))]
    if harmless:
        return [ok(NAME, "; ".join(harmless))]
    return [ok(NAME, "no view over these tables lets an API role write it with its owner's rights")]


INVOKER_NOTE = " (the table's own grants and policies then apply to the caller)"


def _verified_view_fix(
    context: Context,
    first: QualifiedName,
    invoker: list[sql.Composed],
    revoke: list[sql.Composed],
) -> str:
    """security_invoker where it closes the hole (not when the table itself lets the role
    write: then the view's own grants must go); each tried, rolled back, before printing."""
    conn = context.conn
    if not context.probe or context.server.get("standby"):
        why = "probes are off" if not context.probe else "no probe can run here"
        return unverified(rendered(conn, invoker) + INVOKER_NOTE, why)

    def still_open() -> bool:
        return _writable_views(context, verify=False)[0].status == "fail"

    first_try = trial(conn, invoker, still_open, first)
    if first_try.closed is None:
        return unverified(rendered(conn, invoker) + INVOKER_NOTE, first_try.why)
    second_try = trial(conn, revoke, still_open, first)
    if first_try.closed:
        alternative = f", or {rendered(conn, revoke)}" if second_try.closed else ""
        return rendered(conn, invoker) + INVOKER_NOTE + alternative
    if second_try.closed:
        return (
            f"{rendered(conn, revoke)} (security_invoker alone does not close it: the table "
            "itself lets the role write, see api_role_*)"
        )
    return (
        "doctor tried security_invoker and revoking the view's writes, and the probes still got "
        "through: look for what else lets the roles write through it (a rule, an INSTEAD OF "
        "trigger that writes as its owner)"
    )


def _probe_view(
    context: Context,
    target: TrustTarget,
    view: View,
    access: dict[str, RoleAccess],
    writers: list[str],
    roles: list[ApiRole],
) -> tuple[bool, str]:
    """(a hole?, what was found) for one view that runs with its owner's rights."""
    over = (
        f"{view.base} through {', '.join(map(str, view.through))}"
        if view.through
        else f"{view.base}"
    )
    rights = (
        f"the rights of its owner {view.owner} (no security_invoker)"
        if not view.through
        else "an owner's rights (a view of the chain has no security_invoker)"
    )
    head = (
        f"view {view.name} over {over} runs with {rights} and "
        f"{', '.join(map(shown, writers))} may write it"
    )
    missing = [c for c in _columns_for(view, target) if c not in view.columns]
    ledger = next((ledger for ledger in target.ledgers if ledger.table == view.base), None)
    unshaped = view.kind == "ledger" and (ledger is None or ledger.shape is None)
    notes: list[str] = []
    holes: list[str] = []
    proven_safe = True
    for role in [r for r in probed(roles) if r.name in writers]:
        skip: str | None
        if missing or unshaped:
            skip = "probe skipped: the view renames or hides columns: catalog verdict"
        else:
            skip = skip_reason(context, target, role, view.name, view.base)
        if skip:
            notes.append(skip)
            proven_safe = False
            continue
        grants = access.get(role.name)
        if view.kind == "balance":
            raised = probe_raises(
                context.conn, target, role.name, grants, relation=view.name,
                inserts=view.accepts(INSERT),
            )  # fmt: skip
            notes.extend(raised.notes)
            if raised.other is not None and raised.other.took_effect:
                holes.append(f"{WHO[role.name]} can raise any user's balance through it")
            elif raised.own is not None and raised.own.took_effect:
                holes.append(f"{WHO[role.name]} can raise their own balance through it")
            elif any(o is not None and o.took_effect for o in (raised.inserted, raised.reinserted)):
                holes.append(f"{WHO[role.name]} can POST a balance row of {LARGE:,} through it")
            elif not all(
                o.conclusive
                for o in (raised.own, raised.other, raised.inserted, raised.reinserted)
                if o is not None
            ):
                proven_safe = False
            continue
        probes: list[Probed]
        if ledger is not None and ledger.shape is not None:
            probes = probe_ledger(
                context.conn, target, ledger, ledger.shape, role.name, grants,
                fallback_key=_key(first_row(context.conn, target)), relation=view.name,
                expected=expected_balance(context.conn, context.settings, context.mapping),
            )  # fmt: skip
        else:
            assert target.pricing is not None
            probes = probe_pricing(
                context.conn, target.pricing, role.name, grants, subject=None, relation=view.name
            )
        notes.extend(f"probe as {role.name}: {p.description} {p.outcome.detail}" for p in probes)
        harmful = [p for p in probes if p.outcome.took_effect and p.operation != "charge"]
        if harmful:
            what = "set prices" if view.kind == "pricing" else "mint grants or erase charges"
            holes.append(f"{WHO[role.name]} can {what} through it")
        elif not all(p.outcome.conclusive for p in probes):
            proven_safe = False
    if holes:
        return True, f"{head}: {'; '.join(holes)} ({'; '.join(notes)})"
    # PUBLIC's grants reach anon and authenticated too: their probes cover it.
    if proven_safe and notes:
        return False, f"{head}, but the probes changed nothing ({'; '.join(notes)})"
    return True, f"{head} ({'; '.join([*notes, 'catalog verdict'])})"


def _key(row: BalanceRow | None) -> object | None:
    return row.key if row else None
