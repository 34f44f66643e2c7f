"""The tool's SQL, one file per statement, composed with psycopg.sql.

Files use `{name}` for identifiers and SQL fragments (filled through psycopg.sql, never by
string pasting) and `%(name)s` for values (bound as parameters).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from psycopg import sql

HERE = Path(__file__).parent


@cache
def get(name: str) -> sql.SQL:
    # The files ship inside the package: they are code, not input.
    text = (HERE / f"{name}.sql").read_text(encoding="utf-8")
    return sql.SQL(text)


def compose(name: str, **fragments: sql.Composable) -> sql.Composed:
    return get(name).format(**fragments)
