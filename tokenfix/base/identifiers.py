"""SQL names from settings and mappings: parsed once, only ever rendered through sql.Identifier."""

from __future__ import annotations

import re

from psycopg import sql

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


class QualifiedName(tuple[str, ...]):
    """A table name, optionally schema-qualified; only ever rendered through sql.Identifier."""

    @classmethod
    def parse(cls, text: str, *, max_parts: int = 2) -> QualifiedName:
        parts = text.strip().split(".")
        if not 1 <= len(parts) <= max_parts or not all(IDENTIFIER.match(p) for p in parts):
            shape = "a name like 'user_profiles' or 'public.user_profiles'"
            if max_parts == 1:
                shape = "a plain name like 'vibe_assistant_tokens_used'"
            raise ValueError(f"{text!r} is not {shape} (letters, digits, _ and $)")
        return cls(parts)

    @property
    def identifier(self) -> sql.Identifier:
        return sql.Identifier(*self)

    @property
    def table_name(self) -> str:
        return self[-1]

    def __str__(self) -> str:
        return ".".join(self)
