"""How an audit row's written columns are named and shown: shared by history and revert, so that
a read-only lookup never loads the revert machinery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tokenfix.config.settings import Settings
from tokenfix.mapping.types import BalanceSide, default_mapping


def legacy_columns(settings: Settings) -> dict[str, str]:
    """What audit rows of layouts before 2 hold (the default mapping's two columns), named."""
    columns = default_mapping(settings).balance
    return {"remaining": columns.write[0][0], "used": columns.write[1][0]}


View = Callable[[dict[str, Any] | None], dict[str, Any] | None]


def written_view(b: BalanceSide) -> View:
    """How to show a row's written columns: as tokens_remaining / tokens_used when the mapping
    reads its balance straight from two of them (the default mapping does), else by column."""
    written = set(b.compared_columns)
    names = {
        "tokens_remaining": b.remaining.text if b.remaining else None,
        "tokens_used": b.used.text if b.used else None,
    }
    if not all(column in written for column in names.values() if column is not None):
        return lambda columns: columns
    sides = {side: column for side, column in names.items() if column is not None}

    def view(columns: dict[str, Any] | None) -> dict[str, Any] | None:
        if columns is None or set(columns) != set(sides.values()):
            return columns
        return {side: columns[column] for side, column in sides.items()}

    return view
