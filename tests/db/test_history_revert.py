"""The audit trail: what each write records, `history`, and `revert` with compare-and-set."""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.support.builders import Ledger, ensure_role
from tests.support.clirunner import CliRunner
from tokenfix import __version__

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
def fixed_run(cli: CliRunner, ledger: Ledger) -> dict:
    """A write run that updated two users and created one profile."""
    users = [ledger.profile(ledger.user(), remaining=0) for _ in range(2)]
    for user in users:
        ledger.row(user, 30, at=HOUR_AGO)
    missing = ledger.user()
    ledger.row(missing, 5, at=HOUR_AGO)
    result = cli("reconcile", "--all", "--yes", "--create-missing", "--json")
    assert result.exit_code == 0
    return {"run_id": result.json()["run_id"], "users": users, "missing": missing}


def test_each_written_row_is_audited(ledger: Ledger, fixed_run: dict) -> None:
    # Audit layout 2: the key as text, and the written columns before and after as jsonb.
    rows = ledger.conn.execute(
        "SELECT key, action, before, after,"
        " run_id::text, db_role, tool_version, host, changed_at IS NOT NULL"
        " FROM tokenfix.changes ORDER BY key"
    ).fetchall()

    def balance(remaining: int, used: int) -> dict:
        return {"vibe_assistant_tokens_remaining": remaining, "vibe_assistant_tokens_used": used}

    expected = sorted(
        [(str(u), "update", balance(0, 0), balance(-30, 30)) for u in fixed_run["users"]]
        + [(str(fixed_run["missing"]), "insert", None, balance(-5, 5))]
    )
    assert [row[:4] for row in rows] == expected
    origin = (fixed_run["run_id"], "postgres", __version__, socket.gethostname(), True)
    assert {row[4:] for row in rows} == {origin}


def test_history_lists_runs_newest_first_with_counts(
    cli: CliRunner, ledger: Ledger, fixed_run: dict
) -> None:
    ledger.conn.execute(
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = 1 WHERE user_id = %s",
        (fixed_run["users"][0],),
    )
    second = cli("reconcile", "--all", "--yes", "--json").json()["run_id"]
    data = cli("history", "--json").json()
    assert [run["run_id"] for run in data["runs"]] == [second, fixed_run["run_id"]]
    first = data["runs"][1]
    assert (
        first["command"],
        first["status"],
        first["users_updated"],
        first["profiles_created"],
    ) == (
        "reconcile",
        "completed",
        2,
        1,
    )
    assert first["rows_written"] == 3
    assert [r["run_id"] for r in cli("history", "--json", "--limit", "1").json()["runs"]] == [
        second
    ]
    table = cli("history")
    assert fixed_run["run_id"] in table.stdout and "completed" in table.stdout


def test_history_is_empty_before_any_write(cli: CliRunner) -> None:
    result = cli("history", "--json")
    assert (result.exit_code, result.json()["runs"]) == (0, [])
    assert "No writing runs" in cli("history").stdout


