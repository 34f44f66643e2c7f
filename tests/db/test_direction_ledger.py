"""`reconcile KEY… --direction ledger --reason TEXT`: book the rows that make the ledger explain
a cached remaining (a hand edit already made), instead of taking the edit back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner

LONG_AGO = datetime.now(UTC) - timedelta(days=3)


@pytest.fixture
def edited(ledger: Ledger, conn: psycopg.Connection) -> uuid.UUID:
    """In step (1000 granted, 300 spent), then +500 by hand in the cache."""
    user = ledger.profile(ledger.user(), remaining=1200, used=300)
    ledger.row(user, 1000, action="admin_grant", model=None, at=LONG_AGO)
    ledger.row(user, 300, at=LONG_AGO + timedelta(minutes=1))
    return user


def remaining(conn: psycopg.Connection, user: uuid.UUID) -> int:
    row = conn.execute(
        "SELECT vibe_assistant_tokens_remaining FROM user_profiles WHERE user_id = %s", (user,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def grants(conn: psycopg.Connection, user: uuid.UUID) -> list[tuple]:
    return conn.execute(
        "SELECT action_type, tokens_used FROM token_usage WHERE user_id = %s"
        " AND action_type IN ('admin_grant', 'admin_deduct') ORDER BY id",
        (user,),
    ).fetchall()


def book(cli: CliRunner, *keys: str, extra: tuple[str, ...] = ()) -> dict:
    result = cli(
        "reconcile", *keys, "--direction", "ledger", "--reason", "hand credit", "--json", *extra
    )
    assert result.exit_code in (0, 1), result.stderr
    return {"code": result.exit_code, **result.json()}


def test_the_dry_run_lists_the_rows_it_would_book_and_writes_nothing(
    cli: CliRunner, conn: psycopg.Connection, edited: uuid.UUID
) -> None:
    data = book(cli, str(edited), extra=("--dry-run",))
    assert data["code"] == 1 and data["dry_run"] is True and data["run_id"] is None
    [row] = data["bookings"]
    assert (row["user_id"], row["kind"], row["amount"]) == (str(edited), "grant", 500)
    assert grants(conn, edited) == [("admin_grant", 1000)]


def test_booking_makes_the_ledger_explain_the_cache_and_is_idempotent(
    cli: CliRunner, conn: psycopg.Connection, edited: uuid.UUID
) -> None:
    data = book(cli, str(edited), extra=("--yes",))
    assert data["code"] == 0 and data["rows_booked"] == 1 and data["run_id"]
    assert grants(conn, edited) == [("admin_grant", 1000), ("admin_grant", 500)]
    assert remaining(conn, edited) == 1200  # the cache is not written
    assert cli("diagnose", str(edited), "--json").json()["status"] == "ok"
    again = book(cli, str(edited), extra=("--yes",))
    assert again["code"] == 0 and again["rows_booked"] == 0 and again["run_id"] is None
    nightly = cli("reconcile", "--all", "--yes", "--json")
    assert nightly.exit_code == 0 and nightly.json()["changes"] == []
    runs = cli("history", "--json").json()["runs"]
    assert runs[0]["command"] == "reconcile" and runs[0]["reason"] == "hand credit"


def test_a_cache_below_the_ledger_books_a_deduct(
    cli: CliRunner, conn: psycopg.Connection, edited: uuid.UUID
) -> None:
    conn.execute(
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = 650 WHERE user_id = %s",
        (edited,),
    )
    data = book(cli, str(edited), extra=("--yes",))
    assert data["code"] == 0
    assert grants(conn, edited)[-1] == ("admin_deduct", 50)


def test_drift_in_used_is_reported_not_booked(
    cli: CliRunner, conn: psycopg.Connection, edited: uuid.UUID
) -> None:
    conn.execute(
        "UPDATE user_profiles SET vibe_assistant_tokens_used = 310 WHERE user_id = %s", (edited,)
    )
    data = book(cli, str(edited), extra=("--yes",))
    assert data["code"] == 1  # used still differs: attention
    assert data["bookings"][0]["drift"]["tokens_used"] == 10
    assert grants(conn, edited)[-1] == ("admin_grant", 500)


def test_revert_deletes_the_booked_rows_and_leaves_the_cache(
    cli: CliRunner, conn: psycopg.Connection, edited: uuid.UUID
) -> None:
    run_id = book(cli, str(edited), extra=("--yes",))["run_id"]
    reverted = cli("revert", run_id, "--yes", "--json")
    assert reverted.exit_code == 0, reverted.stderr
    assert grants(conn, edited) == [("admin_grant", 1000)]
    assert remaining(conn, edited) == 1200
    dry = cli("revert", run_id, "--dry-run", "--json")
    assert dry.exit_code == 1  # already reverted: nothing left to take back
    assert dry.json()["changes"][0]["skipped"] == "already_restored"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--direction", "ledger", "--yes"), "needs --reason"),
        (("--direction", "ledger", "--reason", " ", "--yes"), "needs --reason"),
        (("--direction", "ledger", "--reason", "r"), "without --yes when not on a terminal"),
        (("--reason", "r", "--yes"), "--reason goes with --direction ledger"),
    ],
)
def test_bad_input_is_refused_with_nothing_written(
    cli: CliRunner, conn: psycopg.Connection, edited: uuid.UUID, args: tuple, message: str
) -> None:
    result = cli("reconcile", str(edited), *args)
    assert result.exit_code == 2 and message in result.stderr
    assert grants(conn, edited) == [("admin_grant", 1000)]


def test_all_is_refused(cli: CliRunner, edited: uuid.UUID) -> None:
    result = cli("reconcile", "--all", "--direction", "ledger", "--reason", "r", "--yes")
    assert result.exit_code == 2 and "not --all" in result.stderr


def test_history_lists_the_booking_run_and_the_owner(cli: CliRunner, edited: uuid.UUID) -> None:
    run_id = book(cli, str(edited), extra=("--yes",))["run_id"]
    assert cli("history", run_id).exit_code == 0
    assert cli("history", "--user", str(edited), "--json").exit_code == 0
    assert cli("revert", run_id, "--yes").exit_code == 0
    mine = cli("history", "--user", str(edited), "--json")
    assert mine.exit_code == 0, mine.stderr


def test_an_owner_with_recent_activity_is_deferred_not_booked(
    cli: CliRunner, conn: psycopg.Connection, ledger: Ledger, edited: uuid.UUID
) -> None:
    # A charge the app wrote a moment ago and has not applied to the cache yet: the cache is
    # above the ledger by it, but booking a grant for that would give the charge back.
    ledger.row(edited, 40, at=datetime.now(UTC))
    data = book(cli, str(edited), extra=("--yes",))
    assert data["code"] == 1 and data["rows_booked"] == 0
    assert data["skipped"][0]["reason"].startswith("recent activity")
    assert grants(conn, edited) == [("admin_grant", 1000)]
    booked = book(cli, str(edited), extra=("--yes", "--settle", "0"))
    assert booked["bookings"][0]["amount"] == 540  # remaining booked,
    assert booked["bookings"][0]["drift"]["tokens_used"] == -40  # used reported (exit 1)
    assert booked["code"] == 1
