"""`grant` and `deduct` print in every format the other commands do (docs/output.md):
`--format json` is `--json`, jsonl is one `adjustment` line, csv one row under a header, and a
`--json` that disagrees with `--format` is bad input that books nothing."""

from __future__ import annotations

import csv
import io
import json
import uuid

import psycopg
import pytest

from tests.db import test_adjustments
from tests.db.test_adjustments import balance
from tests.db.test_monitoring import ENVELOPE
from tests.support.clirunner import CliRunner

customer = test_adjustments.customer  # the fixture: 700 remaining, 300 used, in step


def book(cli: CliRunner, kind: str, user: uuid.UUID, *flags: str):  # type: ignore[no-untyped-def]
    return cli(kind, str(user), "50", "--reason", "ticket 7", "--yes", *flags)


@pytest.mark.parametrize("kind", ["grant", "deduct"])
def test_format_json_prints_the_json_flags_document(
    cli: CliRunner,
    customer: uuid.UUID,
    kind: str,
) -> None:
    flag = book(cli, kind, customer, "--json", "--idempotency-key", "k1").json()
    option = book(cli, kind, customer, "--format", "json", "--idempotency-key", "k1").json()
    assert option["already_booked_by"] == flag["run_id"]
    assert option.keys() == flag.keys()
    assert (option["command"], option["amount"], option["reason"]) == (kind, 50, "ticket 7")


@pytest.mark.parametrize("kind", ["grant", "deduct"])
def test_format_jsonl_is_one_adjustment_line(
    cli: CliRunner,
    customer: uuid.UUID,
    kind: str,
) -> None:
    result = book(cli, kind, customer, "--format", "jsonl")
    assert result.exit_code == 0, result.stderr
    (line,) = [json.loads(text) for text in result.stdout.splitlines()]
    assert line["type"] == "adjustment" and line["command"] == kind
    assert line.keys() >= ENVELOPE | {"run_id", "booking"}


@pytest.mark.parametrize("kind", ["grant", "deduct"])
def test_format_csv_is_one_row_with_the_booking_flattened(
    cli: CliRunner,
    customer: uuid.UUID,
    kind: str,
) -> None:
    result = book(cli, kind, customer, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    (row,) = list(csv.DictReader(io.StringIO(result.stdout)))
    expected_after = 750 if kind == "grant" else 650
    assert row["command"] == kind and row["amount"] == "50"
    assert row["booking.after.tokens_remaining"] == str(expected_after)


def test_json_and_another_format_is_bad_input_and_books_nothing(
    cli: CliRunner,
    conn: psycopg.Connection,
    customer: uuid.UUID,
) -> None:
    result = book(cli, "grant", customer, "--json", "--format", "csv")
    assert result.exit_code == 2
    assert "--json and --format csv disagree" in result.stderr
    assert balance(conn, customer) == (700, 300)
