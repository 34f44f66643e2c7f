"""The ledger and the prices are reconcile's source of truth (docs/doctor.md): can an API role mint
a
grant, erase a charge or set a price? The catalogs' verdict, proven by probes that are always
rolled back; and who may read them with row-level security off."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from psycopg import sql

from tokenfix.health.expected import expected_balance
from tokenfix.health.fix_trial import owner_change, rendered, trial, unverified
from tokenfix.health.grants import PUBLIC, Exposure, columns_of, policies, sees_rows, shown
from tokenfix.health.ledger_probe import Operation, Probed, probe_ledger, probe_pricing
from tokenfix.health.mint import TableExposure, table_exposures
from tokenfix.health.raise_probe import BalanceRow, first_row
from tokenfix.health.report import Check, Context, fail, ok, warn
from tokenfix.health.roles import ApiRole, api_roles, judged, probed, supabase_shaped
from tokenfix.health.target import LedgerShape, LedgerTarget, TrustTarget, trust_target
from tokenfix.health.trust import WHO, skip_reason

WHO_PUBLIC = "every role (PUBLIC)"


@dataclass(frozen=True)
class Finding:
    """Whether one role can do one kind of harm, and the evidence."""

    can: bool
    evidence: str


def _decide(
    exposure: TableExposure,
    command: Exposure,
    probes: list[Probed],
    *,
    catalog_allows: bool,
    filtered: bool = False,
    unprobed: tuple[str, ...] = (),
) -> Finding:
    """The probes decide when they are conclusive; otherwise the catalogs do. `filtered`: the
    probe names its row in a WHERE clause (UPDATE, DELETE), which the SELECT policies see.
    `unprobed`: write paths the catalogs leave open that no probe tried conclusively — a
    probe only adds evidence, so those keep the catalogs' verdict."""
    notes = [f"{p.description} {p.outcome.detail}" for p in probes]
    if any(p.outcome.took_effect for p in probes):
        return Finding(True, "; ".join(notes))
    if unprobed and command.allowed:
        notes.append(
            f"{command.how}, and no probe settled {', '.join(unprobed)}, which it may change "
            "(catalog verdict)"
        )
        return Finding(True, "; ".join(notes))
    conclusive = [p for p in probes if p.outcome.conclusive]
    if conclusive and len(conclusive) == len(probes):
        trusting = command.trusts_user_editable_claims
        if command.allowed and trusting:
            notes.append(
                f"but policy {', '.join(p.name for p in trusting)} trusts user_metadata, which "
                "users set themselves: catalog verdict"
            )
            return Finding(True, "; ".join(notes))
        blind = all(p.outcome.kind == "no_rows" for p in conclusive)
        hidden = not sees_rows(exposure.access, exposure.policies)
        if filtered and blind and command.allowed and hidden:
            notes.append(
                "no SELECT policy lets the role see the row, but a statement without a filter "
                "is judged by the command's own policy: catalog verdict"
            )
            return Finding(True, "; ".join(notes))
        return Finding(False, "; ".join(notes))
    # No conclusive probe: the catalogs decide (a skipped probe's note says so once per role).
    notes.append(f"{command.how} (catalog verdict)" if probes else command.how)
    return Finding(catalog_allows, "; ".join(notes))


def _unprobed(
    ledger: LedgerTarget, shape: LedgerShape | None, exposure: TableExposure, probes: list[Probed]
) -> tuple[str, ...]:
    """The columns that move the expected balance which the role may UPDATE, but which no
    conclusive probe changed (its charge row's amount, counted flag, action or owner)."""
    if shape is None or exposure.access is None:
        return ()
    settled = {p.column for p in probes if p.outcome.conclusive}
    columns = (shape.amount, shape.counted, shape.action, ledger.key)
    return tuple(c for c in exposure.access.may_update(columns) if c not in settled)


def _role_phrase(role: str) -> str:
    return WHO.get(role, WHO_PUBLIC) + f" ({shown(role)})"


