"""Edges an operator meets (issue: never harm the app, item 12): each one clear line and the
right exit code."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import errors as pg_errors

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner, Result
from tokenfix.base.errors import from_database_error

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


def one_line(result: Result, code: int, *fragments: str) -> str:
    assert result.exit_code == code, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def user(ledger: Ledger) -> uuid.UUID:
    user = ledger.profile(ledger.user())
    ledger.row(user, 10, at=HOUR_AGO)
    return user


@pytest.mark.parametrize("command", [["diagnose", "USER"], ["reconcile", "--all", "--dry-run"]])
def test_a_starting_balance_the_column_cannot_hold_is_bad_input(
    cli: CliRunner, user: uuid.UUID, command: list[str]
) -> None:
    args = [str(user) if a == "USER" else a for a in command]
    result = cli(*args, "--starting-balance", "99999999999999999999")
    one_line(result, 2, "--starting-balance", "vibe_assistant_tokens_remaining", "integer")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TOKENFIX_STATEMENT_TIMEOUT", "99999999999"),
        ("TOKENFIX_LOCK_TIMEOUT", "30d"),
        ("TOKENFIX_IDLE_TIMEOUT", "500ms"),
        ("TOKENFIX_WORK_MEM", "99999999GB"),
        ("TOKENFIX_WORK_MEM", "10kB"),
    ],
)
def test_server_settings_outside_postgresqls_limits_are_bad_input(
    cli: CliRunner, user: uuid.UUID, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    one_line(cli("reconcile", "--all", "--dry-run"), 2, variable)


def test_a_profiles_table_without_a_unique_key_warns_a_dry_run_and_refuses_a_write(
    cli: CliRunner, conn: psycopg.Connection, user: uuid.UUID
) -> None:
    conn.execute("ALTER TABLE user_profiles DROP CONSTRAINT user_profiles_pkey")
    dry = cli("reconcile", "--all", "--dry-run")
    assert dry.exit_code == 1
    assert "warning: user_profiles.user_id has no unique index" in dry.stderr
    one_line(cli("reconcile", "--all", "--yes"), 3, "no unique index", "nothing was written")


def test_an_empty_list_of_ids_on_stdin_is_bad_input(
    cli: CliRunner, user: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n# nothing\n"))
    one_line(cli("reconcile", "-", "--dry-run"), 2, "no user ids on stdin")


def test_a_ledger_row_dated_in_the_future_is_named(
    cli: CliRunner, ledger: Ledger, user: uuid.UUID
) -> None:
    ledger.row(user, 5, at=datetime.now(UTC) + timedelta(days=2))
    result = cli("reconcile", "--all", "--dry-run", "--json")
    assert result.exit_code == 1
    assert "1 user has ledger rows dated in the future" in result.stderr
    assert result.json()["changes"][0]["skipped"] == "recent_activity"
    assert any("dated in the future" in w for w in result.json()["warnings"])


def test_a_huge_override_price_is_exact_and_a_balance_that_cannot_hold_it_is_named(
    cli: CliRunner, conn: psycopg.Connection, ledger: Ledger, user: uuid.UUID
) -> None:
    conn.execute("ALTER TABLE ai_action_token_overrides ALTER token_cost TYPE bigint")
    ledger.override("chat_conversation", 9_000_000_000_000_000_000)
    ledger.row(user, 10, at=HOUR_AGO)
    dry = cli("reconcile", "--all", "--dry-run", "--json")
    assert dry.exit_code == 1
    expected = dry.json()["changes"][0]["expected"]
    assert expected == {
        "tokens_remaining": -18_000_000_000_000_000_000,
        "tokens_used": 18_000_000_000_000_000_000,
    }
    # A value the column cannot hold leaves that owner alone, named (docs/safety.md).
    written = cli("reconcile", "--all", "--yes", "--json")
    assert written.exit_code == 1
    change = written.json()["changes"][0]
    assert (change["user_id"], change["skipped"]) == (str(user), "unwritable")
    assert "user_profiles" in change["reason"] and "integer" in change["reason"]


def test_doctor_does_not_suggest_an_index_on_a_ledger_that_is_a_view(
    cli: CliRunner, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn.execute("CREATE VIEW usage_view AS SELECT * FROM token_usage")
    monkeypatch.setenv("TOKENFIX_USAGE_TABLE", "usage_view")
    checks = {c["name"]: c for c in cli("doctor", "--json").json()["checks"]}
    assert "is a view" in checks["index_user_id"]["message"]
    assert 'ON "usage_view"' not in (checks["index_user_id"]["fix"] or "")


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (pg_errors.DiskFull, "out of disk space"),
        (pg_errors.OutOfMemory, "out of memory"),
        (pg_errors.TooManyConnections, "no free connection slots"),
        (pg_errors.AdminShutdown, "connection was terminated"),
        (pg_errors.IdleInTransactionSessionTimeout, "TOKENFIX_IDLE_TIMEOUT"),
    ],
)
def test_resource_errors_are_not_reported_as_a_lost_connection(
    error: type[psycopg.Error], words: str
) -> None:
    message = str(from_database_error(error("the server said so")))
    assert words in message and "lost the connection" not in message
