"""doctor's Citus check compares a ledger's distribution column with the column its key names
(docs/citus.md), written bare, quoted, or qualified with the ledger's alias."""

from __future__ import annotations

import pytest

from tokenfix.health.citus import _column


@pytest.mark.parametrize(
    ("key", "column"),
    [
        ("user_id", "user_id"),
        (" user_id ", "user_id"),
        ('"Owner Key"', "Owner Key"),
        ("ledger.account_id", "account_id"),
        ('ledger."Owner Key"', "Owner Key"),
    ],
)
def test_a_ledger_key_names_its_column(key: str, column: str) -> None:
    assert _column(key) == column
