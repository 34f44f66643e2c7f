"""docs/safety.md: revert never destroys what the app made; history says what really happened."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
def created(cli: CliRunner, ledger: Ledger) -> tuple[str, uuid.UUID]:
    """A run that created the profile of a user who had ledger rows but no profile."""
    user = ledger.user()
    ledger.row(user, 40, at=HOUR_AGO)
    result = cli("reconcile", "--all", "--yes", "--create-missing", "--json")
    assert result.exit_code == 0
    assert ledger.cached(user) == (-40, 40)
    return result.json()["run_id"], user


def test_a_created_profile_untouched_since_is_deleted_on_revert(
    cli: CliRunner, ledger: Ledger, created: tuple[str, uuid.UUID]
) -> None:
    run_id, user = created
    result = cli("revert", run_id, "--yes", "--json")
    assert result.exit_code == 0
    assert result.json()["profiles_deleted"] == 1
    assert ledger.cached(user) is None


def test_a_created_profile_the_app_wrote_to_since_is_left_alone(
    cli: CliRunner, ledger: Ledger, created: tuple[str, uuid.UUID]
) -> None:
    run_id, user = created
    # The app set another column of the new row: the balance is still what the run wrote.
    ledger.conn.execute(
        "UPDATE user_profiles SET updated_at = now() + interval '1 day' WHERE user_id = %s",
        (user,),
    )
    result = cli("revert", run_id, "--yes", "--json")
    assert result.exit_code == 1
    data = result.json()
    assert (data["profiles_deleted"], data["rows_left_alone"]) == (0, 1)
    assert data["changes"][0]["skipped"] == "changed_since"
    assert ledger.cached(user) == (-40, 40)


def test_a_created_profile_other_rows_reference_is_left_alone_and_their_rows_survive(
    cli: CliRunner, ledger: Ledger, created: tuple[str, uuid.UUID]
) -> None:
    run_id, user = created
    conn = ledger.conn
    conn.execute(
        "CREATE TABLE app_projects (id serial PRIMARY KEY, owner uuid NOT NULL"
        " REFERENCES user_profiles (user_id) ON DELETE CASCADE)"
    )
    conn.execute("INSERT INTO app_projects (owner) VALUES (%s)", (user,))
    result = cli("revert", run_id, "--yes", "--json")
    assert result.exit_code == 1
    assert result.json()["changes"][0]["skipped"] == "referenced"
    assert "other rows reference it" in cli("revert", run_id, "--yes").stdout
    assert ledger.cached(user) == (-40, 40)
    assert conn.execute("SELECT count(*) FROM app_projects").fetchone() == (1,)


def test_a_reference_the_tool_cannot_see_counts_as_a_reference(
    cli: CliRunner, db_url: str, ledger: Ledger, created: tuple[str, uuid.UUID]
) -> None:
    run_id, user = created
    conn = ledger.conn
    conn.execute(
        "CREATE TABLE app_secrets (owner uuid REFERENCES user_profiles (user_id)"
        " ON DELETE CASCADE); REVOKE ALL ON app_secrets FROM PUBLIC"
    )
    conn.execute("CREATE ROLE tf_limited_revert LOGIN")
    conn.execute(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON user_profiles, token_usage,"
        " ai_action_token_overrides TO tf_limited_revert;"
        " GRANT ALL ON SCHEMA tokenfix TO tf_limited_revert;"
        " GRANT ALL ON ALL TABLES IN SCHEMA tokenfix TO tf_limited_revert"
    )
    limited = psycopg.conninfo.make_conninfo(db_url, user="tf_limited_revert")
    try:
        result = cli("revert", run_id, "--yes", "--json", "-d", limited)
        assert result.exit_code == 1, result.stderr
        assert result.json()["changes"][0]["skipped"] == "referenced"
        assert ledger.cached(user) == (-40, 40)
    finally:
        conn.execute("DROP OWNED BY tf_limited_revert; DROP ROLE tf_limited_revert")


def test_reverting_a_revert_recreates_the_deleted_row_exactly(
    cli: CliRunner, ledger: Ledger, created: tuple[str, uuid.UUID]
) -> None:
    run_id, user = created
    row = "SELECT to_jsonb(p.*) FROM user_profiles AS p WHERE user_id = %s"
    original = ledger.conn.execute(row, (user,)).fetchone()
    undo = cli("revert", run_id, "--yes", "--json").json()["run_id"]
    assert ledger.cached(user) is None
    assert cli("revert", undo, "--yes").exit_code == 0
    assert ledger.conn.execute(row, (user,)).fetchone() == original


def test_history_counts_what_a_failed_run_wrote(cli: CliRunner, ledger: Ledger) -> None:
    users = [ledger.profile(ledger.user()) for _ in range(3)]
    for user in users:
        ledger.row(user, 10, at=HOUR_AGO)
    # The third user's write is refused: batch 3 fails, batches 1 and 2 are written.
    ledger.conn.execute(
        sql.SQL(
            "ALTER TABLE user_profiles ADD CONSTRAINT no_debt"
            " CHECK (vibe_assistant_tokens_remaining > -10 OR user_id <> {})"
        ).format(sql.Literal(sorted(users)[2]))
    )
    result = cli("reconcile", "--all", "--yes", "--batch-size", "1", "--settle", "0")
    assert result.exit_code == 3
    (run,) = cli("history", "--json").json()["runs"]
    assert (run["status"], run["rows_written"], run["rows_updated"]) == ("failed", 2, 2)
    assert "2 upd., 0 new" in cli("history").stdout


def test_reverted_by_names_only_a_revert_that_restored_something(
    cli: CliRunner, ledger: Ledger
) -> None:
    user = ledger.profile(ledger.user())
    ledger.row(user, 10, at=HOUR_AGO)
    run_id = cli("reconcile", "--all", "--yes", "--json").json()["run_id"]
    ledger.conn.execute(
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = 3 WHERE user_id = %s", (user,)
    )
    assert cli("revert", run_id, "--yes").exit_code == 1  # left alone: nothing restored
    runs = {r["run_id"]: r for r in cli("history", "--json").json()["runs"]}
    assert runs[run_id]["reverted_by"] is None
