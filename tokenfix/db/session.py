"""Connections: psycopg 3 tuned for production and poolers, timeouts per transaction."""

from __future__ import annotations

import configparser
import contextlib
import getpass
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Literal, LiteralString, TypeAlias
from urllib.parse import unquote

import psycopg
import simplejson
from psycopg import conninfo, pq
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
from psycopg.types.json import set_json_dumps, set_json_loads

from tokenfix.base.errors import BadInput, DatabaseProblem, first_line
from tokenfix.config.redact import MASK, URL_SCHEME, redact, scrub
from tokenfix.config.settings import Settings
from tokenfix.db.expressions import wrote

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

__all__ = [
    "Connection",
    "Target",
    "connect",
    "connection_note",
    "describe_target",
    "redact",
    "target",
    "transaction",
]


# The libpq parameters that say where to connect: one of them in the environment (PGHOST,
# PGSERVICE, …) is a choice of database, as psql reads it. PGSSLMODE or PGPASSWORD alone is not.
_TARGET_KEYWORDS = ("host", "hostaddr", "port", "dbname", "user", "service")
# libpq reads these too, but they name files, not parameters of a connection string.
_LIBPQ_FILE_VARIABLES = ("PGSERVICEFILE", "PGSYSCONFDIR")
# libpq's own URI alias, kept for JDBC-style URLs (`ssl=true` means sslmode=require).
_URI_ALIASES = frozenset({"ssl"})


@lru_cache(maxsize=1)
def _libpq_parameters() -> dict[str, str]:
    """Every connection parameter this libpq knows, with its environment variable ("" if none)."""
    return {
        option.keyword.decode(): option.envvar.decode() if option.envvar else ""
        for option in pq.Conninfo.get_defaults()
    }


def libpq_environment() -> dict[str, str]:
    """The libpq variables set in this process's environment, passwords as ***."""
    names = [*(v for v in _libpq_parameters().values() if v), *_LIBPQ_FILE_VARIABLES]
    return {
        name: MASK if name == "PGPASSWORD" else os.environ[name]
        for name in sorted(set(names))
        if os.environ.get(name)
    }


def _target_variables() -> list[str]:
    parameters = _libpq_parameters()
    variables = [parameters.get(keyword, "") for keyword in _TARGET_KEYWORDS]
    return [name for name in variables if name and os.environ.get(name)]


@dataclass(frozen=True)
class AppUrl:
    """A URL as an app writes it, made fit for libpq."""

    conninfo: str
    search_path: str | None
    """From Prisma's `schema=X`: set LOCAL in every transaction (see `transaction`)."""
    ignored: tuple[str, ...]
    """Query parameters libpq does not know (`pgbouncer`, `connection_limit`): dropped."""


def _query_start(url: str) -> int:
    """Where the query string starts (-1: none), found the way libpq finds it: the user info
    ends at the first '@' before any '/', so a '?' in a password is part of the password."""
    scheme = URL_SCHEME.match(url)
    if not scheme:
        return -1
    rest = scheme.end()
    credentials = re.compile(r"[@/]").search(url, rest)
    if credentials and credentials.group(0) == "@":
        rest = credentials.end()
    return url.find("?", rest)


@lru_cache(maxsize=16)
def app_url(dsn: str) -> AppUrl:
    """Drop the query parameters libpq would refuse; Prisma's `schema` becomes the search path.

    Only URLs: a key=value string is the operator's own and stays strict. Parameters are
    judged by name against libpq's own list of keywords; values are never shown.
    """
    start = _query_start(dsn)
    if start < 0:
        return AppUrl(dsn, None, ())
    known = _libpq_parameters().keys() | _URI_ALIASES
    kept: list[str] = []
    ignored: list[str] = []
    schema = None
    for item in dsn[start + 1 :].split("&"):
        key, _, value = item.partition("=")
        name = unquote(key)
        if not item or name in known:
            kept.append(item)
        elif name == "schema":
            schema = unquote(value) or None
        elif name not in ignored:
            ignored.append(name)
    kept = [item for item in kept if item]
    conninfo = dsn[:start] + ("?" + "&".join(kept) if kept else "")
    search_path = '"' + schema.replace('"', '""') + '"' if schema else None
    return AppUrl(conninfo, search_path, tuple(ignored))


@dataclass(frozen=True)
class Target:
    """Where the tool connects, and which setting said so."""

    conninfo: str
    """What libpq is given; "" lets libpq decide from its environment and service file."""
    source: str
    """`--database-url`, `DATABASE_URL in /etc/tokenfix/.env`, `libpq's PGHOST, PGUSER`."""
    search_path: str | None = None
    ignored: tuple[str, ...] = ()


