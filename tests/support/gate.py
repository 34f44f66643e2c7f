"""A gate in the write path: a trigger that holds tokenfix's batch open until the test opens it.

The trigger fires on tokenfix's own writes to user_profiles (application_name tokenfix), after
the batch has locked its rows and renewed the lease (the fence): the worst moment to stop a
run, since the open batch then holds both the app's rows and the lease row. It waits on an
advisory lock the test holds, so a test can stop, signal or restart at exactly that point.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

GATE = 4242

INSTALL = f"""
CREATE OR REPLACE FUNCTION tests_gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('application_name') LIKE 'tokenfix%' THEN
        PERFORM pg_advisory_xact_lock_shared({GATE});
    END IF;
    RETURN coalesce(NEW, OLD);
END $$;
CREATE TRIGGER tests_gate BEFORE INSERT OR UPDATE OR DELETE ON user_profiles
    FOR EACH ROW EXECUTE FUNCTION tests_gate();
"""


def install_gate(conn: psycopg.Connection[Any]) -> None:
    conn.execute(INSTALL)


def backend_at_the_gate(conn: psycopg.Connection[Any]) -> int | None:
    """The pid of a tokenfix backend waiting at the gate, if one is."""
    row = conn.execute(
        "SELECT a.pid FROM pg_stat_activity AS a JOIN pg_locks AS l ON l.pid = a.pid"
        " WHERE a.application_name = 'tokenfix' AND a.datname = current_database()"
        " AND l.locktype = 'advisory' AND NOT l.granted AND l.objid = %s",
        (GATE,),
    ).fetchone()
    return int(row[0]) if row else None


@contextmanager
def closed_gate(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """Hold the gate shut while the block runs (open it early with `.rollback()`)."""
    with psycopg.connect(db_url) as keeper:
        keeper.execute("SELECT pg_advisory_xact_lock(%s)", (GATE,))
        yield keeper
        keeper.rollback()
