"""The tool's SQL, one file per statement, composed with psycopg.sql.

Files use `{name}` for identifiers and SQL fragments (filled through psycopg.sql, never by
string pasting) and `%(name)s` for values (bound as parameters). A line `\\ir other.sql` (as in
psql) is replaced by that file's text: statements that must decide alike share one text.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from psycopg import sql

HERE = Path(__file__).parent
_INCLUDE = re.compile(r"^\\ir (\w+)\.sql$", re.M)


def _text(name: str) -> str:
    # The files ship inside the package: they are code, not input.
    text = (HERE / f"{name}.sql").read_text(encoding="utf-8")
    return _INCLUDE.sub(lambda found: _text(found.group(1)).rstrip("\n"), text)


@cache
def get(name: str) -> sql.SQL:
    return sql.SQL(_text(name))


def compose(name: str, **fragments: sql.Composable) -> sql.Composed:
    return get(name).format(**fragments)
