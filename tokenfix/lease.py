"""The single-writer lease (SPEC §7).

A row in the audit schema names the writing run (host, pid, start) and expires unless its
holder renews it. Session advisory locks do not survive a transaction-mode pooler (each
transaction may land on another backend), and detecting a pooler is unreliable; a lease row
works the same on a direct connection and through PgBouncer or Supavisor.

Every batch renews the lease in the transaction that writes, just before writing, so a run
whose lease was taken over (it stalled past the expiry) cannot commit another batch: the
lease is also a fencing token.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from tokenfix import audit, db
from tokenfix.errors import DatabaseProblem, LockHeld
from tokenfix.settings import Settings

LEASE_TTL = timedelta(seconds=60)
RENEW_EVERY_SECONDS = 10.0

Connection = psycopg.Connection[Any]


class LeaseLost(DatabaseProblem):
    """Our lease expired and another run took it: stop writing."""


class WriterLease:
    def __init__(
        self,
        conn: Connection,
        settings: Settings,
        *,
        command: str,
        run_id: uuid.UUID,
        origin: audit.Origin,
    ) -> None:
        self.conn = conn
        self.settings = settings
        self.command = command
        self.run_id = run_id
        self.origin = origin
        self.holder = uuid.uuid4()
        self.started_at = datetime.now(UTC)
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def _params(self) -> dict[str, Any]:
        return {
            "holder": self.holder,
            "run_id": self.run_id,
            "command": self.command,
            "host": self.origin.host,
            "pid": self.origin.pid,
            "started_at": self.started_at,
            "ttl": LEASE_TTL,
        }

    def acquire(self) -> WriterLease:
        audit.ensure_schema(self.conn, self.settings)
        try:
            with db.transaction(self.conn, self.settings):
                got = self.conn.execute(
                    audit.compose("lease_acquire", self.settings), self._params()
                ).fetchone()
        except pg_errors.LockNotAvailable:
            got = None  # the holder is committing a batch right now
        if got is None:
            raise self._held_by_other()
        self._start_heartbeat()
        return self

    def _held_by_other(self) -> LockHeld:
        with db.transaction(self.conn, self.settings, read_only=True):
            row = self.conn.execute(audit.compose("lease_holder", self.settings)).fetchone()
        if row is None:  # released between our two statements
            return LockHeld("another tokenfix run was writing; retry now")
        command, host, pid, started_at, _, _, expires_in = row
        return LockHeld(
            f"another tokenfix {command} is writing to this database: host {host}, pid {pid}, "
            f"started {started_at.isoformat(timespec='seconds')}",
            hint=f"wait for it to finish; if it died, its lease expires in {expires_in}s",
        )

    def renew(self, conn: Connection) -> None:
        """Renew inside the caller's transaction; raises LeaseLost when it is not ours anymore."""
        row = conn.execute(
            audit.compose("lease_renew", self.settings),
            {"holder": self.holder, "ttl": LEASE_TTL},
        ).fetchone()
        if row is None:
            raise LeaseLost(
                "this run's writer lease expired and was taken over; stopped before writing more",
                hint="nothing of the current batch was written; re-run when the other run ends",
            )

    def _start_heartbeat(self) -> None:
        self._heartbeat = threading.Thread(target=self._beat, name="tokenfix-lease", daemon=True)
        self._heartbeat.start()

    def _beat(self) -> None:
        # Its own connection: the main one may sit in a long statement or a prompt.
        try:
            conn = db.connect(self.settings)
        except Exception:
            return
        with conn:
            while not self._stop.wait(RENEW_EVERY_SECONDS):
                try:
                    with db.transaction(conn, self.settings):
                        self.renew(conn)
                except LeaseLost:
                    return
                except psycopg.Error:
                    continue  # a batch holds the row right now, or a blip: try next beat

    def release(self) -> None:
        """Give the lease back on every exit, reconnecting if our connection died."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
        statement = audit.compose("lease_release", self.settings)
        params = {"holder": self.holder}
        try:
            if self.conn.broken or self.conn.closed:
                raise psycopg.OperationalError("connection lost")
            with db.transaction(self.conn, self.settings):
                self.conn.execute(statement, params)
        except psycopg.Error:
            try:
                with db.connect(self.settings) as fresh, db.transaction(fresh, self.settings):
                    fresh.execute(statement, params)
            except Exception:
                return  # the lease will expire on its own within LEASE_TTL

    def __enter__(self) -> WriterLease:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
