"""Policies that trust what users write about themselves (docs/doctor.md): Supabase's user_metadata
(auth.users.raw_user_meta_data) is set by the user through supabase.auth.updateUser(), so a
policy that reads it lets every user grant themselves whatever it checks for."""

from __future__ import annotations

from tokenfix.health.grants import policies
from tokenfix.health.report import Check, Context, fail, ok
from tokenfix.health.roles import api_roles, supabase_shaped
from tokenfix.health.target import trust_target

NAME = "user_metadata_policies"


def user_metadata_policies(context: Context) -> list[Check]:
    target = trust_target(context.settings, context.mapping)
    trusting = []
    for table in target.tables:
        for policy in policies(context.conn, table):
            if policy.trusts_user_editable_claims:
                through = (
                    f" through {', '.join(policy.trusting_functions)}"
                    if policy.trusting_functions
                    else ""
                )
                trusting.append(f"{policy.describe()} on {table}{through}")
    if trusting:
        return [
            fail(
                NAME,
                f"policies trust user_metadata, which every user edits for themselves "
                f"(supabase.auth.updateUser): {'; '.join(trusting)}",
                "base them on auth.jwt() -> 'app_metadata' (only the server sets it) or on a "
                "table users cannot write (ALTER POLICY ... USING (...) WITH CHECK (...))",
            )
        ]
    if not supabase_shaped(api_roles(context.conn)):
        return []
    names = ", ".join(map(str, target.tables))
    return [ok(NAME, f"no policy on {names} trusts user_metadata")]
