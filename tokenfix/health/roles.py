"""Supabase's Data API roles in this cluster (docs/doctor.md): anon and authenticated are probed,
PUBLIC is judged from the catalogs, service_role and other RLS-bypassing roles are shown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tokenfix import queries
from tokenfix.base.identifiers import QualifiedName
from tokenfix.health.grants import PUBLIC

PROBED = ("anon", "authenticated")


@dataclass(frozen=True)
class ApiRole:
    name: str
    bypasses_rls: bool
    can_set_role: bool


def api_roles(conn: psycopg.Connection[Any]) -> list[ApiRole]:
    """anon, authenticated and service_role, those that exist, in that order."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(queries.get("doctor_trust_roles")).fetchall()
    return [ApiRole(**row) for row in rows]


def probed(roles: list[ApiRole]) -> list[ApiRole]:
    return [role for role in roles if role.name in PROBED]


def judged(roles: list[ApiRole]) -> list[str]:
    """The roles whose access is a hole: the probed ones that exist, and PUBLIC."""
    return [role.name for role in probed(roles)] + [PUBLIC]


def supabase_shaped(roles: list[ApiRole]) -> bool:
    """Without anon and authenticated there is no Data API: the checks only speak up when
    PUBLIC itself (every role of the cluster) can write these tables."""
    return bool(probed(roles))


def rls_bypassers(conn: psycopg.Connection[Any], relation: QualifiedName) -> list[str]:
    rows = conn.execute(
        queries.get("doctor_rls_bypassers"), {"relation": relation.identifier.as_string(conn)}
    ).fetchall()
    return [f"{name} ({why})" for name, why in rows]
