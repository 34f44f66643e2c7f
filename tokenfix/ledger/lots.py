"""Lots: grants that expire and burn down (docs/balance-model.md, "Lots"), folded in time order.

Pure logic, no database: one owner's lots (the mapping's [[lots]] rows, its ledger grants,
and `starting`) and spends (ledger charges and deducts), folded up to `now`:

- a spend consumes the lots spendable at its time (at <= t < expires_at / voided_at) in burn
  order: priority, expires_at (NULLs last), at, id;
- at one instant, lots become spendable first, then expiries and voids take effect (the
  remainder is forfeited), then spends apply in their at, id order;
- what no lot covers is overage; a lot that becomes spendable later pays the overage off
  first;
- at `now`: expected remaining = the remainders of the spendable lots - the overage.

Events after `now` have not happened yet: a lot spendable later is not spendable (its
amount stays its remainder, not counted), an expiry or void later is not applied; a spend
dated later is applied at `now`, after everything else (the ledger counts every row).
The database streams each owner's rows in key, time order (tokenfix.ledger.lotstream), so memory
holds one owner at a time. A spend it sends may be the sum of the charges and deducts between
two lot events: no lot starts or ends in between, so the sum burns the lots exactly as the rows
one by one would (tests/unit/test_lots_runs.py). A spend of zero or less burns nothing.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tokenfix.base.records import Amount

NEVER = datetime.min.replace(tzinfo=UTC)
"""The instant of `starting`: before everything."""
LAST = float("inf")
"""The priority of `starting`: burned last."""


def _id_order(ident: Any) -> tuple[int, Any]:
    """Ids of any type in one order: none, numbers, then text."""
    if ident is None:
        return (0, 0)
    if isinstance(ident, int | Decimal | float):
        return (1, ident)
    return (2, str(ident))


@dataclass(slots=True)
class Lot:
    name: str
    """The lot's source: a [[lots]] name, a ledger's name (its grants), or 'starting'."""
    id: Any
    amount: Amount
    at: datetime | None
    """Spendable from this instant; None: always (`starting`)."""
    expires_at: datetime | None = None
    voided_at: datetime | None = None
    priority: float = 0
    consumed: Amount = 0
    forfeited: Amount = 0
    spendable: bool = False
    """Whether the lot has become spendable and has not ended (by `now`)."""

    @property
    def remaining(self) -> Amount:
        return self.amount - self.consumed - self.forfeited

    @property
    def end(self) -> datetime | None:
        """When its remainder is forfeited: the earlier of expiry and void."""
        expires, voided = self.expires_at, self.voided_at
        if voided is None or (expires is not None and expires <= voided):
            return expires
        return voided

    def burn_order(self) -> tuple[Any, ...]:
        expiry = self.expires_at
        return (
            self.priority,
            expiry is None,
            expiry or NEVER,
            self.at or NEVER,
            _id_order(self.id),
        )


@dataclass(slots=True)
class Spend:
    """A ledger charge (its effective amount) or deduct."""

    at: datetime
    amount: Amount
    id: Any = None
    order: tuple[Any, ...] = ()
    """Ties at one instant: the ledger's own order (source, id) when the caller knows it."""


@dataclass
class Folded:
    lots: list[Lot]
    overage: Amount = 0
    expected_remaining: Amount = 0
    forfeits: list[tuple[datetime, Amount]] = field(default_factory=list)
    """(instant, remainder forfeited) of each lot that expired or was voided with some left."""


_SPENDABLE, _END, _SPEND = 0, 1, 2


def fold(lots: Sequence[Lot], spends: Iterable[Spend], now: datetime) -> Folded:
    """Fold one owner's lots and spends up to `now` (the lots are updated in place)."""
    events: list[tuple[datetime, int, tuple[Any, ...], int]] = []
    for index, lot in enumerate(lots):
        order = lot.burn_order()
        events.append((lot.at or NEVER, _SPENDABLE, order, index))
        end = lot.end
        if end is not None:
            events.append((end, _END, order, index))
    spent = spends if isinstance(spends, list) else list(spends)
    for index, spend in enumerate(spent):
        events.append((spend.at, _SPEND, (spend.order, _id_order(spend.id)), index))
    events.sort()  # instant, phase, then burn order or ledger order (the index: a last tie)

    active: list[tuple[tuple[Any, ...], int]] = []  # a heap in burn order
    ended: set[int] = set()
    overage: Amount = 0
    forfeits: list[tuple[datetime, Amount]] = []
    for instant, phase, order, index in events:
        if phase == _SPEND:
            overage += _consume(lots, active, ended, spent[index].amount)
            continue
        if instant > now:  # not yet: neither spendable nor ended
            continue
        lot = lots[index]
        if phase == _SPENDABLE:
            if index in ended:  # ended before it became spendable
                continue
            lot.spendable = True
            if overage > 0:
                paid = min(overage, lot.remaining)
                lot.consumed += paid
                overage -= paid
            heapq.heappush(active, (order, index))
        else:
            ended.add(index)
            lot.spendable = False
            left = lot.remaining
            if left > 0:
                lot.forfeited += left
                forfeits.append((instant, left))
    remaining = sum((lot.remaining for lot in lots if lot.spendable), start=0)
    return Folded(list(lots), overage, remaining - overage, forfeits)


def _consume(
    lots: Sequence[Lot], active: list[tuple[tuple[Any, ...], int]], ended: set[int], amount: Amount
) -> Amount:
    """Take `amount` from the active lots in burn order; what none covers (overage). A spend
    of zero or less (a charge an override prices below zero) burns nothing and owes nothing."""
    if amount <= 0:
        return 0
    while amount > 0 and active:
        _, index = active[0]
        lot = lots[index]
        if index in ended or lot.remaining <= 0:
            heapq.heappop(active)
            continue
        taken = min(amount, lot.remaining)
        lot.consumed += taken
        amount -= taken
    return amount