def ledger_writes(context: Context) -> list[Check]:
    target = trust_target(context.settings, context.mapping)
    roles = api_roles(context.conn)
    checks = []
    for ledger in target.ledgers:
        name = "ledger_writes" + (f"_{ledger.table.table_name}" if len(target.ledgers) > 1 else "")
        check = _ledger_check(context, target, ledger, roles, name)
        if check is not None and check.status == "fail":
            check = _verified_ledger_fix(context, target, ledger, roles, name, check)
        if check is not None and (supabase_shaped(roles) or check.status != "ok"):
            checks.append(check)
    return checks


def _verified_ledger_fix(
    context: Context,
    target: TrustTarget,
    ledger: LedgerTarget,
    roles: list[ApiRole],
    name: str,
    check: Check,
) -> Check:
    """The fix tried before it is printed: revoking the writes (and handing over a table an
    API role owns); then, as the alternative for apps whose users record their own usage,
    charge rows only. Each is printed only when the probes, run again under it, find the
    ledger closed."""
    conn = context.conn
    table = ledger.table
    # anon and authenticated: the tool's own constants (roles.PROBED), written bare as
    # everyone writes them.
    grantees = [sql.SQL("PUBLIC"), *(sql.SQL(r.name) for r in probed(roles))]
    owners = [s for r in probed(roles) for s in owner_change(conn, table, r.name)]

    def revoke(privileges: str) -> sql.Composed:
        return sql.SQL("REVOKE {} ON {} FROM {}").format(
            sql.SQL(privileges), table.identifier, sql.SQL(", ").join(grantees)
        )

    closing = [*owners, revoke("INSERT, UPDATE, DELETE")]
    server = " and write ledger rows from the server (service_role)"
    if not context.probe or context.server.get("standby"):
        why = "probes are off" if not context.probe else "no probe can run here"
        return replace(check, fix=unverified(rendered(conn, closing), why) + server)

    def still_open() -> bool:
        again = _ledger_check(context, target, ledger, roles, name)
        return again is not None and again.status == "fail"

    result = trial(conn, closing, still_open, table)
    if result.closed is None:
        return replace(check, fix=unverified(rendered(conn, closing), result.why) + server)
    if not result.closed:
        return replace(
            check,
            fix="doctor tried revoking every write on the ledger from the API roles and the "
            "probes still got through: look for what else lets them write it (a role they are "
            "members of, a rule, a trigger that writes as its owner)" + server,
        )
    fix = rendered(conn, closing) + server
    charges_only = _charges_only(context, target, ledger, owners, revoke)
    if charges_only and trial(conn, charges_only, still_open, table).closed:
        fix += (
            "; if users must record their own usage, let them insert charge rows only: "
            + rendered(conn, charges_only)
        )
    return replace(check, fix=fix)


def _charges_only(
    context: Context,
    target: TrustTarget,
    ledger: LedgerTarget,
    owners: list[sql.Composed],
    revoke: Callable[[str], sql.Composed],
) -> list[sql.Composed]:
    if ledger.shape is None:
        return []
    table = ledger.table.identifier
    drops = [
        sql.SQL("DROP POLICY {} ON {}").format(sql.Identifier(p.name), table)
        for p in policies(context.conn, ledger.table)
        if p.command in ("INSERT", "UPDATE", "DELETE", "ALL")
    ]
    return [
        *owners,
        revoke("UPDATE, DELETE"),
        *drops,
        sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(table),
        sql.SQL(
            "CREATE POLICY own_charges_insert ON {t} FOR INSERT TO authenticated WITH CHECK "
            "({key} = auth.uid() AND {action} <> ALL (ARRAY[{actions}]))"
        ).format(
            t=table,
            key=sql.Identifier(ledger.key),
            action=sql.Identifier(ledger.shape.action),
            actions=sql.SQL(", ").join(map(sql.Literal, target.non_charge_actions)),
        ),
    ]


