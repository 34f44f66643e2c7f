"""Periods (docs/balance-model.md) without a foreign key from the ledger's key to the balance
key, but with an index on the ledger's key: the all-owners pass still drops the rows older than
every owner's period before joining each row to its owner's, and reads again, by key, the older
rows of the keys that have no balance row (docs/performance.md). Such an owner has no period:
all its rows count, the oldest too, wherever its key falls among the balance keys (before the
first, between two, several in one gap, after the last)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.db.test_periods_window import MAPPING  # the same plans and usage, mapped alike
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
    plan_id  text,
    value    bigint NOT NULL,
    at       timestamptz
);
CREATE INDEX usage_plan_at ON usage (plan_id, at);
"""


# Balance rows: key -> (period start, period end) in days from now. The earliest start of all
# is 6 days ago: every row older than that lies before its owner's period, if it has one.
PLANS: dict[str, tuple[int | None, int | None]] = {
    "b": (-5, 25),
    "d": (-3, 27),
    "f": (-6, None),
    "h": (-4, 26),
}
# Ledger rows: key (None: no owner) -> [(days from now or None, value)]. The keys without a
# balance row: "a" before the first balance key, "c" between two, "e1" to "e3" in one gap,
# "g" alone in the next, "z" after the last.
ROWS: dict[str | None, list[tuple[int | None, int]]] = {
    "a": [(-900, 1), (-2, 2)],
    "b": [(-900, 4), (-40, 8), (-2, 16), (26, 32), (None, 64)],
    "c": [(-400, 128)],
    "d": [(-5, 256), (-1, 512)],
    "e1": [(-900, 1024)],
    "e2": [(-30, 2048), (None, 4096)],
    "e3": [(-1, 8192), (-700, 16384)],
    "f": [(-7, 32768), (-6, 65536), (40, 131072)],
    "g": [(-365, 262144)],
    "h": [(-90, 524288)],
    "z": [(-900, 1048576), (-10, 2097152)],
    None: [(-900, 4194304), (-1, 8388608)],
}


def _at(days: int | None) -> datetime | None:
    return None if days is None else NOW + days * DAY


def _inside(days: int | None, period: tuple[int | None, int | None]) -> bool:
    start, end = period
    if days is None:
        return start is None and end is None
    return (start is None or days >= start) and (end is None or days < end)


def _expected_remaining() -> dict[str, int]:
    """What each keyed owner has left, computed here from the rows: an owner with a balance row
    counts the rows inside its period; one without counts them all."""
    expected: dict[str, int] = {}
    for key, rows in ROWS.items():
        if key is None:
            continue
        if key in PLANS:
            used = sum(value for days, value in rows if _inside(days, PLANS[key]))
            expected[key] = 1000 - used
        else:
            expected[key] = -sum(value for _, value in rows)
    return expected


def _fill(conn: psycopg.Connection[Any], plans: dict[str, tuple[int | None, int | None]]) -> None:
    conn.execute(SCHEMA)
    for key, (start, end) in plans.items():
        conn.execute("INSERT INTO plans VALUES (%s, 1000, 0, %s, %s)", (key, _at(start), _at(end)))
    for key, rows in ROWS.items():
        for days, value in rows:
            conn.execute(
                "INSERT INTO usage (plan_id, value, at) VALUES (%s, %s, %s)",
                (key, value, _at(days)),
            )


@pytest.fixture
def mapping(conn: psycopg.Connection[Any], tmp_path: Path) -> Path:
    _fill(conn, PLANS)
    path = tmp_path / "tokenfix.toml"
    path.write_text(MAPPING)
    return path


def _statement(db_url: str, path: Path, selection: Selection | None = None) -> str:
    settings = Settings(database_url=db_url)
    with connect(settings) as tool:
        model = load_model(tool, settings, load_file(path))
        statement, _ = model.balances(selection or Selection())
        return statement.as_string(tool)


def _changes(cli: CliRunner, path: Path) -> dict[str, Any]:
    result = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", str(path))
    assert result.exit_code == 1, result.stderr
    data = json.loads(result.stdout, parse_float=Decimal)
    return {str(c["user_id"]): c for c in data["changes"]}


def _remaining(changes: dict[str, Any]) -> dict[str, Any]:
    return {key: change["expected"]["tokens_remaining"] for key, change in changes.items()}


def test_an_index_on_the_key_lets_the_pass_drop_the_rows_before_every_period(
    conn: psycopg.Connection[Any], db_url: str, mapping: Path
) -> None:
    statement = _statement(db_url, mapping)
    assert "period_window" in statement and "period_orphans_0" in statement
    conn.execute("DROP INDEX usage_plan_at")
    statement = _statement(db_url, mapping)
    assert "period_window" not in statement and "period_orphans" not in statement


