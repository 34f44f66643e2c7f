"""The balance probe: raise a balance by one as an API role, on the caller's own row and on
another owner's, directly or through a view, and read back whether it stuck (docs/doctor.md)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from psycopg import sql

from tokenfix import queries
from tokenfix.base.identifiers import QualifiedName
from tokenfix.health.grants import RoleAccess, columns_of
from tokenfix.health.probe import Claims, Outcome, Write, attempt, request_path
from tokenfix.health.target import TrustTarget
from tokenfix.mapping import names

# What a probe's new balance row holds above the starting balance: "a new user POSTs a
# profile with 1,000,000 tokens".
LARGE = 1_000_000


@dataclass(frozen=True)
class BalanceRow:
    key: Any
    subject: str | None
    spendable: Any
    """The spendable balance (None when the target cannot read it back)."""
    values: tuple[Any, ...]
    """The compared balance columns, in the target's order."""


def _spendable_sql(target: TrustTarget) -> sql.Composable:
    if target.spendable is None:
        return sql.SQL("NULL")
    return sql.SQL("({})").format(target.spendable)


def balance_rows(conn: psycopg.Connection[Any], target: TrustTarget) -> list[BalanceRow]:
    statement = queries.compose(
        "probe_balance_rows",
        key=sql.Identifier(target.key),
        subject=target.subject if target.subject is not None else sql.SQL("NULL"),
        spendable=_spendable_sql(target),
        columns=sql.SQL(", ").join(map(sql.Identifier, target.balance_columns)),
        table=names.balance_from(target.balance_table),  # `subject` is the mapping's
    )
    return [
        BalanceRow(key=row[0], subject=row[1], spendable=row[2], values=tuple(row[3:]))
        for row in conn.execute(statement).fetchall()
    ]


def _read_spendable(conn: psycopg.Connection[Any], target: TrustTarget, key: Any) -> Any:
    statement = queries.compose(
        "probe_balance_spendable",
        spendable=_spendable_sql(target),
        table=names.balance_from(target.balance_table),  # the spendable side is the mapping's
        key=sql.Identifier(target.key),
    )
    row = conn.execute(statement, {"key": key}).fetchone()
    return row[0] if row else None


def _raised(before: Any, after: Any) -> bool:
    return after is not None and (before is None or after > before)


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
    """The balance raised by one on each column the role may update (all of them when it may
    update none, so that the denial shows): +1, or -1 on a column whose increase lowers it
    (used); values are literals, as the app sends them, so the probe needs no SELECT on the
    balance columns. It took effect only when the spendable balance went up: a trigger that
    clamps, or a change of `used` alone, raises nothing."""
    allowed = access.may_update(target.balance_columns) if access else ()
    columns = allowed or target.balance_columns
    params: dict[str, Any] = {"key": row.key}
    assignments = []
    for position, column in enumerate(target.balance_columns):
        if column in columns:
            step = -1 if column in target.lowering_columns else 1
            params[f"v{position}"] = (row.values[position] or 0) + step
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
        if target.spendable is None:
            return _read(conn, target, row.key) != row.values
        return _raised(row.spendable, _read_spendable(conn, target, row.key))

    return Write(
        statement,
        params,
        may_write=bool(allowed),
        may_filter=access.may_read(target.key) if access else False,
        took_effect=took_effect,
        method="PATCH",
        path=request_path(relation),
        unchanged="the balance did not go up (a trigger or rule kept or lowered it)",
    )


def _new_values(target: TrustTarget, base: BalanceRow | None) -> dict[str, Any]:
    """A balance row LARGE above the starting balance (above `base`'s, when it is the
    caller's own row inserted again): every lowering column (used) at 0."""
    values = {}
    for position, column in enumerate(target.balance_columns):
        if column in target.lowering_columns:
            values[column] = 0
        else:
            start = base.values[position] if base is not None else target.starting_balance
            values[column] = (start or 0) + LARGE
    return values