def _ledger_check(
    context: Context, target: TrustTarget, ledger: LedgerTarget, roles: list[ApiRole], name: str
) -> Check | None:
    exposures = table_exposures(context.conn, ledger.table, "ledger", judged(roles), target)
    if not exposures:
        return None
    fallback = _key(first_row(context.conn, target))
    expected = expected_balance(context.conn, context.settings, context.mapping)
    shape = ledger.shape
    columns = columns_of(context.conn, ledger.table) or set()
    if shape is not None and not {ledger.key, *shape.columns} <= columns:
        shape = None  # the schema checks name the missing column; nothing to probe with
    mints: list[str] = []
    erases: list[str] = []
    reports: list[str] = []
    clean: list[str] = []
    for role in [*probed(roles), None]:
        role_name = role.name if role else PUBLIC
        exposure = exposures[role_name]
        found: dict[Operation, list[Probed]] = {}
        skip = None
        if role is not None and shape is not None:
            skip = skip_reason(context, target, role, ledger.table)
            # Probe even where the catalogs say no: a probe is cheap and proves them right.
            if skip is None and exposure.access is not None:
                for p in probe_ledger(
                    context.conn, target, ledger, shape, role_name, exposure.access,
                    fallback_key=fallback, expected=expected,
                ):  # fmt: skip
                    found.setdefault(p.operation, []).append(p)
        elif role is not None:
            skip = "no probe: the ledger's columns are not the seed's: catalog verdict"
        note = f" — {skip}" if skip else ""
        mint = _decide(
            exposure,
            exposure.insert,
            found.get("mint", []),
            catalog_allows=exposure.insert.allowed and not exposure.charge_only,
        )
        lower = _decide(
            exposure,
            exposure.update,
            found.get("lower", []),
            catalog_allows=exposure.update.allowed,
            filtered=True,
            unprobed=_unprobed(ledger, shape, exposure, found.get("lower", [])) if found else (),
        )
        delete = _decide(
            exposure,
            exposure.delete,
            found.get("delete", []),
            catalog_allows=exposure.delete.allowed,
            filtered=True,
        )
        charge = _decide(
            exposure,
            exposure.insert,
            found.get("charge", []),
            catalog_allows=exposure.insert.allowed,
        )
        who = _role_phrase(role_name)
        if mint.can or lower.can or delete.can:
            harms = []
            if mint.can:
                harms.append(f"mint grants ({mint.evidence})")
            if lower.can or delete.can:
                evidence = "; ".join(f.evidence for f in (lower, delete) if f.can)
                harms.append(f"erase charges ({evidence})")
            (mints if mint.can else erases).append(f"{who} can {' and '.join(harms)}{note}")
        elif charge.can:
            reports.append(f"{who} ({mint.evidence}; {charge.evidence}){note}")
        else:
            evidence = "; ".join(dict.fromkeys(f.evidence for f in (mint, lower, delete, charge)))
            clean.append(f"{shown(role_name)}: {evidence}{note}")
    table = ledger.table
    if mints or erases:
        return fail(
            name,
            f"API roles can write {table}, the ledger reconcile trusts: "
            + "; ".join(mints + erases)
            + ". reconcile would then write the balance they made up",
            _ledger_fix(context, target, ledger, exposures),
        )
    if reports:
        return warn(
            name,
            f"usage is self-reported: users may insert their own charge rows into {table}, "
            f"but not grants: {'; '.join(reports)}. A user can leave usage out",
            "write usage rows from the server with the service role key, then "
            + _revoke(context, ledger, "INSERT"),
        )
    return ok(name, f"API roles cannot write {table} ({'; '.join(clean)})")


def _revoke(context: Context, ledger: LedgerTarget, privileges: str) -> str:
    statement = sql.SQL("REVOKE {} ON {} FROM PUBLIC, anon, authenticated;").format(
        sql.SQL(privileges), ledger.table.identifier
    )
    return statement.as_string(context.conn)


