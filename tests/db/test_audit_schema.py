"""docs/safety.md: the audit schema is the tool's own, versioned, and migrated additively."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner
from tests.support.supabase import make_supabase_like
from tokenfix.audit import trail
from tokenfix.queries import compose

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
def drifting(ledger: Ledger) -> uuid.UUID:
    return ledger.drifting(25)


def privilege(conn: psycopg.Connection, role: str, obj: str, what: str = "SELECT") -> bool:
    row = conn.execute("SELECT has_table_privilege(%s, %s, %s)", (role, obj, what)).fetchone()
    return bool(row and row[0])


def test_a_schema_holding_the_apps_tables_is_refused_and_its_grants_kept(
    cli: CliRunner, conn: psycopg.Connection, ledger: Ledger, drifting: uuid.UUID, monkeypatch
) -> None:
    conn.execute(
        "CREATE SCHEMA api; CREATE TABLE api.orders (id int); CREATE VIEW api.v AS SELECT 1"
    )
    conn.execute("GRANT USAGE ON SCHEMA api TO anon, authenticated")
    conn.execute("GRANT SELECT ON api.orders TO anon, authenticated")
    monkeypatch.setenv("TOKENFIX_AUDIT_SCHEMA", "api")
    result = cli("reconcile", "--all", "--yes")
    assert result.exit_code == 2
    assert "api" in result.stderr and "table orders" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert privilege(conn, "anon", "api.orders") and privilege(conn, "authenticated", "api.orders")
    assert ledger.cached(drifting) == (0, 0)
    assert conn.execute("SELECT to_regclass('api.runs')").fetchone() == (None,)


def test_a_new_audit_schema_is_closed_to_the_api_roles_and_records_its_layout(
    cli: CliRunner, conn: psycopg.Connection, drifting: uuid.UUID
) -> None:
    make_supabase_like(conn)
    assert cli("reconcile", "--all", "--yes").exit_code == 0
    for role in ("anon", "authenticated", "public"):
        for table in ("runs", "changes", "lease", "layout"):
            assert not privilege(conn, role, f"tokenfix.{table}"), (role, table)
    assert conn.execute("SELECT max(version) FROM tokenfix.layout").fetchone() == (trail.LAYOUT,)


def test_an_empty_schema_an_admin_made_is_used_and_its_grants_left_alone(
    cli: CliRunner, conn: psycopg.Connection, drifting: uuid.UUID
) -> None:
    conn.execute("CREATE SCHEMA tokenfix; GRANT USAGE ON SCHEMA tokenfix TO authenticated")
    assert cli("reconcile", "--all", "--yes").exit_code == 0
    usage = conn.execute("SELECT has_schema_privilege('authenticated', 'tokenfix', 'USAGE')")
    assert usage.fetchone() == (True,)  # not ours to change: doctor warns instead
    assert not privilege(conn, "authenticated", "tokenfix.changes")


def create_layout_0(conn: psycopg.Connection) -> None:
    """The audit schema exactly as the first release created it."""
    conn.execute("CREATE SCHEMA tokenfix")
    conn.execute(compose("audit_layout_0", schema=sql.Identifier("tokenfix")))
    conn.execute(
        "REVOKE ALL ON SCHEMA tokenfix FROM PUBLIC;"
        " REVOKE ALL ON ALL TABLES IN SCHEMA tokenfix FROM PUBLIC"
    )


def recorded_run(conn: psycopg.Connection) -> uuid.UUID:
    """A completed reconcile run as the first release (0.1.0) recorded it."""
    run_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO tokenfix.runs (run_id, command, status, tool_version, host, pid)"
        " VALUES (%s, 'reconcile', 'completed', '0.1.0', 'old-host', 1)",
        (run_id,),
    )
    return run_id


def test_a_layout_0_schema_is_migrated_under_the_lease_and_its_old_runs_revert(
    cli: CliRunner, conn: psycopg.Connection, ledger: Ledger, drifting: uuid.UUID
) -> None:
    create_layout_0(conn)
    # What the first release wrote for a run that fixed `drifting` from (0, 0) to (-25, 25).
    old_run = recorded_run(conn)
    conn.execute(
        "INSERT INTO tokenfix.changes (run_id, user_id, action, before_remaining, before_used,"
        " after_remaining, after_used, tool_version, host)"
        " VALUES (%s, %s, 'update', 0, 0, -25, 25, '0.1.0', 'old-host')",
        (old_run, drifting),
    )
    conn.execute(
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = -25,"
        " vibe_assistant_tokens_used = 25 WHERE user_id = %s",
        (drifting,),
    )
    other = ledger.profile(ledger.user())
    ledger.row(other, 5, at=HOUR_AGO)
    assert cli("reconcile", "--all", "--yes").exit_code == 0  # writes, migrating first
    layouts = conn.execute("SELECT version FROM tokenfix.layout ORDER BY 1").fetchall()
    assert layouts == [(n,) for n in range(1, trail.LAYOUT + 1)]
    history = cli("history", "--json").json()["runs"]
    assert [r["run_id"] for r in history][-1] == str(old_run)
    assert cli("revert", str(old_run), "--yes").exit_code == 0
    assert ledger.cached(drifting) == (0, 0)
    assert ledger.cached(other) == (-5, 5)


def test_a_newer_layout_than_the_tools_refuses_writes_but_history_reads(
    cli: CliRunner, conn: psycopg.Connection, ledger: Ledger, drifting: uuid.UUID
) -> None:
    assert cli("reconcile", "--all", "--yes").exit_code == 0
    conn.execute(
        "INSERT INTO tokenfix.layout (version, tool_version) VALUES (%s, '9.0')",
        (trail.LAYOUT + 1,),
    )
    ledger.conn.execute("UPDATE user_profiles SET vibe_assistant_tokens_remaining = 7")
    result = cli("reconcile", "--all", "--yes")
    assert result.exit_code == 3
    assert f"layout {trail.LAYOUT + 1}" in result.stderr
    assert f"layout {trail.LAYOUT})" in result.stderr
    assert ledger.cached(drifting) == (7, 25)
    assert cli("history").exit_code == 0


def test_a_layout_1_schema_is_migrated_and_its_old_runs_revert_created_rows_too(
    cli: CliRunner, conn: psycopg.Connection, ledger: Ledger, drifting: uuid.UUID
) -> None:
    create_layout_0(conn)
    schema = sql.Identifier("tokenfix")
    conn.execute(compose("audit_layout_1", schema=schema))
    conn.execute("INSERT INTO tokenfix.layout (version, tool_version) VALUES (1, '0.1.0')")
    old_run = recorded_run(conn)
    # What layout 1 recorded: an update (balance columns) and a created profile (full row).
    conn.execute(
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = -25,"
        " vibe_assistant_tokens_used = 25 WHERE user_id = %s",
        (drifting,),
    )
    created = ledger.user()
    ledger.row(created, 5, at=HOUR_AGO)
    ledger.profile(created, remaining=-5, used=5)
    conn.execute("SET TIME ZONE 'UTC'")
    full_row = conn.execute(
        "SELECT to_jsonb(p.*) FROM user_profiles AS p WHERE user_id = %s", (created,)
    ).fetchone()[0]  # type: ignore[index]
    conn.execute(
        "INSERT INTO tokenfix.changes (run_id, user_id, action, before_remaining, before_used,"
        " after_remaining, after_used, full_row, tool_version, host) VALUES"
        " (%s, %s, 'update', 0, 0, -25, 25, NULL, '0.1.0', 'old-host'),"
        " (%s, %s, 'insert', NULL, NULL, -5, 5, %s, '0.1.0', 'old-host')",
        (old_run, drifting, old_run, created, psycopg.types.json.Jsonb(full_row)),
    )
    other = ledger.profile(ledger.user())
    ledger.row(other, 9, at=HOUR_AGO)
    assert cli("reconcile", "--all", "--yes").exit_code == 0  # migrates 1 -> LAYOUT, writes
    layouts = conn.execute("SELECT version FROM tokenfix.layout ORDER BY 1").fetchall()
    assert layouts == [(n,) for n in range(1, trail.LAYOUT + 1)]
    result = cli("revert", str(old_run), "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    assert (result.json()["rows_restored"], result.json()["profiles_deleted"]) == (1, 1)
    assert ledger.cached(drifting) == (0, 0)
    assert ledger.cached(created) is None
    assert ledger.cached(other) == (-9, 9)
