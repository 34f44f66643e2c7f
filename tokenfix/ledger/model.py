"""The balance model of docs/balance-model.md, docs/mapping.md, compiled for one mapping on one
database.

One implementation for every command: reconcile's all-owners pass, each batch's recompute
under lock, diagnose's per-owner detail, the writes and the reverts are all composed here
from the mapping's expressions, the types the database gave them (shape.py) and the override
prices (pricing.py). Statements are composed with psycopg.sql: identifiers quoted, values
bound, and the mapping's expressions inserted as the SQL the operator wrote.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from psycopg import errors as pg_errors
from psycopg import sql

from tokenfix import queries
from tokenfix.base.errors import BadInput, DatabaseProblem, first_line
from tokenfix.base.records import Amount
from tokenfix.config.settings import Settings
from tokenfix.db.session import Connection, transaction
from tokenfix.ledger import catalog, citus, pricing
from tokenfix.ledger.shape import Shape, describe
from tokenfix.mapping import names
from tokenfix.mapping.types import Expr, LedgerSource, Mapping, default_mapping

NULL = sql.SQL("NULL")
TRUE = sql.SQL("true")


@dataclass(frozen=True)
class Selection:
    """Which owners a run checks: all, a list of keys, and/or those active since a time."""

    keys: tuple[str, ...] | None = None
    since: datetime | timedelta | None = None
    excluded: tuple[str, ...] = ()


def _e(expr: Expr | None, default: sql.Composable = NULL) -> sql.Composable:
    return sql.SQL("({})").format(expr.sql) if expr is not None else default


def _type(name: str) -> sql.SQL:
    # A type name exactly as the database's format_type() printed it for one of its own
    # columns or expressions (quoted by PostgreSQL where needed): catalog output, not input.
    return sql.SQL(name)


@dataclass(frozen=True)
class BalanceModel:
    settings: Settings
    mapping: Mapping
    shape: Shape
    prices: pricing.Pricing = field(default_factory=lambda: pricing.Pricing(()))
    starting_override: Amount | None = None
    """--starting-balance: replaces the mapping's starting expression for every owner."""
    sharded: bool = False
    """The balance table is distributed by Citus (docs/citus.md): locks go one shard at a time."""

    # -- parameters -------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        return {**self.mapping.params(), "starting_balance": self.starting_balance}

    @property
    def starting_balance(self) -> Amount:
        """What an owner starts with where the mapping gives no starting expression."""
        if self.starting_override is not None:
            return self.starting_override
        return self.settings.starting_balance

    def _starting_expression(self) -> sql.Composable:
        """The mapping's per-row starting expression; NULL (so `starting_balance`, a bound
        parameter, applies) when there is none or --starting-balance overrides it."""
        if self.starting_override is not None:
            return sql.SQL("NULL::numeric")
        return _e(self.mapping.balance.starting, sql.SQL("NULL::numeric"))

    # -- the pieces -------------------------------------------------------------------

    @property
    def key_type(self) -> sql.SQL:
        return _type(self.shape.key)

    @property
    def key(self) -> sql.Identifier:
        return sql.Identifier(self.mapping.balance.key)

    @property
    def balance_table(self) -> sql.Composable:
        return self.mapping.balance.table.identifier

    @property
    def balance_rows(self) -> sql.Composable:
        """The balance rows reads see: the table, or with snapshots (`latest`) each owner's
        first row in that order (the others are history, never compared nor written)."""
        b = self.mapping.balance
        if b.latest is None:
            return self.balance_table
        return sql.SQL(
            "(SELECT DISTINCT ON (balance.{key}) balance.* FROM {table} WHERE {where}"
            " ORDER BY balance.{key}, {latest})"
        ).format(
            key=self.key,
            table=names.balance_from(b.table),
            where=self.balance_where(),
            latest=b.latest.sql,
        )

    def _chosen_among_keys(self) -> sql.Composable:
        """Snapshots: the row is its owner's first, among the owners of the statement's
        %(keys)s (the batch): the rows a lock takes, and, at the write, still the owner's
        newest (no newer row). The owner and the row id together name the row (unique as a
        pair where Citus needs the owner key in every unique index), and the rows are found
        by one uncorrelated subquery on the owner key, which Citus runs on the shards: it
        cannot run a subquery correlated with the batch's rows (docs/citus.md)."""
        b = self.mapping.balance
        if b.latest is None or b.row_id is None:
            return TRUE
        return sql.SQL(
            "(balance.{key}, balance.{row_id}) IN (SELECT DISTINCT ON (balance.{key})"
            " balance.{key}, balance.{row_id} FROM {table}"
            " WHERE balance.{key} = ANY(%(keys)s::text[]::{key_type}[]) AND {where}"
            " ORDER BY balance.{key}, {latest})"
        ).format(
            row_id=sql.Identifier(b.row_id),
            key=self.key,
            table=names.balance_from(b.table),
            key_type=self.key_type,
            where=self.balance_where(),
            latest=b.latest.sql,
        )

    def balance_where(self) -> sql.Composable:
        return _e(self.mapping.balance.where, TRUE)

    # -- periods (docs/balance-model.md) ------------------------------------------------

    def periods(self, selection: sql.Composable = TRUE) -> sql.Composed:
        """Each selected balance row's period: key, period_start, period_end."""
        b = self.mapping.balance
        return queries.compose(
            "periods",
            key=self.key,
            period_start=_e(b.period_start),
            period_end=_e(b.period_end),
            balance=sql.SQL("{} AS balance").format(self.balance_rows),
            where=self.balance_where(),
            selection=selection,
        )

    def _period_join(self, index: int, periods: sql.Composable) -> sql.Composable:
        """The join of a source's rows to their owner's period (`periods`: a CTE's name or
        a subquery), or nothing without periods."""
        if not self.mapping.balance.has_periods:
            return sql.SQL("")
        return sql.SQL(" LEFT JOIN {} AS tf_period ON tf_period.key = {}").format(
            periods, self._source_key(index)
        )

    def _in_period(self, source: LedgerSource, window: bool = False) -> sql.Composable:
        """The row lies in its owner's period. `window` (a `period_window` CTE in scope, and a
        source whose every keyed row has a balance row): first, a comparison with the earliest
        start of all the periods, so that the rows of past periods, most of a ledger, never
        reach the join to their owner's period."""
        if not self.mapping.balance.has_periods:
            return TRUE
        inside = sql.SQL(
            "(tf_period.period_start IS NULL OR ({at})::timestamptz >= tf_period.period_start)"
            " AND (tf_period.period_end IS NULL OR ({at})::timestamptz < tf_period.period_end)"
        ).format(at=source.at.sql)
        if not window:
            return inside
        # The earliest start only: with the latest end beside it, a range between two init-plan
        # values, the planner would count on 0.5% of the rows (sorts, hash tables sized for a
        # tenth of them); a lone bound it counts at a third. Rows after every period are rare.
        return sql.SQL(
            "(({key}) IS NULL OR ({at}) IS NULL"
            " OR ({at})::timestamptz >= (SELECT low FROM period_window)) AND {inside}"
        ).format(key=source.key.sql, at=source.at.sql, inside=inside)

    def _windowed(self, index: int, selection: Selection) -> bool:
        """Whether the all-owners pass drops source `index`'s rows outside every period."""
        return (
            self.mapping.balance.has_periods
            and not self.sharded
            and (self.shape.source(index).owned or self._walked(index, selection))
        )

    def _walked(self, index: int, selection: Selection) -> bool:
        """Without a foreign key, whether the pass finds the keys without a balance row through
        the ledger's index on its key (`period_orphans`) and reads their rows before the window
        again. Not for a list of owners or --since: those reads go by key already, and the
        other owners' keys would all look like keys without a balance row."""
        source = self.shape.source(index)
        return (
            not source.owned
            and source.indexed
            and selection.keys is None
            and selection.since is None
        )

    def _orphans(self, index: int) -> sql.Composable:
        """The keys of source `index` that have no balance row (period_orphans.sql)."""
        source = self.mapping.ledgers[index]
        return queries.compose(
            "period_orphans",
            ledger=names.ledger_from(source.table),
            ledger_key=sql.Identifier(source.key.text.strip()),
            balance=names.balance_from(self.mapping.balance.table),
            key=self.key,
        )

    def _orphan_rows(self, index: int, source: LedgerSource) -> sql.Composable:
        """The rows before the window of the keys without a balance row: all count."""
        return sql.SQL(
            "{key} = ANY((SELECT keys FROM period_orphans_{index})::{key_type}[])"
            " AND ({at})::timestamptz < (SELECT low FROM period_window)"
        ).format(
            key=self._source_key(index),
            index=sql.SQL(str(index)),
            key_type=self.key_type,
            at=source.at.sql,
        )

    def _ledger_from(self, source: LedgerSource, *, ordinal: bool = False) -> sql.Composable:
        """A source's table as its expressions see it (`ledger`, `item` with `each`, and the
        owner's balance row when they name it)."""
        each = source.each.sql if source.each is not None else None
        table = names.ledger_from(source.table, each, ordinal=ordinal)
        if not source.names_balance_row:
            return table
        return self._with_balance_row(table, self._source_key(self.mapping.ledgers.index(source)))

    def _with_balance_row(self, table: sql.Composable, owner: sql.Composable) -> sql.Composable:
        """`table` joined to the owner's balance row (`owner`: the source's key as the balance
        key's type): with snapshots the chosen row; NULLs for an owner without one. Only the
        sources whose expressions name `balance` have it: the others' plans are their own."""
        b = self.mapping.balance
        return names.with_balance_row(
            table,
            self.balance_table,
            self.key,
            owner,
            where=self.balance_where(),
            latest=b.latest.sql if b.latest is not None else None,
        )

    def _source_key(self, index: int) -> sql.Composable:
        """A source's key as the balance key's type (cast only when the types differ)."""
        source, shape = self.mapping.ledgers[index], self.shape.source(index)
        if shape.key == self.shape.key:
            return _e(source.key)
        return sql.SQL("({})::{}").format(source.key.sql, self.key_type)

    def _keys_param(self, name: str, type_name: str) -> sql.Composable:
        # The parameter is cast to the column's type, never the column: filters stay on the
        # index (docs/mapping.md).
        return sql.SQL("%({})s::text[]::{}[]").format(sql.SQL(name), _type(type_name))

    def _price(
        self, source: LedgerSource, prefix: str = ""
    ) -> tuple[sql.Composable, dict[str, Any]]:
        if not self.prices or source.action is None:
            cast = pricing.PRICE_CASTS[self.prices.cast]
            return sql.SQL("NULL::{}").format(cast), {}
        action: sql.Composable
        model: sql.Composable
        at: sql.Composable
        if prefix:  # over a row already read as the mapping says (alias `prefix`)
            action, model, at = (sql.SQL(f"{prefix}.{c}") for c in ("action", "model", "at"))
        else:
            action, model, at = _e(source.action), _e(source.model), _e(source.at)
        # Overrides never price a row that is no charge: leave those actions out of the CASE.
        prices = self.prices.without(source.unpriced_actions)
        return pricing.compile_price(prices, action, model, at)

    def _kind_code(self, source: LedgerSource) -> sql.Composable:
        """0 no effect (invalid, failed, zero, ignored), 1 grant, 2 deduct, 3 charge."""
        if source.kind_code is not None:  # the class as a number, without text comparisons
            return sql.SQL(
                "CASE WHEN NOT coalesce({counted} AND {amount} > 0, false) THEN 0 ELSE {code} END"
            ).format(
                counted=_e(source.counted), amount=_e(source.amount), code=source.kind_code.sql
            )
        return sql.SQL(
            "CASE WHEN NOT coalesce({counted} AND {amount} > 0, false) THEN 0"
            " ELSE CASE ({kind})::text WHEN 'grant' THEN 1 WHEN 'deduct' THEN 2"
            " WHEN 'charge' THEN 3 ELSE 0 END END"
        ).format(counted=_e(source.counted), amount=_e(source.amount), kind=_e(source.kind))

    @staticmethod
    def _code(source: LedgerSource) -> sql.Composable:
        """A row's kind as a code: 1 grant, 2 deduct, 3 charge, 0 anything else."""
        if source.kind_code is not None:
            return source.kind_code.sql
        return sql.SQL(
            "CASE ({kind})::text WHEN 'grant' THEN 1 WHEN 'deduct' THEN 2"
            " WHEN 'charge' THEN 3 ELSE 0 END"
        ).format(kind=_e(source.kind))

    def _class_code(self, source: LedgerSource, row: str | None = None) -> sql.Composable:
        """The all-owners pass's class of a row: `_kind_code`'s, and 4 for a failed charge
        (not counted, a positive amount, kind charge), which has no effect either but is summed
        for the causes (docs/monitoring.md). The second test runs only for rows of no effect.
        `row`: over the columns counted, amount and code of a row that computed them once
        (source_rows_each.sql), instead of the mapping's expressions."""
        counted, amount, code = _e(source.counted), _e(source.amount), self._code(source)
        if row is not None:
            counted, amount, code = (
                sql.SQL("{}.{}").format(sql.Identifier(row), sql.Identifier(column))
                for column in ("counted", "amount", "code")
            )
        return sql.SQL(
            "CASE WHEN {counted} AND {amount} > 0 THEN {code}"
            " WHEN NOT {counted} AND {amount} > 0 AND {code} = 3 THEN 4 ELSE 0 END"
        ).format(counted=counted, amount=amount, code=code)

    # -- the all-owners comparison ----------------------------------------------------

    def _selection(self, index: int, selection: Selection) -> tuple[sql.Composable, dict[str, Any]]:
        source, shape = self.mapping.ledgers[index], self.shape.source(index)
        return self._key_selection(source.key, shape.key, selection)

    def _key_selection(
        self, key: Expr, key_type: str, selection: Selection
    ) -> tuple[sql.Composable, dict[str, Any]]:
        """`selection` over rows whose owner is `key` (of type `key_type`)."""
        conditions: list[sql.Composable] = []
        params: dict[str, Any] = {}
        if selection.keys is not None:
            params["keys"] = list(selection.keys)
            conditions.append(
                sql.SQL("{} = ANY({})").format(_e(key), self._keys_param("keys", key_type))
            )
        if selection.since is not None:
            params["since"] = selection.since
            conditions.append(
                sql.SQL("{} = ANY(({})::{}[])").format(
                    _e(key),
                    self._active_keys(_since(selection.since), ">=", edited=True),
                    _type(key_type),
                )
            )
        if selection.excluded:
            params["excluded"] = list(selection.excluded)
            conditions.append(
                sql.SQL("NOT ({} = ANY({}))").format(
                    _e(key), self._keys_param("excluded", key_type)
                )
            )
        return sql.SQL(" AND ").join(conditions) if conditions else TRUE, params

    def _balance_selection(self, selection: Selection) -> sql.Composable:
        conditions: list[sql.Composable] = []
        key = sql.SQL("balance.{}").format(self.key)
        if selection.keys is not None:
            conditions.append(
                sql.SQL("{} = ANY({})").format(key, self._keys_param("keys", self.shape.key))
            )
        if selection.since is not None:
            active = self._active_keys(_since(selection.since), ">=", edited=True)
            conditions.append(sql.SQL("{} = ANY({})").format(key, active))
        if selection.excluded:
            conditions.append(
                sql.SQL("NOT ({} = ANY({}))").format(
                    key, self._keys_param("excluded", self.shape.key)
                )
            )
        return sql.SQL(" AND ").join(conditions) if conditions else TRUE

    def _active_keys(
        self, moment: sql.Composable, comparison: str, *, edited: bool = False
    ) -> sql.Composable:
        """ARRAY of the owners (balance key type) with ledger rows after `moment` (the settle
        window) or at or after it (--since), found through each source's time index. An
        array from an init plan, not IN (subquery): the planner then reads those owners'
        rows by the key index instead of scanning the ledger. `edited` (--since): also the
        owners whose balance row changed since then, where [balance] changed_at says when
        (a hand-edited cache of a quiet owner)."""
        parts = [
            sql.SQL("SELECT {key} FROM {table} WHERE {where} AND {at} {op} {moment}").format(
                key=self._source_key(index),
                table=self._ledger_from(source),
                where=_e(source.where, TRUE),
                at=_e(source.at),
                op=sql.SQL(comparison),
                moment=moment,
            )
            for index, source in enumerate(self.mapping.ledgers)
        ]
        changed_at = self.mapping.balance.changed_at
        if edited and changed_at is not None:
            parts.append(
                sql.SQL("SELECT balance.{} FROM {} WHERE {} AND ({}) {} {}").format(
                    self.key,
                    names.balance_from(self.mapping.balance.table),
                    self.balance_where(),
                    changed_at.sql,
                    sql.SQL(comparison),
                    moment,
                )
            )
        return sql.SQL("ARRAY({})").format(sql.SQL(" UNION ").join(parts))

    def balances(self, selection: Selection) -> tuple[sql.Composed, dict[str, Any]]:
        """The expected-vs-cached comparison of the selected owners, and its parameters."""
        params = self.params()
        sources: list[sql.Composable] = []
        periods: list[sql.Composable] = []
        if self.mapping.balance.has_periods:
            # OFFSET 0: each period's bounds computed once per balance row, not once per
            # ledger row joined to it (`next_reset_at - reset_interval` is calendar arithmetic).
            periods.append(
                sql.SQL("periods AS (\n{}\nOFFSET 0\n)").format(
                    self.periods(self._balance_selection(selection))
                )
            )
            if any(self._windowed(i, selection) for i in range(len(self.mapping.ledgers))):
                # The earliest start of all the periods (none where one has none): an init plan.
                window = queries.compose(
                    "period_window", periods=self.periods(self._balance_selection(selection))
                )
                periods.append(sql.SQL("period_window AS (\n{}\n)").format(window))
            for index in range(len(self.mapping.ledgers)):
                if self._windowed(index, selection) and self._walked(index, selection):
                    periods.append(
                        sql.SQL("period_orphans_{} AS (\n{}\n)").format(
                            sql.SQL(str(index)), self._orphans(index)
                        )
                    )
        for index, source in enumerate(self.mapping.ledgers):
            condition, selection_params = self._selection(index, selection)
            params |= selection_params
            price, price_params = self._price(source)
            params |= price_params
            # A list-valued source's amount, an expression over each element, is computed
            # once per row beneath its class (source_rows_each.sql); not on Citus (no fence).
            once = source.each is not None and not self.sharded
            template = "source_rows_each" if once else "source_rows"
            fence = _SHARDED_FENCE if self.sharded else sql.SQL("OFFSET 0")
            windowed = self._windowed(index, selection)
            walked = windowed and self._walked(index, selection)
            pieces = dict(
                key=self._source_key(index),
                kind_code=self._class_code(source, "tf_row" if once else None),
                counted=_e(source.counted),
                code=self._code(source),
                amount=_e(source.amount),
                price=price,
                at=_e(source.at),
                table=self._ledger_from(source),
                where=_e(source.where, TRUE),
                selection=condition,
            )
            rows: sql.Composable = queries.compose(
                template,
                **pieces,
                period_join=self._period_join(index, sql.Identifier("periods")),
                in_period=self._in_period(source, window=windowed),
                fence=sql.SQL("") if walked else fence,
            )
            if walked:
                # Beside the rows from the window on, the older rows of the keys without a
                # balance row (no period: all count), read by key through the index.
                orphans = queries.compose(
                    "source_rows",
                    **pieces,
                    period_join=sql.SQL(""),
                    in_period=self._orphan_rows(index, source),
                    fence=sql.SQL(""),
                )
                rows = sql.SQL("{}\nUNION ALL\n{}\n{}").format(rows, orphans, fence)
            effective = (
                sql.SQL("coalesce(r.price, r.amount)") if self.prices else sql.SQL("r.amount")
            )
            # The oldest row's time only where the balance row has one to compare it with.
            first_at = (
                sql.SQL("(min(r.at))::timestamptz")
                if self.mapping.balance.created_at is not None
                else sql.SQL("NULL::timestamptz")
            )
            totals = queries.compose(
                "source_totals", rows=rows, effective=effective, first_at=first_at
            )
            sources.append(sql.SQL("source_{} AS (\n{}\n)").format(sql.SQL(str(index)), totals))
        if len(sources) == 1:
            ledger: sql.Composable = sql.SQL("SELECT * FROM source_0")
        else:
            ledger = sql.SQL(
                "SELECT key, sum(remaining_delta) AS remaining_delta, sum(charged) AS charged,"
                " sum(granted) AS granted, sum(raw_charged) AS raw_charged,"
                " sum(failed) AS failed, sum(failed_priced) AS failed_priced,"
                " min(first_at) AS first_at"
                " FROM ({}) AS s GROUP BY key"
            ).format(
                sql.SQL(" UNION ALL ").join(
                    sql.SQL("SELECT * FROM source_{}").format(sql.SQL(str(i)))
                    for i in range(len(sources))
                )
            )
        b = self.mapping.balance
        statement = queries.compose(
            "balances",
            sources=sql.SQL(",\n").join([*periods, *sources]),
            ledger=ledger,
            key=self.key,
            # A side the mapping does not read is a typed NULL: no comparison, no arithmetic.
            remaining=_e(b.remaining, sql.SQL("NULL::numeric")),
            used=_e(b.used, sql.SQL("NULL::numeric")),
            starting=self._starting_expression(),
            tolerance=_e(b.tolerance, sql.SQL("0")),
            row_id=sql.SQL("(balance.{})::text").format(sql.Identifier(b.row_id))
            if b.row_id is not None
            else sql.SQL("NULL::text"),
            created_at=self._created_at(),
            balance=self.balance_rows,
            balance_where=self.balance_where(),
            balance_selection=self._balance_selection(selection),
            remaining_off=self._off("remaining") if b.remaining is not None else sql.SQL("false"),
            used_off=self._off("used") if b.used is not None else sql.SQL("false"),
        )
        return statement, params

    @staticmethod
    def _off(side: str) -> sql.Composable:
        return sql.SQL(
            "(e.current_{side} IS NULL"
            " OR abs(e.current_{side} - e.expected_{side}) > e.tolerance)".replace("{side}", side)
        )

    def with_recent(
        self, name: str, selection: Selection, settle: timedelta
    ) -> tuple[sql.Composed, dict[str, Any]]:
        """`candidates` or `recompute`: the comparison plus each owner's `recent` flag."""
        balances, params = self.balances(selection)
        # No settle window: NULL matches no row, whatever the clocks say.
        params["settle"] = settle if settle > timedelta(0) else None
        settle_start = sql.SQL("statement_timestamp() - %(settle)s::interval")
        statement = queries.compose(
            name, balances=balances, recent=self._active_keys(settle_start, ">")
        )
        return statement, params

    def future_rows(self) -> tuple[sql.Composed, dict[str, Any]]:
        parts = [
            sql.SQL(
                "SELECT {key} AS key, {at} AS at FROM {table} WHERE {where}"
                " AND {at} > statement_timestamp() + interval '1 minute'"
            ).format(
                key=self._source_key(index),
                at=_e(source.at),
                table=self._ledger_from(source),
                where=_e(source.where, TRUE),
            )
            for index, source in enumerate(self.mapping.ledgers)
        ]
        rows = sql.SQL(" UNION ALL ").join(parts)
        return queries.compose("future_rows", rows=rows), self.mapping.params()

    def unknown_keys(self) -> sql.Composed:
        ledger_keys = [
            sql.SQL(
                "    EXCEPT\n    SELECT ({key})::{kt} FROM {table}"
                " WHERE {where} AND {key} = ANY(%(keys)s::text[]::{t}[])"
            ).format(
                table=self._ledger_from(source),
                where=_e(source.where, TRUE),
                key=_e(source.key),
                kt=self.key_type,
                t=_type(self.shape.source(index).key),
            )
            for index, source in enumerate(self.mapping.ledgers)
        ]
        return queries.compose(
            "unknown_keys",
            key_type=self.key_type,
            balance=self.balance_rows,
            key=self.key,
            where=self.balance_where(),
            ledger_keys=sql.SQL("\n").join(ledger_keys),
        )

    def ledger_health(self) -> tuple[sql.Composed, dict[str, Any]]:
        """Invalid rows over every source, and owners with ledger rows but no balance row."""
        parts = [
            sql.SQL(
                "SELECT {key} AS key, ({amount} IS NULL OR {amount} < 0 OR {counted} IS NULL"
                " OR ({kind})::text NOT IN ('grant', 'deduct', 'charge')) AS invalid"
                " FROM {table} WHERE {where}"
            ).format(
                key=self._source_key(index),
                amount=_e(source.amount),
                counted=_e(source.counted),
                kind=_e(source.kind),
                table=self._ledger_from(source),
                where=_e(source.where, TRUE),
            )
            for index, source in enumerate(self.mapping.ledgers)
        ]
        statement = queries.compose(
            "doctor_ledger_health",
            rows=sql.SQL(" UNION ALL ").join(parts),
            balance=self.balance_rows,
            key=self.key,
            where=self.balance_where(),
        )
        return statement, self.mapping.params()

    # -- lots (tokenfix.ledger.lots): each owner's rows streamed in key, time order -------------

    def _row_id(self, source: LedgerSource) -> sql.Composable:
        ident = sql.SQL("({})::text").format(_e(source.id))
        if source.each is not None:  # the row's id and the element's ordinal
            ident = sql.SQL("concat_ws(':', ({})::text, tf_items.item_ordinal)").format(
                _e(source.id)
            )
        return ident

    @property
    def _fence(self) -> sql.Composable:
        """OFFSET 0 (a subquery's expressions computed once per row), but not on Citus, which
        pushes no subquery with an OFFSET down to the shards (docs/citus.md)."""
        return sql.SQL("" if self.sharded else "OFFSET 0")

    def lots_stream(
        self, selection: Selection, settle: timedelta
    ) -> tuple[sql.Composed, dict[str, Any]]:
        """The selected owners' balance rows, lots and ledger rows (no-effect rows left out),
        in key, time order: what the lots fold reads, one owner at a time."""
        params = self.params()
        params["settle"] = settle if settle > timedelta(0) else None
        recent = sql.SQL("statement_timestamp() - %(settle)s::interval")
        b = self.mapping.balance
        parts: list[sql.Composable] = [
            queries.compose(
                "lots_stream_balance",
                key=self.key,
                remaining=_e(b.remaining, sql.SQL("NULL::numeric")),
                used=_e(b.used, sql.SQL("NULL::numeric")),
                starting=self._starting_expression(),
                tolerance=_e(b.tolerance, sql.SQL("0")),
                balance=self.balance_rows,
                where=self.balance_where(),
                selection=self._balance_selection(selection),
            )
        ]
        for index, lot in enumerate(self.mapping.lots):
            key_type = self.shape.lots[index].key
            condition, selection_params = self._key_selection(lot.key, key_type, selection)
            params |= selection_params
            key = _e(lot.key)
            if key_type != self.shape.key:
                key = sql.SQL("({})::{}").format(lot.key.sql, self.key_type)
            lots = names.ledger_from(lot.table)
            if lot.names_balance_row:
                lots = self._with_balance_row(lots, key)
            parts.append(
                queries.compose(
                    "lots_stream_lots",
                    key=key,
                    at=_e(lot.at),
                    source_name=sql.Literal(lot.name),
                    id=_e(lot.id),
                    amount=_e(lot.amount),
                    expires_at=_e(lot.expires_at),
                    voided_at=_e(lot.voided_at),
                    priority=_e(lot.priority, sql.SQL("0")),
                    recent=recent,
                    table=lots,
                    where=_e(lot.where, TRUE),
                    selection=condition,
                    fence=self._fence,
                )
            )
        for index, source in enumerate(self.mapping.ledgers):
            condition, selection_params = self._selection(index, selection)
            params |= selection_params
            price, price_params = self._price(source)
            params |= price_params
            effective = (
                sql.SQL("coalesce(r.price, r.amount)") if self.prices else sql.SQL("r.amount")
            )
            parts.append(
                queries.compose(
                    "lots_stream_ledger",
                    key=self._source_key(index),
                    kind_code=self._kind_code(source),
                    amount=_e(source.amount),
                    price=price,
                    at=_e(source.at),
                    id=self._row_id(source),
                    source_name=sql.Literal(source.name),
                    effective=effective,
                    recent=recent,
                    table=self._ledger_from(source, ordinal=source.each is not None),
                    where=_e(source.where, TRUE),
                    selection=condition,
                    fence=self._fence,
                )
            )
        statement = queries.compose("lots_stream", parts=sql.SQL("\nUNION ALL\n").join(parts))
        return statement, params

    # -- writes -----------------------------------------------------------------------

    def written_json(self, alias: str = names.BALANCE) -> sql.Composable:
        """The compared written columns of a balance row as jsonb: what compare-and-set and
        the audit trail compare and keep."""
        columns = self.mapping.balance.compared_columns
        pairs = [
            sql.SQL("{}, {}.{}").format(sql.Literal(c), sql.Identifier(alias), sql.Identifier(c))
            for c in columns
        ]
        row_id = self.mapping.balance.row_id
        if self.mapping.balance.latest is not None and row_id is not None:
            # Snapshots: which row was read and written, compared and kept like a column.
            pairs.append(
                sql.SQL("'tf_row_id', ({}.{})::text").format(
                    sql.Identifier(alias), sql.Identifier(row_id)
                )
            )
        return sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(pairs))

    def written_was(self, source: str, json_column: str, prefix: str = "tf_was_") -> sql.Composable:
        """The compared written columns held in `source`.`json_column` (jsonb, as
        written_json made it) as typed columns tf_was_0, tf_was_1, ... (and, with snapshots,
        the row's id as text, tf_was_row_id): what written_unchanged compares with. Typed on
        the side that is not the balance table, so the compare-and-set is plain equality of
        columns (Citus pushes that down; it cannot run jsonb_build_object, a STABLE function,
        over a distributed table's columns in an UPDATE: docs/citus.md)."""
        typed: list[sql.Composable] = [
            sql.SQL("(jsonb_populate_record(NULL::{}, {}.{})).{} AS {}").format(
                self.balance_table,
                sql.Identifier(source),
                sql.Identifier(json_column),
                sql.Identifier(c),
                sql.Identifier(f"{prefix}{i}"),
            )
            for i, c in enumerate(self.mapping.balance.compared_columns)
        ]
        if self._snapshot_row_id is not None:
            typed.append(
                sql.SQL("{}.{} ->> 'tf_row_id' AS {}").format(
                    sql.Identifier(source),
                    sql.Identifier(json_column),
                    sql.Identifier(f"{prefix}row_id"),
                )
            )
        return sql.SQL(", ").join(typed)

    @property
    def _snapshot_row_id(self) -> str | None:
        """With snapshots, the column naming which row was read and written (written_json
        keeps it as tf_row_id)."""
        b = self.mapping.balance
        return b.row_id if b.latest is not None else None

    def revert_typed(self) -> sql.Composable:
        """revert_plan.sql's typed columns: what the run left (tf_was_N, compared with) and
        what a restore puts back (tf_restore_N), from their jsonb."""
        return sql.SQL(", ").join(
            [
                self.written_was("t", "tf_left"),
                self.written_was("t", "tf_restore", "tf_restore_"),
            ]
        )

    def written_unchanged(self, alias: str = names.BALANCE, planned: str = "pl") -> sql.Composable:
        """The compare-and-set: every compared written column still holds what written_was
        read (NULL included), as `{written} = before` decided on jsonb."""
        same: list[sql.Composable] = [
            sql.SQL("{}.{} IS NOT DISTINCT FROM {}.{}").format(
                sql.Identifier(alias),
                sql.Identifier(c),
                sql.Identifier(planned),
                sql.Identifier(f"tf_was_{i}"),
            )
            for i, c in enumerate(self.mapping.balance.compared_columns)
        ]
        row_id = self._snapshot_row_id
        if row_id is not None:
            same.append(
                sql.SQL("({}.{})::text = {}.tf_was_row_id").format(
                    sql.Identifier(alias), sql.Identifier(row_id), sql.Identifier(planned)
                )
            )
        return sql.SQL(" AND ").join(same)

    def lock(self, *, for_delete: bool = False) -> sql.Composed:
        strength = sql.SQL("UPDATE" if for_delete else "NO KEY UPDATE")
        return self._written_of_keys("lock_balances", strength=strength)

    def written_now(self) -> sql.Composed:
        """The owners' written columns as they are, without a lock (previews: a dry run
        must not make the app wait)."""
        return self._written_of_keys("balance_written")

    def _written_of_keys(self, name: str, **extra: sql.Composable) -> sql.Composed:
        """Statement `name` over the balance rows of %(keys)s, reading their written columns."""
        return queries.compose(
            name,
            chosen=self._chosen_among_keys(),
            key=self.key,
            written=self.written_json(),
            balance=self.balance_table,
            key_type=self.key_type,
            where=self.balance_where(),
            **extra,
        )

    def without_memoize(self, conn: Connection) -> None:
        """With a list-valued source (`each`), no Memoize for the rest of the transaction: the
        planner puts one between each ledger row and the unnesting of its list, keyed on the
        whole list, and hashing and copying every list costs more than unnesting it again, even
        where lists repeat (docs/performance.md); an app's lists rarely do. Not where a
        source reads snapshots' balance rows (`latest`), whose lookup relies on it."""
        if not any(source.each is not None for source in self.mapping.ledgers):
            return
        if self.mapping.balance.latest is not None and any(
            source.names_balance_row for source in self.mapping.ledgers
        ):
            return
        if conn.info.server_version >= 140000:  # Memoize exists from PostgreSQL 14
            conn.execute("SELECT set_config('enable_memoize', 'off', true)")

    def lock_rows(
        self, conn: Connection, keys: Sequence[str], *, for_delete: bool = False
    ) -> list[Any]:
        """Lock these owners' balance rows (in key order) and read their written columns."""
        statement = self.lock(for_delete=for_delete)
        if not self.sharded or len(keys) <= 1:
            return conn.execute(statement, {"keys": list(keys)}).fetchall()
        return citus.lock_by_shard(conn, statement, self.balance_table, self.key_type, keys)

    def write_batch(self, changes: sql.Composable, *, creates: bool) -> sql.Composed:
        """The batch's compare-and-set write; `creates`: some of its profiles are missing."""
        b = self.mapping.balance
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = ({})").format(sql.Identifier(c), e.sql) for c, e in b.write
        )
        stored = {
            "balance": self.balance_table,
            "key": self.key,
            "written": self.written_json(),
            "stored_remaining": _e(b.remaining, sql.SQL("NULL::numeric")),
            "stored_used": _e(b.used, sql.SQL("NULL::numeric")),
        }
        if creates:
            create = b.create or ((b.key, Expr(sql.SQL("key"), "key")),)
            insert_missing = queries.compose(
                "write_batch_insert",
                create_columns=sql.SQL(", ").join(sql.Identifier(c) for c, _ in create),
                create_values=sql.SQL(", ").join(sql.SQL("({})").format(e.sql) for _, e in create),
                **stored,
            )
        else:
            insert_missing = queries.compose("write_batch_no_insert")
        return queries.compose(
            "write_batch",
            chosen=self._chosen_among_keys(),
            key_type=self.key_type,
            assignments=assignments,
            was=self.written_was("t", "tf_before"),
            unchanged=self.written_unchanged(),
            where=self.balance_where(),
            insert_missing=insert_missing,
            changes=changes,
            **stored,
        )

    def revert_batch(
        self,
        changes: sql.Composable,
        referenced: sql.Composable,
        insertable: Sequence[str],
        *,
        undoes_creates: bool,
    ) -> sql.Composed:
        """The revert of one batch; `undoes_creates`: it has created rows to delete or deleted
        rows to re-create (else the statement names neither DELETE nor INSERT on the table)."""
        b = self.mapping.balance
        compared = b.compared_columns
        restore = sql.SQL(", ").join(
            sql.SQL("{} = pl.{}").format(sql.Identifier(c), sql.Identifier(f"tf_restore_{i}"))
            for i, c in enumerate(compared)
        )
        bookkeeping = [
            sql.SQL("{} = ({})").format(sql.Identifier(c), e.sql) for c, e in b.bookkeeping
        ]
        undo_creates = (
            queries.compose(
                "revert_batch_creates",
                balance=self.balance_table,
                key=self.key,
                written=self.written_json(),
                insert_columns=sql.SQL(", ").join(sql.Identifier(c) for c in insertable),
                restore_columns=sql.SQL(", ").join(
                    sql.SQL("r.{}").format(sql.Identifier(c)) for c in insertable
                ),
                written_columns=sql.SQL(", ").join(sql.Identifier(c) for c in compared),
                written_from_restore=sql.SQL(", ").join(
                    sql.SQL("r.{}").format(sql.Identifier(c)) for c in compared
                ),
            )
            if undoes_creates
            else sql.SQL(", written AS (SELECT * FROM restored)")
        )
        return queries.compose(
            "revert_batch",
            key_type=self.key_type,
            balance=self.balance_table,
            balance_rows=self.balance_rows,
            key=self.key,
            referenced=referenced,
            restore_assignments=sql.SQL(", ").join([restore, *bookkeeping]),
            written=self.written_json(),
            typed=self.revert_typed(),
            unchanged=self.written_unchanged(),
            undo_creates=undo_creates,
            changes=changes,
        )

    def edited_after_ledger(self) -> sql.Composed:
        """Owners of %(keys)s whose balance row changed ([balance] changed_at) more than
        %(edit_settle)s after their newest ledger row (or with no ledger row at all)."""
        changed_at = self.mapping.balance.changed_at
        assert changed_at is not None
        newest = [
            sql.SQL("(SELECT max(({at})::timestamptz) FROM {table} WHERE {where}"
                    " AND {key} = balance.{balance_key}::{type})").format(
                at=source.at.sql, table=self._ledger_from(source), where=_e(source.where, TRUE),
                key=_e(source.key), balance_key=self.key, type=_type(self.shape.source(i).key),
            )
            for i, source in enumerate(self.mapping.ledgers)
        ]  # fmt: skip
        return queries.compose(
            "edited_after_ledger",
            key=self.key,
            key_type=self.key_type,
            balance=names.balance_from(self.mapping.balance.table),
            where=self.balance_where(),
            changed_at=changed_at.sql,
            newest=sql.SQL("greatest({})").format(sql.SQL(", ").join(newest)),
        )

    # -- one owner (diagnose) ---------------------------------------------------------

    def balance_row(self) -> sql.Composed:
        b = self.mapping.balance
        updated_at = (
            sql.SQL("balance.updated_at") if "updated_at" in self.shape.balance_columns else NULL
        )
        return queries.compose(
            "balance_row",
            remaining=_e(b.remaining),
            used=_e(b.used),
            created_at=_e(b.created_at),
            updated_at=updated_at,
            starting=_e(b.starting),
            tolerance=_e(b.tolerance, sql.SQL("0")),
            period_start=_e(b.period_start),
            period_end=_e(b.period_end),
            period_length=_e(b.period_length),
            balance=self.balance_rows,
            key=self.key,
            key_type=self.key_type,
            where=self.balance_where(),
        )

    def classified(self, *, batch: bool = False) -> tuple[sql.Composable, dict[str, Any]]:
        """Every source's rows of one owner (%(key)s) or a batch of owners (%(keys)s), read as
        the mapping says, classified."""
        parts = []
        params: dict[str, Any] = {}
        several = len(self.mapping.ledgers) > 1
        for index, source in enumerate(self.mapping.ledgers):
            price, price_params = self._price(source, prefix="n")
            params |= price_params
            ident = _e(source.id)
            if source.each is not None:  # the row's id and the element's ordinal
                ident = sql.SQL("concat_ws(':', ({})::text, tf_items.item_ordinal)").format(ident)
            key_type = _type(self.shape.source(index).key)
            key_filter = (
                sql.SQL("{} = ANY(%(keys)s::text[]::{}[])")
                if batch
                else sql.SQL("{} = %(key)s::text::{}")
            ).format(_e(source.key), key_type)
            parts.append(
                queries.compose(
                    "owner_rows",
                    owner=self._source_key(index),
                    key_filter=key_filter,
                    row_class=ROW_CLASS,
                    price=price,
                    source_name=sql.Literal(source.name),
                    id=sql.SQL("({})::text").format(ident) if several else ident,
                    at=_e(source.at),
                    amount=_e(source.amount),
                    kind=_e(source.kind),
                    counted=_e(source.counted),
                    action=_e(source.action),
                    model=_e(source.model),
                    table=self._ledger_from(source, ordinal=True),
                    period_join=self._period_join(index, sql.SQL("({})").format(self.periods())),
                    in_period=self._in_period(source),
                    where=_e(source.where, TRUE),
                )
            )
        return sql.SQL("\nUNION ALL\n").join(parts), params

    def owner_statement(self, name: str) -> tuple[sql.Composed, dict[str, Any]]:
        classified, params = self.classified()
        return queries.compose(name, classified=classified), {**self.params(), **params}

    def _created_at(self) -> sql.Composable:
        created_at = self.mapping.balance.created_at
        if created_at is None:
            return sql.SQL("NULL::timestamptz")
        return sql.SQL("({})::timestamptz").format(created_at.sql)

    def fleet_evidence(self) -> tuple[sql.Composed, dict[str, Any]]:
        """The causes' evidence (docs/monitoring.md) the balances' pass cannot sum, in one
        statement for every owner of a run that needs it: %(early)s, the owners with rows
        older than their balance row; %(stopped)s and %(stopped_drifts)s, the owners whose
        drift looks like a cache that stopped updating, and their remaining drifts."""
        statement = queries.compose(
            "fleet_evidence",
            early_rows=self._evidence_rows(sql.SQL("%(early)s::text[]")),
            stopped_rows=self._evidence_rows(sql.SQL("%(stopped)s::text[]")),
            balance=self.balance_rows,
            key=self.key,
            key_type=self.key_type,
            where=self.balance_where(),
            created_at=self._created_at(),
        )
        params = self.mapping.params()
        for source in self.mapping.ledgers:
            params |= self._price(source)[1]
        return statement, params

    def _evidence_rows(self, keys: sql.Composable) -> sql.Composable:
        """Every source's rows of the owners in `keys` (a text array), classified for the
        causes' evidence (evidence_rows.sql)."""
        several = len(self.mapping.ledgers) > 1
        parts = []
        for index, source in enumerate(self.mapping.ledgers):
            ident = _e(source.id)
            parts.append(
                queries.compose(
                    "evidence_rows",
                    key=self._source_key(index),
                    counted=_e(source.counted),
                    amount=_e(source.amount),
                    kind=_e(source.kind),
                    kind_code=self._kind_code(source),
                    price=self._price(source)[0],
                    at=_e(source.at),
                    source_name=sql.Literal(source.name),
                    id=sql.SQL("({})::text").format(ident) if several else ident,
                    # The row's id without the element's ordinal: no numbering of the elements.
                    table=self._ledger_from(source),
                    where=_e(source.where, TRUE),
                    # The array cast to the source's key type, never the column: the filter
                    # stays on the index (docs/mapping.md).
                    selection=sql.SQL("{} = ANY(({})::{}[])").format(
                        _e(source.key), keys, _type(self.shape.source(index).key)
                    ),
                )
            )
        return sql.SQL("\nUNION ALL\n").join(parts)


