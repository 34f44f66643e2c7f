"""Owner keys as given on the command line: text, checked against the key's SQL type."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import psycopg
from psycopg import sql

from tokenfix.base.errors import BadInput
from tokenfix.db.session import Connection


class BadKey(BadInput):
    """A key that is not of the key's type."""

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


def shown(text: str) -> str:
    return repr("".join(ch if ch.isprintable() else "?" for ch in text)[:60])


def parse_uuid(text: str) -> str:
    """A user id of the default schema: anything but a UUID is refused (exit 2)."""
    cleaned = text.strip()
    try:
        if len(cleaned) not in (32, 36):
            raise ValueError
        return str(uuid.UUID(cleaned))
    except ValueError:
        raise BadKey(f"not a valid user id: {shown(text)} is not a UUID", key=text) from None


def check(conn: Connection, keys: Sequence[str], type_name: str) -> list[str]:
    """`keys` as the database writes them in `type_name` (e.g. ' 42' -> '42'); the first that
    does not cast is bad input naming the type (exit 2)."""
    if type_name == "uuid":
        return [parse_uuid(key) for key in keys]
    cast = sql.SQL(
        "SELECT k::{}::text FROM unnest(%s::text[]) WITH ORDINALITY AS u (k, n) ORDER BY n"
    )
    statement = cast.format(sql.SQL(type_name))
    try:
        with conn.transaction():
            return [str(row[0]) for row in conn.execute(statement, (list(keys),)).fetchall()]
    except psycopg.DataError:
        if conn.broken:
            raise
    for key in keys:  # the error path only: find the culprit
        try:
            with conn.transaction():
                conn.execute(sql.SQL("SELECT %s::text::{}").format(sql.SQL(type_name)), (key,))
        except psycopg.DataError:
            raise BadKey(f"not a valid key: {shown(key)} is not a {type_name}", key=key) from None
    raise AssertionError("unreachable: the batch cast failed but each key casts")