def _ledger_fix(
    context: Context,
    target: TrustTarget,
    ledger: LedgerTarget,
    exposures: dict[str, TableExposure],
) -> str:
    fix = _revoke(context, ledger, "INSERT, UPDATE, DELETE") + (
        " and write ledger rows from the server (service_role)"
    )
    if ledger.shape is None:
        return fix
    permitting = sorted(
        {
            p.name
            for e in exposures.values()
            for c in (e.insert, e.update, e.delete)
            for p in c.permitting
        }
    )
    restrict = sql.SQL(
        "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY; CREATE POLICY own_charges_insert ON {t} "
        "FOR INSERT TO authenticated WITH CHECK ({key} = auth.uid() AND {action} <> ALL "
        "(ARRAY[{actions}]));"
    ).format(
        t=ledger.table.identifier,
        key=sql.Identifier(ledger.key),
        action=sql.Identifier(ledger.shape.action),
        actions=sql.SQL(", ").join(map(sql.Literal, target.non_charge_actions)),
    )
    drop = (
        "; drop or narrow the policies that let them: " + ", ".join(permitting)
        if permitting
        else ""
    )
    return (
        f"{fix}{drop}; if users must record their own usage, let them insert charge rows "
        f"only: {restrict.as_string(context.conn)}"
    )


def overrides_writes(context: Context) -> list[Check]:
    checks = _overrides_writes(context)
    if not checks or checks[0].status != "fail":
        return checks
    target = trust_target(context.settings, context.mapping)
    assert target.pricing is not None
    table = target.pricing.table
    roles = api_roles(context.conn)
    conn = context.conn
    # anon and authenticated: the tool's own constants (roles.PROBED).
    grantees = [sql.SQL("PUBLIC"), *(sql.SQL(r.name) for r in probed(roles))]
    closing = [
        *(s for r in probed(roles) for s in owner_change(conn, table, r.name)),
        sql.SQL("REVOKE INSERT, UPDATE, DELETE ON {} FROM {}").format(
            table.identifier, sql.SQL(", ").join(grantees)
        ),
    ]
    server = " and change prices from the server (service_role) only"
    if not context.probe or context.server.get("standby"):
        why = "probes are off" if not context.probe else "no probe can run here"
        return [replace(checks[0], fix=unverified(rendered(conn, closing), why) + server)]

    def still_open() -> bool:
        again = _overrides_writes(context)
        return bool(again) and again[0].status == "fail"

    result = trial(conn, closing, still_open, table)
    if result.closed is None:
        fix = unverified(rendered(conn, closing), result.why) + server
    elif result.closed:
        fix = rendered(conn, closing) + server
    else:
        fix = (
            "doctor tried revoking every write on the price table from the API roles and the "
            "probes still got through: look for what else lets them write it" + server
        )
    return [replace(checks[0], fix=fix)]


