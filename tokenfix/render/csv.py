"""`reconcile --format csv`: one row per change, amounts as exact decimal text."""

from __future__ import annotations

import csv
from collections.abc import Iterable
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


def flat(record: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """One CSV row from a JSON-ready record: nested objects as `outer.inner` columns, lists
    as their JSON text, booleans as true/false, None as an empty cell."""
    import simplejson

    found: dict[str, str] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            found.update(flat(value, f"{name}."))
        elif isinstance(value, list):
            found[name] = simplejson.dumps(value, use_decimal=True, default=str)
        elif isinstance(value, bool):
            found[name] = str(value).lower()
        else:
            found[name] = _text(value)
    return found


def write_records(stream: TextIO, records: Iterable[dict[str, Any]]) -> None:
    """Any command's entries as CSV, the columns of the first entry in its order (the entries
    of one list share them); no entries, no output."""
    writer: csv.DictWriter[str] | None = None
    for record in records:
        row_ = flat(record)
        if writer is None:
            writer = csv.DictWriter(stream, list(row_), lineterminator="\n", extrasaction="ignore")
            writer.writeheader()
        writer.writerow(row_)
