"""What the data itself says: ambiguous overrides, invalid ledger rows, users without profiles."""

from __future__ import annotations

from psycopg import sql

from tokenfix import queries
from tokenfix.base.words import plural
from tokenfix.health.report import Check, Context, ok, warn
from tokenfix.ledger.model import load as load_model


def ambiguous_overrides(context: Context) -> list[Check]:
    if context.tables is None or not context.tables.overrides.exists:
        return []
    overrides = context.tables.overrides

    def column(alias: str, name: str) -> sql.Composable:
        if overrides.has(name):
            return sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(name))
        return sql.SQL("NULL::timestamptz")

    statement = queries.compose(
        "doctor_ambiguous_overrides",
        overrides=context.tables.overrides.name.identifier,
        a_from=column("a", "valid_from"),
        b_from=column("b", "valid_from"),
        a_until=column("a", "valid_until"),
        b_until=column("b", "valid_until"),
    )
    pairs = context.conn.execute(statement).fetchall()
    if not pairs:
        return [ok("ambiguous_overrides", "no two active overrides tie for the same rows")]
    shown = "; ".join(
        f"{low} and {high} ({action}/{model or 'any model'})"
        for low, high, action, model in pairs[:5]
    )
    more = f" and {len(pairs) - 5} more" if len(pairs) > 5 else ""
    table = context.tables.overrides.name
    return [
        warn(
            "ambiguous_overrides",
            f"{plural(len(pairs), 'pair')} of active overrides tie for the same rows: "
            f"{shown}{more}; "
            "the higher id wins",
            f"deactivate the one you did not mean: UPDATE {table} "  # noqa: S608 (advice text)
            "SET is_active = false WHERE id = <id>",
        )
    ]


def ledger_health(context: Context) -> list[Check]:
    if context.tables is None or not (
        context.tables.usage.exists and context.tables.profiles.exists
    ):
        return []
    model = load_model(context.conn, context.settings, context.mapping)
    statement, params = model.ledger_health()
    row = context.conn.execute(statement, params).fetchone()
    assert row is not None
    invalid, without_profile = int(row[0]), int(row[1])
    usage = ", ".join(  # each ledger once, by its name (and its table when that differs)
        str(s.table) if s.name == s.table.table_name else f"{s.name} ({s.table})"
        for s in context.mapping.ledgers
    )
    what = (
        "with NULL or negative tokens_used or NULL success"
        if context.mapping.from_settings
        else "whose amount is NULL or negative, counted NULL, or kind not grant/deduct/charge"
    )
    checks = []
    if invalid:
        checks.append(
            warn(
                "invalid_rows",
                f"{plural(invalid, 'row')} of {usage} {what}: they count for nothing",
                "find the code path that writes them; 'tokenfix diagnose USER_ID "
                "--ledger 50' shows them per user",
            )
        )
    else:
        checks.append(ok("invalid_rows", f"no invalid rows in {usage}"))
    if without_profile:
        checks.append(
            warn(
                "missing_profiles",
                f"{plural(without_profile, 'user')} with ledger rows but no profile row",
                "tokenfix reconcile --all --create-missing --dry-run, then without --dry-run",
            )
        )
    else:
        checks.append(ok("missing_profiles", "every user with ledger rows has a profile row"))
    return checks
