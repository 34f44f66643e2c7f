"""The rows of the all-owners pass on Citus (docs/citus.md): the one row of the combined
aggregate becomes the rows one server streams: the owners needing attention in the key's
order (the order the database gave), each with its recent flag, then the totals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tokenfix.reconciliation.plan import _sharded_rows


def combined(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "users_checked": 5,
        "cached_remaining_total": Decimal(10),
        "cached_used_total": Decimal(20),
        "expected_remaining_total": Decimal(30),
        "expected_used_total": Decimal(40),
        "keys": [3, 1, 2],
        "key_text": ["3", "1", "2"],
        "has_profile": [True, False, True],
        "current_remaining": [7, None, 9],
        "current_used": [1, None, None],
        "expected_remaining": [Decimal(8), Decimal(5), Decimal(6)],
        "expected_used": [1, 2, 3],
        "drift_remaining": [Decimal(-1), None, Decimal(3)],
        "drift_used": [0, None, None],
        "row_id": [None, None, "r2"],
        "starting": [Decimal(1000), None, Decimal(1000)],
        "granted": [Decimal(0), None, Decimal(3)],
        "deducted": [Decimal(0), None, Decimal(0)],
        "override_difference": [Decimal(0), None, Decimal(0)],
        "failed_charge_tokens": [Decimal(0), None, Decimal(0)],
        "failed_charge_tokens_priced": [Decimal(0), None, Decimal(0)],
        "early": [False, None, True],
        "key_order": [2, 3, 1],
        "recent_keys": ["2"],
    }
    return row | overrides


def test_the_candidates_come_in_the_databases_key_order_with_their_columns() -> None:
    rows = list(_sharded_rows(combined()))
    assert [r["key"] for r in rows[:-1]] == ["1", "2", "3"]
    first, second, third = rows[:3]
    assert first["has_profile"] is False and first["current_remaining"] is None
    assert second["row_id"] == "r2" and second["drift_remaining"] == Decimal(3)
    assert second["granted"] == Decimal(3) and second["early"] is True  # the causes' evidence
    assert third["expected_remaining"] == Decimal(8) and third["current_used"] == 1
    assert [r["recent"] for r in rows[:-1]] == [False, True, False]
    assert not any(r["is_total"] for r in rows[:-1])


def test_the_totals_come_last_also_when_no_owner_needs_attention() -> None:
    nobody = combined(
        keys=None,
        key_text=None,
        has_profile=None,
        current_remaining=None,
        current_used=None,
        expected_remaining=None,
        expected_used=None,
        drift_remaining=None,
        drift_used=None,
        row_id=None,
        starting=None,
        granted=None,
        deducted=None,
        override_difference=None,
        failed_charge_tokens=None,
        failed_charge_tokens_priced=None,
        early=None,
        key_order=[],
        recent_keys=None,
    )
    rows = list(_sharded_rows(nobody))
    assert len(rows) == 1 and rows[0]["is_total"]
    assert rows[0]["users_checked"] == 5
    assert rows[0]["expected_used_total"] == Decimal(40)