def test_revert_restores_values_and_deletes_created_profiles(
    cli: CliRunner, ledger: Ledger, fixed_run: dict
) -> None:
    result = cli("revert", fixed_run["run_id"], "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert (data["rows_restored"], data["profiles_deleted"], data["rows_left_alone"]) == (2, 1, 0)
    assert [ledger.cached(u) for u in fixed_run["users"]] == [(0, 0), (0, 0)]
    assert ledger.cached(fixed_run["missing"]) is None


def test_revert_leaves_rows_changed_since_and_exits_1(
    cli: CliRunner, ledger: Ledger, fixed_run: dict
) -> None:
    touched = fixed_run["users"][0]
    ledger.conn.execute(
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = vibe_assistant_tokens_remaining - 9,"
        " vibe_assistant_tokens_used = vibe_assistant_tokens_used + 9 WHERE user_id = %s",
        (touched,),
    )
    result = cli("revert", fixed_run["run_id"], "--yes", "--json")
    assert result.exit_code == 1
    data = result.json()
    assert (data["rows_restored"], data["rows_left_alone"]) == (1, 1)
    (left,) = [c for c in data["changes"] if not c["applied"]]
    assert (left["user_id"], left["skipped"]) == (str(touched), "changed_since")
    assert left["current"] == {"tokens_remaining": -39, "tokens_used": 39}
    assert ledger.cached(touched) == (-39, 39)
    assert ledger.cached(fixed_run["users"][1]) == (0, 0)


def test_a_revert_is_itself_audited_and_can_be_reverted(
    cli: CliRunner, ledger: Ledger, fixed_run: dict
) -> None:
    undo = cli("revert", fixed_run["run_id"], "--yes", "--json").json()["run_id"]
    runs = cli("history", "--json").json()["runs"]
    assert (runs[0]["run_id"], runs[0]["command"], runs[0]["reverts_run_id"]) == (
        undo,
        "revert",
        fixed_run["run_id"],
    )
    assert runs[1]["reverted_by"] == undo
    assert cli("revert", undo, "--yes").exit_code == 0
    assert [ledger.cached(u) for u in fixed_run["users"]] == [(-30, 30)] * 2
    assert ledger.cached(fixed_run["missing"]) == (-5, 5)


def test_reverting_twice_leaves_everything_alone(cli: CliRunner, fixed_run: dict) -> None:
    assert cli("revert", fixed_run["run_id"], "--yes").exit_code == 0
    again = cli("revert", fixed_run["run_id"], "--yes")
    assert again.exit_code == 1
    assert "already reverted" in again.stderr


@pytest.mark.parametrize("run_id", ["nope", "'; DROP SCHEMA tokenfix CASCADE; --"])
def test_a_malformed_run_id_exits_2(cli: CliRunner, run_id: str) -> None:
    result = cli("revert", run_id, "--yes")
    assert result.exit_code == 2 and "not a valid run id" in result.stderr


def test_an_unknown_run_exits_2(cli: CliRunner, fixed_run: dict) -> None:
    result = cli("revert", str(uuid.uuid4()), "--yes")
    assert result.exit_code == 2 and "unknown run" in result.stderr


def test_an_unknown_run_before_any_write_exits_2(cli: CliRunner) -> None:
    assert cli("revert", str(uuid.uuid4()), "--yes").exit_code == 2


def test_revert_refuses_without_yes_off_a_terminal(
    cli: CliRunner, ledger: Ledger, fixed_run: dict
) -> None:
    result = cli("revert", fixed_run["run_id"])
    assert result.exit_code == 2 and "--yes" in result.stderr
    assert [ledger.cached(u) for u in fixed_run["users"]] == [(-30, 30)] * 2


def test_the_audit_schema_is_closed_to_the_api_roles(
    cli: CliRunner, conn: psycopg.Connection, ledger: Ledger
) -> None:
    for role in ("anon", "authenticated"):
        ensure_role(conn, role, "NOLOGIN")
    # as on Supabase: new tables and schemas are granted to the API roles by default
    conn.execute("ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO anon, authenticated")
    conn.execute("ALTER DEFAULT PRIVILEGES GRANT USAGE ON SCHEMAS TO anon, authenticated")
    user = ledger.profile(ledger.user(), remaining=3)
    assert cli("reconcile", str(user), "--yes").exit_code == 0
    for role in ("anon", "authenticated"):
        assert conn.execute(
            "SELECT has_schema_privilege(%s, 'tokenfix', 'USAGE')", (role,)
        ).fetchone() == (False,)
        for table in ("runs", "changes", "lease"):
            assert conn.execute(
                "SELECT has_table_privilege(%s, %s, 'SELECT,INSERT,UPDATE,DELETE')",
                (role, f"tokenfix.{table}"),
            ).fetchone() == (False,)
    conn.execute("ALTER DEFAULT PRIVILEGES REVOKE ALL ON TABLES FROM anon, authenticated")
    conn.execute("ALTER DEFAULT PRIVILEGES REVOKE USAGE ON SCHEMAS FROM anon, authenticated")


def test_the_audit_schema_name_is_a_setting(
    cli: CliRunner, conn: psycopg.Connection, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENFIX_AUDIT_SCHEMA", "ops_audit")
    user = ledger.profile(ledger.user(), remaining=3)
    assert cli("reconcile", str(user), "--yes").exit_code == 0
    assert conn.execute("SELECT count(*) FROM ops_audit.changes").fetchone() == (1,)
    assert conn.execute("SELECT to_regnamespace('tokenfix')").fetchone() == (None,)