def test_the_keys_without_a_balance_row_count_every_row_the_oldest_too(
    cli: CliRunner, conn: psycopg.Connection[Any], mapping: Path
) -> None:
    walked = _changes(cli, mapping)
    expected = _expected_remaining()
    assert {k: v for k, v in _remaining(walked).items() if k in expected} == expected
    # The pass that joins every row to its owner's period gives the same, to the last field.
    conn.execute("DROP INDEX usage_plan_at")
    assert _changes(cli, mapping) == walked


def test_an_owner_without_a_start_keeps_every_row_in_the_pass(
    cli: CliRunner, conn: psycopg.Connection[Any], mapping: Path
) -> None:
    conn.execute("UPDATE plans SET period_start = NULL WHERE id = 'h'")
    walked = _remaining(_changes(cli, mapping))
    assert walked["h"] == 1000 - 524288  # its 90-day-old row is inside its open period
    assert walked["e1"] == -1024 and walked["z"] == -(1048576 + 2097152)
    conn.execute("DROP INDEX usage_plan_at")
    assert _remaining(_changes(cli, mapping)) == walked


def test_without_any_balance_row_every_row_counts(
    cli: CliRunner, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    _fill(conn, {})
    path = tmp_path / "tokenfix.toml"
    path.write_text(MAPPING)
    walked = _remaining(_changes(cli, path))
    for key, rows in ROWS.items():
        if key is not None:
            assert walked[key] == -sum(value for _, value in rows), key


@pytest.mark.parametrize(
    "index",
    [
        "usage (plan_id text_pattern_ops)",  # another order than the balance key's
        "usage (plan_id) WHERE value > 0",  # partial
        "usage (value, plan_id)",  # the key is not its first column
        'usage (plan_id COLLATE "POSIX")',  # another collation
    ],
)
def test_an_index_that_cannot_walk_the_keys_leaves_the_pass_as_it_was(
    conn: psycopg.Connection[Any], db_url: str, mapping: Path, index: str
) -> None:
    conn.execute("DROP INDEX usage_plan_at")
    conn.execute(f"CREATE INDEX ON {index}")
    assert "period_window" not in _statement(db_url, mapping)


def test_a_list_of_owners_is_read_by_key_without_the_window(
    conn: psycopg.Connection[Any], db_url: str, mapping: Path
) -> None:
    statement = _statement(db_url, mapping, Selection(keys=("b", "e1")))
    assert "period_window" not in statement
    excluded = _statement(db_url, mapping, Selection(excluded=("e2",)))
    assert "period_orphans_0" in excluded


def test_excluded_keys_stay_out_with_the_window(
    cli: CliRunner, conn: psycopg.Connection[Any], mapping: Path, tmp_path: Path
) -> None:
    excluded = tmp_path / "excluded.txt"
    excluded.write_text("e2\nb\n")
    result = cli(
        "reconcile", "--all", "--dry-run", "--json", "--mapping", str(mapping),
        "--exclude-file", str(excluded),
    )  # fmt: skip
    assert result.exit_code == 1, result.stderr
    data = json.loads(result.stdout, parse_float=Decimal)
    walked = {str(c["user_id"]): c["expected"]["tokens_remaining"] for c in data["changes"]}
    expected = {k: v for k, v in _expected_remaining().items() if k not in ("e2", "b")}
    assert {k: v for k, v in walked.items() if k in expected} == expected
    assert "e2" not in walked and "b" not in walked


def test_two_ledgers_one_with_the_index_count_alike(
    cli: CliRunner, conn: psycopg.Connection[Any], mapping: Path
) -> None:
    conn.execute(
        "CREATE TABLE topups (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " plan_id text, value bigint NOT NULL, at timestamptz)"
    )
    for key, days, value in [("b", -2, 3), ("b", -30, 5), ("c", -900, 7), ("y", -800, 11)]:
        conn.execute(
            "INSERT INTO topups (plan_id, value, at) VALUES (%s, %s, %s)", (key, value, _at(days))
        )
    mapping.write_text(
        MAPPING + '\n[[ledger]]\nname = "topups"\ntable = "topups"\nkey = "plan_id"\nat = "at"\n'
        'amount = "value"\nkind = "\'grant\'"\nid = "id"\n'
    )
    walked = _changes(cli, mapping)
    expected = _expected_remaining()
    expected |= {"b": expected["b"] + 3, "c": expected["c"] + 7, "y": 11}
    assert {k: v for k, v in _remaining(walked).items() if k in expected} == expected
    conn.execute("DROP INDEX usage_plan_at")
    assert _changes(cli, mapping) == walked
