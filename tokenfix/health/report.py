"""The doctor's plain data: a check (name, status, message, fix), the report, and the context
every check may look at. A leaf of the doctor package: every check module imports it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from tokenfix.base.identifiers import QualifiedName
from tokenfix.config.settings import Settings
from tokenfix.db.session import Connection
from tokenfix.ledger import catalog
from tokenfix.mapping.types import Mapping, default_mapping

Status = Literal["ok", "warn", "fail"]
_RANK = {"ok": 0, "warn": 1, "fail": 2}


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    message: str
    fix: str | None = None


def ok(name: str, message: str) -> Check:
    return Check(name, "ok", message)


def warn(name: str, message: str, fix: str) -> Check:
    return Check(name, "warn", message, fix)


def fail(name: str, message: str, fix: str) -> Check:
    return Check(name, "fail", message, fix)


@dataclass
class Report:
    checks: list[Check]

    @property
    def status(self) -> Status:
        return max((c.status for c in self.checks), key=_RANK.__getitem__, default="ok")


@dataclass(frozen=True)
class Tables:
    """The three tables of the default schema (docs/balance-model.md) under their configured
    names."""

    usage: catalog.Table
    profiles: catalog.Table
    overrides: catalog.Table

    @classmethod
    def load(cls, conn: Connection, mapping: Mapping) -> Tables:
        """The default schema's three tables, or a mapping's balance table, first ledger and
        price table (none: a table that does not exist)."""
        pricing = mapping.pricing or QualifiedName(["tokenfix_no_pricing"])
        names = [mapping.ledger.table, mapping.balance.table, pricing]
        usage, profiles, overrides = catalog.describe(conn, names)
        if mapping.pricing is None:
            overrides = catalog.Table(name=pricing, exists=False)
        return cls(usage, profiles, overrides)


@dataclass
class Context:
    """What every check may look at."""

    conn: Connection
    settings: Settings
    probe: bool
    mapping: Mapping = field(default=None)  # type: ignore[assignment]
    server: dict[str, Any] = field(default_factory=dict)
    tables: Tables | None = None

    def __post_init__(self) -> None:
        if self.mapping is None:
            self.mapping = default_mapping(self.settings)

    def quoted(self, name: Any) -> str:
        return str(name.identifier.as_string(self.conn))

    @property
    def balance_table(self) -> QualifiedName:
        return self.mapping.balance.table

    @property
    def ledger_table(self) -> QualifiedName:
        return self.mapping.ledger.table

    @property
    def pricing_table(self) -> QualifiedName | None:
        return self.mapping.pricing

    @property
    def balance_columns(self) -> tuple[str, ...]:
        """The written columns that hold the balance (docs/doctor.md: what a probe raises)."""
        return self.mapping.balance.compared_columns


CheckFunction = Callable[[Context], list[Check]]
