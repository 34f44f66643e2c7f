"""Each cause code is named when, and only when, it explains the whole drift."""

from __future__ import annotations

from datetime import timedelta

from tests.support.builders import BASE_TIME, Ledger
from tests.support.clirunner import CliRunner


def causes_of(cli: CliRunner, user: object, *extra: str) -> list[str]:
    result = cli("diagnose", str(user), "--json", *extra)
    assert result.exit_code == 1, result.stderr
    return [cause["code"] for cause in result.json()["causes"]]


def test_rows_before_the_profile_never_applied(cli: CliRunner, ledger: Ledger) -> None:
    user = ledger.user()
    ledger.row(user, 10, at=BASE_TIME - timedelta(days=2))
    ledger.row(user, 20, at=BASE_TIME - timedelta(days=1))
    ledger.row(user, 50, at=BASE_TIME + timedelta(days=1))
    ledger.profile(user, remaining=-50, used=50, created_at=BASE_TIME)
    assert causes_of(cli, user) == ["before_profile"]


def test_balance_stopped_updating_names_the_time(cli: CliRunner, ledger: Ledger) -> None:
    user = ledger.profile(ledger.user(), remaining=-30, used=30)
    ledger.row(user, 10)
    ledger.row(user, 20)
    ledger.row(user, 5, success=False)  # failed rows in between change nothing
    third = ledger.row(user, 30)
    ledger.row(user, 40)
    result = cli("diagnose", str(user), "--json")
    (cause,) = result.json()["causes"]
    assert cause["code"] == "stopped_updating"
    at = ledger.conn.execute(
        "SELECT created_at FROM token_usage WHERE id = %s", (third,)
    ).fetchone()
    assert at is not None and at[0].isoformat() in cause["message"]
    assert "2 charges" in cause["message"] and "70 tokens" in cause["message"]


def test_overrides_not_applied(cli: CliRunner, ledger: Ledger) -> None:
    ledger.override("chat_conversation", 10)
    user = ledger.profile(ledger.user(), remaining=-200, used=200)
    ledger.row(user, 100)
    ledger.row(user, 100)
    assert causes_of(cli, user) == ["overrides_not_applied"]


def test_failed_rows_charged(cli: CliRunner, ledger: Ledger) -> None:
    user = ledger.profile(ledger.user(), remaining=-150, used=150)
    ledger.row(user, 100)
    ledger.row(user, 50, success=False)
    assert causes_of(cli, user) == ["failed_rows_charged"]


def test_failed_rows_charged_at_their_override_price(cli: CliRunner, ledger: Ledger) -> None:
    ledger.override("chat_conversation", 7)
    user = ledger.profile(ledger.user(), remaining=-14, used=14)
    ledger.row(user, 100)
    ledger.row(user, 100, success=False)
    assert causes_of(cli, user) == ["failed_rows_charged"]


def test_grants_not_applied(cli: CliRunner, ledger: Ledger) -> None:
    user = ledger.profile(ledger.user(), remaining=-100, used=100)
    ledger.row(user, 1000, action="admin_grant")
    ledger.row(user, 100)
    assert causes_of(cli, user) == ["grants_not_applied"]


def test_deducts_not_applied(cli: CliRunner, ledger: Ledger) -> None:
    user = ledger.profile(ledger.user(), remaining=1000, used=0)
    ledger.row(user, 1000, action="admin_grant")
    ledger.row(user, 300, action="admin_deduct")
    assert causes_of(cli, user) == ["deducts_not_applied"]


def test_starting_balance_missing_from_the_cache(cli: CliRunner, ledger: Ledger) -> None:
    user = ledger.profile(ledger.user(), remaining=-100, used=100)
    ledger.row(user, 100)
    assert causes_of(cli, user, "--starting-balance", "500") == ["starting_balance"]


def test_no_cause_when_none_explains_the_whole_drift(cli: CliRunner, ledger: Ledger) -> None:
    user = ledger.user()
    ledger.row(user, 10, at=BASE_TIME - timedelta(days=1))  # before the profile: 10 tokens
    ledger.row(user, 50, at=BASE_TIME + timedelta(days=1))
    ledger.profile(user, remaining=-49, used=49, created_at=BASE_TIME)  # drift 11, not 10
    assert causes_of(cli, user) == []


def test_every_cause_that_explains_the_drift_is_named(cli: CliRunner, ledger: Ledger) -> None:
    # One charge before the profile that is also the last charge ever: both stories fit.
    user = ledger.user()
    ledger.row(user, 25, at=BASE_TIME - timedelta(days=1))
    ledger.profile(user, remaining=0, used=0, created_at=BASE_TIME)
    assert causes_of(cli, user) == ["before_profile", "stopped_updating"]
