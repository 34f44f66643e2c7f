"""Could an API role raise a balance? (docs/doctor.md, and the seed incident's question.)

anon and authenticated: the catalogs' verdict (grants, RLS, policies), then the proof — the
balance raised by one as the role with PostgREST's JWT claims, on the caller's own row and on
another owner's, always rolled back. PUBLIC: the catalogs. service_role and the other roles
that bypass row-level security: shown, never failed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from psycopg import sql

from tokenfix.base.identifiers import QualifiedName
from tokenfix.health.definers import definer_writers
from tokenfix.health.fix_trial import owner_change, rendered, trial, unverified
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
from tokenfix.health.raise_probe import LARGE, RaiseProbes, probe_raises, probe_reach
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


NOT_ALLOWED = Exposure(False, False, "not judged")


@dataclass(frozen=True)
class BalanceAccess:
    """What the catalogs say about one role and the balance columns."""

    access: RoleAccess | None
    exposure: Exposure
    policies: tuple[Policy, ...]
    columns: tuple[str, ...]
    insert: Exposure = NOT_ALLOWED
    delete: Exposure = NOT_ALLOWED

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
        result[role] = BalanceAccess(
            access,
            exposure,
            table_policies,
            columns,
            insert=judge(access, table_policies, "INSERT"),
            delete=judge(access, table_policies, "DELETE"),
        )
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
        if role.name == "service_role":
            skip = skip_reason(context, target, role, target.balance_table)
            if skip is None:
                probes = probe_raises(context.conn, target, role.name, catalog[role.name].access)
            else:
                probes = RaiseProbes(None, None, (skip,))
            service_role = _service_role(context, target, catalog[role.name], probes)
            continue
        assessed = _assess(context, target, role, roles, definers)
        checks.append(_with_verified_fix(context, target, role, roles, definers, assessed))
    checks.append(public)
    return checks + ([service_role] if service_role else [])


@dataclass(frozen=True)
class Assessment:
    """One API role's verdict on the balance table, and the fix to try when it fails."""

    check: Check
    statements: tuple[sql.Composed, ...] = ()
    """The privilege changes that should close it (tried before they are printed)."""
    policies: tuple[str, ...] = ()
    """The policies that let the writes through (dropped in a second try)."""
    advice: str = ""


def _assess(
    context: Context,
    target: TrustTarget,
    role: ApiRole,
    roles: list[ApiRole],
    definers: list[str],
) -> Assessment:
    """The catalogs, then every write path probed: UPDATE of the balance, POST of a new
    owner's row, DELETE then POST of the caller's own row (and a PATCH without a filter
    where the probe's filter saw no row)."""
    catalog = balance_access(context, target, [*(r.name for r in roles), PUBLIC])
    mine = catalog[role.name]
    skip = skip_reason(context, target, role, target.balance_table)
    reach = None
    if skip is None:
        probes = probe_raises(context.conn, target, role.name, mine.access, inserts=True)
        decisive = probes.own if probes.own is not None else probes.other
        if (
            decisive is not None
            and decisive.kind == "no_rows"
            and mine.exposure.allowed
            and not mine.sees_rows
        ):
            reach = probe_reach(context.conn, target, role.name, mine.access, probes.caller)
    else:
        probes = RaiseProbes(None, None, (skip,))
    delete_reach = None
    again = probes.reinserted
    if (
        again is not None
        and again.kind == "no_rows"
        and mine.delete.allowed
        and mine.insert.allowed
        and not mine.sees_rows
    ):
        sub = probes.caller if role.name == "authenticated" else None
        delete_reach = probe_reach(context.conn, target, role.name, mine.access, sub, delete=True)
    update = _verdict(context, target, role.name, catalog, probes, definers, reach)
    holes, permitting = _insert_holes(role.name, mine, probes, delete_reach)
    update_open = update.status == "fail"
    if not holes and not update_open:
        return Assessment(update)
    statements = _owner_change(context, target, role.name)
    if update_open:
        statements += _revokes(context, target, role.name, catalog, "UPDATE")
        permitting += tuple(p.name for p in mine.exposure.permitting)
    if holes:
        statements += _revokes(context, target, role.name, catalog, "INSERT")
    advice = (
        "then update balances only with service_role or a SECURITY DEFINER function"
        if update_open
        else "then create balance rows only with service_role or a trigger on auth.users"
    )
    name = f"api_role_{role.name}"
    table = target.balance_table
    if update_open:
        message = update.message + ("; " + "; ".join(holes) if holes else "")
    else:
        message = f"{role.name} can insert balance rows in {table}: " + "; ".join(holes)
    return Assessment(
        fail(name, message, advice),
        tuple(statements),
        tuple(dict.fromkeys(permitting)),
        advice,
    )


