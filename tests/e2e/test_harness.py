"""The harness itself: a real server, a fresh database per test with the schema."""

from __future__ import annotations

import psycopg


def test_each_test_gets_an_empty_database_with_the_schema(conn: psycopg.Connection) -> None:
    tables = {
        row[0]
        for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    }
    assert tables == {"user_profiles", "token_usage", "ai_action_token_overrides"}
    assert conn.execute("SELECT count(*) FROM token_usage").fetchone() == (0,)


def test_databases_are_not_shared_between_tests(conn: psycopg.Connection) -> None:
    conn.execute("INSERT INTO token_usage (user_id, action_type) VALUES (gen_random_uuid(), 'x')")
    assert conn.execute("SELECT count(*) FROM token_usage").fetchone() == (1,)


def test_a_run_that_outlives_its_bound_fails_with_where_it_hangs(db_url: str) -> None:
    """finish() past its bound: the run's threads' stacks, not a bare TimeoutExpired."""
    import pytest

    from tests.support.builders import Ledger
    from tests.support.processes import finish, run_waiting_on

    with psycopg.connect(db_url, autocommit=True) as conn:
        user = Ledger(conn).drifting()
    args = ("reconcile", "--all", "--yes", "--settle", "0")
    with run_waiting_on(db_url, user, *args) as held, pytest.raises(AssertionError) as failed:
        finish(held.process, timeout=0.5)
    message = str(failed.value)
    assert "did not end within 0.5s" in message
    assert "Current thread" in message and "/tokenfix/" in message.split("stacks:")[1], message
