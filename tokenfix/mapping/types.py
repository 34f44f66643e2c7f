"""Where the balances and the ledger live (docs/mapping.md): the mapping, as SQL expressions.

A mapping comes from a TOML file the operator writes (`mapping_file.load`), or from the
docs/configuration.md
settings, which describe the seed's shape (`default_mapping`). Either way every command
works through the same `Mapping`. Expressions written by the operator go into statements as
SQL (they are configuration, like a dbt model); the default mapping's are built from
docs/configuration.md
identifiers (always quoted) and values (always bound as parameters), as before.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping as Params
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from tokenfix.base.identifiers import QualifiedName
from tokenfix.config.settings import Settings
from tokenfix.mapping import names

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
EXPECTED = ("expected_remaining", "expected_used")


@dataclass(frozen=True)
class Expr:
    """One SQL expression of a mapping: what runs (values bound) and how it is written."""

    sql: sql.Composable
    text: str
    params: Params[str, Any] = field(default_factory=dict)

    @classmethod
    def raw(cls, text: str) -> Expr:
        """An operator's expression, as written in the mapping file."""
        return cls(sql.SQL(text), text)

    @classmethod
    def column(cls, name: str) -> Expr:
        return cls(sql.Identifier(name), shown_identifier(name))

    def uses(self, *names: str) -> bool:
        """Whether the expression names any of `names` (outside string literals)."""
        words = set(_WORD.findall(re.sub(r"'(?:[^']|'')*'", "", self.text)))
        return any(name in words for name in names)


@dataclass(frozen=True)
class BalanceSide:
    """[balance]: the cache, one row per owner."""

    table: QualifiedName
    key: str
    remaining: Expr | None
    used: Expr | None
    write: tuple[tuple[str, Expr], ...] = ()
    create: tuple[tuple[str, Expr], ...] | None = None
    where: Expr | None = None
    starting: Expr | None = None
    """None: STARTING_BALANCE (the setting, or --starting-balance)."""
    created_at: Expr | None = None
    tolerance: Expr | None = None
    subject: Expr | None = None
    """The owner's JWT `sub`, for doctor's own-row probe (docs/doctor.md)."""
    changed_at: Expr | None = None
    """When the balance row last changed: `--since` and `--defer-edited` look at it."""
    period_start: Expr | None = None
    """Periods: only ledger rows with period_start <= at < period_end count (NULL: no
    bound); `starting` is then the period's allowance."""
    period_end: Expr | None = None
    period_length: Expr | None = None
    """An interval: the previous period, for the period_not_reset cause."""
    latest: Expr | None = None
    """Snapshots: an ORDER BY list; an owner's first row in it is its balance, the others
    history (never compared nor written). With it, `row_id` names the rows."""
    row_id: str | None = None

    @property
    def has_periods(self) -> bool:
        return self.period_start is not None or self.period_end is not None

    @property
    def compared_columns(self) -> tuple[str, ...]:
        """Written columns that carry the balance: compared before writing, restored by
        revert. The others (`updated_at = now()`) are bookkeeping: written, nothing more."""
        return tuple(column for column, expr in self.write if expr.uses(*EXPECTED))

    @property
    def bookkeeping(self) -> tuple[tuple[str, Expr], ...]:
        return tuple((c, e) for c, e in self.write if c not in self.compared_columns)


@dataclass(frozen=True)
class LedgerSource:
    """One [[ledger]] source: rows of one table that move owners' balances."""

    name: str
    table: QualifiedName
    key: Expr
    at: Expr
    amount: Expr
    kind: Expr
    """'grant', 'deduct', 'charge', or NULL (ignored); anything else makes the row invalid."""
    counted: Expr
    where: Expr | None = None
    action: Expr | None = None
    model: Expr | None = None
    id: Expr | None = None
    kind_code: Expr | None = None
    """The same classes as `kind` as 1 grant, 2 deduct, 3 charge (never NULL nor invalid),
    when known without text: the default mapping's, evaluated once per ledger row."""
    unpriced_actions: tuple[str, ...] = ()
    """Actions that are never charges (overrides for them are never looked up)."""
    each: Expr | None = None
    """A set-returning expression: the row counts once per element (`item`)."""

    @property
    def names_balance_row(self) -> bool:
        """Whether an expression names the owner's balance row (`balance.column`)."""
        exprs = (self.at, self.amount, self.kind, self.counted, self.where, self.action,
                 self.model, self.id)  # fmt: skip
        return names.names_balance_row(e.sql for e in exprs if e is not None)


