"""Can an API role write what reconcile trusts — the ledger and the prices? The catalog part.

A few catalog queries (grants, row-level security, policies), no probe, no write: cheap enough
for every write run to ask first (docs/doctor.md), and the base of doctor's own ledger checks, whose
probes then prove or clear each finding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg

from tokenfix.base.identifiers import QualifiedName
from tokenfix.config.settings import Settings
from tokenfix.health.grants import (
    Command,
    Exposure,
    Policy,
    RoleAccess,
    judge,
    policies,
    role_access,
    shown,
)
from tokenfix.health.roles import api_roles, judged
from tokenfix.health.target import TrustTarget, trust_target
from tokenfix.mapping.types import Mapping

Kind = Literal["ledger", "pricing"]


@dataclass(frozen=True)
class MintRisk:
    """One way an API role can change what reconcile computes balances from."""

    role: str
    """anon, authenticated, or PUBLIC (every role)."""
    table: str
    privilege: str
    """INSERT, UPDATE or DELETE."""
    how: str
    """Why the catalogs allow it: 'INSERT granted and RLS is off', 'policy X permits it'."""


@dataclass(frozen=True)
class TableExposure:
    """One role's write and read access to one ledger or price table, from the catalogs."""

    table: QualifiedName
    kind: Kind
    role: str
    access: RoleAccess | None
    policies: tuple[Policy, ...]
    insert: Exposure
    update: Exposure
    delete: Exposure
    select: Exposure
    charge_only: bool
    """Every policy that lets the role insert names the grant action in its WITH CHECK: it
    probably admits charge rows only (the probe tells for sure)."""

    @property
    def mints(self) -> bool:
        """Can the role make up balance: insert a grant or a price, change or delete a row?"""
        insert = self.insert.allowed and not (self.kind == "ledger" and self.charge_only)
        return insert or self.update.allowed or self.delete.allowed

    def by_command(self, command: Command) -> Exposure:
        return {
            "INSERT": self.insert,
            "UPDATE": self.update,
            "DELETE": self.delete,
            "SELECT": self.select,
        }[command]


def _charge_only(insert: Exposure, grant_actions: Sequence[str]) -> bool:
    """Every permitting policy names every grant action: one that names only the first of
    several (admin_grant, not purchase) still lets the others in."""
    literals = ["'" + action.replace("'", "''") + "'" for action in grant_actions]
    return bool(insert.permitting) and all(
        literal in (p.check_expression or p.using_expression or "")
        for p in insert.permitting
        for literal in literals
    )


def _columns(table: QualifiedName, target: TrustTarget) -> tuple[str, ...]:
    """The columns whose UPDATE privilege matters on a ledger (those a probe changes)."""
    for ledger in target.ledgers:
        if ledger.table == table:
            shape = ledger.shape.columns if ledger.shape is not None else ()
            return (ledger.key, *shape)
    return ()


def table_exposures(
    conn: psycopg.Connection[Any],
    table: QualifiedName,
    kind: Kind,
    roles: Sequence[str],
    target: TrustTarget,
) -> dict[str, TableExposure]:
    """Each role's exposure on `table`; empty when the table does not exist."""
    found = role_access(conn, table, roles, _columns(table, target))
    if not found:
        return {}
    table_policies = tuple(policies(conn, table))
    exposures = {}
    for role in roles:
        access = found.get(role)
        insert = judge(access, table_policies, "INSERT")
        exposures[role] = TableExposure(
            table=table,
            kind=kind,
            role=role,
            access=access,
            policies=table_policies,
            insert=insert,
            update=judge(access, table_policies, "UPDATE"),
            delete=judge(access, table_policies, "DELETE"),
            select=judge(access, table_policies, "SELECT"),
            charge_only=_charge_only(insert, target.grant_actions or (target.grant_action,)),
        )
    return exposures


def trusted_tables(target: TrustTarget) -> list[tuple[QualifiedName, Kind]]:
    tables: list[tuple[QualifiedName, Kind]] = [
        (ledger.table, "ledger") for ledger in target.ledgers
    ]
    if target.pricing is not None:
        tables.append((target.pricing.table, "pricing"))
    return tables


def mint_risks(conn: psycopg.Connection[Any], target: TrustTarget) -> list[MintRisk]:
    """Every (role, table, privilege) by which anon, authenticated or PUBLIC may write the
    ledger or the prices, judged from the catalogs alone."""
    roles = judged(api_roles(conn))
    risks = []
    for table, kind in trusted_tables(target):
        for role, exposure in table_exposures(conn, table, kind, roles, target).items():
            for command in ("INSERT", "UPDATE", "DELETE"):
                verdict = exposure.by_command(command)
                if not verdict.allowed:
                    continue
                if command == "INSERT" and kind == "ledger" and exposure.charge_only:
                    continue  # charge rows only: self-reported usage, no made-up balance
                risks.append(MintRisk(shown(role), str(table), command, verdict.how))
    return risks


def ledger_mint_risks(
    conn: psycopg.Connection[Any], settings: Settings, mapping: Mapping | None = None
) -> list[MintRisk]:
    """The write run's cheap first look (docs/doctor.md): catalog queries only, no probe, no
    write."""
    return mint_risks(conn, trust_target(settings, mapping))


def mint_warning(risks: Sequence[MintRisk]) -> str | None:
    """One warning naming the roles and tables, or None when there is no risk."""
    if not risks:
        return None
    roles = list(dict.fromkeys(r.role for r in risks))
    tables: dict[str, list[str]] = {}
    for risk in risks:
        tables.setdefault(risk.table, [])
        if risk.privilege not in tables[risk.table]:
            tables[risk.table].append(risk.privilege)
    written = ", ".join(f"{table} ({'/'.join(privileges)})" for table, privileges in tables.items())
    return (
        f"API role(s) {', '.join(roles)} can write {written}, which reconcile trusts: "
        "a user could mint the balance reconcile then writes. Run `tokenfix doctor` for the "
        "proof and the fix"
    )
