"""doctor: support adjustments (docs/doctor.md). The [adjust] rows `tokenfix grant` and
`deduct` insert compile, and the tool's role may INSERT them into that ledger."""

from __future__ import annotations

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from tokenfix import queries
from tokenfix.base.errors import first_line
from tokenfix.health.report import Check, Context, fail, ok

NAME = "adjust_rows"


def adjust_rows(context: Context) -> list[Check]:
    adjust = context.mapping.adjust
    if adjust is None:
        return [ok(NAME, "no [adjust] section: grant and deduct are refused until one is added")]
    source = next(s for s in context.mapping.ledgers if s.name == adjust.ledger)
    role = context.conn.execute("SELECT current_user").fetchone()
    for kind, columns in (("grant", adjust.grant), ("deduct", adjust.deduct)):
        statement = queries.compose(
            "doctor_adjust",
            table=source.table.identifier,
            columns=sql.SQL(", ").join(sql.Identifier(c) for c, _ in columns),
            values=sql.SQL(", ").join(sql.SQL("({})").format(e.sql) for _, e in columns),
            key=sql.Identifier(context.mapping.balance.key),
            balance=context.mapping.balance.table.identifier,
        )
        params = {k: v for _, e in columns for k, v in e.params.items()}
        try:
            with context.conn.transaction():
                context.conn.execute(statement, params)
        except pg_errors.InsufficientPrivilege as exc:
            who = role[0] if role else "this role"
            listed = ", ".join(c for c, _ in columns)
            return [
                fail(
                    NAME,
                    f"{who} may not INSERT into {source.table} ({listed}), the [[ledger]] "
                    f"'{source.name}' that grant and deduct write: "
                    f"{first_line(exc.diag.message_primary or str(exc))}",
                    f"GRANT INSERT ({listed}) ON {context.quoted(source.table)} TO "
                    f"{sql.Identifier(who).as_string(context.conn)}",
                )
            ]
        except psycopg.Error as exc:
            return [
                fail(
                    NAME,
                    f"the [adjust] {kind} row does not compile against {source.table}: "
                    f"{first_line(exc.diag.message_primary or str(exc))}",
                    f"fix [adjust.{kind}] in {context.mapping.origin}",
                )
            ]
    return [
        ok(
            NAME,
            f"grant and deduct rows compile, and {role[0] if role else 'the role'} may INSERT "
            f"them into {source.table}",
        )
    ]
