"""docs/mapping.md "Arithmetic": exact amounts end to end, and owner keys of any type.

The shipped schema with bigint and numeric balance and ledger columns, values past 2^31 and
2^53 (where a float loses digits), keys that are text or bigint: diagnose, the dry run in
every format, a write run and its revert, all exact to the last digit.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)
BIG = 2**53 + 1  # 9,007,199,254,740,993: a float says ...992


def exact_json(text: str) -> object:
    return json.loads(text, parse_float=Decimal)


@pytest.fixture
def bigint(conn: psycopg.Connection) -> None:
    conn.execute(
        "ALTER TABLE token_usage ALTER tokens_used TYPE bigint;"
        " ALTER TABLE user_profiles ALTER vibe_assistant_tokens_remaining TYPE bigint,"
        " ALTER vibe_assistant_tokens_used TYPE bigint"
    )


@pytest.fixture
def numeric(conn: psycopg.Connection) -> None:
    conn.execute(
        "ALTER TABLE token_usage ALTER tokens_used TYPE numeric(20,4);"
        " ALTER TABLE user_profiles ALTER vibe_assistant_tokens_remaining TYPE numeric(20,4),"
        " ALTER vibe_assistant_tokens_used TYPE numeric(20,4)"
    )


def test_a_grant_past_2_53_is_exact_in_diagnose(
    cli: CliRunner, ledger: Ledger, bigint: None
) -> None:
    user = ledger.profile(ledger.user())
    ledger.row(user, BIG, action="admin_grant")
    ledger.row(user, 9_000_000_000_123, action="admin_grant")
    result = cli("diagnose", str(user), "--json")
    assert result.exit_code == 1
    data = exact_json(result.stdout)
    assert data["usage"]["granted_tokens"] == BIG + 9_000_000_000_123  # type: ignore[index]
    assert data["expected"] == {"tokens_remaining": BIG + 9_000_000_000_123, "tokens_used": 0}  # type: ignore[index]
    assert f'"granted_tokens": {BIG + 9_000_000_000_123}' in result.stdout
    table = cli("diagnose", str(user)).stdout
    assert f"{BIG + 9_000_000_000_123:,}" in table


def test_bigint_amounts_are_exact_in_every_format_and_through_write_and_revert(
    cli: CliRunner, ledger: Ledger, bigint: None
) -> None:
    user = ledger.profile(ledger.user(), remaining=2**40)
    ledger.row(user, BIG, action="admin_grant", at=HOUR_AGO)
    ledger.row(user, 3_000_000_000, at=HOUR_AGO)
    expected = {"tokens_remaining": BIG - 3_000_000_000, "tokens_used": 3_000_000_000}
    dry = cli("reconcile", "--all", "--dry-run", "--json")
    change = exact_json(dry.stdout)["changes"][0]  # type: ignore[index]
    assert change["expected"] == expected
    assert change["drift"] == {
        "tokens_remaining": 2**40 - (BIG - 3_000_000_000),
        "tokens_used": -3_000_000_000,
    }
    csv = cli("reconcile", "--all", "--dry-run", "--format", "csv").stdout.splitlines()
    assert csv[1].split(",")[4:6] == [str(BIG - 3_000_000_000), "3000000000"]
    assert f"{BIG - 3_000_000_000:,}" in cli("reconcile", "--all", "--dry-run").stdout
    run = cli("reconcile", "--all", "--yes", "--json")
    assert run.exit_code == 0
    assert ledger.cached(user) == (BIG - 3_000_000_000, 3_000_000_000)
    assert cli("reconcile", "--all", "--dry-run").exit_code == 0  # converged
    assert cli("revert", exact_json(run.stdout)["run_id"], "--yes").exit_code == 0  # type: ignore[index]
    assert ledger.cached(user) == (2**40, 0)


def test_numeric_amounts_keep_their_digits(
    cli: CliRunner, conn: psycopg.Connection, ledger: Ledger, numeric: None
) -> None:
    user = ledger.profile(ledger.user())
    conn.execute(
        "INSERT INTO token_usage (user_id, action_type, tokens_used, success, created_at)"
        " VALUES (%s, 'admin_grant', 12.5000, true, %s), (%s, 'chat', 0.0001, true, %s)",
        (user, HOUR_AGO, user, HOUR_AGO),
    )
    dry = cli("reconcile", "--all", "--dry-run", "--json")
    assert '"tokens_remaining": 12.4999' in dry.stdout
    assert '"tokens_used": 0.0001' in dry.stdout
    change = exact_json(dry.stdout)["changes"][0]  # type: ignore[index]
    assert change["expected"]["tokens_remaining"] == Decimal("12.4999")
    diagnosed = exact_json(cli("diagnose", str(user), "--json").stdout)
    assert diagnosed["usage"]["granted_tokens"] == Decimal("12.5000")  # type: ignore[index]
    assert '"granted_tokens": 12.5000' in cli("diagnose", str(user), "--json").stdout
    assert cli("reconcile", "--all", "--yes").exit_code == 0
    assert conn.execute(
        "SELECT vibe_assistant_tokens_remaining::text, vibe_assistant_tokens_used::text"
        " FROM user_profiles"
    ).fetchone() == ("12.4999", "0.0001")
    run_id = json.loads(cli("history", "--json").stdout)["runs"][0]["run_id"]
    revert = cli("revert", run_id, "--yes", "--json")
    assert revert.exit_code == 0
    assert '"restore_to": {"tokens_remaining": 0.0000, "tokens_used": 0.0000}' in revert.stdout


def test_twelve_fifty_with_five_places_stays_twelve_fifty_with_five_places(
    cli: CliRunner, conn: psycopg.Connection, ledger: Ledger
) -> None:
    conn.execute(
        "ALTER TABLE user_profiles ALTER vibe_assistant_tokens_remaining TYPE numeric(30,5)"
    )
    user = ledger.profile(ledger.user())
    conn.execute(
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = 12.50000 WHERE user_id = %s",
        (user,),
    )
    data = cli("diagnose", str(user), "--json").stdout
    assert '"tokens_remaining": 12.50000' in data


@pytest.fixture
def text_keys(conn: psycopg.Connection) -> None:
    conn.execute(
        "ALTER TABLE token_usage ALTER user_id TYPE text;"
        " ALTER TABLE user_profiles ALTER user_id TYPE text"
    )


def test_text_keys_work_with_the_default_mapping(
    cli: CliRunner, conn: psycopg.Connection, text_keys: None
) -> None:
    conn.execute(
        "INSERT INTO user_profiles (user_id, vibe_assistant_tokens_remaining,"
        " vibe_assistant_tokens_used) VALUES ('alice', 0, 0), ('bob', 0, 0)"
    )
    conn.execute(
        "INSERT INTO token_usage (user_id, action_type, tokens_used, success, created_at)"
        " VALUES ('alice', 'chat', 7, true, %s), ('carol', 'chat', 3, true, %s)",
        (HOUR_AGO, HOUR_AGO),
    )
    data = cli("reconcile", "--all", "--dry-run", "--json").json()
    assert [(c["user_id"], c["status"]) for c in data["changes"]] == [
        ("alice", "drift"),
        ("carol", "missing_profile"),
    ]
    assert cli("diagnose", "alice", "--json").json()["drift"] == {
        "tokens_remaining": 7,
        "tokens_used": -7,
    }
    assert cli("reconcile", "alice", "--yes").exit_code == 0
    assert cli("reconcile", "carol", "--yes", "--create-missing").exit_code == 0
    assert cli("reconcile", "--all", "--dry-run").exit_code == 0
    assert cli("history", "--json").json()["runs"][0]["rows_inserted"] == 1


def test_bigint_keys_sort_as_numbers_and_a_key_that_is_no_number_is_bad_input(
    cli: CliRunner, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn.execute(
        "ALTER TABLE token_usage ALTER user_id TYPE bigint USING 0;"
        " ALTER TABLE user_profiles ALTER user_id TYPE bigint USING 0"
    )
    for key in (9, 10, 100):
        conn.execute(
            "INSERT INTO token_usage (user_id, action_type, tokens_used, success, created_at)"
            " VALUES (%s, 'chat', 1, true, %s)",
            (key, HOUR_AGO),
        )
    keys = [
        c["user_id"] for c in cli("reconcile", "--all", "--dry-run", "--json").json()["changes"]
    ]
    assert keys == ["9", "10", "100"]  # the key's own order, not text order
    result = cli("diagnose", "ten")
    assert result.exit_code == 2
    assert result.stderr == "error: not a valid key: 'ten' is not a bigint\n"
    monkeypatch.setattr("sys.stdin", io.StringIO("9\nten\n"))
    stdin = cli("reconcile", "-", "--dry-run")
    assert stdin.exit_code == 2 and "stdin line 2" in stdin.stderr


def test_a_malformed_uuid_keeps_its_message(cli: CliRunner) -> None:
    result = cli("diagnose", str(uuid.uuid4())[:-1] + "x")
    assert result.exit_code == 2
    assert "not a valid user id" in result.stderr and "is not a UUID" in result.stderr
