"""Run tokenfix as a separate process and watch it from the database, for safety tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import psycopg


def start(db_url: str, *args: str, **env: str) -> subprocess.Popen[str]:
    environment = {**os.environ, "TOKENFIX_DATABASE_URL": db_url, **env}
    return subprocess.Popen(
        [sys.executable, "-m", "tokenfix", *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def backend_waiting_on_a_lock(conn: psycopg.Connection[Any]) -> int | None:
    """The pid of a tokenfix backend blocked on a row lock in this database."""
    row = conn.execute(
        "SELECT pid FROM pg_stat_activity"
        " WHERE application_name = 'tokenfix' AND wait_event_type = 'Lock'"
        " AND datname = current_database()"
    ).fetchone()
    return int(row[0]) if row else None


def finish(process: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err