# The rows' fence on Citus (docs/citus.md): Citus pushes no subquery with an OFFSET down to
# the shards, but one with an ORDER BY it does; PostgreSQL does not inline a subquery that
# has one (so each row's class and price are computed once, by the scan, not once in every
# FILTER of the aggregate), and sorts nothing by a constant.
_SHARDED_FENCE = sql.SQL("ORDER BY NULL::integer")


# The class of a row (docs/mapping.md), top-down, over a source's row as read (alias n).
ROW_CLASS = sql.SQL(
    "CASE WHEN n.amount IS NULL OR n.amount < 0 OR n.counted IS NULL"
    " OR (n.kind IS NOT NULL AND n.kind NOT IN ('grant', 'deduct', 'charge')) THEN 'invalid'"
    " WHEN NOT n.counted THEN 'failed'"
    " WHEN n.amount = 0 THEN 'zero'"
    " WHEN n.kind IS NULL THEN 'ignored'"
    " ELSE n.kind END"
)


def _since(since: datetime | timedelta) -> sql.Composable:
    # A duration stays a duration so the server's clock, not ours, decides what "ago" means.
    if isinstance(since, timedelta):
        return sql.SQL("statement_timestamp() - %(since)s::interval")
    return sql.SQL("%(since)s::timestamptz")


