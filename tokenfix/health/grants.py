"""Who may write what, from the catalogs alone: grants (table and column), row-level security and
its policies. The probes prove these verdicts where they can; this is what is left when they
cannot (`--no-probe`, a standby, PUBLIC, a probe that proved nothing)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from tokenfix import queries
from tokenfix.base.identifiers import QualifiedName
from tokenfix.ledger import catalog

Command = Literal["SELECT", "INSERT", "UPDATE", "DELETE"]
PUBLIC = "public"
"""PUBLIC as the privilege functions spell it: every role, anon and authenticated included."""

# Claims a user sets for themselves (supabase.auth.updateUser({data}) writes user_metadata,
# stored as auth.users.raw_user_meta_data): a policy that trusts them trusts the user.
USER_EDITABLE = r"user_metadata|raw_user_meta_data"
_ALWAYS_TRUE = {"true", "(true)", "1=1", "(1=1)"}
_VERB = {"SELECT": "read", "INSERT": "insert", "UPDATE": "update", "DELETE": "delete"}


def shown(role: str) -> str:
    return "PUBLIC" if role == PUBLIC else role


def columns_of(conn: psycopg.Connection[Any], relation: QualifiedName) -> set[str] | None:
    """The relation's columns, or None when it does not exist."""
    (table,) = catalog.describe(conn, [relation])
    return set(table.columns) if table.exists else None


@dataclass(frozen=True)
class RoleAccess:
    """One role's privileges on one relation, and whether row-level security binds it there."""

    role: str
    schema_usage: bool
    can_select: bool
    can_insert: bool
    can_update: bool
    can_delete: bool
    updatable_columns: tuple[str, ...]
    readable_columns: tuple[str, ...]
    rls_enabled: bool
    bypasses_rls: bool

    def may(self, command: Command) -> bool:
        granted = {
            "SELECT": self.can_select,
            "INSERT": self.can_insert,
            "UPDATE": self.can_update,
            "DELETE": self.can_delete,
        }[command]
        return self.schema_usage and granted

    def may_update(self, columns: Sequence[str]) -> tuple[str, ...]:
        """Those of `columns` this role may UPDATE (a grant on the table or on the column)."""
        if not self.schema_usage:
            return ()
        return tuple(c for c in columns if c in self.updatable_columns)

    def may_read(self, column: str) -> bool:
        return self.schema_usage and column in self.readable_columns


def role_access(
    conn: psycopg.Connection[Any],
    relation: QualifiedName,
    roles: Sequence[str],
    columns: Sequence[str] = (),
) -> dict[str, RoleAccess]:
    """Each role's access to `relation`; empty when the relation does not exist."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            queries.get("doctor_role_access"),
            {
                "relation": relation.identifier.as_string(conn),
                "roles": list(roles),
                "columns": list(columns),
            },
        ).fetchall()
    found = {}
    for row in rows:
        row["updatable_columns"] = tuple(row["updatable_columns"])
        row["readable_columns"] = tuple(row["readable_columns"])
        found[row["role"]] = RoleAccess(**row)
    return found


@dataclass(frozen=True)
class Policy:
    name: str
    command: str
    permissive: bool
    roles: tuple[str, ...]
    using_expression: str | None
    check_expression: str | None
    trusting_functions: tuple[str, ...]
    """Functions it calls whose body reads a user-editable claim."""

    def applies_to(self, role: str, command: Command) -> bool:
        return self.command in (command, "ALL") and (role in self.roles or PUBLIC in self.roles)

    def always_true(self, command: Command) -> bool:
        """Lets every row through: `USING (true)` (for INSERT: `WITH CHECK (true)`)."""
        if command == "INSERT":
            expression = self.check_expression or self.using_expression
        else:
            expression = self.using_expression
        return _normalized(expression) in _ALWAYS_TRUE

    @property
    def trusts_user_editable_claims(self) -> bool:
        text = f"{self.using_expression or ''} {self.check_expression or ''}"
        return bool(re.search(USER_EDITABLE, text, re.IGNORECASE) or self.trusting_functions)

    def describe(self) -> str:
        return f"{self.name} ({self.command} to {', '.join(map(shown, self.roles))})"


def _normalized(expression: str | None) -> str:
    return re.sub(r"\s+", "", (expression or "").lower())


def policies(conn: psycopg.Connection[Any], relation: QualifiedName) -> list[Policy]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            queries.get("doctor_trust_policies"),
            {"relation": relation.identifier.as_string(conn), "user_editable": USER_EDITABLE},
        ).fetchall()
    for row in rows:
        row["roles"] = tuple(row["roles"])
        row["trusting_functions"] = tuple(row["trusting_functions"])
    return [Policy(**row) for row in rows]


@dataclass(frozen=True)
class Exposure:
    """The catalogs' verdict on one role and one command on one relation."""

    allowed: bool
    everyone: bool
    """Any row at all: RLS off, a role that bypasses it, or an always-true policy."""
    how: str
    permitting: tuple[Policy, ...] = ()

    @property
    def trusts_user_editable_claims(self) -> tuple[Policy, ...]:
        return tuple(p for p in self.permitting if p.trusts_user_editable_claims)


def judge(
    access: RoleAccess | None,
    policies: Sequence[Policy],
    command: Command,
    *,
    granted: bool | None = None,
    what: str | None = None,
) -> Exposure:
    """May this role run `command` here, and on which rows? `granted` overrides the table-level
    privilege (the balance columns' own UPDATE grant); `what` names it in the message."""
    if access is None:
        return Exposure(False, False, "the relation does not exist")
    role = shown(access.role)
    privilege = what or command
    if not (access.may(command) if granted is None else granted and access.schema_usage):
        return Exposure(False, False, f"no {privilege} privilege for {role}")
    if access.bypasses_rls:
        return Exposure(True, True, f"{privilege} granted and {role} bypasses RLS")
    if not access.rls_enabled:
        return Exposure(True, True, f"{privilege} granted and RLS is off")
    permitting = tuple(p for p in policies if p.permissive and p.applies_to(access.role, command))
    if not permitting:
        return Exposure(
            False, False, f"{privilege} granted but no RLS policy lets {role} {_VERB[command]}"
        )
    restricting = [
        p.name for p in policies if not p.permissive and p.applies_to(access.role, command)
    ]
    restricted = f" (restricted by {', '.join(restricting)})" if restricting else ""
    return Exposure(
        True,
        any(p.always_true(command) for p in permitting) and not restricting,
        f"{privilege} granted and policy {', '.join(p.name for p in permitting)} permits "
        f"it{restricted}",
        permitting,
    )


def sees_rows(access: RoleAccess | None, policies: Sequence[Policy]) -> bool:
    """Whether an UPDATE or DELETE with a WHERE clause can find rows at all: reading a column
    applies the SELECT policies too, while a filterless statement is judged by the command's
    own policies alone. A probe's 0 rows prove nothing when the role sees no row."""
    if access is None or access.bypasses_rls or not access.rls_enabled:
        return True
    return any(p.permissive and p.applies_to(access.role, "SELECT") for p in policies)
