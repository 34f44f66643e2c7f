"""grant / deduct through a mapping's [adjust] section: the examples' signed credits ledger and
numeric wallets, and a mapping without [adjust]."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from tests.db.test_mapping_shapes import EXAMPLES
from tests.support.clirunner import CliRunner

CREDITS = str(EXAMPLES / "credits" / "tokenfix.toml")
WALLETS = str(EXAMPLES / "wallets" / "tokenfix.toml")
LONG_AGO = datetime.now(UTC) - timedelta(days=3)


@pytest.fixture
def credits_user(conn: psycopg.Connection) -> uuid.UUID:
    """Signed up before June 2026 (100 free credits), bought 40, used 25: 115 cached."""
    conn.execute((EXAMPLES / "credits" / "schema.sql").read_text())
    user = uuid.uuid4()
    conn.execute(
        "INSERT INTO profiles (id, email, credits, created_at) VALUES (%s, 'a@example.com', 115,"
        " '2026-01-01')",
        (user,),
    )
    conn.execute(
        "INSERT INTO credit_transactions (user_id, amount, type, created_at) VALUES"
        " (%(u)s, 40, 'purchase', %(t)s), (%(u)s, -25, 'usage', %(t)s)",
        {"u": user, "t": LONG_AGO},
    )
    return user


def credits(conn: psycopg.Connection, user: uuid.UUID) -> int:
    row = conn.execute("SELECT credits FROM profiles WHERE id = %s", (user,)).fetchone()
    assert row is not None
    return int(row[0])


def test_a_grant_through_a_signed_ledger_books_a_positive_adjustment(
    cli: CliRunner, conn: psycopg.Connection, credits_user: uuid.UUID
) -> None:
    result = cli(
        "grant",
        str(credits_user),
        "30",
        "--reason",
        "ticket 12",
        "--idempotency-key",
        "t-12",
        "--yes",
        "--mapping",
        CREDITS,
    )
    assert result.exit_code == 0, result.stderr
    assert credits(conn, credits_user) == 145
    row = conn.execute(
        "SELECT amount, type, note, idempotency_key FROM credit_transactions"
        " WHERE type = 'adjustment'"
    ).fetchone()
    assert row == (30, "adjustment", "ticket 12", "t-12")
    nightly = cli("reconcile", "--all", "--settle", "0", "--yes", "--json", "--mapping", CREDITS)
    assert nightly.exit_code == 0 and nightly.json()["changes"] == []


def test_a_deduct_through_a_signed_ledger_books_a_negative_adjustment(
    cli: CliRunner, conn: psycopg.Connection, credits_user: uuid.UUID
) -> None:
    result = cli(
        "deduct", str(credits_user), "15", "--reason", "abuse", "--yes", "--mapping", CREDITS
    )
    assert result.exit_code == 0, result.stderr
    assert credits(conn, credits_user) == 100
    amounts = conn.execute(
        "SELECT amount FROM credit_transactions WHERE type = 'adjustment'"
    ).fetchall()
    assert amounts == [(-15,)]
    diagnosed = cli("diagnose", str(credits_user), "--json", "--mapping", CREDITS).json()
    assert diagnosed["status"] == "ok"
    assert diagnosed["usage"]["deduct_records"] == 1


def test_revert_and_idempotency_through_a_mapping(
    cli: CliRunner, conn: psycopg.Connection, credits_user: uuid.UUID
) -> None:
    args = (
        "grant",
        str(credits_user),
        "30",
        "--reason",
        "r",
        "--idempotency-key",
        "k-1",
        "--yes",
        "--mapping",
        CREDITS,
    )
    run_id = cli(*args, "--json").json()["run_id"]
    assert "already booked" in cli(*args).stdout
    assert credits(conn, credits_user) == 145
    reverted = cli("revert", run_id, "--yes", "--mapping", CREDITS)
    assert reverted.exit_code == 0, reverted.stderr
    assert credits(conn, credits_user) == 115
    assert conn.execute(
        "SELECT count(*) FROM credit_transactions WHERE type = 'adjustment'"
    ).fetchone() == (0,)


def test_wallets_grant_and_deduct_exact_decimals_and_the_derived_column(
    cli: CliRunner, conn: psycopg.Connection
) -> None:
    conn.execute((EXAMPLES / "wallets" / "schema.sql").read_text())
    conn.execute(
        "INSERT INTO wallets (id, customer, credit_balance, conversion_rate, balance_cents)"
        " VALUES (7, 'c7', 10.00000, 1.5000, 1500)"
    )
    conn.execute(
        "INSERT INTO wallet_transactions (wallet_id, credit_amount, direction,"
        " transaction_status, created_at) VALUES (7, 10, 1, 1, now() - interval '3 days')"
    )
    granted = cli("grant", "7", "2.50001", "--reason", "goodwill", "--yes", "--mapping", WALLETS)
    assert granted.exit_code == 0, granted.stderr
    deducted = cli("deduct", "7", "0.5", "--reason", "fix", "--yes", "--mapping", WALLETS)
    assert deducted.exit_code == 0, deducted.stderr
    row = conn.execute("SELECT credit_balance, balance_cents FROM wallets WHERE id = 7").fetchone()
    assert row == (Decimal("12.00001"), 1800)
    booked = conn.execute(
        "SELECT credit_amount, direction, transaction_status, reason FROM wallet_transactions"
        " WHERE reason LIKE 'support:%' ORDER BY id"
    ).fetchall()
    assert booked == [
        (Decimal("2.50001"), 1, 1, "support: goodwill"),
        (Decimal("0.50000"), 3, 1, "support: fix"),
    ]
    assert cli("grant", "x7", "1", "--reason", "r", "--yes", "--mapping", WALLETS).exit_code == 2


def test_a_mapping_without_adjust_is_refused_naming_it(
    cli: CliRunner, conn: psycopg.Connection
) -> None:
    conn.execute((EXAMPLES / "acquired-used" / "schema.sql").read_text())
    mapping = str(EXAMPLES / "acquired-used" / "tokenfix.toml")
    result = cli("grant", "c1", "5", "--reason", "r", "--yes", "--mapping", mapping)
    assert result.exit_code == 2
    assert "no [adjust] section" in result.stderr and "Traceback" not in result.stderr


def test_an_adjust_row_the_model_does_not_count_is_refused_with_nothing_written(
    cli: CliRunner, conn: psycopg.Connection, credits_user: uuid.UUID, tmp_path: Path
) -> None:
    # 'usage' with a positive amount: the model reads it as a charge, not a grant.
    text = (
        Path(CREDITS)
        .read_text()
        .replace(
            'type = "\'adjustment\'"\namount = "amount"', 'type = "\'usage\'"\namount = "amount"', 1
        )
    )
    mapping = tmp_path / "wrong.toml"
    mapping.write_text(text)
    result = cli(
        "grant", str(credits_user), "5", "--reason", "r", "--yes", "--mapping", str(mapping)
    )
    assert result.exit_code == 2, result.stderr
    assert "is not counted as a grant of 5" in result.stderr
    assert credits(conn, credits_user) == 115
    assert conn.execute("SELECT count(*) FROM credit_transactions").fetchone() == (2,)
    assert conn.execute("SELECT count(*) FROM tokenfix.runs").fetchone() == (0,)


def test_an_adjust_ledger_that_names_no_ledger_is_bad_input(cli: CliRunner, tmp_path: Path) -> None:
    text = (
        Path(CREDITS)
        .read_text()
        .replace(
            'ledger = "credit_transactions"\n\n[adjust.grant]', 'ledger = "nope"\n\n[adjust.grant]'
        )
    )
    mapping = tmp_path / "m.toml"
    mapping.write_text(text)
    result = cli("mapping", "--mapping", str(mapping))
    assert result.exit_code == 2 and "[adjust] ledger = 'nope' names no [[ledger]]" in result.stderr


def test_revert_dry_run_previews_a_written_flag_column_or_says_it_cannot(
    cli: CliRunner, conn: psycopg.Connection, credits_user: uuid.UUID, tmp_path: Path
) -> None:
    """A written column that is no number (a flag the write computes from the balance): the
    preview is the values before the grant while nothing moved them since; after the app
    moved the cache, only the write can tell, and the preview says so instead of failing."""
    conn.execute("ALTER TABLE profiles ADD low boolean")
    conn.execute("UPDATE profiles SET low = true")
    flagged = tmp_path / "flagged.toml"
    flagged.write_text(
        (EXAMPLES / "credits" / "tokenfix.toml")
        .read_text()
        .replace(
            'credits = "expected_remaining"',
            'credits = "expected_remaining"\nlow = "expected_remaining < 130"',
        )
    )
    mapping = ("--mapping", str(flagged))
    granted = cli("grant", str(credits_user), "30", "--reason", "x", "--yes", "--json", *mapping)
    assert granted.exit_code == 0, granted.stderr
    run_id = granted.json()["run_id"]
    change = cli("revert", run_id, "--dry-run", "--json", *mapping).json()["changes"][0]
    assert change["current"] == {"credits": 145, "low": False}
    assert change["restore_to"] == {"credits": 115, "low": True}
    conn.execute("UPDATE profiles SET credits = 140 WHERE id = %s", (credits_user,))
    moved = cli("revert", run_id, "--dry-run", "--json", *mapping)
    assert moved.exit_code == 0, moved.stderr
    assert moved.json()["changes"][0]["skipped"] == "dry_run"
    assert moved.json()["changes"][0]["restore_to"] is None
    assert "—" in cli("revert", run_id, "--dry-run", *mapping).stdout
    applied = cli("revert", run_id, "--yes", "--json", *mapping)
    assert applied.exit_code == 0, applied.stderr
    assert conn.execute("SELECT credits, low FROM profiles").fetchall() == [(110, True)]
