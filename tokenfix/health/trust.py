"""Could an API role raise a balance? (docs/doctor.md, and the seed incident's question.)

anon and authenticated: the catalogs' verdict (grants, RLS, policies), then the proof — the
balance raised by one as the role with PostgREST's JWT claims, on the caller's own row and on
another owner's, always rolled back. PUBLIC: the catalogs. service_role and the other roles
that bypass row-level security: shown, never failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from tokenfix.base.identifiers import QualifiedName
from tokenfix.health.definers import definer_writers
from tokenfix.health.grants import (
    PUBLIC,
    Exposure,
    Policy,
    RoleAccess,
    columns_of,
    judge,
    policies,
    role_access,
    sees_rows,
    shown,
)
from tokenfix.health.outbound import outbound_triggers, skip_note
from tokenfix.health.probe import Outcome
from tokenfix.health.raise_probe import RaiseProbes, probe_raises
from tokenfix.health.report import Check, Context, fail, ok, warn
from tokenfix.health.roles import ApiRole, api_roles, judged, rls_bypassers, supabase_shaped
from tokenfix.health.target import TrustTarget, trust_target

WHO = {"anon": "anyone with the anon key", "authenticated": "any signed-in user"}


def skip_reason(
    context: Context,
    target: TrustTarget,
    role: ApiRole,
    relation: QualifiedName,
    base: QualifiedName | None = None,
) -> str | None:
    """Why a probe as `role` on `relation` (a view over `base`) must not run, or None."""
    if not context.probe:
        return "probe off (--no-probe): catalog verdict"
    if context.server.get("standby"):
        return "probe skipped on a standby: catalog verdict"
    if not role.can_set_role:
        return (
            f"probe skipped: role {context.server.get('role')} cannot SET ROLE {role.name}: "
            "catalog verdict"
        )
    triggers = outbound_triggers(context.conn, relation, target.tables)
    if base is not None:
        # Writing through a view fires its table's triggers too.
        triggers += outbound_triggers(context.conn, base, target.tables)
    return skip_note(triggers) if triggers else None


@dataclass(frozen=True)
class BalanceAccess:
    """What the catalogs say about one role and the balance columns."""

    access: RoleAccess | None
    exposure: Exposure
    policies: tuple[Policy, ...]
    columns: tuple[str, ...]

    @property
    def granted(self) -> bool:
        return bool(self.access and self.access.may_update(self.columns))

    @property
    def sees_rows(self) -> bool:
        return sees_rows(self.access, self.policies)


def balance_access(
    context: Context, target: TrustTarget, roles: list[str]
) -> dict[str, BalanceAccess]:
    columns = target.balance_columns
    found = role_access(context.conn, target.balance_table, roles, columns)
    table_policies = tuple(policies(context.conn, target.balance_table))
    result = {}
    for role in roles:
        access = found.get(role)
        granted = bool(access and access.may_update(columns))
        if access is not None and not granted:
            exposure = Exposure(
                False, False, f"no UPDATE privilege on the balance columns for {shown(role)}"
            )
        else:
            exposure = judge(access, table_policies, "UPDATE", granted=granted)
        result[role] = BalanceAccess(access, exposure, table_policies, columns)
    return result


def api_roles_check(context: Context) -> list[Check]:
    """api_role_anon, api_role_authenticated, api_role_public, api_role_service_role."""
    target = trust_target(context.settings, context.mapping)
    columns = columns_of(context.conn, target.balance_table)
    if columns is None or not {target.key, *target.balance_columns} <= columns:
        return []  # the schema checks name what is missing
    roles = api_roles(context.conn)
    catalog = balance_access(context, target, [*(r.name for r in roles), PUBLIC])
    public = _public(context, target, catalog[PUBLIC])
    if not supabase_shaped(roles):
        return [public] if public.status != "ok" else []
    definers = sorted(
        f.function
        for f in definer_writers(context.conn, target, judged(roles))
        if f.updates_balance
    )
    checks = []
    service_role = None
    for role in roles:
        skip = skip_reason(context, target, role, target.balance_table)
        if skip is None:
            probes = probe_raises(context.conn, target, role.name, catalog[role.name].access)
        else:
            probes = RaiseProbes(None, None, (skip,))
        if role.name == "service_role":
            service_role = _service_role(context, target, catalog[role.name], probes)
        else:
            checks.append(_verdict(context, target, role.name, catalog, probes, definers))
    checks.append(public)
    return checks + ([service_role] if service_role else [])


CATALOG = "catalog verdict"


def _evidence(exposure: Exposure, probes: RaiseProbes, *extra: str) -> str:
    notes = [exposure.how, *probes.notes, *extra]
    # A skipped probe's note already says the verdict is the catalogs'.
    if extra == (CATALOG,) and any(CATALOG in note for note in probes.notes):
        notes.pop()
    return "; ".join(notes)


def _revoke(
    context: Context, target: TrustTarget, role: str, catalog: dict[str, BalanceAccess]
) -> str:
    table = target.balance_table.identifier
    columns = sql.SQL(", ").join(map(sql.Identifier, target.balance_columns))
    grantees: list[sql.Composable] = [sql.Identifier(role)]
    public = catalog[PUBLIC].access
    if public and public.may_update(target.balance_columns):
        grantees.append(sql.SQL("PUBLIC"))
    statements = [
        sql.SQL("REVOKE UPDATE ON {t} FROM {r}; REVOKE UPDATE ({c}) ON {t} FROM {r};").format(
            t=table, c=columns, r=grantee
        )
        for grantee in grantees
    ]
    return " ".join(s.as_string(context.conn) for s in statements)


def _verdict(
    context: Context,
    target: TrustTarget,
    role: str,
    catalog: dict[str, BalanceAccess],
    probes: RaiseProbes,
    definers: list[str],
) -> Check:
    name = f"api_role_{role}"
    table = target.balance_table
    mine = catalog[role]
    exposure = mine.exposure
    who = WHO[role]
    decisive = probes.own if probes.own is not None else probes.other

    def raise_fail(anyone: bool, evidence: str, scope: str | None = None) -> Check:
        if scope is None:
            scope = "any user's balance" if anyone or role == "anon" else "their own balance"
        policy = (
            f" (or drop the UPDATE policy {', '.join(p.name for p in exposure.permitting)});"
            if exposure.permitting
            else ""
        )
        return fail(
            name,
            f"{role} can update balances in {table}: {who} can raise {scope} through the "
            f"Data API ({evidence})",
            f"{_revoke(context, target, role, catalog)}{policy} then update balances only "
            "with service_role or a SECURITY DEFINER function",
        )

    if probes.other is not None and probes.other.took_effect:
        return raise_fail(True, _evidence(exposure, probes))
    if probes.own is not None and probes.own.took_effect:
        if exposure.everyone and exposure.permitting:
            # The probe's WHERE on another's row meets the SELECT policies too; an UPDATE
            # without a filter meets only the always-true UPDATE policy, and reaches every row.
            reach = (
                f"policy {', '.join(p.name for p in exposure.permitting)} lets an UPDATE "
                "without a filter reach every row"
            )
            return raise_fail(True, _evidence(exposure, probes, reach))
        return raise_fail(False, _evidence(exposure, probes))
    if decisive is None or not decisive.conclusive:
        if exposure.allowed:
            return raise_fail(exposure.everyone, _evidence(exposure, probes, CATALOG))
        return _cannot(name, role, table, mine, None, _evidence(exposure, probes), definers)
    trusting = exposure.trusts_user_editable_claims
    if exposure.allowed and trusting:
        return raise_fail(
            exposure.everyone,
            _evidence(
                exposure,
                probes,
                f"the probe's JWT has no user_metadata, but policy "
                f"{', '.join(p.name for p in trusting)} trusts it and users set their own "
                "(see user_metadata_policies): catalog verdict",
            ),
            "balances by editing their own user_metadata",
        )
    if decisive.kind == "no_rows" and exposure.allowed and not mine.sees_rows:
        return raise_fail(
            exposure.everyone,
            _evidence(
                exposure,
                probes,
                f"no SELECT policy lets {role} see the row the probe names, but an UPDATE "
                "without a filter is judged by the UPDATE policy alone: catalog verdict",
            ),
        )
    return _cannot(name, role, table, mine, decisive, _evidence(exposure, probes), definers)


def _cannot(
    name: str,
    role: str,
    table: QualifiedName,
    mine: BalanceAccess,
    decisive: Outcome | None,
    evidence: str,
    definers: list[str],
) -> Check:
    if role != "authenticated":
        return ok(name, f"{role}: cannot update balances ({evidence})")
    if decisive is not None and decisive.kind in ("refused", "unchanged"):
        return ok(name, f"authenticated cannot raise balances in {table}: protected ({evidence})")
    if definers:
        return ok(
            name,
            f"authenticated cannot update balances directly ({evidence}); "
            f"SECURITY DEFINER function(s) {', '.join(definers)} do it",
        )
    fix = (
        "update balances from the server with the service role key, or through a "
        "SECURITY DEFINER function granted to authenticated"
    )
    denied = decisive.kind == "denied" if decisive else not mine.granted
    if denied:
        return warn(
            name,
            f"authenticated cannot update balances ({evidence}): an app that updates balances "
            "with the user's session client gets error 42501 (permission denied), not a "
            "silent success; if it ignores the error, balances stop updating",
            fix,
        )
    if decisive is not None and decisive.kind == "no_rows":
        return warn(
            name,
            f"authenticated cannot update balances ({evidence}): an app that "
            "updates balances with the user's session client silently updates 0 "
            "rows, the seed incident's failure",
            fix,
        )
    return warn(
        name,
        f"authenticated cannot update balances ({evidence}): an app that updates balances "
        "with the user's session client changes no row",
        fix,
    )


def _public(context: Context, target: TrustTarget, public: BalanceAccess) -> Check:
    name = "api_role_public"
    table = target.balance_table
    exposure = public.exposure
    if exposure.allowed:
        scope = "any user's balance" if exposure.everyone else "the balances its policies allow"
        statement = sql.SQL(
            "REVOKE UPDATE ON {t} FROM PUBLIC; REVOKE UPDATE ({c}) ON {t} FROM PUBLIC;"
        ).format(
            t=table.identifier, c=sql.SQL(", ").join(map(sql.Identifier, target.balance_columns))
        )
        return fail(
            name,
            f"PUBLIC may update balances in {table}: every role of the cluster, anon and "
            f"authenticated included, can raise {scope} ({exposure.how}; catalog verdict)",
            statement.as_string(context.conn),
        )
    return ok(name, f"PUBLIC cannot update balances in {table} ({exposure.how})")


def _service_role(
    context: Context, target: TrustTarget, mine: BalanceAccess, probes: RaiseProbes
) -> Check:
    name = "api_role_service_role"
    table = target.balance_table
    probe = probes.other
    can_update = probe.took_effect if probe and probe.conclusive else mine.exposure.allowed
    evidence = _evidence(mine.exposure, probes)
    if not can_update:
        grant = sql.SQL("GRANT UPDATE ON {} TO service_role;").format(table.identifier)
        return warn(
            name,
            f"service_role cannot update balances ({evidence}): server-side balance updates fail",
            grant.as_string(context.conn),
        )
    others = rls_bypassers(context.conn, table)
    bypass = (
        f"; other roles that write {table} whatever its policies say: {', '.join(others)}"
        if others
        else ""
    )
    return ok(name, f"service_role: can update balances ({evidence}){bypass}")
