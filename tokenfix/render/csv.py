"""`reconcile --format csv`: one row per change, amounts as exact decimal text."""

from __future__ import annotations

import csv
from typing import Any, TextIO

from tokenfix.base.records import Change

COLUMNS = (
    "user_id",
    "status",
    "current_remaining",
    "current_used",
    "expected_remaining",
    "expected_used",
    "drift_remaining",
    "drift_used",
    "applied",
    "skipped",
)


def _text(value: Any) -> str:
    # str() of an int or a Decimal is its exact decimal text; None is an empty cell.
    return "" if value is None else str(value)


def row(c: Change) -> list[str]:
    current, drift = c.current, c.drift
    return [
        c.key,
        c.status,
        _text(current.tokens_remaining if current else None),
        _text(current.tokens_used if current else None),
        _text(c.expected.tokens_remaining),
        _text(c.expected.tokens_used),
        _text(drift.tokens_remaining if drift else None),
        _text(drift.tokens_used if drift else None),
        str(c.applied).lower(),
        c.skipped or "",
    ]


def write_outcome(stream: TextIO, outcome: Any) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(COLUMNS)
    for change in outcome.changes:
        writer.writerow(row(change))
