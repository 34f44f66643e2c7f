"""Small wording helpers shared by messages and renderers (no dependencies)."""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`1 user`, `2 users`, `1,234 rows` (`nouns` for irregular plurals)."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"
