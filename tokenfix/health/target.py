"""What the trust-boundary checks (docs/doctor.md) look at, built from the settings in one place.

Every check reads table and column names from a `TrustTarget` only, so that a mapping file
(docs/mapping.md) can build one instead of the settings without touching the checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from tokenfix.base.identifiers import QualifiedName
from tokenfix.config.settings import Settings
from tokenfix.mapping.types import Expr, Mapping

_COLUMN = re.compile(r'^\s*"?([A-Za-z_][A-Za-z0-9_$]*)"?\s*$')


def _column(expr: Expr) -> str:
    """The column an expression is, if it is just one (else its text, for advice only)."""
    found = _COLUMN.match(expr.text)
    return found.group(1) if found else expr.text


def _lowering(mapping: Mapping) -> tuple[str, ...]:
    """Compared columns whose increase lowers the balance: those the `used` side reads,
    unless the spendable balance is that very column."""
    balance = mapping.balance
    remaining = _column(balance.remaining) if balance.remaining is not None else None
    return tuple(
        c
        for c in balance.compared_columns
        if balance.used is not None and balance.used.uses(c) and c != remaining
    )


def _spendable(mapping: Mapping) -> sql.Composable | None:
    """The spendable balance over one balance row (alias `balance`), when it binds no values."""
    remaining = mapping.balance.remaining
    if remaining is None or remaining.params:
        return None
    return remaining.sql


def _from_mapping(settings: Settings, mapping: Mapping) -> TrustTarget:
    balance = mapping.balance
    return TrustTarget(
        balance_table=balance.table,
        key=balance.key,
        balance_columns=balance.compared_columns,
        ledgers=tuple(LedgerTarget(s.table, _column(s.key), None) for s in mapping.ledgers),
        grant_action=settings.grant_action[0],
        non_charge_actions=settings.special_actions,
        pricing=PricingTarget(mapping.pricing) if mapping.pricing is not None else None,
        subject=balance.subject.sql if balance.subject is not None else None,
        spendable=_spendable(mapping),
        lowering_columns=_lowering(mapping),
        starting_balance=settings.starting_balance,
        grant_actions=tuple(settings.grant_action),
        deduct_actions=tuple(settings.deduct_action),
    )


@dataclass(frozen=True)
class LedgerShape:
    """The seed's ledger columns: enough for a probe to write a grant-class or charge-class row.

    Under a custom mapping the ledger is SQL expressions, not columns, so there is no shape and
    the ledger is judged from privileges and policies alone (docs/doctor.md).
    """

    id: str = "id"
    action: str = "action_type"
    amount: str = "tokens_used"
    counted: str = "success"
    model: str = "model_used"

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.id, self.action, self.amount, self.counted, self.model)


@dataclass(frozen=True)
class LedgerTarget:
    table: QualifiedName
    key: str
    shape: LedgerShape | None


@dataclass(frozen=True)
class PricingTarget:
    """The override table; its columns are fixed by docs/balance-model.md under every mapping."""

    table: QualifiedName
    id: str = "id"
    action: str = "action_type"
    model: str = "model_used"
    cost: str = "token_cost"
    active: str = "is_active"

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.id, self.action, self.model, self.cost, self.active)


@dataclass(frozen=True, eq=False)
class TrustTarget:
    balance_table: QualifiedName
    key: str
    balance_columns: tuple[str, ...]
    ledgers: tuple[LedgerTarget, ...]
    grant_action: str
    """The action a minted row carries (the first grant action)."""
    non_charge_actions: tuple[str, ...]
    """Grant and deduct actions: every other action is a charge."""
    pricing: PricingTarget | None
    subject: sql.Composable | None
    """An expression over a balance row giving its owner's JWT `sub`; None: no own-row probe."""
    spendable: sql.Composable | None = None
    """The spendable balance over one balance row (alias b): what a raise raises. None: any
    change of a compared column counts."""
    lowering_columns: tuple[str, ...] = ()
    """Compared columns whose increase lowers the balance (used): a raise lowers them."""
    starting_balance: Any = 0
    """What a new owner's balance should be (no ledger rows yet)."""
    grant_actions: tuple[str, ...] = ()
    """Every configured grant action (a probe inserts each)."""
    deduct_actions: tuple[str, ...] = ()

    @property
    def tables(self) -> tuple[QualifiedName, ...]:
        pricing = (self.pricing.table,) if self.pricing else ()
        return (self.balance_table, *(ledger.table for ledger in self.ledgers), *pricing)


def trust_target(settings: Settings, mapping: Mapping | None = None) -> TrustTarget:
    """What the checks look at. The seed's shape under the names (the owner key is the
    JWT subject itself), or a mapping's tables: its compared balance columns, its ledgers
    (judged from privileges and policies: their rows are expressions, not columns a probe
    could fill) and its `subject` for the own-row probe."""
    if mapping is not None and not mapping.from_settings:
        return _from_mapping(settings, mapping)
    return TrustTarget(
        balance_table=settings.profiles_table,
        key="user_id",
        balance_columns=(settings.remaining_column.table_name, settings.used_column.table_name),
        ledgers=(LedgerTarget(settings.usage_table, "user_id", LedgerShape()),),
        grant_action=settings.grant_action[0],
        non_charge_actions=settings.special_actions,
        pricing=PricingTarget(settings.overrides_table),
        subject=sql.Identifier("user_id"),
        spendable=sql.Identifier(settings.remaining_column.table_name),
        lowering_columns=(settings.used_column.table_name,),
        starting_balance=settings.starting_balance,
        grant_actions=tuple(settings.grant_action),
        deduct_actions=tuple(settings.deduct_action),
    )
