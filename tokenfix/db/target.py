"""Where to connect: the database a command works on (the URL setting, else libpq's own
environment and service file), the URL fitted for libpq, and `user@host:port/dbname` for
messages — never the password."""

from __future__ import annotations

import configparser
import contextlib
import getpass
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import psycopg
from psycopg import conninfo, pq

from tokenfix.base.errors import BadInput, first_line
from tokenfix.config.redact import MASK, URL_SCHEME, scrub
from tokenfix.config.settings import Settings

__all__ = [
    "AppUrl",
    "Target",
    "app_url",
    "connection_note",
    "database_url",
    "describe_target",
    "libpq_environment",
    "parse",
    "target",
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


def parse(where: Target) -> dict[str, Any]:
    try:
        return conninfo.conninfo_to_dict(where.conninfo)
    except psycopg.ProgrammingError as exc:
        reason = scrub(first_line(str(exc)), where.conninfo)
        raise BadInput(
            f"{where.source} is not a valid connection string: {reason}",
            hint="percent-encode characters such as @ : / ? # % and spaces in the password",
        ) from None
