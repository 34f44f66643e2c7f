"""The ledger and price-table probes (docs/doctor.md): as an API role, insert a grant-class row for
the
caller, lower or delete the caller's own charge row, insert a charge row; insert, change or
delete an override. Directly or through a view; each in a savepoint that is rolled back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any, Literal

import psycopg
from psycopg import sql

from tokenfix import queries
from tokenfix.base.identifiers import QualifiedName
from tokenfix.health.expected import ExpectedBalance
from tokenfix.health.grants import RoleAccess
from tokenfix.health.probe import Claims, Outcome, Write, attempt, request_path
from tokenfix.health.target import LedgerShape, LedgerTarget, PricingTarget, TrustTarget

# The action a probe's charge row carries when the ledger holds no charge row to copy.
PROBE_ACTION = "tokenfix_probe"

Operation = Literal[
    "mint", "lower", "delete", "charge", "price_insert", "price_update", "price_delete"
]


@dataclass(frozen=True)
class Probed:
    operation: Operation
    description: str
    outcome: Outcome
    column: str | None = None
    """The column an UPDATE probe changed."""


@dataclass(frozen=True)
class ChargeRow:
    id: Any
    key: Any
    amount: Any
    action: str
    model: str | None


def charge_row(
    conn: psycopg.Connection[Any], target: TrustTarget, ledger: LedgerTarget, shape: LedgerShape
) -> ChargeRow | None:
    statement = queries.compose(
        "probe_ledger_charge",
        table=ledger.table.identifier,
        id=sql.Identifier(shape.id),
        key=sql.Identifier(ledger.key),
        amount=sql.Identifier(shape.amount),
        action=sql.Identifier(shape.action),
        model=sql.Identifier(shape.model),
        counted=sql.Identifier(shape.counted),
    )
    row = conn.execute(statement, {"non_charge": list(target.non_charge_actions)}).fetchone()
    return ChargeRow(*row) if row else None


def _insert(relation: QualifiedName, values: dict[str, Any]) -> tuple[sql.Composed, dict[str, Any]]:
    names = list(values)
    statement = queries.compose(
        "probe_insert",
        relation=relation.identifier,
        columns=sql.SQL(", ").join(map(sql.Identifier, names)),
        values=sql.SQL(", ").join(sql.Placeholder(f"c{i}") for i in range(len(names))),
    )
    return statement, {f"c{i}": values[name] for i, name in enumerate(names)}


def _read_one(table: QualifiedName, column: str, id_column: str) -> sql.Composed:
    return queries.compose(
        "probe_read_one",
        column=sql.Identifier(column),
        table=table.identifier,
        id=sql.Identifier(id_column),
    )


def _update_one(
    relation: QualifiedName, table: QualifiedName, column: str, id_column: str, row_id: Any,
    old: Any, new: Any, access: RoleAccess | None,
) -> Write:  # fmt: skip
    statement = queries.compose(
        "probe_update_one",
        relation=relation.identifier,
        column=sql.Identifier(column),
        id=sql.Identifier(id_column),
    )
    read = _read_one(table, column, id_column)

    def took_effect(conn: psycopg.Connection[Any]) -> bool:
        row = conn.execute(read, {"id": row_id}).fetchone()
        return row is None or row[0] != old

    return Write(
        statement,
        {"value": new, "id": row_id},
        may_write=bool(access and access.may_update([column])),
        may_filter=bool(access and access.may_read(id_column)),
        took_effect=took_effect,
        method="PATCH",
        path=request_path(relation),
    )


def _delete_one(
    relation: QualifiedName, id_column: str, row_id: Any, access: RoleAccess | None
) -> Write:
    statement = queries.compose(
        "probe_delete_one", relation=relation.identifier, id=sql.Identifier(id_column)
    )
    return Write(
        statement,
        {"id": row_id},
        may_write=bool(access and access.may("DELETE")),
        may_filter=bool(access and access.may_read(id_column)),
        method="DELETE",
        path=request_path(relation),
    )


def probe_ledger(
    conn: psycopg.Connection[Any],
    target: TrustTarget,
    ledger: LedgerTarget,
    shape: LedgerShape,
    role: str,
    access: RoleAccess | None,
    *,
    fallback_key: Any | None,
    relation: QualifiedName | None = None,
    operations: tuple[Operation, ...] = ("mint", "lower", "delete", "charge"),
    expected: ExpectedBalance | None = None,
) -> list[Probed]:
    """The ledger probes as `role`, every write that could raise the caller's expected
    balance: an insert of each grant action and of each other kind that is not a charge
    (deduct actions), changes of the amount, counted flag, action and owner of one of their
    charge rows, its deletion; and a charge row inserted (self-reported usage). The caller is
    the owner of a charge row (so that its own rows exist and foreign keys to the users
    hold), else `fallback_key`'s owner. With `expected`, a probe took effect only when it
    raised the caller's expected balance."""
    relation = relation or ledger.table
    via = "" if relation == ledger.table else f" through {relation}"
    path = request_path(relation)
    charge = charge_row(conn, target, ledger, shape)
    key = charge.key if charge else fallback_key if fallback_key is not None else uuid.uuid4()
    # Under the seed's shape the ledger key is the user's id, which is the JWT subject.
    claims = Claims(role, str(key) if role == "authenticated" else None)
    whose = "for itself" if role == "authenticated" else "for a user"
    owned = "its own" if role == "authenticated" else "a user's"
    may_insert = bool(access and access.may("INSERT"))
    before = expected.of(conn, key) if expected is not None else None
    not_raised = "the expected balance did not go up"

    def raised(conn: psycopg.Connection[Any]) -> bool:
        assert expected is not None
        return expected.raised(conn, key, before)

    found = []
    if "mint" in operations:
        kinds = [(a, "grant") for a in target.grant_actions or (target.grant_action,)]
        kinds += [(a, "deduct") for a in target.deduct_actions]
        for action, kind in kinds:
            row = {ledger.key: key, shape.action: action, shape.amount: 1, shape.counted: True}
            statement, params = _insert(relation, row)
            count = queries.compose(
                "probe_count_actions",
                table=ledger.table.identifier,
                key=sql.Identifier(ledger.key),
                action=sql.Identifier(shape.action),
            )
            count_params = {"key": key, "action": action}
            counted = conn.execute(count, count_params).fetchone()

            def minted(
                conn: psycopg.Connection[Any],
                count: sql.Composed = count,
                count_params: dict[str, Any] = count_params,
                counted: Any = counted,
            ) -> bool:
                return bool(conn.execute(count, count_params).fetchone() != counted)

            write = Write(
                statement, params, may_insert, took_effect=raised if expected else minted,
                method="POST", path=path, unchanged=not_raised,
            )  # fmt: skip
            found.append(
                Probed(
                    "mint",
                    f"INSERT{via} of a {kind} row ({action}) {whose}",
                    attempt(conn, claims, write),
                )
            )
    if charge is not None and "lower" in operations:
        grant = (target.grant_actions or (target.grant_action,))[0]
        changes: list[tuple[str, Any, Any, str]] = [
            (shape.amount, charge.amount, charge.amount - 1, f"lowering {owned} charge row"),
            (shape.counted, True, False, f"marking {owned} charge row failed ({shape.counted})"),
            (shape.action, charge.action, grant, f"turning {owned} charge row into a {grant}"),
            (ledger.key, charge.key, str(uuid.uuid4()), f"moving {owned} charge row away"),
        ]  # fmt: skip
        for column, old, new, words in changes:
            write = _update_one(
                relation, ledger.table, column, shape.id, charge.id, old, new, access,
            )  # fmt: skip
            if expected is not None:
                write = replace(write, took_effect=raised, unchanged=not_raised)
            found.append(
                Probed(
                    "lower",
                    f"UPDATE{via} {words} {charge.id}",
                    attempt(conn, claims, write),
                    column,
                )
            )
    if charge is not None and "delete" in operations:
        write = _delete_one(relation, shape.id, charge.id, access)
        if expected is not None:
            write = replace(write, took_effect=raised, unchanged=not_raised)
        found.append(
            Probed(
                "delete",
                f"DELETE{via} of {owned} charge row {charge.id}",
                attempt(conn, claims, write),
            )
        )
    if "charge" in operations:
        row = {
            ledger.key: key,
            shape.action: charge.action if charge else PROBE_ACTION,
            shape.amount: 1,
            shape.counted: True,
            shape.model: charge.model if charge else None,
        }
        statement, params = _insert(relation, row)
        write = Write(statement, params, may_insert, method="POST", path=path)
        outcome = attempt(conn, claims, write)
        found.append(Probed("charge", f"INSERT{via} of a charge row {whose}", outcome))
    return found


