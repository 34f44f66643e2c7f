"""docs/safety.md: a NULL cache is drift, and the audit holds what the database stored."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
def null_cache(conn: psycopg.Connection, ledger: Ledger) -> uuid.UUID:
    conn.execute("ALTER TABLE user_profiles ALTER vibe_assistant_tokens_remaining DROP NOT NULL")
    user = ledger.profile(ledger.user(), used=30)
    ledger.row(user, 30, at=HOUR_AGO)
    conn.execute(
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = NULL WHERE user_id = %s",
        (user,),
    )
    return user


def test_a_null_cached_balance_is_drift_in_a_dry_run(cli: CliRunner, null_cache: uuid.UUID) -> None:
    result = cli("reconcile", "--all", "--dry-run", "--json")
    assert result.exit_code == 1
    (change,) = result.json()["changes"]
    assert change["status"] == "drift"
    assert change["current"] == {"tokens_remaining": None, "tokens_used": 30}
    assert change["drift"] == {"tokens_remaining": None, "tokens_used": 0}
    assert "NULL / 30" in cli("reconcile", "--all", "--dry-run").stdout


def test_diagnose_shows_a_null_cached_balance(cli: CliRunner, null_cache: uuid.UUID) -> None:
    result = cli("diagnose", str(null_cache), "--json")
    assert result.exit_code == 1
    data = result.json()
    assert (data["status"], data["profile"]["tokens_remaining"]) == ("drift", None)
    assert data["drift"] == {"tokens_remaining": None, "tokens_used": 0}
    table = cli("diagnose", str(null_cache))
    assert table.exit_code == 1 and "NULL" in table.stdout and "Traceback" not in table.stderr


def test_a_write_run_fixes_a_null_cached_balance(
    cli: CliRunner, ledger: Ledger, null_cache: uuid.UUID
) -> None:
    assert cli("reconcile", "--all", "--yes").exit_code == 0
    assert ledger.cached(null_cache) == (-30, 30)


@pytest.fixture
def clamped(conn: psycopg.Connection, ledger: Ledger) -> uuid.UUID:
    """A trigger that never lets the cached balance go below 0, and a user who is overdrawn."""
    conn.execute(
        "CREATE FUNCTION clamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " NEW.vibe_assistant_tokens_remaining := greatest(NEW.vibe_assistant_tokens_remaining, 0);"
        " RETURN NEW; END $$;"
        " CREATE TRIGGER clamp BEFORE UPDATE ON user_profiles"
        " FOR EACH ROW EXECUTE FUNCTION clamp()"
    )
    user = ledger.profile(ledger.user(), remaining=100)
    ledger.row(user, 572, at=HOUR_AGO)
    return user


def test_a_value_a_trigger_changed_is_reported_as_stored_and_audited_as_stored(
    cli: CliRunner, ledger: Ledger, clamped: uuid.UUID
) -> None:
    result = cli("reconcile", "--all", "--yes", "--json")
    assert result.exit_code == 1  # the cache still disagrees with the ledger
    data = result.json()
    (change,) = data["changes"]
    assert change["applied"] is True
    assert change["expected"] == {"tokens_remaining": -572, "tokens_used": 572}
    assert change["stored"] == {"tokens_remaining": 0, "tokens_used": 572}
    assert data["users_updated"] == 1
    audit = ledger.conn.execute("SELECT after FROM tokenfix.changes")
    assert audit.fetchall() == [
        ({"vibe_assistant_tokens_remaining": 0, "vibe_assistant_tokens_used": 572},)
    ]
    assert ledger.cached(clamped) == (0, 572)
    assert "the database stored 0 / 572" in cli("reconcile", "--all", "--yes").stdout


def test_a_write_the_database_kept_as_it_was_is_not_an_update(
    cli: CliRunner, ledger: Ledger, clamped: uuid.UUID
) -> None:
    assert cli("reconcile", "--all", "--yes").exit_code == 1
    again = cli("reconcile", "--all", "--yes", "--json")
    assert again.exit_code == 1
    data = again.json()
    (change,) = data["changes"]
    assert (change["applied"], change["stored"]) == (
        False,
        {"tokens_remaining": 0, "tokens_used": 572},
    )
    assert data["users_updated"] == 0
    assert ledger.conn.execute("SELECT count(*) FROM tokenfix.changes").fetchone() == (1,)


def test_revert_restores_a_row_a_trigger_changed(
    cli: CliRunner, ledger: Ledger, clamped: uuid.UUID
) -> None:
    run_id = cli("reconcile", "--all", "--yes", "--json").json()["run_id"]
    assert cli("revert", run_id, "--yes").exit_code == 0
    assert ledger.cached(clamped) == (100, 0)
