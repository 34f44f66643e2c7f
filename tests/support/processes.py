"""Run tokenfix as a separate process and watch it from the database, for safety tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg


def default_signals() -> None:
    """The child's SIGINT and SIGHUP as a terminal would give them. A test run started in
    the background (`cmd &`, nohup, some CI runners) hands its children both ignored, and
    tokenfix rightly keeps an inherited ignore: the signal tests would then test nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def start(
    db_url: str, *args: str, preexec_fn: Callable[[], Any] = default_signals, **env: str
) -> subprocess.Popen[str]:
    # PYTHONFAULTHANDLER: a run that outlives finish()'s bound is made to print every thread's
    # stack (SIGABRT), so a hang says where it hangs. It handles no signal the tool handles.
    environment = {**os.environ, "TOKENFIX_DATABASE_URL": db_url, "PYTHONFAULTHANDLER": "1", **env}
    return subprocess.Popen(
        [sys.executable, "-m", "tokenfix", *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec_fn,
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
    """Wait for `process` (started by start()) to end; past `timeout`, fail with its stacks."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
        try:
            _, err = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
        raise AssertionError(
            f"tokenfix (pid {process.pid}, {process.args!r}) did not end within {timeout}s;"
            f" its stderr, with its threads' stacks:\n{err}"
        ) from None
    return process.returncode, out, err


@dataclass
class HeldRun:
    """A tokenfix process blocked on a profile row the test holds."""

    process: subprocess.Popen[str]
    backend_pid: int
    holder: psycopg.Connection[Any]

    def release(self) -> None:
        self.holder.rollback()


@contextmanager
def run_waiting_on(
    db_url: str, user: Any, *args: str, run_url: str | None = None, **env: str
) -> Iterator[HeldRun]:
    """Hold `user`'s profile row, start `tokenfix ARGS`, and yield once it waits on that row.

    This is how the safety tests stop a run at a chosen point (a batch, a retry) to play the
    app, a second writer or a crash against it. The row is released on leaving, if not before.
    """
    with psycopg.connect(db_url) as holder, psycopg.connect(db_url, autocommit=True) as watcher:
        holder.execute("SELECT 1 FROM user_profiles WHERE user_id = %s FOR UPDATE", (user,))
        process = start(run_url or db_url, *args, **{"TOKENFIX_LOCK_TIMEOUT": "60s", **env})
        pid = wait_until(lambda: backend_waiting_on_a_lock(watcher), what="the run to wait")
        yield HeldRun(process=process, backend_pid=pid, holder=holder)
        holder.rollback()