def load(
    conn: Connection,
    settings: Settings,
    mapping: Mapping | None = None,
    *,
    starting_balance: Amount | None = None,
) -> BalanceModel:
    """The model of `mapping` (default: the settings) on this database, checked."""
    mapping = mapping or default_mapping(settings)
    with transaction(conn, settings, read_only=True):
        if mapping.from_settings:
            catalog.require_default_schema(conn, settings)
        shape = describe(conn, mapping)
        prices = (
            pricing.load(conn, mapping.pricing, shape.pricing_columns)
            if mapping.pricing is not None
            else pricing.Pricing(())
        )
        sharded = _sharded(conn, mapping)
    model = BalanceModel(settings, mapping, shape, prices, starting_balance, sharded)
    _check_starting_balance(model)
    return model


def _sharded(conn: Connection, mapping: Mapping) -> bool:
    if not citus.present(conn):
        return False
    found = citus.placement(conn, mapping.balance.table.identifier)
    return found is not None and found.distributed


def _check_starting_balance(model: BalanceModel) -> None:
    """A starting balance the balance columns cannot hold is bad input (exit 2), not a
    database error half-way through a run."""
    value = model.starting_balance
    origin = model.settings.origin("starting_balance")
    source = (
        "--starting-balance"
        if model.starting_override is not None
        else str(origin)
        if origin.kind != "default"
        else "TOKENFIX_STARTING_BALANCE"
    )
    for column, expr in model.mapping.balance.write:
        type_name = model.shape.balance_columns.get(column)
        if (
            expr.text.strip() == "expected_remaining"
            and type_name
            and not catalog.fits(value, type_name)
        ):
            raise BadInput(
                f"the starting balance {value} ({source})"
                f" does not fit {model.mapping.balance.table}.{column}, which is {type_name}"
            )


@contextmanager
def out_of_range_names_the_tables(model: BalanceModel) -> Iterator[None]:
    """A sum or a price too large for its type is reported with the tables it came from."""
    try:
        yield
    except pg_errors.NumericValueOutOfRange as exc:
        m = model.mapping
        ledgers = ", ".join(str(s.table) for s in m.ledgers)
        prices = f" (prices from {m.pricing})" if m.pricing is not None else ""
        raise DatabaseProblem(
            f"a value is out of range while computing balances from {ledgers}{prices}, "
            f"balances in {m.balance.table}: {first_line(str(exc))}",
            hint="an amount, an override price or a sum does not fit its type; check those "
            "tables for extreme values ('tokenfix doctor')",
        ) from None
