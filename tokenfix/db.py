"""Connections: psycopg 3 tuned for production and poolers, timeouts per transaction."""

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
from psycopg.pq import TransactionStatus
from psycopg.types.json import set_json_dumps, set_json_loads

from tokenfix.errors import BadInput, DatabaseProblem, first_line
from tokenfix.redact import redact, scrub
from tokenfix.settings import Settings

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

__all__ = ["Connection", "connect", "describe_target", "redact", "transaction"]


def describe_target(dsn: str) -> str:
    """`user@host:port/dbname` for messages: never the password, never other options."""
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable connection string>"
    user = params.get("user") or "(default user)"
    host = params.get("host") or "(default host)"
    port = f":{params['port']}" if params.get("port") else ""
    dbname = params.get("dbname") or "(default database)"
    # A password with an unencoded '@' spills into what libpq takes for the host.
    return scrub(f"{user}@{host}{port}/{dbname}", dsn)


def database_url(settings: Settings) -> str:
    if settings.database_url is None:
        raise BadInput(
            "no database given: set TOKENFIX_DATABASE_URL (or DATABASE_URL, or put it in .env) "
            "or pass --database-url"
        )
    return settings.database_url.get_secret_value()


def _parse(dsn: str) -> dict[str, Any]:
    try:
        return conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        reason = scrub(first_line(str(exc)), dsn)
        raise BadInput(
            f"TOKENFIX_DATABASE_URL is not a valid connection string: {reason}",
            hint="percent-encode characters such as @ : / ? # % and spaces in the password",
        ) from None


def connect(settings: Settings, *, connect_timeout: int | None = None) -> Connection:
    """Open an autocommit connection; every unit of work then runs in `transaction()`.

    prepare_threshold=None: no server-side prepared statements, so the tool works through
    PgBouncer and Supabase Supavisor in transaction mode.
    """
    dsn = database_url(settings)
    given = _parse(dsn)
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
            f"cannot connect to {describe_target(dsn)}: {reason}",
            hint="check the URL, that the server is up, and its sslmode",
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
        yield conn
