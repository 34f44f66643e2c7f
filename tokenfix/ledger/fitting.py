"""Whether an owner's expected balance fits the columns it would be written to.

An owner granted more than an integer column holds must not stop every owner after it, night
after night (docs/safety.md): such an owner is left as it was and reported (`skipped:
"unwritable"` with the reason), and the dry run names it. Known before writing where a column
is written with the plain expected value; otherwise the database says so when it is written
(writer.py then finds the owner and leaves it out).
"""

from __future__ import annotations

from tokenfix.base.records import Candidate
from tokenfix.ledger import catalog
from tokenfix.ledger.model import BalanceModel

_SIDES = ("expected_remaining", "expected_used")


def unwritable(model: BalanceModel, owner: Candidate) -> str | None:
    """Why `owner`'s expected values cannot be written (None: as far as we can tell, they can)."""
    balance = model.mapping.balance
    written = balance.write if owner.has_profile else (balance.create or ())
    for column, expr in written:
        side = expr.text.strip()
        if side not in _SIDES:
            continue
        expected = owner.expected
        value = expected.tokens_remaining if side == _SIDES[0] else expected.tokens_used
        type_name = model.shape.balance_columns.get(column)
        if value is not None and type_name and not catalog.fits(value, type_name):
            return f"{side} {value} does not fit {balance.table}.{column}, which is {type_name}"
    return None