@dataclass(frozen=True)
class LotSource:
    """One [[lots]] source: grants that become spendable, expire and burn down
    (tokenfix.ledger.lots)."""

    name: str
    table: QualifiedName
    key: Expr
    amount: Expr
    at: Expr
    id: Expr
    where: Expr | None = None
    expires_at: Expr | None = None
    voided_at: Expr | None = None
    priority: Expr | None = None

    def fields(self) -> list[tuple[str, Expr]]:
        named = [
            ("key", self.key), ("amount", self.amount), ("at", self.at), ("id", self.id),
            ("expires_at", self.expires_at), ("voided_at", self.voided_at),
            ("priority", self.priority),
        ]  # fmt: skip
        return [(name, e) for name, e in named if e is not None]

    @property
    def names_balance_row(self) -> bool:
        """Whether an expression names the owner's balance row (`balance.column`)."""
        exprs = [e for _, e in self.fields()] + ([self.where] if self.where else [])
        return names.names_balance_row(e.sql for e in exprs)


ADJUST_NAMES = ("key", "amount", "reason", "run_id", "idempotency_key")


@dataclass(frozen=True)
class Adjust:
    """[adjust]: the ledger row a support adjustment inserts (`tokenfix grant` / `deduct`),
    as column = expression over ADJUST_NAMES, into the [[ledger]] named `ledger`."""

    ledger: str
    grant: tuple[tuple[str, Expr], ...]
    deduct: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True)
class Mapping:
    balance: BalanceSide
    ledgers: tuple[LedgerSource, ...]
    pricing: QualifiedName | None = None
    """The overrides table, matched on the ledger's action, model and time."""
    origin: str = "the default mapping (TOKENFIX_* settings)"
    from_settings: bool = True
    adjust: Adjust | None = None
    lots: tuple[LotSource, ...] = ()
    """With lots, each owner's history is folded in time order (tokenfix.ledger.lots)."""

    @property
    def ledger(self) -> LedgerSource:
        """The first ledger source (the only one of the default mapping)."""
        return self.ledgers[0]

    def params(self) -> dict[str, Any]:
        """Every value the mapping's expressions bind."""
        found: dict[str, Any] = {}
        for expr in self.expressions():
            found.update(expr.params)
        return found

    def expressions(self) -> list[Expr]:
        b = self.balance
        exprs = [b.remaining, b.used, b.where, b.starting, b.created_at, b.tolerance, b.subject]
        exprs.append(b.changed_at)
        exprs += [b.period_start, b.period_end, b.period_length, b.latest]
        exprs += [e for _, e in b.write] + [e for _, e in b.create or ()]
        for source in self.ledgers:
            exprs += [source.key, source.at, source.amount, source.kind, source.counted]
            exprs += [source.where, source.action, source.model, source.id, source.each]
        for lot in self.lots:
            exprs += [e for _, e in lot.fields()] + [lot.where]
        return [e for e in exprs if e is not None]

    def signature(self) -> tuple[object, ...]:
        """What the mapping says, as text: equal signatures are the same mapping."""

        def text(expr: Expr | None) -> str | None:
            return expr.text if expr is not None else None

        b = self.balance
        return (
            str(b.table), b.key, text(b.remaining), text(b.used), text(b.where),
            text(b.starting), text(b.created_at), text(b.tolerance), text(b.subject),
            text(b.changed_at),
            text(b.period_start), text(b.period_end), text(b.period_length),
            text(b.latest), b.row_id,
            tuple((c, e.text) for c, e in b.write),
            tuple((c, e.text) for c, e in b.create) if b.create is not None else None,
            tuple(
                (s.name, str(s.table), *(text(e) for e in (
                    s.key, s.at, s.amount, s.kind, s.counted, s.where, s.action, s.model, s.id,
                    s.each,
                )))
                for s in self.ledgers
            ),
            str(self.pricing) if self.pricing is not None else None,
            tuple(
                (lot.name, str(lot.table), text(lot.where),
                 *((name, e.text) for name, e in lot.fields()))
                for lot in self.lots
            ),
        )  # fmt: skip

    def balance_hash(self) -> str:
        """A hash of what revert depends on: the balance table, its key and what is written
        (not the ledger, nor the starting balance: fixing those must not block a revert)."""
        b = self.balance
        document = {
            "table": str(b.table),
            "key": b.key,
            "where": b.where.text if b.where else None,
            "write": [[c, e.text] for c, e in b.write],
            "create": [[c, e.text] for c, e in b.create] if b.create is not None else None,
        }
        if b.latest is not None:  # which row of an owner is written (absent: as before)
            document["latest"] = b.latest.text
            document["row_id"] = b.row_id
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# -- the default mapping: the seed's shape under the names ----------------------------

