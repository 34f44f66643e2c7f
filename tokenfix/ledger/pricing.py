"""Override prices (docs/balance-model.md): the overrides table, read first and compiled into one
CASE.

The table is tiny, so it is read once per run and compiled into a CASE whose values are bound
parameters; a per-row lookup into the table is ~9x slower at 10M rows. The CASE matches a
ledger row on its (mapped) action, model and time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import sql

from tokenfix import queries
from tokenfix.base.identifiers import QualifiedName
from tokenfix.db.session import Connection

OVERRIDE_COLUMNS = ("id", "action_type", "model_used", "token_cost", "is_active")
WINDOW_COLUMNS = ("valid_from", "valid_until")

# The type a price is cast to, by the family of the token_cost column: integer keeps the
# all-users aggregate on its fast bigint path; a wider column keeps its width.
PRICE_CASTS: dict[str, sql.SQL] = {
    "smallint": sql.SQL("integer"),
    "integer": sql.SQL("integer"),
    "bigint": sql.SQL("bigint"),
    "numeric": sql.SQL("numeric"),
}


@dataclass(frozen=True)
class Override:
    id: int
    action_type: str
    model_used: str | None
    token_cost: int | Decimal
    valid_from: datetime | None
    valid_until: datetime | None


@dataclass(frozen=True)
class Pricing:
    overrides: tuple[Override, ...]
    cast: str = "integer"
    """The family of token_cost: integer, bigint or numeric (see PRICE_CASTS)."""

    def __bool__(self) -> bool:
        return bool(self.overrides)

    def without(self, actions: tuple[str, ...]) -> Pricing:
        if not actions:
            return self
        kept = tuple(o for o in self.overrides if o.action_type not in actions)
        return Pricing(kept, self.cast)


def load(conn: Connection, table: QualifiedName, columns: dict[str, str]) -> Pricing:
    """Active overrides in best-match order; none when the table does not exist (no columns)."""
    if not columns:
        return Pricing(())

    def window_column(name: str) -> sql.Composable:
        if name in columns:
            return sql.SQL("o.{}").format(sql.Identifier(name))
        return sql.SQL("NULL::timestamptz")

    statement = queries.compose(
        "overrides",
        overrides=table.identifier,
        valid_from=window_column("valid_from"),
        valid_until=window_column("valid_until"),
    )
    overrides = tuple(Override(*row) for row in conn.execute(statement).fetchall())
    base = columns.get("token_cost", "integer").split("(")[0].strip()
    cast = base if base in PRICE_CASTS else "numeric"
    return Pricing(overrides, "integer" if cast == "smallint" else cast)


def _match(
    index: int,
    override: Override,
    model: sql.Composable,
    at: sql.Composable,
    params: dict[str, Any],
) -> sql.Composable:
    conditions: list[sql.Composable] = []
    if override.model_used is not None:
        params[f"ov{index}_model"] = override.model_used
        conditions.append(sql.SQL("{} = {}").format(model, sql.Placeholder(f"ov{index}_model")))
    if override.valid_from is not None:
        params[f"ov{index}_from"] = override.valid_from
        conditions.append(sql.SQL("{} >= {}").format(at, sql.Placeholder(f"ov{index}_from")))
    if override.valid_until is not None:
        params[f"ov{index}_until"] = override.valid_until
        conditions.append(sql.SQL("{} < {}").format(at, sql.Placeholder(f"ov{index}_until")))
    return sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("TRUE")


def compile_price(
    pricing: Pricing, action: sql.Composable, model: sql.Composable, at: sql.Composable
) -> tuple[sql.Composable, dict[str, Any]]:
    """A CASE giving the token_cost of the best matching override of a row, else NULL.

    Grouped by action (outer CASE), then the action's overrides in best-match order (inner
    CASE): the first WHEN that matches is the best match.
    """
    cast = PRICE_CASTS[pricing.cast]
    if not pricing:
        return sql.SQL("NULL::{}").format(cast), {}
    params: dict[str, Any] = {}
    by_action: dict[str, list[tuple[int, Override]]] = {}
    for index, override in enumerate(pricing.overrides):
        by_action.setdefault(override.action_type, []).append((index, override))
    branches: list[sql.Composable] = []
    for action_index, (action_type, group) in enumerate(by_action.items()):
        params[f"ova{action_index}"] = action_type
        inner = []
        for index, override in group:
            params[f"ov{index}_cost"] = override.token_cost
            inner.append(
                sql.SQL("WHEN {} THEN {}::{}").format(
                    _match(index, override, model, at, params),
                    sql.Placeholder(f"ov{index}_cost"),
                    cast,
                )
            )
        branches.append(
            sql.SQL("WHEN {} THEN CASE {} END").format(
                sql.Placeholder(f"ova{action_index}"), sql.SQL(" ").join(inner)
            )
        )
    return sql.SQL("CASE {} {} END").format(action, sql.SQL(" ").join(branches)), params