def insert_write(
    target: TrustTarget,
    relation: QualifiedName,
    key: Any,
    access: RoleAccess | None,
    *,
    again: BalanceRow | None = None,
) -> Write:
    """POST of a balance row for `key` LARGE above the starting balance; with `again`, the
    caller's own row DELETEd first and POSTed back LARGE above what it held."""
    values = {target.key: key, **_new_values(target, again)}
    statement = queries.compose(
        "probe_insert",
        relation=relation.identifier,
        columns=sql.SQL(", ").join(map(sql.Identifier, values)),
        values=sql.SQL(", ").join(sql.Placeholder(f"c{i}") for i in range(len(values))),
    )
    params = {f"c{i}": value for i, value in enumerate(values.values())}
    may_write = bool(access and access.may("INSERT"))
    before: tuple[tuple[sql.Composed, dict[str, Any], str], ...] = ()
    if again is not None:
        delete = queries.compose(
            "probe_balance_delete", relation=relation.identifier, key=sql.Identifier(target.key)
        )
        before = ((delete, {"key": key}, "DELETE"),)
        may_write = may_write and bool(access and access.may("DELETE"))
    baseline = again.spendable if again is not None else target.starting_balance

    def took_effect(conn: psycopg.Connection[Any]) -> bool:
        if target.spendable is None:
            return _read(conn, target, key) is not None
        return _raised(baseline, _read_spendable(conn, target, key))

    return Write(
        statement,
        params,
        may_write=may_write,
        may_filter=(access.may_read(target.key) if access else False) or again is None,
        took_effect=took_effect,
        method="POST",
        path=request_path(relation),
        unchanged="the balance did not go up (a trigger or rule kept or lowered it)",
        before=before,
    )


@dataclass(frozen=True)
class RaiseProbes:
    own: Outcome | None
    """As the row's owner (authenticated only): can users raise their own balance?"""
    other: Outcome | None
    """On a row the caller does not own: can they raise anyone's?"""
    notes: tuple[str, ...]
    inserted: Outcome | None = None
    """POST of a new owner's row with a large balance."""
    reinserted: Outcome | None = None
    """The caller's own row DELETEd, then POSTed back with a larger balance."""
    caller: str | None = None
    """The JWT `sub` of the decisive UPDATE probe (None: anon's key alone)."""


def _seed_subject(target: TrustTarget) -> bool:
    """The owner key is the JWT subject itself, so a new owner's key can be made up."""
    return target.subject == sql.Identifier(target.key)


def probe_raises(
    conn: psycopg.Connection[Any],
    target: TrustTarget,
    role: str,
    access: RoleAccess | None,
    *,
    relation: QualifiedName | None = None,
    inserts: bool = False,
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
    decisive_caller = first.subject if own is not None else caller
    if not inserts:
        return RaiseProbes(own, other, tuple(notes), caller=decisive_caller)
    inserted = None
    if _seed_subject(target):
        fresh = str(uuid.uuid4())
        inserted = attempt(
            conn,
            Claims(role, fresh if role == "authenticated" else None),
            insert_write(target, relation, fresh, access),
        )
        who = "with a JWT for a new user" if role == "authenticated" else "with its key alone"
        notes.append(
            f"probe as {role} {who}: POST of a balance row {LARGE:,} above the starting "
            f"balance {inserted.detail}"
        )
    reinserted = None
    if role != "authenticated" or first.subject is not None:
        sub = first.subject if role == "authenticated" else None
        reinserted = attempt(
            conn, Claims(role, sub), insert_write(target, relation, first.key, access, again=first)
        )
        whose_row = "its own balance row" if sub is not None else "a user's balance row"
        notes.append(
            f"probe as {role}: DELETE of {whose_row}, then POST of it {LARGE:,} higher "
            f"{reinserted.detail}"
        )
    return RaiseProbes(own, other, tuple(notes), inserted, reinserted, decisive_caller)


def reach_write(target: TrustTarget, relation: QualifiedName, access: RoleAccess | None) -> Write:
    """A PATCH without a filter, as PostgREST sends one with no query string: judged by the
    UPDATE policies alone (no column is read, so the SELECT policies do not apply). Its value
    divides by zero at the first row it reaches, before any row is written or locked, so the
    probe learns whether it reaches a row without touching one."""
    allowed = access.may_update(target.balance_columns) if access else ()
    column = (allowed or target.balance_columns)[0]
    statement = queries.compose(
        "probe_balance_reach", relation=relation.identifier, column=sql.Identifier(column)
    )
    return Write(
        statement, {}, may_write=bool(allowed), method="PATCH", path=request_path(relation),
        reach=True,
    )  # fmt: skip


def probe_reach(
    conn: psycopg.Connection[Any],
    target: TrustTarget,
    role: str,
    access: RoleAccess | None,
    caller: str | None,
    *,
    delete: bool = False,
) -> Outcome:
    """Whether a PATCH (or, with `delete`, a DELETE) without a filter reaches any row."""
    write = reach_write(target, target.balance_table, access)
    if delete:
        statement = queries.compose(
            "probe_balance_reach_delete", relation=target.balance_table.identifier
        )
        write = replace(
            write, statement=statement, may_write=bool(access and access.may("DELETE")),
            method="DELETE",
        )  # fmt: skip
    return attempt(conn, Claims(role, caller), write)
