"""The spool keeps a run's listed owners: in order, exact, the first thousands unpickled."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tokenfix.base import spool
from tokenfix.base.spool import Spool


@dataclass(frozen=True, slots=True)
class Record:
    n: int
    amount: Decimal


class Unpicklable:
    def __reduce__(self) -> tuple[object, ...]:
        raise AssertionError("pickled")


def test_records_come_back_in_order_and_exact_past_what_is_kept() -> None:
    total = spool._KEPT_RECORDS + 1000
    with Spool[Record]() as records:
        for n in range(total):
            records.append(Record(n, Decimal(n) / 8))
        for _ in range(2):  # read twice, as a plan then its write do
            assert [r.n for r in records] == list(range(total))
        assert [r.amount for r in records][-1] == Decimal(total - 1) / 8
        assert sum(len(b) for b in records.batches(1000)) == total == records.count


def test_a_run_of_a_few_thousand_owners_is_not_pickled() -> None:
    with Spool[Unpicklable]() as records:
        for _ in range(spool._KEPT_RECORDS):
            records.append(Unpicklable())
        assert records.count == len(list(records)) == spool._KEPT_RECORDS


def test_records_past_the_kept_ones_go_to_the_file() -> None:
    with Spool[object]() as records:
        for n in range(spool._KEPT_RECORDS):
            records.append(n)
        try:
            records.append(Unpicklable())
        except AssertionError as exc:
            assert str(exc) == "pickled"
        else:
            raise AssertionError("the record past the kept ones was not pickled")
