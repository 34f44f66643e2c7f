"""A small pure-Python statement of docs/balance-model.md, for differential tests against the SQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Row:
    id: int
    user_id: object
    action_type: str
    model_used: str | None
    tokens_used: int | None
    success: bool | None
    created_at: datetime


@dataclass(frozen=True)
class Override:
    id: int
    action_type: str
    model_used: str | None
    token_cost: int
    is_active: bool = True
    valid_from: datetime | None = None
    valid_until: datetime | None = None


def row_class(row: Row, grants: Sequence[str], deducts: Sequence[str]) -> str:
    if row.tokens_used is None or row.tokens_used < 0 or row.success is None:
        return "invalid"
    if row.success is False:
        return "failed"
    if row.tokens_used == 0:
        return "zero"
    if row.action_type in grants:
        return "grant"
    if row.action_type in deducts:
        return "deduct"
    return "charge"


def matches(o: Override, row: Row) -> bool:
    return (
        o.is_active
        and o.action_type == row.action_type
        and (o.model_used is None or o.model_used == row.model_used)
        and (o.valid_from is None or row.created_at >= o.valid_from)
        and (o.valid_until is None or row.created_at < o.valid_until)
    )


def best_override(row: Row, overrides: Iterable[Override]) -> Override | None:
    candidates = [o for o in overrides if matches(o, row)]
    if not candidates:
        return None
    # model-specific beats agnostic; then latest valid_from (None earliest); then highest id
    return max(
        candidates,
        key=lambda o: (
            o.model_used is not None,
            o.valid_from is not None,
            o.valid_from or datetime.min,
            o.id,
        ),
    )


def effective(row: Row, overrides: Iterable[Override]) -> int:
    best = best_override(row, overrides)
    assert row.tokens_used is not None
    return best.token_cost if best else row.tokens_used


@dataclass(frozen=True)
class Expected:
    remaining: int
    used: int


def expected(
    rows: Iterable[Row],
    overrides: Sequence[Override] = (),
    *,
    grants: Sequence[str] = ("admin_grant",),
    deducts: Sequence[str] = ("admin_deduct",),
    starting_balance: int = 0,
) -> Expected:
    remaining, used = starting_balance, 0
    for row in rows:
        kind = row_class(row, grants, deducts)
        assert row.tokens_used is not None or kind == "invalid"
        if kind == "grant":
            remaining += row.tokens_used or 0
        elif kind == "deduct":
            remaining -= row.tokens_used or 0
        elif kind == "charge":
            cost = effective(row, overrides)
            used += cost
            remaining -= cost
    return Expected(remaining, used)
