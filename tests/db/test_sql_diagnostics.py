"""The shipped sql/diagnostics/*.sql, run with psql, agree with `tokenfix diagnose`."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.support.builders import BASE_TIME, Ledger
from tests.support.clirunner import CliRunner
from tests.support.psql import psql, rows


@pytest.fixture
def user(ledger: Ledger) -> uuid.UUID:
    ledger.override("chat_conversation", 40, model="gpt-4")
    ledger.override("chat_conversation", 15, valid_from=BASE_TIME + timedelta(minutes=4))
    user = ledger.user()
    ledger.row(user, 75, at=BASE_TIME - timedelta(hours=1))
    ledger.profile(user, remaining=900, used=100, created_at=BASE_TIME)
    ledger.row(user, 1000, action="admin_grant", model=None)
    ledger.row(user, 100)
    ledger.row(user, 60, model="claude")
    ledger.row(user, 60, model="claude")  # after the agnostic override starts
    ledger.row(user, 0)
    ledger.row(user, 500, success=False)
    ledger.row(user, None, success=False)
    ledger.row(user, -3)
    ledger.row(user, 200, action="admin_deduct", model=None)
    return user


def diagnosis(cli: CliRunner, user: uuid.UUID, *extra: str) -> dict:
    result = cli("diagnose", str(user), "--json", *extra)
    assert result.exit_code in (0, 1), result.stderr
    return result.json()


def test_record_counts_match(cli: CliRunner, db_url: str, user: uuid.UUID) -> None:
    (row,) = rows(db_url, "sql/diagnostics/record_counts.sql", f"user_id={user}")
    usage = diagnosis(cli, user)["usage"]
    assert [int(v) for v in row] == [
        usage["total_records"],
        usage["total_tokens_logged"],
        usage["failed_records"],
        usage["zero_token_records"],
        usage["invalid_records"],
    ]
    assert [int(v) for v in row] == [10, 1992, 1, 1, 2]


def test_current_balance_matches(cli: CliRunner, db_url: str, user: uuid.UUID) -> None:
    (row,) = rows(db_url, "sql/diagnostics/current_balance.sql", f"user_id={user}")
    profile = diagnosis(cli, user)["profile"]
    assert [int(row[0]), int(row[1])] == [profile["tokens_remaining"], profile["tokens_used"]]


def test_records_before_profile_match(cli: CliRunner, db_url: str, user: uuid.UUID) -> None:
    (row,) = rows(db_url, "sql/diagnostics/records_before_profile.sql", f"user_id={user}")
    assert int(row[0]) == diagnosis(cli, user)["usage"]["records_before_profile"] == 1
    assert int(row[1]) == 75


@pytest.mark.parametrize("starting", [0, 250])
def test_expected_balance_matches(
    cli: CliRunner, db_url: str, user: uuid.UUID, starting: int
) -> None:
    (row,) = rows(
        db_url,
        "sql/diagnostics/expected_balance.sql",
        f"user_id={user}",
        f"starting_balance={starting}",
    )
    data = diagnosis(cli, user, "--starting-balance", str(starting))
    assert row[0] == str(user)
    assert [int(v) for v in row[3:]] == [
        900,
        100,
        data["expected"]["tokens_remaining"],
        data["expected"]["tokens_used"],
        data["drift"]["tokens_remaining"],
        data["drift"]["tokens_used"],
    ]
    assert data["expected"] == {
        "tokens_remaining": starting + 1000 - 200 - (40 + 40 + 60 + 15),
        "tokens_used": 155,
    }


def test_expected_balance_works_without_an_overrides_table(
    cli: CliRunner, db_url: str, user: uuid.UUID, ledger: Ledger
) -> None:
    ledger.conn.execute("DROP TABLE ai_action_token_overrides")
    (row,) = rows(db_url, "sql/diagnostics/expected_balance.sql", f"user_id={user}")
    data = diagnosis(cli, user)
    assert [int(row[5]), int(row[6])] == [
        data["expected"]["tokens_remaining"],
        data["expected"]["tokens_used"],
    ]
    assert int(row[6]) == 75 + 100 + 60 + 60


def test_expected_balance_works_without_window_columns(
    cli: CliRunner, db_url: str, user: uuid.UUID, ledger: Ledger
) -> None:
    ledger.conn.execute(
        "ALTER TABLE ai_action_token_overrides DROP COLUMN valid_from, DROP COLUMN valid_until"
    )
    (row,) = rows(db_url, "sql/diagnostics/expected_balance.sql", f"user_id={user}")
    data = diagnosis(cli, user)
    assert [int(row[5]), int(row[6])] == [
        data["expected"]["tokens_remaining"],
        data["expected"]["tokens_used"],
    ]


@pytest.mark.parametrize(
    "script",
    ["record_counts", "current_balance", "records_before_profile", "expected_balance"],
)
def test_each_script_explains_its_usage_without_a_user_id(db_url: str, script: str) -> None:
    done = psql(db_url, f"sql/diagnostics/{script}.sql")
    assert done.returncode == 0
    assert "usage: psql -v user_id=<uuid>" in done.stdout
