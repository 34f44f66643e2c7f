"""The single-writer lease (docs/safety.md).

A row in the audit schema names the writing run (host, pid, start) and expires unless its
holder renews it. Session advisory locks do not survive a transaction-mode pooler (each
transaction may land on another backend), and detecting a pooler is unreliable; a lease row
works the same on a direct connection and through PgBouncer or Supavisor.

Every batch renews the lease in the transaction that writes, just before writing, so a run
whose lease was taken over (it stalled past the expiry) cannot commit another batch: the
lease is also a fencing token.

However a run ends, it gives the lease back. When it ends by a signal or a lost connection,
the connection it was using is in an unknown state (mid-statement, or holding the lease row
locked in an open batch), so the lease is released, and the run's end recorded, on a fresh
connection, retried with backoff within a bounded time.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from tokenfix import queries
from tokenfix.audit import trail
from tokenfix.base.errors import DatabaseProblem, LeaseLost, LockHeld, first_line
from tokenfix.base.identifiers import QualifiedName
from tokenfix.base.signals import Interrupted
from tokenfix.config.settings import Settings
from tokenfix.db import session
from tokenfix.db.session import Connection

# The lease lives TOKENFIX_LEASE_TTL seconds (default 60) unless renewed, and is renewed six
# times per life: a run that stalls (stopped, partitioned) loses it within one TTL.
RENEWALS_PER_TTL = 6
# How long cleanup may take: a signalled run must be gone well inside a container's stop
# grace period (10 s by default); after a lost connection the server may need longer to
# come back, and nobody is waiting to kill us.
CLEANUP_AFTER_SIGNAL_SECONDS = 5.0
CLEANUP_AFTER_LOST_CONNECTION_SECONDS = 30.0
RELEASE_LOCK_TIMEOUT = "1s"


class TableHeld(DatabaseProblem):
    """A run of another audit schema holds a live lease on the same balance table."""


def lost_connection(exc: BaseException | None) -> bool:
    """Whether `exc` means the connection is gone (dropped, or the server shut down)."""
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate or ""
    return not state or state.startswith("08") or state in ("57P01", "57P02", "57P03")


class WriterLease:
    def __init__(
        self,
        conn: Connection,
        settings: Settings,
        *,
        command: str,
        run_id: uuid.UUID,
        origin: trail.Origin,
        table: QualifiedName | None = None,
    ) -> None:
        self.conn = conn
        self.table = table
        """The balance table the run writes: no run of another audit schema may write it."""
        self.settings = settings
        self.command = command
        self.run_id = run_id
        self.origin = origin
        self.holder = uuid.uuid4()
        self.started_at = datetime.now(UTC)
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._side: Connection | None = None
        self._deadline: float | None = None
        self._recorded: uuid.UUID | None = None
        self.ttl = timedelta(seconds=settings.lease_ttl)
        self.renew_every = settings.lease_ttl / RENEWALS_PER_TTL

    def _params(self) -> dict[str, Any]:
        return {
            "holder": self.holder,
            "run_id": self.run_id,
            "command": self.command,
            "host": self.origin.host,
            "pid": self.origin.pid,
            "started_at": self.started_at,
            "ttl": self.ttl,
        }

    def acquire(self) -> WriterLease:
        trail.ensure_schema(self.conn, self.settings)
        try:
            try:
                with session.transaction(self.conn, self.settings):
                    got = self.conn.execute(
                        trail.compose("lease_acquire", self.settings), self._params()
                    ).fetchone()
                    if got is not None and self.table is not None:
                        self.conn.execute(
                            trail.compose("lease_table_take", self.settings),
                            {**self._params(), "table": self._table_text()},
                        )
            except pg_errors.LockNotAvailable:
                got = None  # the holder is committing a batch right now
            if got is None:
                raise self._held_by_other()
            # After our own lease is committed: of two runs starting at once with different
            # audit schemas, at least the later one sees the other; never neither.
            self._refuse_if_table_held()
            self._start_heartbeat()
            trail.migrate(self.conn, self.settings, self)
        except BaseException as exc:
            # Interrupted (or failed) between taking the lease and handing it to the caller:
            # the caller's `with` never starts, so give it back here.
            if not isinstance(exc, LockHeld):
                self.release(exc)
            raise
        return self

    def _held_by_other(self) -> LockHeld:
        with session.transaction(self.conn, self.settings, read_only=True):
            row = self.conn.execute(trail.compose("lease_holder", self.settings)).fetchone()
        if row is None:  # released between our two statements
            return LockHeld("another tokenfix run was writing; retry now")
        command, host, pid, started_at, _, _, expires_in = row
        return LockHeld(
            f"another tokenfix {command} is writing to this database: host {host}, pid {pid}, "
            f"started {started_at.isoformat(timespec='seconds')}",
            hint=f"wait for it to finish; if it died, its lease expires in {expires_in}s",
        )

    def _table_text(self) -> str:
        assert self.table is not None
        return self.table.identifier.as_string(self.conn)

    def _refuse_if_table_held(self) -> None:
        """One writer per balance table: a live lease on it in another audit schema (found
        from the catalogs; no session state, so it holds through a pooler) refuses the run."""
        if self.table is None:
            return
        with session.transaction(self.conn, self.settings, read_only=True):
            schemas = [
                str(row[0])
                for row in self.conn.execute(
                    queries.get("audit_schemas_elsewhere"), {"own": self.settings.audit_schema}
                )
            ]
            for schema in schemas:
                statement = queries.compose(
                    "lease_table_held", lease=sql.Identifier(schema, "lease")
                )
                row = self.conn.execute(statement, {"table": self._table_text()}).fetchone()
                if row is not None:
                    command, host, pid, started_at, run_id = row
                    raise TableHeld(
                        f"another tokenfix {command} (run {run_id}, audit schema {schema}) is "
                        f"writing {self.table}: host {host}, pid {pid}, started "
                        f"{started_at.isoformat(timespec='seconds')}; nothing was written",
                        hint="one writer per balance table: wait for it to finish, and give every "
                        "tokenfix run on this database the same TOKENFIX_AUDIT_SCHEMA",
                    )

    def renew(self, conn: Connection) -> None:
        """Renew inside the caller's transaction; raises LeaseLost when it is not ours anymore."""
        row = conn.execute(
            trail.compose("lease_renew", self.settings),
            {"holder": self.holder, "ttl": self.ttl},
        ).fetchone()
        if row is None:
            raise LeaseLost(
                "this run's writer lease expired and was taken over; stopped before writing more",
                hint="nothing of the current batch was written; re-run when the other run ends",
            )

    def _start_heartbeat(self) -> None:
        heartbeat = threading.Thread(target=self._beat, name="tokenfix-lease", daemon=True)
        heartbeat.start()
        self._heartbeat = heartbeat  # only once started: release() joins it

    def _beat(self) -> None:
        # Its own connection: the main one may sit in a long statement or a prompt. A lost
        # connection is reopened (with backoff, never past the lease's own expiry), so a
        # live run keeps its lease through a network blip or a server restart.
        conn: Connection | None = None
        try:
            while not self._stop.wait(self.renew_every):
                try:
                    if conn is None or session.unusable(conn):
                        conn = self._heartbeat_connection(conn)
                        if conn is None:
                            continue
                    with session.transaction(conn, self.settings):
                        self.renew(conn)
                except LeaseLost:
                    return
                except psycopg.Error:
                    continue  # a batch holds the row right now, or a blip: try next beat
        finally:
            if conn is not None:
                session.abandon(conn)

    def _heartbeat_connection(self, old: Connection | None) -> Connection | None:
        if old is not None:
            session.abandon(old)
        deadline = time.monotonic() + self.renew_every
        try:
            return session.reconnect(self.settings, deadline=deadline)
        except DatabaseProblem:
            return None

    # -- the end of a run -------------------------------------------------------------

    def _cleanup_connection(self, cause: BaseException | None) -> Connection:
        """The connection to record a run's end and release the lease on.

        The main one, unless a signal or a lost connection left it in an unknown state: then
        it is cancelled and closed (its backend rolls the open batch back and lets go of the
        lease row) and a fresh one is opened, retried until the cleanup deadline.
        """
        if self._side is not None and not session.unusable(self._side):
            return self._side
        suspect = isinstance(cause, Interrupted) or lost_connection(cause)
        if not suspect and not session.unusable(self.conn):
            return self.conn
        if self._deadline is None:
            budget = (
                CLEANUP_AFTER_SIGNAL_SECONDS
                if isinstance(cause, Interrupted)
                else CLEANUP_AFTER_LOST_CONNECTION_SECONDS
            )
            self._deadline = time.monotonic() + budget
        session.abandon(self.conn)
        self._side = session.reconnect(self.settings, deadline=self._deadline)
        return self._side

    def record_end(self, run_id: uuid.UUID, cause: BaseException) -> None:
        """Mark run `run_id` interrupted or failed; never masks the error that ended it.

        A signal may come while this runs (for a run that failed otherwise): the run is then
        recorded as interrupted, on a fresh connection, and the signal goes on up.
        """
        try:
            self._record_end(run_id, cause)
        except Interrupted as late:
            self._record_end(run_id, late)
            raise

    def _record_end(self, run_id: uuid.UUID, cause: BaseException) -> None:
        status = "interrupted" if isinstance(cause, Interrupted) else "failed"
        error = str(cause) if isinstance(cause, Interrupted) else first_line(str(cause))
        try:
            conn = self._cleanup_connection(cause)
            trail.finish_run(
                conn, self.settings, run_id, status, {"error": error or type(cause).__name__}
            )
        except Exception:
            return
        self._recorded = run_id

    def release(self, cause: BaseException | None = None) -> None:
        """Give the lease back on every exit the process survives.

        A signal may come while this runs (after a run that ended well or failed otherwise):
        the lease is then released on a fresh connection, and the signal goes on up.
        """
        try:
            self._release(cause)
        except Interrupted as late:
            self._release(late)
            raise

    def _release(self, cause: BaseException | None) -> None:
        self._stop.set()
        if self._heartbeat is not None and self._heartbeat.is_alive():
            self._heartbeat.join(timeout=2)
        statement = trail.compose("lease_release", self.settings)
        try:
            conn = self._cleanup_connection(cause)
            deadline = self._deadline or time.monotonic() + CLEANUP_AFTER_SIGNAL_SECONDS
            while True:
                try:
                    with session.transaction(conn, self.settings):
                        conn.execute(
                            "SELECT set_config('lock_timeout', %s, true)", (RELEASE_LOCK_TIMEOUT,)
                        )
                        conn.execute(statement, {"holder": self.holder})
                    self._explain(cause)
                    return
                except pg_errors.LockNotAvailable:
                    # Our own interrupted batch still holds the lease row for a moment.
                    if time.monotonic() >= deadline:
                        return
        except Exception:
            return  # the lease expires on its own within its TTL
        finally:
            if self._side is not None:
                session.abandon(self._side)
                self._side = None

    def _explain(self, cause: BaseException | None) -> None:
        if isinstance(cause, Interrupted):
            recorded = f"run {self._recorded} is marked interrupted, " if self._recorded else ""
            cause.detail = (
                f"any batch in progress was rolled back, {recorded}the writer lease is released"
            )

    def __enter__(self) -> WriterLease:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release(exc)
