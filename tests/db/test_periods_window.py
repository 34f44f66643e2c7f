"""Periods (docs/balance-model.md) when a foreign key ties the ledger's key to the balance key:
the all-owners pass then drops the rows older than every owner's period before joining each row
to its owner's (docs/performance.md). The counts stay exact: an owner without a start keeps its
oldest rows, a row without a time or an owner is judged as before, and without the foreign key
(an owner may then have rows but no balance row, and all its rows count) nothing is dropped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.clirunner import CliRunner
from tokenfix.config.settings import Settings
from tokenfix.db.session import connect
from tokenfix.ledger.model import Selection
from tokenfix.ledger.model import load as load_model
from tokenfix.mapping.file import load_file

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)

SCHEMA = """
CREATE TABLE plans (
    id            text PRIMARY KEY,
    allowance     bigint NOT NULL,
    balance       bigint NOT NULL,
    period_start  timestamptz,
    period_end    timestamptz
);
CREATE TABLE usage (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plan_id  text CONSTRAINT usage_plan REFERENCES plans (id),
    value    bigint NOT NULL,
    at       timestamptz
);
"""

MAPPING = """
[balance]
table = "plans"
key = "id"
remaining = "balance"
starting = "allowance"
period_start = "period_start"
period_end = "period_end"

[[ledger]]
name = "usage"
table = "usage"
key = "plan_id"
at = "at"
amount = "value"
kind = "'charge'"
id = "id"
"""

# owner: (period start, period end), rows (days from now or None, value)
OWNERS: dict[str, tuple[tuple[int | None, int | None], list[tuple[int | None, int]]]] = {
    # the earliest start of all is 5 days ago: b's rows 400 and 40 days old still count
    "a": ((-5, 25), [(-40, 1), (-2, 10), (26, 100)]),
    "b": ((None, None), [(-400, 1000), (-40, 10000), (None, 100000)]),
    "c": ((-3, 27), [(-10, 1000000), (-1, 10000000)]),
    "d": ((-4, None), [(-30, 100000000), (60, 1000000000)]),
}
EXPECTED = {"a": 1000 - 10, "b": 1000 - 111000, "c": 1000 - 10000000, "d": 1000 - 1000000000}


def _at(days: int | None) -> datetime | None:
    return None if days is None else NOW + days * DAY


@pytest.fixture
def mapping(conn: psycopg.Connection, tmp_path: Path) -> Path:
    conn.execute(SCHEMA)
    for key, ((start, end), rows) in OWNERS.items():
        conn.execute("INSERT INTO plans VALUES (%s, 1000, 0, %s, %s)", (key, _at(start), _at(end)))
        for days, value in rows:
            conn.execute(
                "INSERT INTO usage (plan_id, value, at) VALUES (%s, %s, %s)",
                (key, value, _at(days)),
            )
    conn.execute("INSERT INTO usage (plan_id, value, at) VALUES (NULL, 7, %s)", (NOW - 90 * DAY,))
    path = tmp_path / "tokenfix.toml"
    path.write_text(MAPPING)
    return path


def _statement(db_url: str, path: Path) -> str:
    settings = Settings(database_url=db_url)
    with connect(settings) as tool:
        model = load_model(tool, settings, load_file(path))
        statement, _ = model.balances(Selection())
        return statement.as_string(tool)


def _expected(cli: CliRunner, path: Path) -> dict[str, Any]:
    result = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", str(path))
    assert result.exit_code == 1, result.stderr
    data = json.loads(result.stdout, parse_float=Decimal)
    return {c["user_id"]: c["expected"]["tokens_remaining"] for c in data["changes"]}


def test_a_foreign_key_lets_the_pass_drop_the_rows_before_every_period(
    conn: psycopg.Connection, db_url: str, mapping: Path
) -> None:
    assert "period_window" in _statement(db_url, mapping)
    conn.execute("ALTER TABLE usage DROP CONSTRAINT usage_plan")
    assert "period_window" not in _statement(db_url, mapping)
    conn.execute(
        "ALTER TABLE usage ADD CONSTRAINT usage_plan FOREIGN KEY (plan_id) REFERENCES plans (id)"
        " NOT VALID"
    )
    assert "period_window" not in _statement(db_url, mapping)  # not validated: no promise


def test_the_counts_are_the_same_with_and_without_the_foreign_key(
    cli: CliRunner, conn: psycopg.Connection, mapping: Path
) -> None:
    windowed = _expected(cli, mapping)
    assert {k: v for k, v in windowed.items() if k in EXPECTED} == EXPECTED
    conn.execute("ALTER TABLE usage DROP CONSTRAINT usage_plan")
    assert _expected(cli, mapping) == windowed
    # Without the key an owner may have no balance row: all its rows count, the oldest too.
    conn.execute(
        "INSERT INTO usage (plan_id, value, at) VALUES ('gone', 5, %s)", (NOW - 900 * DAY,)
    )
    assert _expected(cli, mapping)["gone"] == -5
