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
