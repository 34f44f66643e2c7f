"""The balance probe: raise a balance by one as an API role, on the caller's own row and on
another owner's, directly or through a view, and read back whether it stuck (SPEC §11)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from tokenfix import names, queries
from tokenfix.health.grants import RoleAccess, columns_of
from tokenfix.health.probe import Claims, Outcome, Write, attempt
from tokenfix.health.target import TrustTarget
from tokenfix.settings import QualifiedName


@dataclass(frozen=True)
class BalanceRow:
    key: Any
    subject: str | None
    values: tuple[Any, ...]
    """The compared balance columns, in the target's order."""


def balance_rows(conn: psycopg.Connection[Any], target: TrustTarget) -> list[BalanceRow]:
    statement = queries.compose(
        "probe_balance_rows",
        key=sql.Identifier(target.key),
        subject=target.subject if target.subject is not None else sql.SQL("NULL"),
        columns=sql.SQL(", ").join(map(sql.Identifier, target.balance_columns)),
        table=names.balance_from(target.balance_table),  # `subject` is the mapping's
    )
    return [
        BalanceRow(key=row[0], subject=row[1], values=tuple(row[2:]))
        for row in conn.execute(statement).fetchall()
    ]


def first_row(conn: psycopg.Connection[Any], target: TrustTarget) -> BalanceRow | None:
    """A real owner to probe the ledger and prices as, when they hold no row to borrow one
    from (foreign keys to the users then hold). None without a usable balance table or row."""
    columns = columns_of(conn, target.balance_table)
    if columns is None or not {target.key, *target.balance_columns} <= columns:
        return None
    rows = balance_rows(conn, target)
    return rows[0] if rows else None


def _read(conn: psycopg.Connection[Any], target: TrustTarget, key: Any) -> tuple[Any, ...] | None:
    statement = queries.compose(
        "probe_balance_read",
        columns=sql.SQL(", ").join(map(sql.Identifier, target.balance_columns)),
        table=target.balance_table.identifier,
        key=sql.Identifier(target.key),
    )
    row = conn.execute(statement, {"key": key}).fetchone()
    return tuple(row) if row else None


def raise_write(
    target: TrustTarget, relation: QualifiedName, row: BalanceRow, access: RoleAccess | None
) -> Write:
    """+1 on each balance column the role may update (all of them when it may update none, so
    that the denial shows); values are literals, as the app sends them, so the probe needs no
    SELECT on the balance columns."""
    allowed = access.may_update(target.balance_columns) if access else ()
    columns = allowed or target.balance_columns
    params: dict[str, Any] = {"key": row.key}
    assignments = []
    for position, column in enumerate(target.balance_columns):
        if column in columns:
            params[f"v{position}"] = (row.values[position] or 0) + 1
            assignments.append(
                sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(f"v{position}"))
            )
    statement = queries.compose(
        "probe_balance_update",
        relation=relation.identifier,
        assignments=sql.SQL(", ").join(assignments),
        key=sql.Identifier(target.key),
    )

    def took_effect(conn: psycopg.Connection[Any]) -> bool:
        return _read(conn, target, row.key) != row.values

    return Write(
        statement,
        params,
        may_write=bool(allowed),
        may_filter=access.may_read(target.key) if access else False,
        took_effect=took_effect,
    )


@dataclass(frozen=True)
class RaiseProbes:
    own: Outcome | None
    """As the row's owner (authenticated only): can users raise their own balance?"""
    other: Outcome | None
    """On a row the caller does not own: can they raise anyone's?"""
    notes: tuple[str, ...]


def probe_raises(
    conn: psycopg.Connection[Any],
    target: TrustTarget,
    role: str,
    access: RoleAccess | None,
    *,
    relation: QualifiedName | None = None,
) -> RaiseProbes:
    relation = relation or target.balance_table
    via = "" if relation == target.balance_table else f" through {relation}"
    rows = balance_rows(conn, target)
    if not rows:
        return RaiseProbes(None, None, ("probe skipped: no balance row to probe with",))
    first = rows[0]
    notes = []
    own = None
    if role == "authenticated" and first.subject is not None:
        own = attempt(
            conn,
            Claims(role, first.subject),
            raise_write(target, relation, first, access),
        )
        notes.append(f"probe as {role} with a JWT for the row's owner: UPDATE +1{via} {own.detail}")
    if role == "authenticated":
        # A signed-in user who owns the first row reaching for the second; with a single
        # row, a user without one.
        caller = first.subject if len(rows) > 1 and first.subject else str(uuid.uuid4())
        victim = rows[1] if len(rows) > 1 and first.subject else first
        whose = "with a JWT for another user"
    else:
        caller, victim = None, first
        whose = "with its key alone (no user)"
    other = attempt(conn, Claims(role, caller), raise_write(target, relation, victim, access))
    notes.append(f"probe as {role} {whose} on a user's row: UPDATE +1{via} {other.detail}")
    return RaiseProbes(own, other, tuple(notes))
