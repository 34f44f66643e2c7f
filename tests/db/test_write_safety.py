"""docs/safety.md on a live database: the app keeps writing while reconcile runs."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.support.builders import Ledger, ensure_role
from tests.support.clirunner import CliRunner
from tests.support.processes import (
    backend_waiting_on_a_lock,
    finish,
    run_waiting_on,
    start,
    wait_until,
)

PROFILES = "SELECT md5(string_agg(p::text, ',' ORDER BY user_id)) FROM user_profiles AS p"


def app_charge(conn: psycopg.Connection, user: uuid.UUID, tokens: int) -> None:
    """What the app does for one AI call: a ledger row, then the balance update."""
    conn.execute(
        "INSERT INTO token_usage (user_id, action_type, model_used, tokens_used, success)"
        " VALUES (%s, 'chat_conversation', 'gpt-4', %s, true)",
        (user, tokens),
    )
    conn.execute(
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining ="
        " vibe_assistant_tokens_remaining - %s, vibe_assistant_tokens_used ="
        " vibe_assistant_tokens_used + %s WHERE user_id = %s",
        (tokens, tokens, user),
    )


@pytest.fixture
def drifting(ledger: Ledger) -> uuid.UUID:
    return ledger.drifting(100)


def test_a_charge_applied_by_the_app_during_the_run_is_neither_lost_nor_doubled(
    db_url: str, ledger: Ledger, drifting: uuid.UUID
) -> None:
    with psycopg.connect(db_url) as app:
        app_charge(app, drifting, 50)  # open transaction: holds the profile row
        run = start(db_url, "reconcile", "--all", "--yes", "--settle", "0", "--json")
        wait_until(lambda: backend_waiting_on_a_lock(ledger.conn), what="reconcile to wait")
        app.commit()
    code, out, err = finish(run)
    assert code == 0, err
    assert json.loads(out)["changes"][0]["expected"] == {
        "tokens_remaining": -150,
        "tokens_used": 150,
    }
    assert ledger.cached(drifting) == (-150, 150)


def test_a_charge_the_app_has_not_applied_yet_is_applied_on_top_of_the_fix(
    cli: CliRunner, db_url: str, ledger: Ledger, drifting: uuid.UUID
) -> None:
    with psycopg.connect(db_url) as app:
        app.execute(
            "INSERT INTO token_usage (user_id, action_type, tokens_used, success)"
            " VALUES (%s, 'chat_conversation', 50, true)",
            (drifting,),
        )  # not committed: reconcile cannot see it, and must not need to
        assert cli("reconcile", "--all", "--yes", "--settle", "0").exit_code == 0
        app.execute(
            "UPDATE user_profiles SET vibe_assistant_tokens_remaining ="
            " vibe_assistant_tokens_remaining - 50, vibe_assistant_tokens_used ="
            " vibe_assistant_tokens_used + 50 WHERE user_id = %s",
            (drifting,),
        )
    assert ledger.cached(drifting) == (-150, 150)


def test_a_two_step_app_is_safe_behind_the_settle_window(
    cli: CliRunner, ledger: Ledger, drifting: uuid.UUID
) -> None:
    ledger.row(drifting, 50, at=datetime.now(UTC))  # step 1 committed; step 2 still to come
    result = cli("reconcile", "--all", "--yes", "--json")
    assert result.json()["changes"][0]["skipped"] == "recent_activity"
    app_charge_balance_only(ledger.conn, drifting, 50)  # step 2
    assert ledger.cached(drifting) == (-50, 50)
    ledger.conn.execute("UPDATE token_usage SET created_at = created_at - interval '1 hour'")
    assert cli("reconcile", "--all", "--yes").exit_code == 0
    assert ledger.cached(drifting) == (-150, 150)


def test_without_the_settle_window_a_two_step_app_would_be_charged_twice(
    cli: CliRunner, ledger: Ledger, drifting: uuid.UUID
) -> None:
    # Why --settle exists: the fix already counts the row the app is about to apply.
    ledger.row(drifting, 50, at=datetime.now(UTC))
    assert cli("reconcile", "--all", "--yes", "--settle", "0").exit_code == 0
    app_charge_balance_only(ledger.conn, drifting, 50)
    assert ledger.cached(drifting) == (-200, 200)


def app_charge_balance_only(conn: psycopg.Connection, user: uuid.UUID, tokens: int) -> None:
    conn.execute(
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining ="
        " vibe_assistant_tokens_remaining - %s, vibe_assistant_tokens_used ="
        " vibe_assistant_tokens_used + %s WHERE user_id = %s",
        (tokens, tokens, user),
    )


def test_a_row_the_app_fixed_during_the_run_is_left_alone(
    db_url: str, ledger: Ledger, drifting: uuid.UUID
) -> None:
    with psycopg.connect(db_url) as app:
        app.execute(
            "UPDATE user_profiles SET vibe_assistant_tokens_remaining = -100,"
            " vibe_assistant_tokens_used = 100 WHERE user_id = %s",
            (drifting,),
        )
        run = start(db_url, "reconcile", "--all", "--yes", "--settle", "0", "--json")
        wait_until(lambda: backend_waiting_on_a_lock(ledger.conn), what="reconcile to wait")
        app.commit()
    code, out, _ = finish(run)
    data = json.loads(out)
    assert (code, data["users_changed"], data["users_updated"]) == (1, 1, 0)
    assert data["changes"][0]["skipped"] == "changed_concurrently"
    assert ledger.cached(drifting) == (-100, 100)


def test_a_second_writer_is_locked_out_naming_the_holder(
    cli: CliRunner, db_url: str, ledger: Ledger, drifting: uuid.UUID
) -> None:
    with run_waiting_on(db_url, drifting, "reconcile", "--all", "--yes", "--settle", "0") as first:
        second = cli("reconcile", "--all", "--yes", "--settle", "0")
    assert second.exit_code == 3
    assert f"pid {first.process.pid}" in second.stderr
    assert "host " in second.stderr and "started " in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    code, _, err = finish(first.process)
    assert code == 0, err
    assert ledger.cached(drifting) == (-100, 100)


def test_dry_runs_do_not_take_the_lease(
    cli: CliRunner, db_url: str, ledger: Ledger, drifting: uuid.UUID
) -> None:
    with run_waiting_on(db_url, drifting, "reconcile", "--all", "--yes", "--settle", "0") as writer:
        assert cli("reconcile", "--all", "--dry-run").exit_code == 1
    assert finish(writer.process)[0] == 0


def test_an_expired_lease_is_taken_over_and_a_live_one_is_not(
    cli: CliRunner, ledger: Ledger, drifting: uuid.UUID
) -> None:
    assert cli("reconcile", "--all", "--dry-run").exit_code == 1
    cli("history")  # no schema yet: history is empty, not an error
    ledger.profile(ledger.user(), remaining=1)  # keep something to fix after the first run
    assert cli("reconcile", str(drifting), "--yes").exit_code == 0  # creates the audit schema
    ledger.conn.execute(
        "INSERT INTO tokenfix.lease VALUES ('writer', gen_random_uuid(), NULL, 'reconcile',"
        " 'crashed-host', 4242, now() - interval '1 hour', now() - interval '1 minute')"
    )
    assert cli("reconcile", "--all", "--yes").exit_code == 0
    ledger.conn.execute(
        "INSERT INTO tokenfix.lease VALUES ('writer', gen_random_uuid(), NULL, 'reconcile',"
        " 'busy-host', 777, now(), now() + interval '1 minute')"
    )
    ledger.profile(ledger.user(), remaining=1)
    locked_out = cli("reconcile", "--all", "--yes")
    assert locked_out.exit_code == 3
    assert "busy-host" in locked_out.stderr and "pid 777" in locked_out.stderr


def test_a_killed_connection_leaves_no_half_batch_and_a_rerun_finishes(
    cli: CliRunner, db_url: str, ledger: Ledger
) -> None:
    users = sorted(ledger.profile(ledger.user(), remaining=0) for _ in range(6))
    for user in users:
        ledger.row(user, 10, at=datetime.now(UTC) - timedelta(hours=1))
    # the third user opens the second batch: the run waits there, mid-way
    with run_waiting_on(
        db_url, users[2], "reconcile", "--all", "--yes", "--batch-size", "2"
    ) as run:
        ledger.conn.execute("SELECT pg_terminate_backend(%s)", (run.backend_pid,))
        code, _, err = finish(run.process)
    assert code == 3
    assert len(err.strip().splitlines()) == 1
    assert [ledger.cached(u) for u in users] == [(-10, 10)] * 2 + [(0, 0)] * 4
    run_status = ledger.conn.execute("SELECT run_id, status FROM tokenfix.runs").fetchall()
    assert [status for _, status in run_status] == ["failed"]
    audited = ledger.conn.execute(
        "SELECT key::uuid, (before->>'vibe_assistant_tokens_remaining')::int,"
        " (before->>'vibe_assistant_tokens_used')::int,"
        " (after->>'vibe_assistant_tokens_remaining')::int,"
        " (after->>'vibe_assistant_tokens_used')::int"
        " FROM tokenfix.changes ORDER BY key"
    ).fetchall()
    assert audited == [(u, 0, 0, -10, 10) for u in users[:2]]
    rerun = cli("reconcile", "--all", "--yes", "--json")
    assert rerun.exit_code == 0, rerun.stderr
    assert rerun.json()["users_updated"] == 4
    assert [ledger.cached(u) for u in users] == [(-10, 10)] * 6


def test_the_brake_refuses_a_run_that_would_change_too_many_rows(
    cli: CliRunner, ledger: Ledger
) -> None:
    for _ in range(3):
        ledger.profile(ledger.user(), remaining=5)
    before = ledger.conn.execute(PROFILES).fetchone()
    result = cli("reconcile", "--all", "--yes", "--max-changes", "2")
    assert result.exit_code == 2
    assert "would change 3 profile rows" in result.stderr
    assert ledger.conn.execute(PROFILES).fetchone() == before
    assert cli("reconcile", "--all", "--yes", "--max-changes", "0").exit_code == 0


def test_the_brake_reads_its_default_from_the_environment(
    cli: CliRunner, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        ledger.profile(ledger.user(), remaining=5)
    monkeypatch.setenv("TOKENFIX_MAX_CHANGES", "1")
    assert cli("reconcile", "--all", "--yes").exit_code == 2


def test_a_dry_run_changes_nothing(cli: CliRunner, ledger: Ledger, drifting: uuid.UUID) -> None:
    missing = ledger.user()
    ledger.row(missing, 5)
    before = ledger.conn.execute(PROFILES).fetchone()
    result = cli("reconcile", "--all", "--dry-run", "--create-missing", "--yes")
    assert result.exit_code == 1
    assert ledger.conn.execute(PROFILES).fetchone() == before
    assert ledger.conn.execute("SELECT to_regnamespace('tokenfix')").fetchone() == (None,)


def test_a_read_only_role_gets_exit_3_and_nothing_changes(
    cli: CliRunner, db_url: str, ledger: Ledger, drifting: uuid.UUID
) -> None:
    ensure_role(ledger.conn, "tokenfix_reader", "LOGIN")
    ledger.conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO tokenfix_reader")
    before = ledger.conn.execute(PROFILES).fetchone()
    url = make_conninfo(db_url, user="tokenfix_reader")
    assert cli("reconcile", "--all", "--dry-run", "-d", url).exit_code == 1
    result = cli("reconcile", "--all", "--yes", "-d", url)
    assert result.exit_code == 3
    assert "permission denied" in result.stderr
    assert ledger.conn.execute(PROFILES).fetchone() == before


def test_a_role_that_cannot_update_profiles_writes_nothing(
    cli: CliRunner, db_url: str, ledger: Ledger, drifting: uuid.UUID
) -> None:
    assert cli("reconcile", str(drifting), "--dry-run").exit_code == 1
    cli("reconcile", "--all", "--yes", "--max-changes", "0")  # creates the audit schema as owner
    ledger.conn.execute("UPDATE user_profiles SET vibe_assistant_tokens_remaining = 7")
    ensure_role(ledger.conn, "tokenfix_auditor", "LOGIN")
    ledger.conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO tokenfix_auditor")
    ledger.conn.execute("GRANT USAGE ON SCHEMA tokenfix TO tokenfix_auditor")
    ledger.conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA tokenfix TO tokenfix_auditor")
    before = ledger.conn.execute(PROFILES).fetchone()
    result = cli(
        "reconcile", "--all", "--yes", "-d", make_conninfo(db_url, user="tokenfix_auditor")
    )
    assert result.exit_code == 3
    assert "permission denied" in result.stderr
    assert ledger.conn.execute(PROFILES).fetchone() == before
    assert ledger.conn.execute("SELECT count(*) FROM tokenfix.lease").fetchone() == (0,)


def test_a_role_with_update_but_no_insert_fixes_balances_and_only_create_missing_needs_it(
    cli: CliRunner, db_url: str, ledger: Ledger, drifting: uuid.UUID
) -> None:
    missing = ledger.user()
    ledger.row(missing, 10, at=datetime.now(UTC) - timedelta(hours=1))
    ensure_role(ledger.conn, "tokenfix_fixer", "LOGIN")
    ledger.conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO tokenfix_fixer")
    ledger.conn.execute("GRANT UPDATE ON user_profiles TO tokenfix_fixer")
    ledger.conn.execute(f"GRANT CREATE ON DATABASE {ledger.conn.info.dbname} TO tokenfix_fixer")
    url = make_conninfo(db_url, user="tokenfix_fixer")
    fixed = cli("reconcile", "--all", "--yes", "--json", "-d", url)
    assert (fixed.exit_code, fixed.json()["users_updated"]) == (1, 1), fixed.stderr  # 1: missing
    assert ledger.cached(drifting) == (-100, 100)
    created = cli("reconcile", "--all", "--yes", "--create-missing", "-d", url)
    assert created.exit_code == 3
    assert "permission denied for table user_profiles" in created.stderr
    assert ledger.cached(missing) is None


def test_a_role_with_update_but_no_delete_reverts_updates_and_only_created_rows_need_it(
    cli: CliRunner, db_url: str, ledger: Ledger, drifting: uuid.UUID
) -> None:
    missing = ledger.user()
    ledger.row(missing, 10, at=datetime.now(UTC) - timedelta(hours=1))
    fix = cli("reconcile", str(drifting), "--yes", "--json").json()["run_id"]
    create = cli("reconcile", str(missing), "--yes", "--create-missing", "--json").json()["run_id"]
    ensure_role(ledger.conn, "tokenfix_reverter", "LOGIN")
    ledger.conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO tokenfix_reverter")
    ledger.conn.execute("GRANT UPDATE ON user_profiles TO tokenfix_reverter")
    ledger.conn.execute(
        "GRANT USAGE ON SCHEMA tokenfix TO tokenfix_reverter;"
        " GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA tokenfix"
        " TO tokenfix_reverter"
    )
    url = make_conninfo(db_url, user="tokenfix_reverter")
    reverted = cli("revert", fix, "--yes", "-d", url)
    assert reverted.exit_code == 0, reverted.stderr
    assert ledger.cached(drifting) == (0, 0)
    refused = cli("revert", create, "--yes", "-d", url)  # deleting the created row needs DELETE
    assert refused.exit_code == 3
    assert "permission denied for table user_profiles" in refused.stderr
    assert ledger.cached(missing) == (-10, 10)


def test_a_check_constraint_rejecting_a_write_names_the_user_and_rolls_back_the_batch(
    cli: CliRunner, ledger: Ledger
) -> None:
    fine = ledger.profile(ledger.user(), remaining=0)
    ledger.row(fine, 1000, action="admin_grant")
    overdrawn = ledger.profile(ledger.user(), remaining=0)
    ledger.row(overdrawn, 10, at=datetime.now(UTC) - timedelta(hours=1))
    ledger.conn.execute(
        "ALTER TABLE user_profiles ADD CONSTRAINT no_negative_balance"
        " CHECK (vibe_assistant_tokens_remaining >= 0)"
    )
    result = cli("reconcile", "--all", "--yes")
    assert result.exit_code == 3
    assert str(overdrawn) in result.stderr and "no_negative_balance" in result.stderr
    assert ledger.cached(fine) == (0, 0)  # same batch: rolled back with it


def test_a_not_null_column_without_default_stops_create_missing(
    cli: CliRunner, ledger: Ledger
) -> None:
    missing = ledger.user()
    ledger.row(missing, 10, at=datetime.now(UTC) - timedelta(hours=1))
    ledger.conn.execute("ALTER TABLE user_profiles ADD COLUMN plan text NOT NULL DEFAULT 'free'")
    ledger.conn.execute("ALTER TABLE user_profiles ALTER COLUMN plan DROP DEFAULT")
    result = cli("reconcile", "--all", "--yes", "--create-missing")
    assert result.exit_code == 3
    assert str(missing) in result.stderr and "plan" in result.stderr
    assert ledger.cached(missing) is None


def test_a_lock_timeout_is_retried_with_backoff_until_the_rows_are_free(
    db_url: str, ledger: Ledger, drifting: uuid.UUID
) -> None:
    with run_waiting_on(
        db_url, drifting, "reconcile", "--all", "--yes", TOKENFIX_LOCK_TIMEOUT="100ms"
    ) as run:
        run.release()  # while the run backs off between attempts
    code, _, err = finish(run.process)
    assert code == 0, err
    assert ledger.cached(drifting) == (-100, 100)


def test_retries_give_up_with_exit_3_when_the_rows_stay_locked(
    db_url: str, ledger: Ledger, drifting: uuid.UUID
) -> None:
    with psycopg.connect(db_url) as holder:
        holder.execute("SELECT 1 FROM user_profiles WHERE user_id = %s FOR UPDATE", (drifting,))
        code, _, err = finish(
            start(db_url, "reconcile", "--all", "--yes", TOKENFIX_LOCK_TIMEOUT="50ms")
        )
        holder.rollback()
    assert code == 3
    assert "gave up on a batch of 1 user after 5 attempts" in err
    assert ledger.cached(drifting) == (0, 0)
    assert ledger.conn.execute("SELECT status FROM tokenfix.runs").fetchall() == [("failed",)]
    assert ledger.conn.execute("SELECT count(*) FROM tokenfix.lease").fetchone() == (0,)


def test_a_run_whose_lease_was_taken_over_cannot_commit(
    db_url: str, ledger: Ledger, drifting: uuid.UUID
) -> None:
    with run_waiting_on(db_url, drifting, "reconcile", "--all", "--yes", "--settle", "0") as run:
        # as if the run stalled past its lease and another run took the lease over
        ledger.conn.execute(
            "UPDATE tokenfix.lease SET holder = gen_random_uuid(), host = 'usurper', pid = 4242"
            " WHERE name = 'writer'"
        )
    code, _, err = finish(run.process)
    assert code == 3
    assert "taken over" in err
    assert ledger.cached(drifting) == (0, 0)
    assert ledger.conn.execute("SELECT host FROM tokenfix.lease").fetchall() == [("usurper",)]
    assert ledger.conn.execute("SELECT count(*) FROM tokenfix.changes").fetchone() == (0,)


def test_a_lease_that_expired_while_nobody_wanted_it_is_still_ours(
    db_url: str, ledger: Ledger, drifting: uuid.UUID
) -> None:
    with run_waiting_on(db_url, drifting, "reconcile", "--all", "--yes", "--settle", "0") as run:
        ledger.conn.execute("UPDATE tokenfix.lease SET expires_at = now() - interval '1 minute'")
    code, _, err = finish(run.process)
    assert code == 0, err
    assert ledger.cached(drifting) == (-100, 100)