# PostgreSQL's reserved key words: a column named like one is always shown quoted.
_RESERVED = frozenset(
    [
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "column",
        "constraint",
        "create",
        "current_catalog",
        "current_date",
        "current_role",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "from",
        "grant",
        "group",
        "having",
        "in",
        "initially",
        "intersect",
        "into",
        "lateral",
        "leading",
        "limit",
        "localtime",
        "localtimestamp",
        "not",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "placing",
        "primary",
        "references",
        "returning",
        "select",
        "session_user",
        "some",
        "symmetric",
        "system_user",
        "table",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "variadic",
        "when",
        "where",
        "window",
        "with",
    ]
)


def shown_identifier(name: str) -> str:
    """A column or table name as an operator would write it: bare when that is unambiguous."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) and name not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def _actions_in(
    column: str, kind: str, actions: tuple[str, ...]
) -> tuple[sql.Composable, str, dict[str, Any]]:
    names = [f"{kind}_action_{index}" for index in range(len(actions))]
    composed = sql.SQL("{} IN ({})").format(
        sql.Identifier(column), sql.SQL(", ").join(sql.Placeholder(n) for n in names)
    )
    literals = ", ".join("'" + a.replace("'", "''") + "'" for a in actions)
    return (
        composed,
        f"{shown_identifier(column)} IN ({literals})",
        dict(zip(names, actions, strict=True)),
    )


def default_kind(settings: Settings) -> tuple[Expr, Expr]:
    """grant / deduct by the action lists, every other row a charge (docs/balance-model.md): as the
    mapping writes it, and as the class number the all-owners aggregate uses."""
    grant, grant_text, grant_params = _actions_in("action_type", "grant", settings.grant_action)
    deduct, deduct_text, deduct_params = _actions_in(
        "action_type", "deduct", settings.deduct_action
    )
    params = {**grant_params, **deduct_params}
    composed = sql.SQL("CASE WHEN {} THEN 'grant' WHEN {} THEN 'deduct' ELSE 'charge' END").format(
        grant, deduct
    )
    text = f"CASE WHEN {grant_text} THEN 'grant' WHEN {deduct_text} THEN 'deduct' ELSE 'charge' END"
    code = sql.SQL("CASE WHEN {} THEN 1 WHEN {} THEN 2 ELSE 3 END").format(grant, deduct)
    return Expr(composed, text, params), Expr(code, text, params)


def default_mapping(settings: Settings) -> Mapping:
    """The seed's shape (docs/balance-model.md) under the configured names: what the settings
    mean."""
    remaining = settings.remaining_column.table_name
    used = settings.used_column.table_name
    expected = {
        "expected_remaining": Expr(sql.SQL("expected_remaining"), "expected_remaining"),
        "expected_used": Expr(sql.SQL("expected_used"), "expected_used"),
    }
    balance = BalanceSide(
        table=settings.profiles_table,
        key="user_id",
        remaining=Expr.column(remaining),
        used=Expr.column(used),
        created_at=Expr.column("created_at"),
        subject=Expr.column("user_id"),
        write=(
            (remaining, expected["expected_remaining"]),
            (used, expected["expected_used"]),
            ("updated_at", Expr(sql.SQL("now()"), "now()")),
        ),
        create=(
            ("user_id", Expr(sql.SQL("key"), "key")),
            (remaining, expected["expected_remaining"]),
            (used, expected["expected_used"]),
        ),
    )
    kind, kind_code = default_kind(settings)
    adjust = Adjust(
        ledger=settings.usage_table.table_name,
        grant=_default_adjust(settings.grant_action[0], "grant"),
        deduct=_default_adjust(settings.deduct_action[0], "deduct"),
    )
    ledger = LedgerSource(
        name=settings.usage_table.table_name,
        table=settings.usage_table,
        key=Expr.column("user_id"),
        at=Expr.column("created_at"),
        amount=Expr.column("tokens_used"),
        kind=kind,
        counted=Expr.column("success"),
        action=Expr.column("action_type"),
        model=Expr.column("model_used"),
        id=Expr.column("id"),
        kind_code=kind_code,
        unpriced_actions=settings.special_actions,
    )
    return Mapping(
        balance=balance, ledgers=(ledger,), pricing=settings.overrides_table, adjust=adjust
    )


def _default_adjust(action: str, kind: str) -> tuple[tuple[str, Expr], ...]:
    """A grant or deduct row of the seed's ledger: the first grant (deduct) action, the
    amount as tokens_used, counted, no model, now (docs/commands.md, support adjustments)."""
    name = f"adjust_{kind}_action"
    literal = "'" + action.replace("'", "''") + "'"
    return (
        ("user_id", Expr(sql.SQL("key"), "key")),
        ("action_type", Expr(sql.Placeholder(name), literal, {name: action})),
        ("model_used", Expr(sql.SQL("NULL"), "NULL")),
        ("tokens_used", Expr(sql.SQL("amount"), "amount")),
        ("success", Expr(sql.SQL("true"), "true")),
        ("created_at", Expr(sql.SQL("now()"), "now()")),
    )
