"""Guards that read the legacy per-claim settings (docs/doctor.md): PostgREST 10 and later, every
Supabase project, sets the token's claims in `request.jwt.claims` only, so a trigger or policy
that reads `request.jwt.claim.role` or `.sub` sees nothing, and a guard built on it lets the
real API through — while a probe that also set the legacy settings would have been refused."""

from __future__ import annotations

from tokenfix import queries
from tokenfix.health.report import Check, Context, fail, ok, warn
from tokenfix.health.roles import api_roles, supabase_shaped
from tokenfix.health.target import trust_target

NAME = "legacy_jwt_settings"


def legacy_jwt_settings(context: Context) -> list[Check]:
    target = trust_target(context.settings, context.mapping)
    rows = context.conn.execute(
        queries.get("doctor_legacy_claims"),
        {"relations": [t.identifier.as_string(context.conn) for t in target.tables]},
    ).fetchall()
    blind = [
        (f"{reader} ({via}) reads {', '.join(settings)}", in_trigger)
        for reader, via, settings, reads_claims, in_trigger in rows
        if not reads_claims
    ]
    fallback = [str(row[0]) for row in rows if row[3]]
    fix = (
        "read the claims from request.jwt.claims instead: "
        "current_setting('request.jwt.claims', true)::jsonb ->> 'role' (or auth.jwt() "
        "->> 'role', auth.uid()), then run tokenfix doctor again"
    )
    if any(in_trigger for _, in_trigger in blind):
        return [
            fail(
                NAME,
                "guards read settings PostgREST 10+ never sets, so they see NULL and the real "
                f"API passes them: {'; '.join(text for text, _ in blind)}",
                fix,
            )
        ]
    if blind:
        return [
            warn(
                NAME,
                "policies read settings PostgREST 10+ never sets: they see NULL, which usually "
                "lets nothing through (the api_role checks say whether anything does): "
                + "; ".join(text for text, _ in blind),
                fix,
            )
        ]
    if not supabase_shaped(api_roles(context.conn)):
        return []
    names = ", ".join(map(str, target.tables))
    also = (
        f" ({', '.join(fallback)} also read{'s' if len(fallback) == 1 else ''} them, "
        "falling back to request.jwt.claims)"
        if fallback
        else ""
    )
    return [
        ok(
            NAME,
            f"no trigger or policy on {names} depends on the legacy request.jwt.claim.* "
            f"settings{also}",
        )
    ]
