"""Connections: psycopg 3 tuned for production and poolers, timeouts per transaction."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, LiteralString

import psycopg
from psycopg import conninfo

from tokenfix.errors import BadInput, DatabaseProblem, first_line
from tokenfix.settings import Settings

APPLICATION_NAME = "tokenfix"

Isolation = Literal["read committed", "repeatable read"]

_SET_TRANSACTION: dict[tuple[Isolation, bool], LiteralString] = {
    ("read committed", False): "SET TRANSACTION ISOLATION LEVEL READ COMMITTED READ WRITE",
    ("read committed", True): "SET TRANSACTION ISOLATION LEVEL READ COMMITTED READ ONLY",
    ("repeatable read", False): "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ WRITE",
    ("repeatable read", True): "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY",
}


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
    return f"{user}@{host}{port}/{dbname}"


def redact(dsn: str) -> str:
    """The DSN with its password replaced by ***, in URL or key=value form."""
    redacted = re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", dsn)
    redacted = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", redacted)
    return re.sub(r"([?&]password=)[^&\s]*", r"\1***", redacted)


def _scrub(message: str, dsn: str) -> str:
    try:
        password = conninfo.conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        password = None
    message = redact(message)
    return message.replace(str(password), "***") if password else message


def database_url(settings: Settings) -> str:
    if settings.database_url is None:
        raise BadInput(
            "no database given: set TOKENFIX_DATABASE_URL (or DATABASE_URL, or put it in .env) "
            "or pass --database-url"
        )
    return settings.database_url.get_secret_value()


def connect(settings: Settings) -> psycopg.Connection[tuple[object, ...]]:
    """Open an autocommit connection; every unit of work then runs in `transaction()`.

    prepare_threshold=None: no server-side prepared statements, so the tool works through
    PgBouncer and Supabase Supavisor in transaction mode.
    """
    dsn = database_url(settings)
    try:
        conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        reason = _scrub(first_line(str(exc)), dsn)
        raise BadInput(
            f"TOKENFIX_DATABASE_URL is not a valid connection string: {reason}"
        ) from None
    try:
        return psycopg.connect(
            dsn,
            autocommit=True,
            prepare_threshold=None,
            application_name=APPLICATION_NAME,
            connect_timeout=settings.connect_timeout,
        )
    except psycopg.OperationalError as exc:
        reason = _scrub(first_line(str(exc)), dsn)
        raise DatabaseProblem(
            f"cannot connect to {describe_target(dsn)}: {reason}",
            hint="check the URL, that the server is up, and its sslmode",
        ) from None


def require_primary(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Writing runs need the primary; say so plainly instead of failing mid-way."""
    row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    if row and row[0]:
        raise DatabaseProblem(
            "this server is a read-only standby: nothing can be written here",
            hint="connect to the primary to write; dry runs work on a standby",
        )


@contextmanager
def transaction(
    conn: psycopg.Connection[tuple[object, ...]],
    settings: Settings,
    *,
    read_only: bool = False,
    isolation: Isolation = "read committed",
    large_aggregate: bool = False,
) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """One transaction with the tool's timeouts set LOCAL to it.

    SET LOCAL (through set_config) instead of startup options: poolers in transaction
    mode refuse the `options` startup parameter and may hand us another backend next time.
    """
    with conn.transaction():
        # SET TRANSACTION must come before any other statement of the transaction.
        conn.execute(_SET_TRANSACTION[isolation, read_only])
        conn.execute(
            "SELECT set_config('statement_timeout', %s, true),"
            " set_config('lock_timeout', %s, true)",
            (settings.statement_timeout, settings.lock_timeout),
        )
        if large_aggregate:
            conn.execute("SELECT set_config('work_mem', %s, true)", (settings.work_mem,))
        yield conn
