"""Every failure a user can cause: one line on stderr, the exit code, no traceback, no password."""

from __future__ import annotations

import subprocess
import sys
import uuid

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.support.builders import Ledger, ensure_role
from tests.support.clirunner import CliRunner, Result


def assert_one_line_error(result: Result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    "user_id",
    [
        "not-a-uuid",
        "'; DROP TABLE token_usage; --",
        "1 OR 1=1",
        "",
        "0" * 31,
        "{12345678-1234-1234-1234-1234567890ab}",
    ],
)
def test_a_malformed_user_id_exits_2(
    cli: CliRunner, conn: psycopg.Connection, user_id: str
) -> None:
    assert_one_line_error(cli("diagnose", user_id), 2, "not a valid user id")
    assert conn.execute("SELECT to_regclass('token_usage') IS NOT NULL").fetchone() == (True,)


def test_an_unknown_flag_exits_2(cli: CliRunner) -> None:
    assert_one_line_error(cli("diagnose", str(uuid.uuid4()), "--bogus"), 2, "--bogus")


def test_a_missing_argument_exits_2(cli: CliRunner) -> None:
    assert_one_line_error(cli("diagnose"), 2, "USER_ID")


def test_an_unreachable_server_exits_3_without_the_password(cli: CliRunner) -> None:
    url = "postgresql://alice:s3cr3t-pw@127.0.0.1:9/appdb"
    result = cli("diagnose", str(uuid.uuid4()), "--database-url", url)
    assert_one_line_error(result, 3, "cannot connect to alice@127.0.0.1:9/appdb")
    assert "s3cr3t-pw" not in result.stderr + result.stdout


def test_a_password_in_key_value_form_is_never_shown(cli: CliRunner) -> None:
    dsn = "host=127.0.0.1 port=9 user=alice password=s3cr3t-pw dbname=appdb"
    result = cli("diagnose", str(uuid.uuid4()), "-d", dsn, "--debug")
    assert result.exit_code == 3
    assert "s3cr3t-pw" not in result.stderr + result.stdout


def test_a_malformed_connection_string_exits_2(cli: CliRunner) -> None:
    result = cli("diagnose", str(uuid.uuid4()), "-d", "host=h password=s3cr3t-pw bogus_option=1")
    assert_one_line_error(result, 2, "not a valid connection string")
    assert "s3cr3t-pw" not in result.stderr


def test_no_database_configured_exits_2(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOKENFIX_DATABASE_URL")
    assert_one_line_error(cli("diagnose", str(uuid.uuid4())), 2, "TOKENFIX_DATABASE_URL")


def test_a_missing_table_is_named_and_exits_3(cli: CliRunner, conn: psycopg.Connection) -> None:
    conn.execute("DROP TABLE token_usage")
    assert_one_line_error(
        cli("diagnose", str(uuid.uuid4())), 3, "token_usage", "TOKENFIX_USAGE_TABLE"
    )


def test_a_missing_column_is_named_and_exits_3(cli: CliRunner, conn: psycopg.Connection) -> None:
    conn.execute("ALTER TABLE user_profiles RENAME vibe_assistant_tokens_used TO tokens_used")
    result = cli("diagnose", str(uuid.uuid4()))
    assert_one_line_error(result, 3, "vibe_assistant_tokens_used", "TOKENFIX_USED_COLUMN")


def test_configured_schema_qualified_names_are_honoured(
    cli: CliRunner, conn: psycopg.Connection, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = ledger.profile(ledger.user(), remaining=-10, used=10)
    ledger.row(user, 10)
    conn.execute("CREATE SCHEMA billing")
    conn.execute("ALTER TABLE user_profiles SET SCHEMA billing")
    conn.execute('ALTER TABLE billing.user_profiles RENAME TO "Profiles"')
    conn.execute(
        'ALTER TABLE billing."Profiles" RENAME vibe_assistant_tokens_remaining TO left_over'
    )
    monkeypatch.setenv("TOKENFIX_PROFILES_TABLE", "billing.Profiles")
    monkeypatch.setenv("TOKENFIX_REMAINING_COLUMN", "left_over")
    result = cli("diagnose", str(user), "--json")
    assert (result.exit_code, result.json()["status"]) == (0, "ok")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TOKENFIX_USAGE_TABLE", "token_usage; DROP TABLE user_profiles"),
        ("TOKENFIX_PROFILES_TABLE", 'user_profiles" ; DROP TABLE token_usage; --'),
        ("TOKENFIX_USED_COLUMN", "vibe_assistant_tokens_used) FROM x; --"),
        ("TOKENFIX_OVERRIDES_TABLE", "a.b.c"),
        ("TOKENFIX_STATEMENT_TIMEOUT", "5min'; DROP TABLE token_usage; --"),
        ("TOKENFIX_STARTING_BALANCE", "lots"),
        ("TOKENFIX_AUDIT_SCHEMA", "public"),
    ],
)
def test_a_hostile_or_bad_setting_exits_2_and_touches_nothing(
    cli: CliRunner,
    conn: psycopg.Connection,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
) -> None:
    monkeypatch.setenv(variable, value)
    assert_one_line_error(cli("diagnose", str(uuid.uuid4())), 2, variable)
    tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (3,)


def test_a_role_without_privileges_exits_3(
    cli: CliRunner, conn: psycopg.Connection, db_url: str
) -> None:
    ensure_role(conn, "tokenfix_nobody", "LOGIN")
    url = make_conninfo(db_url, user="tokenfix_nobody")
    result = cli("diagnose", str(uuid.uuid4()), "-d", url)
    assert_one_line_error(result, 3, "permission denied")


def test_a_held_lock_times_out_with_exit_3(
    cli: CliRunner, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENFIX_LOCK_TIMEOUT", "200ms")
    with psycopg.connect(db_url) as holder:
        holder.execute("LOCK TABLE token_usage IN ACCESS EXCLUSIVE MODE")
        result = cli("diagnose", str(uuid.uuid4()))
    assert_one_line_error(result, 3, "lock timeout", "TOKENFIX_LOCK_TIMEOUT")


def test_a_slow_statement_is_cancelled_with_exit_3(
    cli: CliRunner, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn.execute(
        "CREATE VIEW slow_usage AS SELECT * FROM token_usage WHERE pg_sleep(2) IS NOT NULL"
    )
    conn.execute(
        "INSERT INTO token_usage (user_id, action_type, tokens_used, success) VALUES (gen_random_uuid(), 'x', 1, true)"
    )
    monkeypatch.setenv("TOKENFIX_USAGE_TABLE", "slow_usage")
    monkeypatch.setenv("TOKENFIX_STATEMENT_TIMEOUT", "100ms")
    user = conn.execute("SELECT user_id FROM token_usage").fetchone()[0]  # type: ignore[index]
    assert_one_line_error(cli("diagnose", str(user)), 3, "TOKENFIX_STATEMENT_TIMEOUT")


def test_debug_shows_the_traceback(cli: CliRunner, conn: psycopg.Connection) -> None:
    conn.execute("DROP TABLE token_usage")
    result = cli("diagnose", str(uuid.uuid4()), "--debug")
    assert result.exit_code == 3
    assert "Traceback" in result.stderr


def test_the_installed_command_reports_exit_codes(db_url: str, ledger: Ledger) -> None:
    user = ledger.profile(ledger.user(), remaining=1)
    done = subprocess.run(
        [sys.executable, "-m", "tokenfix", "diagnose", str(user), "--json", "-d", db_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert '"status": "drift"' in done.stdout
    assert done.stderr == ""
