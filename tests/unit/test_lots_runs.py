"""The lots stream sums the charges and deducts between two consecutive lot events (a lot
becoming spendable, an expiry, a void) into one spend (tokenfix/queries/lots_stream.sql): in
such a run the spendable lots and their burn order do not change, so burning the sum burns
every lot exactly as the rows one by one do, overage included. Checked here as pure logic:
every hand-made history of test_lots_fold folds the same with its spends summed in runs, and
so do randomized ones (hypothesis), down to each lot's consumed, forfeited and remaining."""

from __future__ import annotations

import bisect
import copy
import inspect
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit import test_lots_fold as cases
from tokenfix.ledger.lots import NEVER, Folded, Lot, Spend, _id_order, fold


def in_runs(lots: Sequence[Lot], spends: Sequence[Spend]) -> list[Spend]:
    """What the stream sends: the spends in the fold's order, summed while no lot event lies
    between them (an event at a spend's own instant comes first: it starts a run), each run
    at its last row's time; a negative amount burns nothing."""
    events = sorted(
        {t for x in lots for t in (x.at or NEVER, x.expires_at, x.voided_at) if t is not None}
    )
    ordered = sorted(spends, key=lambda s: (s.at, s.order, _id_order(s.id)))
    runs: list[tuple[int, Spend]] = []
    for s in ordered:
        run = bisect.bisect_right(events, s.at)
        amount = max(s.amount, 0)
        if runs and runs[-1][0] == run:
            amount += runs[-1][1].amount
            runs.pop()
        runs.append((run, Spend(at=s.at, amount=amount, id=s.id, order=s.order)))
    return [s for _, s in runs]


def fold_in_runs(lots: Sequence[Lot], spends: Any, now: datetime) -> Folded:
    spent = list(spends)
    return fold(lots, in_runs(lots, spent), now)


def outcome(found: Folded) -> tuple[Any, ...]:
    lots = [(x.name, x.id, x.consumed, x.forfeited, x.remaining, x.spendable) for x in found.lots]
    return (lots, found.overage, found.expected_remaining, sorted(found.forfeits))


def _hand_made() -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for name, test in inspect.getmembers(cases, inspect.isfunction):
        if not name.startswith("test_"):
            continue
        marks = getattr(test, "pytestmark", [])
        seeds = [m.args[1] for m in marks if m.name == "parametrize"]
        if seeds:
            found += [(name, {"seed": seed}) for seed in seeds[0]]
        else:
            found.append((name, {}))
    return found


HAND_MADE = _hand_made()


def test_every_hand_made_case_is_here() -> None:
    assert len(HAND_MADE) == 56


@pytest.mark.parametrize(("name", "arguments"), HAND_MADE, ids=[f"{n}{a}" for n, a in HAND_MADE])
def test_every_hand_made_history_folds_the_same_with_spends_summed_in_runs(
    name: str, arguments: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cases, "fold", fold_in_runs)
    test: Callable[..., None] = getattr(cases, name)
    test(**arguments)


@pytest.mark.parametrize(("name", "arguments"), HAND_MADE, ids=[f"{n}{a}" for n, a in HAND_MADE])
def test_every_hand_made_history_gives_the_same_lots_summed_in_runs(
    name: str, arguments: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond each case's own assertions: the whole outcome, lot by lot, is the same."""
    compared: list[tuple[Any, ...]] = []

    def both(lots: Sequence[Lot], spends: Any, now: datetime) -> Folded:
        spent = list(spends)
        alone = fold(copy.deepcopy(list(lots)), spent, now)
        summed = fold_in_runs(lots, spent, now)
        compared.append((outcome(alone), outcome(summed)))
        return summed

    monkeypatch.setattr(cases, "fold", both)
    getattr(cases, name)(**arguments)
    assert compared and all(a == b for a, b in compared)


T0 = cases.T0
hours = st.integers(min_value=0, max_value=40)  # few instants: many ties


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Lot], list[Spend], datetime]:
    lots = []
    for n in range(draw(st.integers(0, 7))):
        at = draw(st.one_of(st.none(), hours))
        lots.append(
            Lot(
                name=draw(st.sampled_from(["grants", "ledger"])),
                id=draw(st.one_of(st.just(n), st.just(f"x{n}"))),
                amount=Decimal(draw(st.integers(1, 400))) / draw(st.sampled_from([1, 100])),
                at=None if at is None else T0 + timedelta(hours=at),
                expires_at=draw(st.one_of(st.none(), hours.map(lambda h: T0 + timedelta(hours=h)))),
                voided_at=draw(st.one_of(st.none(), hours.map(lambda h: T0 + timedelta(hours=h)))),
                priority=draw(st.integers(0, 3)),
            )
        )
    spends = [
        Spend(
            at=T0 + timedelta(hours=draw(hours)),
            amount=Decimal(draw(st.integers(-5, 300))) / draw(st.sampled_from([1, 100])),
            id=n,
            order=(draw(st.sampled_from(["usage", "deductions"])),),
        )
        for n in range(draw(st.integers(0, 25)))
    ]
    now = T0 + timedelta(hours=draw(hours))
    return lots, spends, now


@settings(max_examples=400, deadline=None)
@given(histories())
def test_random_histories_fold_the_same_with_spends_summed_in_runs(
    history: tuple[list[Lot], list[Spend], datetime],
) -> None:
    lots, spends, now = history
    alone = fold(copy.deepcopy(lots), spends, now)
    summed = fold(copy.deepcopy(lots), in_runs(lots, spends), now)
    assert outcome(alone) == outcome(summed)
    assert len(in_runs(lots, spends)) <= 3 * len(lots) + 1


def test_a_spend_below_zero_burns_nothing_and_owes_nothing() -> None:
    # A charge an override prices below zero: no lot to burn, yet it must not pay off overage.
    found = fold([], [cases.spend(1, 10), cases.spend(2, Decimal(-4))], cases.NOW)
    assert found.overage == 10 and found.expected_remaining == -10
    lots = [cases.lot("a", 10, 0)]
    found = fold(lots, [cases.spend(1, Decimal(-4)), cases.spend(2, 3)], cases.NOW)
    assert outcome(found)[0] == [("grants", "a", 3, 0, 7, True)]
