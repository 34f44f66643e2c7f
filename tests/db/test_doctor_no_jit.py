"""doctor's SECURITY DEFINER query reads a few catalog rows, yet its recursive plan's estimate
crosses jit_above_cost: compiled, it took 2 s of every doctor run (it runs twice: the API roles
check follows the same functions). It runs with JIT off, as the causes pass does."""

from __future__ import annotations

import json

import psycopg

from tests.support.supabase import make_supabase_like
from tokenfix import queries
from tokenfix.config.settings import Settings
from tokenfix.health.definers import _writes, definer_writers
from tokenfix.health.target import trust_target


def test_the_definer_query_is_not_compiled_by_jit(conn: psycopg.Connection, db_url: str) -> None:
    make_supabase_like(conn)
    target = trust_target(Settings(database_url=db_url))
    patterns = [_writes(t) for t in target.tables]
    params = {
        "writes": patterns,
        "writes_any": "|".join(f"({p})" for p in patterns),
        "updates_balance": "update",
        "roles": ["anon", "authenticated", "PUBLIC"],
    }
    row = conn.execute(
        "SELECT current_setting('jit')::bool, current_setting('jit_above_cost')::float8"
    ).fetchone()
    assert row is not None
    jit_on, above = row
    explained = conn.execute(
        psycopg.sql.SQL("EXPLAIN (FORMAT JSON) ") + queries.get("doctor_definer_writers"), params
    ).fetchone()
    assert explained is not None
    plan = explained[0] if isinstance(explained[0], list) else json.loads(explained[0])
    # The premise: on a default server this query would be compiled.
    assert jit_on and plan[0]["Plan"]["Total Cost"] > above
    with conn.transaction():
        assert definer_writers(conn, target, params["roles"]) == []
        assert conn.execute("SELECT current_setting('jit')").fetchone() == ("off",)
    assert conn.execute("SELECT current_setting('jit')").fetchone() == ("on",)  # LOCAL only