def _overrides_writes(context: Context) -> list[Check]:
    target = trust_target(context.settings, context.mapping)
    pricing = target.pricing
    if pricing is None:
        return []
    roles = api_roles(context.conn)
    exposures = table_exposures(context.conn, pricing.table, "pricing", judged(roles), target)
    if not exposures:
        return []
    pricing_columns = columns_of(context.conn, pricing.table) or set()
    probe_ok = set(pricing.columns) <= pricing_columns
    first = first_row(context.conn, target)
    subject = first.subject if first else None
    setters, clean = [], []
    for role in [*probed(roles), None]:
        role_name = role.name if role else PUBLIC
        exposure = exposures[role_name]
        found: dict[Operation, list[Probed]] = {}
        skip = skip_reason(context, target, role, pricing.table) if role else None
        if role and skip is None and not probe_ok:
            skip = "no probe: the price table lacks a column of the default schema: catalog verdict"
        if role is not None and skip is None:
            for p in probe_pricing(
                context.conn, pricing, role_name, exposure.access, subject=subject
            ):
                found.setdefault(p.operation, []).append(p)
        note = f" — {skip}" if skip else ""
        verdicts = [
            _decide(exposure, exposure.insert, found.get("price_insert", []),
                    catalog_allows=exposure.insert.allowed),
            _decide(exposure, exposure.update, found.get("price_update", []),
                    catalog_allows=exposure.update.allowed),
            _decide(exposure, exposure.delete, found.get("price_delete", []),
                    catalog_allows=exposure.delete.allowed),
        ]  # fmt: skip
        if any(v.can for v in verdicts):
            evidence = "; ".join(v.evidence for v in verdicts if v.can)
            setters.append(f"{_role_phrase(role_name)} can set prices ({evidence}){note}")
        else:
            evidence = "; ".join(dict.fromkeys(v.evidence for v in verdicts))
            clean.append(f"{shown(role_name)}: {evidence}{note}")
    name = "overrides_writes"
    if setters:
        statement = sql.SQL("REVOKE INSERT, UPDATE, DELETE ON {} FROM PUBLIC, anon, authenticated;")
        return [
            fail(
                name,
                f"API roles can write {pricing.table}, the prices reconcile trusts: "
                + "; ".join(setters)
                + ". An override of −1,000,000 tokens raises every balance it prices",
                statement.format(pricing.table.identifier).as_string(context.conn)
                + " and change prices from the server (service_role) only",
            )
        ]
    if not supabase_shaped(roles):
        return []
    return [ok(name, f"API roles cannot write {pricing.table} ({'; '.join(clean)})")]


def _reads(context: Context, name: str, table_exposures_: dict[str, TableExposure], what: str,
           fix: str, roles: list[ApiRole]) -> list[Check]:  # fmt: skip
    readers = [
        role
        for role, exposure in table_exposures_.items()
        if exposure.access is not None
        and exposure.access.may("SELECT")
        and not exposure.access.rls_enabled
    ]
    table = next(iter(table_exposures_.values())).table
    if readers:
        return [
            warn(
                name,
                f"{', '.join(map(_role_phrase, readers))} can read {table}: SELECT granted and "
                f"RLS is off, so {what}",
                fix,
            )
        ]
    if not supabase_shaped(roles):
        return []
    return [ok(name, f"no API role reads {table} with row-level security off")]


def ledger_reads(context: Context) -> list[Check]:
    target = trust_target(context.settings, context.mapping)
    roles = api_roles(context.conn)
    checks = []
    for ledger in target.ledgers:
        exposures = table_exposures(context.conn, ledger.table, "ledger", judged(roles), target)
        if not exposures:
            continue
        name = "ledger_reads" + (f"_{ledger.table.table_name}" if len(target.ledgers) > 1 else "")
        fix = sql.SQL(
            "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY; CREATE POLICY own_usage_read ON {t} "
            "FOR SELECT TO authenticated USING ({key} = auth.uid()); "
            "REVOKE SELECT ON {t} FROM anon;"
        ).format(t=ledger.table.identifier, key=sql.Identifier(ledger.key))
        checks += _reads(
            context, name, exposures, "every visitor reads every user's usage",
            fix.as_string(context.conn), roles,
        )  # fmt: skip
    return checks


def overrides_reads(context: Context) -> list[Check]:
    target = trust_target(context.settings, context.mapping)
    if target.pricing is None:
        return []
    roles = api_roles(context.conn)
    exposures = table_exposures(
        context.conn, target.pricing.table, "pricing", judged(roles), target
    )
    if not exposures:
        return []
    fix = sql.SQL(
        "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY; then a SELECT policy for those who may "
        "read prices (CREATE POLICY prices_read ON {t} FOR SELECT TO authenticated USING "
        "(true)), or REVOKE SELECT ON {t} FROM anon, authenticated;"
    ).format(t=target.pricing.table.identifier)
    return _reads(
        context, "overrides_reads", exposures,
        "every visitor reads the price table, rules and all", fix.as_string(context.conn), roles,
    )  # fmt: skip


def _key(row: BalanceRow | None) -> object | None:
    return row.key if row else None
