"""period_not_reset for a reconcile run (docs/monitoring.md): the drifting owners whose cache
holds what the previous period's rows alone give (the allowance minus their charges), as
diagnose names it for one owner: the reset at period_start never reached them.

One statement per batch of drifting owners (previous_periods.sql), reading their rows by the
ledger's key index; the memory it takes grows with the drifting owners, never the fleet."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from psycopg import sql

from tokenfix import queries
from tokenfix.base.records import Candidate, exact
from tokenfix.db.session import Connection
from tokenfix.ledger.model import BalanceModel
from tokenfix.mapping.types import Expr

PERIOD_NOT_RESET = "period_not_reset"
BATCH = 1000


def _e(expr: Expr | None) -> sql.Composable:
    return expr.sql if expr is not None else sql.SQL("NULL")


def statement(model: BalanceModel) -> tuple[sql.Composed, dict[str, Any]]:
    b = model.mapping.balance
    classified, params = model.classified(batch=True)
    starting = sql.SQL("NULL") if model.starting_override is not None else _e(b.starting)
    composed = queries.compose(
        "previous_periods",
        classified=classified,
        key=model.key,
        key_type=model.key_type,
        remaining=_e(b.remaining),
        used=_e(b.used),
        starting=starting,
        period_start=_e(b.period_start),
        period_length=_e(b.period_length),
        balance=model.balance_rows,
        where=model.balance_where(),
    )
    return composed, {**model.params(), **params}


def period_not_reset(
    conn: Connection, model: BalanceModel, candidates: Iterable[Candidate]
) -> dict[str, tuple[str, ...]]:
    """The drifting candidates named period_not_reset (none without period_length)."""
    b = model.mapping.balance
    if b.period_length is None or b.period_start is None or b.remaining is None:
        return {}
    composed, params = statement(model)
    found: dict[str, tuple[str, ...]] = {}
    for batch in _batches(c.key for c in candidates if c.has_profile and not c.null_cache):
        for owner, remaining, used, starting, delta, charged, charges in conn.execute(
            composed, {**params, "keys": batch}
        ):
            if charges == 0 or remaining is None or exact(remaining) != exact(starting + delta):
                continue
            if b.used is not None and (used is None or exact(used) != exact(charged)):
                continue
            found[str(owner)] = (PERIOD_NOT_RESET,)
    return found


def _batches(keys: Iterable[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for key in keys:
        batch.append(key)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