def _insert_holes(
    role: str, mine: BalanceAccess, probes: RaiseProbes, delete_reach: Outcome | None = None
) -> tuple[list[str], tuple[str, ...]]:
    """The INSERT paths that raise a balance: a new owner's row, and the caller's own row
    deleted and inserted again. A conclusive probe decides; otherwise the catalogs."""
    who = WHO[role]
    holes = []
    permitting: tuple[str, ...] = ()
    insert, delete = mine.insert, mine.delete
    inserted, label = probes.inserted, "POST of a new owner's row"
    again_ = probes.reinserted
    if (
        inserted is not None
        and not inserted.conclusive
        and again_ is not None
        and again_.conclusive
        and not again_.took_effect
        and again_.step == 1
    ):
        # A made-up owner breaks a foreign key to the users; the caller's own row, deleted
        # first, reached the same INSERT with a real owner.
        inserted = again_
        label = (
            "POST of the caller's own row after its DELETE (a made-up owner's row broke a "
            "constraint)"
        )
    new_row = _path_open(label, inserted, insert.allowed, insert, hidden=False)
    if new_row is not None:
        holes.append(
            f"{who} can POST a new balance row with {LARGE:,} tokens ({insert.how}; {new_row})"
        )
        permitting += tuple(p.name for p in insert.permitting)
    both = insert.allowed and delete.allowed
    hidden = not mine.sees_rows
    if delete_reach is not None and delete_reach.conclusive and not delete_reach.took_effect:
        hidden = False  # measured: a DELETE without a filter reaches no row either
    again = _path_open(
        f"DELETE, then POST {LARGE:,} higher", probes.reinserted, both, delete, hidden=hidden
    )
    if again is not None:
        whose = "their own balance row" if role == "authenticated" else "a user's balance row"
        holes.append(
            f"{who} can DELETE {whose} and POST it again with a higher balance "
            f"({delete.how}; {insert.how}; {again})"
        )
        permitting += tuple(p.name for p in (*insert.permitting, *delete.permitting))
    return holes, permitting


def _path_open(
    label: str,
    outcome: Outcome | None,
    catalog_allows: bool,
    exposure: Exposure,
    *,
    hidden: bool,
) -> str | None:
    """Evidence that one write path is open, or None. A probe only adds evidence: a probe
    that proved nothing leaves the catalogs' verdict standing."""
    if outcome is not None and outcome.took_effect:
        return f"probe: {label} {outcome.detail}"
    if outcome is None or not outcome.conclusive:
        if not catalog_allows:
            return None
        seen = f"probe: {label} {outcome.detail}: " if outcome is not None else ""
        return f"{seen}{CATALOG}"
    if catalog_allows and exposure.trusts_user_editable_claims:
        names = ", ".join(p.name for p in exposure.trusts_user_editable_claims)
        return f"policy {names} trusts user_metadata, which users set themselves: {CATALOG}"
    if outcome.kind == "no_rows" and catalog_allows and hidden:
        return (
            "no SELECT policy lets the role see the row the probe names, but a DELETE without "
            f"a filter is judged by the DELETE policy alone: {CATALOG}"
        )
    return None


