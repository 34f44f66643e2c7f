"""Connections: psycopg 3 tuned for production and poolers, timeouts per transaction (where to
connect is tokenfix.db.target)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import partial
from typing import Any, Literal, LiteralString, TypeAlias

import psycopg
import simplejson
from psycopg import conninfo
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
from psycopg.types.json import set_json_dumps, set_json_loads

from tokenfix.base.errors import DatabaseProblem, first_line
from tokenfix.config.redact import scrub
from tokenfix.config.settings import Settings
from tokenfix.db.expressions import wrote
from tokenfix.db.target import app_url, describe_target, parse, target

Connection: TypeAlias = psycopg.Connection[Any]

APPLICATION_NAME = "tokenfix"

# A tool that stops talking (suspended, partitioned) is noticed by the kernel within about a
# minute instead of the default two hours; the server side is bounded by the idle timeout.
KEEPALIVES = {
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "60000",
}

Isolation = Literal["read committed", "repeatable read"]

_SET_TRANSACTION: dict[tuple[Isolation, bool], LiteralString] = {
    ("read committed", False): "SET TRANSACTION ISOLATION LEVEL READ COMMITTED READ WRITE",
    ("read committed", True): "SET TRANSACTION ISOLATION LEVEL READ COMMITTED READ ONLY",
    ("repeatable read", False): "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ WRITE",
    ("repeatable read", True): "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY",
}

__all__ = ["Connection", "connect", "transaction"]


def connect(settings: Settings, *, connect_timeout: int | None = None) -> Connection:
    """Open an autocommit connection; every unit of work then runs in `transaction()`.

    prepare_threshold=None: no server-side prepared statements, so the tool works through
    PgBouncer and Supabase Supavisor in transaction mode.
    """
    where = target(settings)
    dsn = where.conninfo
    given = parse(where)
    keepalives = {key: value for key, value in KEEPALIVES.items() if key not in given}
    full = conninfo.make_conninfo(
        dsn,
        application_name=APPLICATION_NAME,
        connect_timeout=str(connect_timeout or settings.connect_timeout),
        **keepalives,
    )
    try:
        conn = psycopg.connect(full, autocommit=True, prepare_threshold=None)
    except psycopg.OperationalError as exc:
        reason = scrub(first_line(str(exc)), dsn)
        raise DatabaseProblem(
            f"cannot connect to {describe_target(dsn)} (from {where.source}): {reason}",
            hint="check the URL, that the server is up, and its sslmode; 'tokenfix config' shows "
            "where the settings came from",
        ) from None
    exact_json(conn)
    return conn


def exact_json(conn: Connection) -> None:
    """json/jsonb values in and out as exact numbers: Decimal, never float (audit rows carry
    numeric balances, and a row compared as jsonb must come back as it went)."""
    set_json_loads(partial(json.loads, parse_float=Decimal), context=conn)
    set_json_dumps(partial(simplejson.dumps, use_decimal=True), context=conn)


def reconnect(settings: Settings, *, deadline: float) -> Connection:
    """A fresh connection, retried with backoff until `deadline` (time.monotonic()).

    After a lost connection or a server restart the server may take a few seconds to accept
    connections again; one immediate attempt would give up on a run that can still record
    how it ended and give its lease back.
    """
    delay = 0.2
    while True:
        left = deadline - time.monotonic()
        try:
            return connect(
                settings, connect_timeout=max(1, min(settings.connect_timeout, int(left)))
            )
        except DatabaseProblem:
            if time.monotonic() + delay >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def abandon(conn: Connection) -> None:
    """Stop using a connection an interrupt or a failure left in an unknown state.

    Cancel what it runs, then close it: its backend then ends the transaction and frees
    every row it locked, without us sending anything else on a connection whose protocol
    state we no longer know.
    """
    with contextlib.suppress(Exception):
        if not conn.closed and conn.pgconn.transaction_status == TransactionStatus.ACTIVE:
            conn.cancel_safe(timeout=2)
    with contextlib.suppress(Exception):
        conn.close()


def unusable(conn: Connection) -> bool:
    return conn.closed or conn.broken


def require_primary(conn: Connection) -> None:
    """Writing runs need the primary; say so plainly instead of failing mid-way."""
    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    if row and row[0]:
        raise DatabaseProblem(
            "this server is a read-only standby: nothing can be written here",
            hint="connect to the primary to write; dry runs work on a standby",
        )


def _local_settings(conn: Connection, settings: Settings, large_aggregate: bool) -> None:
    names = ["statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"]
    values = [settings.statement_timeout, settings.lock_timeout, settings.idle_timeout]
    # One clock for every comparison and every value compared as text (audit rows, created
    # rows): a timestamp without time zone is read as UTC, whatever the role's TimeZone.
    names.append("TimeZone")
    values.append("UTC")
    if conn.info.server_version >= 140000:
        # A backend running a long statement for a client that died notices within 5s.
        names.append("client_connection_check_interval")
        values.append("5s")
    if large_aggregate:
        names.append("work_mem")
        values.append(settings.work_mem)
    # From the URL itself: a connection opened elsewhere may come with settings without one.
    url = settings.database_url.get_secret_value().strip() if settings.database_url else ""
    search_path = app_url(url).search_path if url else None
    if search_path is not None:
        # Prisma's `schema=X`, LOCAL like the rest: a transaction pooler (the app's
        # `pgbouncer=true`) refuses the `options` startup parameter, and a session SET would
        # stay behind on a pooled backend for its next client.
        names.append("search_path")
        values.append(search_path)
    conn.execute(
        "SELECT set_config(name, value, true)"
        " FROM unnest(%s::text[], %s::text[]) AS s (name, value)",
        (names, values),
    )


@contextmanager
def transaction(
    conn: Connection,
    settings: Settings,
    *,
    read_only: bool = False,
    isolation: Isolation = "read committed",
    large_aggregate: bool = False,
) -> Iterator[Connection]:
    """One transaction with the tool's timeouts set LOCAL to it.

    SET LOCAL (through set_config) instead of startup options: poolers in transaction
    mode refuse the `options` startup parameter and may hand us another backend next time.
    The idle timeout is set in every transaction, reads included: a suspended tool must not
    keep even a read transaction (and the DDL queued behind it) open for long.
    """
    with conn.transaction():
        # SET TRANSACTION must come before any other statement of the transaction.
        conn.execute(_SET_TRANSACTION[isolation, read_only])
        _local_settings(conn, settings, large_aggregate)
        try:
            yield conn
        except pg_errors.ReadOnlySqlTransaction as exc:
            if not read_only:
                raise
            # The tool's own statements never write in a transaction it opened read only:
            # what tried is an expression of the mapping (a function it calls), on a
            # primary or a standby alike.
            raise wrote(exc) from exc