def target(settings: Settings) -> Target:
    """The database a command works on: the URL setting, else libpq's own environment.

    Without a URL, libpq's PG* variables (or PGSERVICE and its service file) decide, as for
    psql, but only when one of them names a target: a tool that writes balances does not
    guess a local database from nothing.
    """
    url = settings.database_url.get_secret_value().strip() if settings.database_url else ""
    if url:
        fitted = app_url(url)
        return Target(
            fitted.conninfo, str(settings.origin("database_url")), fitted.search_path,
            fitted.ignored,
        )  # fmt: skip
    variables = _target_variables()
    if variables:
        return Target("", f"libpq's {', '.join(variables)}")
    read = ", ".join(str(path) for path in settings.env_files)
    raise BadInput(
        "no database given: set TOKENFIX_DATABASE_URL or DATABASE_URL (in the environment, "
        f"{read or './.env'} or an --env-file), libpq's PGHOST/PGDATABASE or PGSERVICE, "
        "or pass --database-url"
    )


def connection_note(settings: Settings) -> str | None:
    """The one line to show about the URL's dropped query parameters, if any."""
    try:
        where = target(settings)
    except BadInput:
        return None  # connect() says so, when a command gets that far
    if not where.ignored:
        return None
    return (
        f"ignoring {', '.join(where.ignored)} in the URL from {where.source}: "
        "settings of the app's own driver or pool, unknown to libpq"
    )


def _service_entry(name: str) -> dict[str, str]:
    """The parameters of service `name`, from the files libpq reads (the user's first)."""
    user_file = os.environ.get("PGSERVICEFILE") or str(Path("~/.pg_service.conf").expanduser())
    system_dir = os.environ.get("PGSYSCONFDIR")
    for path in [user_file, *([str(Path(system_dir) / "pg_service.conf")] if system_dir else [])]:
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        with contextlib.suppress(OSError, configparser.Error):
            parser.read(path, encoding="utf-8")
            if parser.has_section(name):
                return dict(parser.items(name))
    return {}


def _os_user() -> str:
    with contextlib.suppress(Exception):
        return getpass.getuser()
    return "(default user)"


def describe_target(dsn: str) -> str:
    """`user@host:port/dbname` for messages: never the password, never other options.

    What the string leaves out is what libpq will use, in libpq's order: the service's
    entries (`service=` or PGSERVICE), the PG* variables, the compiled-in defaults (the OS
    user, port 5432, the local socket; the database named like the user).
    """
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable connection string>"
    service = params.get("service") or os.environ.get("PGSERVICE")
    from_service = _service_entry(str(service)) if service else {}
    compiled = {
        option.keyword.decode(): option.compiled.decode()
        for option in pq.Conninfo.get_defaults()
        if option.compiled
    }

    def part(keyword: str) -> str:
        variable = _libpq_parameters().get(keyword, "")
        found = (
            params.get(keyword)
            or from_service.get(keyword)
            or (os.environ.get(variable) if variable else None)
            or compiled.get(keyword)
        )
        return str(found or "")

    user = part("user") or _os_user()
    host = part("host") or part("hostaddr") or "(local socket)"
    port = f":{part('port')}" if part("port") else ""
    dbname = part("dbname") or user
    # A password with an unencoded '@' spills into what libpq takes for the host.
    return scrub(f"{user}@{host}{port}/{dbname}", dsn)


def database_url(settings: Settings) -> str:
    """The connection string libpq is given ("" when its environment decides)."""
    return target(settings).conninfo


def _parse(where: Target) -> dict[str, Any]:
    try:
        return conninfo.conninfo_to_dict(where.conninfo)
    except psycopg.ProgrammingError as exc:
        reason = scrub(first_line(str(exc)), where.conninfo)
        raise BadInput(
            f"{where.source} is not a valid connection string: {reason}",
            hint="percent-encode characters such as @ : / ? # % and spaces in the password",
        ) from None


def connect(settings: Settings, *, connect_timeout: int | None = None) -> Connection:
    """Open an autocommit connection; every unit of work then runs in `transaction()`.

    prepare_threshold=None: no server-side prepared statements, so the tool works through
    PgBouncer and Supabase Supavisor in transaction mode.
    """
    where = target(settings)
    dsn = where.conninfo
    given = _parse(where)
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
