"""Guards that read the legacy per-claim settings (docs/doctor.md): PostgREST 10 and later, every
Supabase project, sets the token's claims in `request.jwt.claims` only, so a trigger or policy
that reads `request.jwt.claim.role` or `.sub` sees nothing, and a guard built on it lets the
real API through — while a probe that also set the legacy settings would have been refused."""

from __future__ import annotations

from tokenfix import queries
from tokenfix.health.report import Check, Context, fail, ok
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
        f"{reader} ({via}) reads {', '.join(settings)}"
        for reader, via, settings, reads_claims in rows
        if not reads_claims
    ]
    fallback = [str(reader) for reader, _, _, reads_claims in rows if reads_claims]
    if blind:
        return [
            fail(
                NAME,
                "guards read settings PostgREST 10+ never sets, so the real API passes them "
                f"(their value is empty): {'; '.join(blind)}",
                "read the claims from request.jwt.claims instead: "
                "current_setting('request.jwt.claims', true)::jsonb ->> 'role' (or auth.jwt() "
                "->> 'role', auth.uid()), then run tokenfix doctor again",
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
