"""The tool gives way in a lock cycle with the app (docs/safety.md).

A batch locks its balance rows in key order; an app transaction that updates two of them in
the other order can close a cycle with it. PostgreSQL breaks a cycle by aborting the backend
whose deadlock_timeout runs out first while it waits in the cycle, and the app, which may
have started waiting first, would lose. So:
- where the role may set it (a superuser, or `GRANT SET ON PARAMETER deadlock_timeout` on
  PostgreSQL 15+), write transactions set a deadlock_timeout far below the server's: ours runs
  out first and PostgreSQL aborts our transaction, which is retried;
- otherwise the lock step of each batch runs with a short lock_timeout and is bounded by a
  short statement_timeout, both well below the server's deadlock_timeout, so the app never
  waits for our rows long enough for its own check to run; the batch is retried (bounded).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from psycopg import errors as pg_errors

from tokenfix import queries
from tokenfix.config.settings import Settings, server_duration_ms
from tokenfix.db.session import Connection

Strategy = Literal["deadlock_timeout", "lock_timeout"]
# Attempts of a batch: as many as before where PostgreSQL picks us as the victim; twice as
# many where short lock waits give way more often than the server's detector would.
ATTEMPTS = {"deadlock_timeout": 5, "lock_timeout": 10}


class GaveWay(pg_errors.LockNotAvailable):
    """Our lock step ran past its short bound (the app may be waiting for rows we hold): the
    batch is rolled back, freeing them, and retried like a lock timeout."""


@dataclass(frozen=True)
class GiveWay:
    strategy: Strategy
    server_deadlock_ms: int
    deadlock_timeout_ms: int
    """Ours, set LOCAL in write transactions (strategy deadlock_timeout)."""
    lock_timeout_ms: int
    """Each row lock wait of the lock step (strategy lock_timeout)."""
    lock_step_ms: int
    """The whole lock step (strategy lock_timeout)."""

    @property
    def attempts(self) -> int:
        return ATTEMPTS[self.strategy]

    def describe(self) -> str:
        if self.strategy == "deadlock_timeout":
            return (
                f"in a lock cycle with the app, tokenfix gives way: its write transactions set "
                f"deadlock_timeout {self.deadlock_timeout_ms}ms (the server's is "
                f"{self.server_deadlock_ms}ms), so PostgreSQL aborts tokenfix's transaction, "
                "which is retried"
            )
        return (
            "in a lock cycle with the app, tokenfix gives way: this role may not set "
            f"deadlock_timeout, so each batch takes its row locks with lock_timeout "
            f"{self.lock_timeout_ms}ms within {self.lock_step_ms}ms (the server's "
            f"deadlock_timeout is {self.server_deadlock_ms}ms) and retries, at most "
            f"{self.attempts} times"
        )


def decide(conn: Connection, settings: Settings) -> GiveWay:
    """How this role gives way on this server (a catalog read; call it in a transaction)."""
    name = "deadlock_privilege"
    if conn.info.server_version >= 150000:
        name += "_post_150000"
    row = conn.execute(queries.get(name)).fetchone()
    server_ms = int(row[0]) if row and row[0] else 1000
    may_set = bool(row and row[1])
    lock_ms = int(server_duration_ms(settings.lock_timeout)) or server_ms
    return GiveWay(
        strategy="deadlock_timeout" if may_set else "lock_timeout",
        server_deadlock_ms=server_ms,
        deadlock_timeout_ms=max(1, min(50, server_ms // 10)),
        lock_timeout_ms=max(1, min(lock_ms, server_ms // 4)),
        lock_step_ms=max(2, server_ms // 2),
    )


@contextmanager
def lock_step(conn: Connection, settings: Settings, way: GiveWay) -> Iterator[None]:
    """Around a batch's lock step, inside its write transaction: what `way` needs set."""
    if way.strategy == "deadlock_timeout":
        # LOCAL, for the rest of the write transaction: every wait in it is ours to lose.
        conn.execute(_SET_DEADLOCK, (f"{way.deadlock_timeout_ms}ms",))
        yield
        return
    step_ms = min(
        way.lock_step_ms, int(server_duration_ms(settings.statement_timeout)) or way.lock_step_ms
    )
    conn.execute(_SET_TIMEOUTS, (f"{way.lock_timeout_ms}ms", f"{step_ms}ms"))
    try:
        yield
    except pg_errors.QueryCanceled as exc:
        raise GaveWay(
            f"the batch's row locks took longer than {step_ms}ms: gave way to the app"
        ) from exc
    conn.execute(_SET_TIMEOUTS, (settings.lock_timeout, settings.statement_timeout))


_SET_DEADLOCK = "SELECT set_config('deadlock_timeout', %s, true)"
_SET_TIMEOUTS = (
    "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)"
)