def _revokes(
    context: Context,
    target: TrustTarget,
    role: str,
    catalog: dict[str, BalanceAccess],
    privilege: str,
) -> list[sql.Composed]:
    """REVOKE of `privilege` on the table and on its columns, from the role and from PUBLIC
    when PUBLIC holds it too."""
    table = target.balance_table.identifier
    columns = sql.SQL(", ").join(
        map(sql.Identifier, (target.key, *target.balance_columns) if privilege == "INSERT"
            else target.balance_columns)
    )  # fmt: skip
    grantees: list[sql.Composable] = [sql.Identifier(role)]
    public = catalog[PUBLIC].access
    if public and public.may(privilege):  # type: ignore[arg-type]
        grantees.append(sql.SQL("PUBLIC"))
    statements: list[sql.Composed] = []
    for grantee in grantees:
        statements.append(
            sql.SQL("REVOKE {p} ON {t} FROM {r}").format(p=sql.SQL(privilege), t=table, r=grantee)
        )
        statements.append(
            sql.SQL("REVOKE {p} ({c}) ON {t} FROM {r}").format(
                p=sql.SQL(privilege), c=columns, t=table, r=grantee
            )
        )
    return statements


def _owner_change(context: Context, target: TrustTarget, role: str) -> list[sql.Composed]:
    return owner_change(context.conn, target.balance_table, role)


def _drops(target: TrustTarget, names: tuple[str, ...]) -> list[sql.Composed]:
    return [
        sql.SQL("DROP POLICY {} ON {}").format(sql.Identifier(n), target.balance_table.identifier)
        for n in names
    ]


def _with_verified_fix(
    context: Context,
    target: TrustTarget,
    role: ApiRole,
    roles: list[ApiRole],
    definers: list[str],
    assessed: Assessment,
) -> Check:
    """The fail's fix, printed only when it closes the hole (tried, rolled back), or marked
    unverified when it cannot be tried."""
    check = assessed.check
    if check.status != "fail":
        return check
    candidates = [list(assessed.statements)]
    if assessed.policies:
        candidates.append([*assessed.statements, *_drops(target, assessed.policies)])
    advice = assessed.advice
    conn = context.conn
    if not context.probe or context.server.get("standby") or not role.can_set_role:
        why = "probes are off" if not context.probe else "no probe can run here"
        fix = unverified(rendered(conn, candidates[0]), why)
        return replace(check, fix=f"{fix} {advice}")

    def still_open() -> bool:
        return _assess(context, target, role, roles, definers).check.status == "fail"

    for statements in candidates:
        result = trial(conn, statements, still_open, target.balance_table)
        if result.closed is None:
            fix = unverified(rendered(conn, statements), result.why)
            return replace(check, fix=f"{fix} {advice}")
        if result.closed:
            fix = rendered(conn, statements)
            alternative = ""
            drops = _drops(target, assessed.policies)
            if drops and statements is candidates[0]:
                instead = [*_owner_change(context, target, role.name), *drops]
                if trial(conn, instead, still_open, target.balance_table).closed:
                    alternative = f" (or, closing it too: {rendered(conn, instead)})"
            return replace(check, fix=f"{fix}{alternative} {advice}")
    return replace(
        check,
        fix="doctor tried revoking the privileges and dropping the policies that allow it, and "
        "the probes still got through: look for what else lets the role write the table (a "
        "role it is a member of, a rule, a trigger that writes as its owner), "
        f"{advice}",
    )


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
    reach: Outcome | None = None,
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
            every_row = (
                f"policy {', '.join(p.name for p in exposure.permitting)} lets an UPDATE "
                "without a filter reach every row"
            )
            return raise_fail(True, _evidence(exposure, probes, every_row))
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
        if reach is not None and reach.conclusive and not reach.took_effect:
            # The catalogs' worry, measured: a PATCH without a filter reaches no row either.
            note = f"a PATCH without a filter {reach.detail}"
            return _cannot(
                name, role, table, mine, decisive, _evidence(exposure, probes, note), definers
            )
        if reach is not None and reach.took_effect:
            return raise_fail(
                exposure.everyone,
                _evidence(
                    exposure,
                    probes,
                    f"no SELECT policy lets {role} see the row the probe names, but a PATCH "
                    f"without a filter {reach.detail}: catalog verdict",
                ),
            )
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