def probe_pricing(
    conn: psycopg.Connection[Any],
    pricing: PricingTarget,
    role: str,
    access: RoleAccess | None,
    *,
    subject: str | None,
    relation: QualifiedName | None = None,
) -> list[Probed]:
    """Set a price as `role`: a new override making a charge free, and a change to (and the
    deletion of) an existing one."""
    relation = relation or pricing.table
    via = "" if relation == pricing.table else f" through {relation}"
    claims = Claims(role, subject if role == "authenticated" else None)
    row = {pricing.action: PROBE_ACTION, pricing.cost: 0, pricing.active: True}
    statement, params = _insert(relation, row)
    found = [
        Probed(
            "price_insert",
            f"INSERT{via} of an override",
            attempt(
                conn,
                claims,
                Write(
                    statement,
                    params,
                    bool(access and access.may("INSERT")),
                    method="POST",
                    path=request_path(relation),
                ),
            ),
        )
    ]
    existing = conn.execute(
        queries.compose(
            "probe_override_row",
            id=sql.Identifier(pricing.id),
            cost=sql.Identifier(pricing.cost),
            table=pricing.table.identifier,
        )
    ).fetchone()
    if existing is None:
        return found
    override_id, cost = existing
    new_cost = cost - 1 if cost and cost > 0 else 1
    write = _update_one(
        relation, pricing.table, pricing.cost, pricing.id, override_id, cost, new_cost, access
    )
    found.append(
        Probed(
            "price_update", f"UPDATE{via} of override {override_id}", attempt(conn, claims, write)
        )
    )
    write = _delete_one(relation, pricing.id, override_id, access)
    found.append(
        Probed(
            "price_delete", f"DELETE{via} of override {override_id}", attempt(conn, claims, write)
        )
    )
    return found
