"""The lots fold as pure logic (docs/balance-model.md, "Lots"): hand-made histories, no
database. Times are hours after T0; `now` is hour 100 unless a test says otherwise."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tokenfix.ledger.lots import LAST, Lot, Spend, fold

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(hours=100)


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def lot(
    ident: object,
    amount: int | Decimal,
    at: float | None,
    *,
    expires: float | None = None,
    voided: float | None = None,
    priority: float = 0,
) -> Lot:
    return Lot(
        name="grants",
        id=ident,
        amount=amount,
        at=None if at is None else h(at),
        expires_at=None if expires is None else h(expires),
        voided_at=None if voided is None else h(voided),
        priority=priority,
    )


def spend(at: float, amount: int | Decimal, ident: object = None) -> Spend:
    return Spend(at=h(at), amount=amount, id=ident)


def state(lots: list[Lot]) -> dict[object, tuple[object, object, object]]:
    return {x.id: (x.consumed, x.forfeited, x.remaining) for x in lots}


def test_the_issues_example_a_partly_burned_top_up_that_expires() -> None:
    # A top-up of 1,000 (priority 0) expiring mid-period beside a default grant of 1,000:
    # 600 used before the expiry, 800 after: the balance is 200 (a sum says 600 or -400).
    top_up = lot("top-up", 1000, 0, expires=50, priority=0)
    default = lot("default", 1000, 0, priority=1)
    found = fold([top_up, default], [spend(10, 600), spend(60, 800)], NOW)
    assert found.expected_remaining == 200
    assert state(found.lots) == {"top-up": (600, 400, 0), "default": (800, 0, 200)}
    assert found.overage == 0
    assert found.forfeits == [(h(50), 400)]


def test_burn_order_is_priority_then_expiry_nulls_last_then_at_then_id() -> None:
    lots = [
        lot("d", 10, 3),  # priority 0, never expires
        lot("b", 10, 2, expires=90),
        lot("c", 10, 1, expires=90),  # same expiry, earlier at: before b
        lot("a", 10, 0, expires=95, priority=-1),  # lowest priority number: first
        lot("e", 10, 0, expires=80, priority=1),
        lot(2, 10, 3),
        lot(1, 10, 3),  # numbers before text, in their own order
    ]
    burned: list[object] = []
    for n in range(1, 8):  # spend one more lot's worth each time: which one went last?
        found = fold(copy.deepcopy(lots), [spend(10, 10 * n)], NOW)
        burned += [x.id for x in found.lots if x.consumed and x.id not in burned]
    assert burned == ["a", "c", "b", 1, 2, "d", "e"]


def test_at_one_instant_lots_start_then_expiries_then_spends() -> None:
    starts = lot("starts", 100, 10)
    ends = lot("ends", 100, 0, expires=10, priority=-5)  # would burn first, but ends at 10
    found = fold([starts, ends], [spend(10, 30)], NOW)
    assert state(found.lots) == {"starts": (30, 0, 70), "ends": (0, 100, 0)}
    assert found.expected_remaining == 70


def test_spends_at_one_instant_apply_in_id_order() -> None:
    grants = [lot("g", 50, 0)]
    found = fold(grants, [spend(5, 40, ident=2), spend(5, 30, ident=1)], NOW)
    assert found.overage == 20 and found.expected_remaining == -20
    assert state(found.lots) == {"g": (50, 0, 0)}


def test_overage_is_paid_off_first_by_a_lot_that_becomes_spendable_later() -> None:
    found = fold([lot("early", 10, 0), lot("late", 100, 20)], [spend(5, 40)], NOW)
    assert state(found.lots) == {"early": (10, 0, 0), "late": (30, 0, 70)}
    assert (found.overage, found.expected_remaining) == (0, 70)


def test_overage_larger_than_the_late_lot_stays_overage() -> None:
    found = fold([lot("late", 25, 20)], [spend(5, 40)], NOW)
    assert state(found.lots) == {"late": (25, 0, 0)}
    assert (found.overage, found.expected_remaining) == (15, -15)


def test_several_lots_arriving_together_pay_the_overage_in_burn_order() -> None:
    found = fold(
        [lot("slow", 100, 20, priority=5), lot("fast", 100, 20, expires=190)],
        [spend(5, 30)],
        NOW,
    )
    assert state(found.lots) == {"slow": (0, 0, 100), "fast": (30, 0, 70)}


def test_a_void_before_any_use_forfeits_everything() -> None:
    found = fold([lot("voided", 500, 0, voided=1), lot("plan", 100, 0)], [spend(5, 60)], NOW)
    assert state(found.lots) == {"voided": (0, 500, 0), "plan": (60, 0, 40)}
    assert found.expected_remaining == 40


def test_a_void_before_the_expiry_takes_effect_at_the_void() -> None:
    found = fold([lot("x", 100, 0, expires=50, voided=20)], [spend(10, 30), spend(30, 5)], NOW)
    assert state(found.lots) == {"x": (30, 70, 0)}
    assert (found.overage, found.expected_remaining) == (5, -5)
    assert found.forfeits == [(h(20), 70)]


def test_a_lot_effective_in_the_future_is_neither_spendable_nor_counted() -> None:
    found = fold([lot("now", 100, 0), lot("future", 1000, 150)], [spend(10, 30)], NOW)
    assert state(found.lots) == {"now": (30, 0, 70), "future": (0, 0, 1000)}
    assert found.expected_remaining == 70


def test_an_expiry_in_the_future_is_not_applied_yet() -> None:
    found = fold([lot("x", 100, 0, expires=150)], [spend(10, 30)], NOW)
    assert state(found.lots) == {"x": (30, 0, 70)}
    assert found.expected_remaining == 70 and found.forfeits == []


def test_a_lot_that_expires_before_it_starts_is_forfeited_whole() -> None:
    found = fold([lot("odd", 100, 20, expires=10)], [spend(30, 5)], NOW)
    assert state(found.lots) == {"odd": (0, 100, 0)}
    assert found.expected_remaining == -5


def test_a_spend_dated_after_now_applies_at_now() -> None:
    found = fold([lot("x", 100, 0, expires=150), lot("future", 50, 120)], [spend(130, 30)], NOW)
    assert state(found.lots) == {"x": (30, 0, 70), "future": (0, 0, 50)}


def test_starting_is_a_lot_from_the_beginning_burned_last() -> None:
    starting = Lot(name="starting", id=None, amount=100, at=None, priority=LAST)
    bonus = lot("bonus", 20, 0, priority=1000, expires=50)
    found = fold([starting, bonus], [spend(10, 30)], NOW)
    assert state(found.lots) == {None: (10, 0, 90), "bonus": (20, 0, 0)}
    assert found.expected_remaining == 90


def test_spends_before_any_lot_are_overage_until_the_first_lot() -> None:
    found = fold([lot("first", 100, 50)], [spend(10, 30), spend(20, 20)], NOW)
    assert state(found.lots) == {"first": (50, 0, 50)}
    assert found.expected_remaining == 50


def test_exact_decimals() -> None:
    found = fold(
        [lot("a", Decimal("0.30"), 0, expires=5), lot("b", Decimal("1.00000"), 0)],
        [spend(1, Decimal("0.1")), spend(6, Decimal("0.25"))],
        NOW,
    )
    assert found.expected_remaining == Decimal("0.75000")
    assert state(found.lots)["a"] == (Decimal("0.1"), Decimal("0.20"), 0)


@pytest.mark.parametrize("seed", range(40))
def test_every_lot_adds_up_and_the_balance_is_what_the_lots_hold(seed: int) -> None:
    rng = random.Random(seed)
    lots = [
        lot(
            n,
            rng.randint(1, 500),
            rng.choice([None, *range(0, 120, 7)]),
            expires=rng.choice([None, None, rng.randint(0, 140)]),
            voided=rng.choice([None, None, None, rng.randint(0, 140)]),
            priority=rng.randint(0, 3),
        )
        for n in range(rng.randint(0, 8))
    ]
    spends = [spend(rng.randint(0, 130), rng.randint(1, 300), n) for n in range(rng.randint(0, 20))]
    found = fold(lots, spends, NOW)
    for x in found.lots:
        assert x.consumed + x.forfeited + x.remaining == x.amount
        assert min(x.consumed, x.forfeited, x.remaining) >= 0
    live = sum(x.remaining for x in found.lots if x.spendable)
    assert found.expected_remaining == live - found.overage
    assert found.overage == 0 or live == 0  # overage only when nothing spendable is left
    # Everything spent went to a lot or is overage: nothing created, nothing lost.
    assert sum(x.consumed for x in found.lots) + found.overage == sum(s.amount for s in spends)
