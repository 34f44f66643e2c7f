"""Row-level security on the tool's own connection (docs/monitoring.md).

A role subject to RLS on the balance table, a ledger table or the price table sees only the
rows its policies allow: every balance it cannot see looks like a missing profile, every
ledger row it cannot see like a charge that never happened. One catalog query says so before
any table is read, cheap enough for every diagnose and reconcile to ask first; doctor's
`tool_rls` check reports the same finding.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenfix import queries
from tokenfix.base.errors import DatabaseProblem
from tokenfix.base.identifiers import QualifiedName
from tokenfix.config.settings import Settings
from tokenfix.db.session import Connection, transaction
from tokenfix.mapping.types import Mapping, default_mapping

FIX = "connect as the table owner or a BYPASSRLS role such as Supabase's service_role"


@dataclass(frozen=True)
class RowSecurity:
    """What row-level security hides from the connected role, from the catalogs."""

    role: str
    hidden: tuple[QualifiedName, ...]
    """The tables this role reads only through their policies, in the mapping's order."""
    row_security: bool
    """The `row_security` setting: off makes a query on a hidden table fail, not filter."""

    @property
    def partial(self) -> bool:
        return bool(self.hidden)

    @property
    def finding(self) -> str:
        """'row-level security applies to role app on user_profiles, token_usage'"""
        return (
            f"row-level security applies to role {self.role} on "
            f"{', '.join(str(t) for t in self.hidden)}"
        )


def tables(mapping: Mapping, *, balance_only: bool = False) -> list[QualifiedName]:
    """Every table a reconcile reads: the balances, each ledger source, the prices (a revert
    reads the balances alone: `balance_only`)."""
    if balance_only:
        return [mapping.balance.table]
    names = [mapping.balance.table, *(source.table for source in mapping.ledgers)]
    if mapping.pricing is not None:
        names.append(mapping.pricing)
    return list({str(name): name for name in names}.values())


def row_security(conn: Connection, mapping: Mapping, *, balance_only: bool = False) -> RowSecurity:
    """The one catalog query, in the caller's transaction (doctor's checks run in theirs)."""
    names = tables(mapping, balance_only=balance_only)
    quoted = [name.identifier.as_string(conn) for name in names]
    row = conn.execute(queries.get("row_security"), {"tables": quoted}).fetchone()
    assert row is not None  # an aggregate without GROUP BY: always one row
    role, setting, hidden = row
    return RowSecurity(
        role=str(role),
        hidden=tuple(names[position - 1] for position in hidden),
        row_security=bool(setting),
    )


def _inspect(
    conn: Connection, settings: Settings, mapping: Mapping | None, balance_only: bool
) -> RowSecurity:
    with transaction(conn, settings, read_only=True):
        return row_security(conn, mapping or default_mapping(settings), balance_only=balance_only)


def _unreadable(found: RowSecurity) -> DatabaseProblem:
    return DatabaseProblem(
        f"{found.finding} and row_security is off, so every query on "
        f"{'it' if len(found.hidden) == 1 else 'them'} fails; nothing was read",
        hint=f"{FIX}; 'tokenfix doctor' checks it",
    )


def read_warnings(
    conn: Connection,
    settings: Settings,
    mapping: Mapping | None = None,
    *,
    balance_only: bool = False,
) -> list[str]:
    """For diagnose and dry runs (a revert's: `balance_only`): the warning to show before
    reading ([] when every row is visible). A role that cannot read at all (row_security off)
    is refused, exit 3."""
    found = _inspect(conn, settings, mapping, balance_only)
    if not found.partial:
        return []
    if not found.row_security:
        raise _unreadable(found)
    misread = (
        "rows it reports as deleted or changed since"
        if balance_only
        else "missing profiles and drift it reports"
    )
    return [
        f"{found.finding}: tokenfix sees only the rows its policies allow, so the {misread} "
        f"may be false; {FIX}; see 'tokenfix doctor'"
    ]


def require_every_row(
    conn: Connection,
    settings: Settings,
    mapping: Mapping | None = None,
    *,
    balance_only: bool = False,
) -> None:
    """For every write run (reconcile; revert, which reads the balances alone:
    `balance_only`), before its lease, audit row or first write: refuse (exit 3) unless the
    role sees every row of every table the run reads."""
    found = _inspect(conn, settings, mapping, balance_only)
    if not found.partial:
        return
    if not found.row_security:
        raise _unreadable(found)
    raise DatabaseProblem(
        f"{found.finding}: tokenfix sees only the rows its policies allow and would take the "
        "others for missing; nothing was written",
        hint=f"{FIX}; 'tokenfix doctor' checks it",
    )
