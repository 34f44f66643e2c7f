"""What a ledger probe did to the caller's balance: the expected balance reconcile would write
(the balance model itself, one owner), read by the tool before a probe and inside its
savepoint after. A probe is a hole only when it raised that balance: a deduct row, a charge
row, or a change that makes a charge dearer is no harm (docs/doctor.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from tokenfix.base.errors import TokenfixError
from tokenfix.config.settings import Settings
from tokenfix.ledger import pricing
from tokenfix.ledger.model import BalanceModel, Selection
from tokenfix.ledger.shape import describe
from tokenfix.mapping.types import Mapping


@dataclass(frozen=True)
class ExpectedBalance:
    model: BalanceModel

    def of(self, conn: psycopg.Connection[Any], key: Any) -> Any:
        """The owner's expected remaining balance (the starting balance without rows)."""
        statement, params = self.model.balances(Selection(keys=(str(key),)))
        row = conn.execute(statement, params).fetchone()
        if row is None or row[4] is None:
            return self.model.starting_balance
        return row[4]

    def raised(self, conn: psycopg.Connection[Any], key: Any, before: Any) -> bool:
        return bool(self.of(conn, key) > before)


def expected_balance(
    conn: psycopg.Connection[Any], settings: Settings, mapping: Mapping
) -> ExpectedBalance | None:
    """The balance model of this database, or None when it cannot be built here (a missing
    table or column: the schema checks say which; the probes then judge by the rows alone)."""
    try:
        with conn.transaction():
            shape = describe(conn, mapping)
            prices = (
                pricing.load(conn, mapping.pricing, shape.pricing_columns)
                if mapping.pricing is not None
                else pricing.Pricing(())
            )
    except (TokenfixError, psycopg.Error):
        if conn.broken:
            raise
        return None
    return ExpectedBalance(BalanceModel(settings, mapping, shape, prices))
