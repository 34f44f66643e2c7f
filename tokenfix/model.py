"""The balance model of SPEC §3 as SQL fragments over a ledger row aliased `u`.

One implementation for every command: `diagnose` aggregates one user's rows with these
fragments, `reconcile` aggregates every selected user's rows with the same fragments in one
pass. The overrides table is tiny, so it is read first and compiled into one CASE whose values
are bound parameters; a per-row lookup into the table is ~9x slower at 10M rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from tokenfix import queries
from tokenfix.catalog import Catalog
from tokenfix.errors import DatabaseProblem, first_line
from tokenfix.settings import Settings


@dataclass(frozen=True)
class Override:
    id: int
    action_type: str
    model_used: str | None
    token_cost: int
    valid_from: datetime | None
    valid_until: datetime | None


def load_overrides(
    conn: psycopg.Connection[tuple[Any, ...]], settings: Settings, catalog: Catalog
) -> tuple[Override, ...]:
    """Active overrides in best-match order; none when the table does not exist."""
    if not catalog.overrides.exists:
        return ()

    def window_column(name: str) -> sql.Composable:
        if catalog.overrides.has(name):
            return sql.SQL("o.{}").format(sql.Identifier(name))
        return sql.SQL("NULL::timestamptz")

    statement = queries.compose(
        "overrides",
        overrides=settings.overrides_table.identifier,
        valid_from=window_column("valid_from"),
        valid_until=window_column("valid_until"),
    )
    return tuple(Override(*row) for row in conn.execute(statement).fetchall())


def _match_condition(index: int, override: Override, params: dict[str, Any]) -> sql.Composable:
    conditions: list[sql.Composable] = []
    if override.model_used is not None:
        params[f"ov{index}_model"] = override.model_used
        conditions.append(sql.SQL("u.model_used = {}").format(sql.Placeholder(f"ov{index}_model")))
    if override.valid_from is not None:
        params[f"ov{index}_from"] = override.valid_from
        conditions.append(sql.SQL("u.created_at >= {}").format(sql.Placeholder(f"ov{index}_from")))
    if override.valid_until is not None:
        params[f"ov{index}_until"] = override.valid_until
        conditions.append(sql.SQL("u.created_at < {}").format(sql.Placeholder(f"ov{index}_until")))
    return sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("TRUE")


# The type an override price is cast to, by the family of the token_cost column: integer
# keeps the all-users aggregate on its fast bigint path; a wider column keeps its width.
PRICE_CASTS: dict[str, sql.SQL] = {
    "smallint": sql.SQL("integer"),
    "integer": sql.SQL("integer"),
    "bigint": sql.SQL("bigint"),
}


def price_cast(catalog: Catalog) -> str:
    base = catalog.overrides.columns.get("token_cost", "integer").split("(")[0].strip()
    return base if base in PRICE_CASTS else "numeric"


def compile_override_price(
    overrides: tuple[Override, ...], cast: str = "integer"
) -> tuple[sql.Composable, dict[str, Any]]:
    """A CASE giving the token_cost of the best matching override of row `u`, else NULL.

    Grouped by action type (outer CASE), then the action's overrides in best-match order
    (inner CASE): the first WHEN that matches is the best match.
    """
    if not overrides:
        return sql.SQL("NULL::integer"), {}
    params: dict[str, Any] = {}
    by_action: dict[str, list[tuple[int, Override]]] = {}
    for index, override in enumerate(overrides):
        by_action.setdefault(override.action_type, []).append((index, override))
    branches: list[sql.Composable] = []
    for action_index, (action, group) in enumerate(by_action.items()):
        params[f"ova{action_index}"] = action
        inner: list[sql.Composable] = []
        for index, override in group:
            params[f"ov{index}_cost"] = override.token_cost
            inner.append(
                sql.SQL("WHEN {} THEN {}::{}").format(
                    _match_condition(index, override, params),
                    sql.Placeholder(f"ov{index}_cost"),
                    PRICE_CASTS.get(cast, sql.SQL("numeric")),
                )
            )
        branches.append(
            sql.SQL("WHEN {} THEN CASE {} END").format(
                sql.Placeholder(f"ova{action_index}"), sql.SQL(" ").join(inner)
            )
        )
    return sql.SQL("CASE u.action_type {} END").format(sql.SQL(" ").join(branches)), params


_COUNTED = sql.SQL("(u.success AND u.tokens_used > 0)")


def _action_in(kind: str, actions: tuple[str, ...], params: dict[str, Any]) -> sql.Composable:
    """`u.action_type IN (...)` with one bound parameter per action name."""
    names = [f"{kind}_action_{index}" for index in range(len(actions))]
    params.update(zip(names, actions, strict=True))
    return sql.SQL("u.action_type IN ({})").format(
        sql.SQL(", ").join(sql.Placeholder(name) for name in names)
    )


@dataclass(frozen=True)
class BalanceModel:
    """SPEC §3 for the configured tables, actions, starting balance and overrides."""

    settings: Settings
    overrides: tuple[Override, ...] = ()
    profiles_key_unique: bool = True
    price_cast: str = "integer"

    @classmethod
    def load(
        cls, conn: psycopg.Connection[tuple[Any, ...]], settings: Settings, catalog: Catalog
    ) -> BalanceModel:
        return cls(
            settings=settings,
            overrides=load_overrides(conn, settings, catalog),
            profiles_key_unique=catalog.profiles_key_unique,
            price_cast=price_cast(catalog),
        )

    @cached_property
    def _compiled(self) -> tuple[dict[str, sql.Composable], dict[str, Any]]:
        params: dict[str, Any] = {"starting_balance": self.settings.starting_balance}
        grant = _action_in("grant", self.settings.grant_action, params)
        deduct = _action_in("deduct", self.settings.deduct_action, params)
        special = sql.SQL("coalesce({} OR {}, false)").format(grant, deduct)
        # Overrides never price grants or deducts: leave those out of the CASE altogether.
        priced = tuple(
            o for o in self.overrides if o.action_type not in self.settings.special_actions
        )
        override_price, override_params = compile_override_price(priced, self.price_cast)
        params.update(override_params)
        effective = (
            sql.SQL("coalesce({}, u.tokens_used)").format(override_price)
            if priced
            else sql.SQL("u.tokens_used")
        )
        fragments: dict[str, sql.Composable] = {
            "usage": self.settings.usage_table.identifier,
            "profiles": self.settings.profiles_table.identifier,
            "remaining": sql.Identifier(self.settings.remaining_column.table_name),
            "used": sql.Identifier(self.settings.used_column.table_name),
            "invalid_row": sql.SQL(
                "(u.tokens_used IS NULL OR u.tokens_used < 0 OR u.success IS NULL)"
            ),
            "failed_row": sql.SQL("(NOT u.success AND u.tokens_used >= 0)"),
            "zero_row": sql.SQL("(u.success AND u.tokens_used = 0)"),
            "grant_row": sql.SQL("({} AND {})").format(_COUNTED, grant),
            "deduct_row": sql.SQL("({} AND {})").format(_COUNTED, deduct),
            "charge_row": sql.SQL("({} AND NOT {})").format(_COUNTED, special),
            # A failed call that would have been a charge: evidence for `failed_rows_charged`.
            "failed_charge_row": sql.SQL("(NOT u.success AND u.tokens_used > 0 AND NOT {})").format(
                special
            ),
            "row_class": queries.get("row_class").format(grant=grant, deduct=deduct),
            # The class of a row as a number, for the all-users aggregate: 0 no effect,
            # 1 grant, 2 deduct, 3 charge (the same rules as the *_row fragments).
            "row_kind": sql.SQL(
                "CASE WHEN NOT coalesce({}, false) THEN 0 WHEN {} THEN 1 WHEN {} THEN 2 ELSE 3 END"
            ).format(_COUNTED, grant, deduct),
            "override_price": override_price,
            # tokens a row moves: the override price of a charge, else its tokens_used
            "effective": effective,
        }
        return fragments, params

    def fragments(self) -> dict[str, sql.Composable]:
        return self._compiled[0]

    def params(self) -> dict[str, Any]:
        return dict(self._compiled[1])

    def compose(self, name: str, **extra: sql.Composable) -> sql.Composed:
        """The query file `name` with the model's fragments (and `extra` ones) filled in."""
        return queries.compose(name, **{**self.fragments(), **extra})


@contextmanager
def out_of_range_names_the_tables(model: BalanceModel) -> Iterator[None]:
    """A sum or a price too large for its type is reported with the tables it came from."""
    try:
        yield
    except pg_errors.NumericValueOutOfRange as exc:
        s = model.settings
        raise DatabaseProblem(
            f"a value is out of range while computing balances from {s.usage_table} (prices "
            f"from {s.overrides_table}, balances in {s.profiles_table}): {first_line(str(exc))}",
            hint="an amount, an override price or a sum does not fit its type; check those "
            "tables for extreme values ('tokenfix doctor')",
        ) from None
