"""sql/scripts/fix-user-token-balance.sql (the runbook fallback) agrees with the CLI to the token."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.support.builders import BASE_TIME, Ledger
from tests.support.clirunner import CliRunner
from tests.support.psql import psql

SCRIPT = "sql/scripts/fix-user-token-balance.sql"


def seeded_user(ledger: Ledger, *, profile: bool = True) -> uuid.UUID:
    ledger.override("chat_conversation", 40, model="gpt-4")
    ledger.override("chat_conversation", 15, valid_from=BASE_TIME + timedelta(minutes=3))
    ledger.override("image_generation", 5, valid_until=BASE_TIME + timedelta(minutes=2))
    user = ledger.user()
    if profile:
        ledger.profile(user, remaining=12345, used=1)
    ledger.row(user, 1000, action="admin_grant", model=None)
    ledger.row(user, 100)
    ledger.row(user, 80, action="image_generation", model=None)
    ledger.row(user, 60, model="claude")
    ledger.row(user, 70, action="image_generation", model=None)
    ledger.row(user, 500, success=False)
    ledger.row(user, None)
    ledger.row(user, 200, action="admin_deduct", model=None)
    return user


def expected_by_cli(cli: CliRunner, user: uuid.UUID, *extra: str) -> tuple[int, int]:
    data = cli("diagnose", str(user), "--json", *extra).json()
    return data["expected"]["tokens_remaining"], data["expected"]["tokens_used"]


@pytest.mark.parametrize("starting", [0, 750])
def test_the_script_writes_what_the_cli_expects(
    cli: CliRunner, db_url: str, ledger: Ledger, starting: int
) -> None:
    user = seeded_user(ledger)
    want = expected_by_cli(cli, user, "--starting-balance", str(starting))
    done = psql(
        db_url, SCRIPT, f"user_id={user}", f"starting_balance={starting}", tuples_only=False
    )
    assert done.returncode == 0, done.stderr
    assert "cached remaining 12345 used 1" in done.stdout
    assert f"expected remaining {want[0]} used {want[1]}" in done.stdout
    assert ledger.cached(user) == want
    assert cli("diagnose", str(user), "--starting-balance", str(starting)).exit_code == 0


def test_the_script_and_reconcile_leave_the_same_balance(
    cli: CliRunner, db_url: str, ledger: Ledger
) -> None:
    by_script, by_cli = seeded_user(ledger), seeded_user(ledger)
    assert psql(db_url, SCRIPT, f"user_id={by_script}").returncode == 0
    assert cli("reconcile", str(by_cli), "--yes").exit_code == 0
    assert ledger.cached(by_script) == ledger.cached(by_cli)


def test_the_script_creates_a_missing_profile_only_when_asked(
    cli: CliRunner, db_url: str, ledger: Ledger
) -> None:
    user = seeded_user(ledger, profile=False)
    refused = psql(db_url, SCRIPT, f"user_id={user}", tuples_only=False)
    assert refused.returncode == 0 and "nothing written" in refused.stdout
    assert ledger.cached(user) is None
    assert psql(db_url, SCRIPT, f"user_id={user}", "create_missing=1").returncode == 0
    assert ledger.cached(user) == expected_by_cli(cli, user)


def test_the_script_works_without_an_overrides_table(
    cli: CliRunner, db_url: str, ledger: Ledger
) -> None:
    user = seeded_user(ledger)
    ledger.conn.execute("DROP TABLE ai_action_token_overrides")
    assert psql(db_url, SCRIPT, f"user_id={user}").returncode == 0
    assert ledger.cached(user) == expected_by_cli(cli, user)


def test_the_script_leaves_a_correct_balance_untouched(
    cli: CliRunner, db_url: str, ledger: Ledger
) -> None:
    user = seeded_user(ledger)
    assert psql(db_url, SCRIPT, f"user_id={user}").returncode == 0
    stamp = ledger.conn.execute(
        "SELECT updated_at FROM user_profiles WHERE user_id = %s", (user,)
    ).fetchone()
    again = psql(db_url, SCRIPT, f"user_id={user}", tuples_only=False)
    assert "already matches" in again.stdout
    assert (
        ledger.conn.execute(
            "SELECT updated_at FROM user_profiles WHERE user_id = %s", (user,)
        ).fetchone()
        == stamp
    )
