"""Triggers that call outside the database: a probe would fire them, and rolling the probe back
does not take back an HTTP request or a dblink statement. Relations with such triggers are
judged from the catalogs only (docs/doctor.md)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import psycopg

from tokenfix import queries
from tokenfix.base.identifiers import QualifiedName

# dblink_exec(...), http_post(...), http(...) of the http extension, net.http_post(...) of
# pg_net; and functions named like them (Supabase's supabase_functions.http_request).
OUTBOUND = r"\m(dblink\w*|http(_\w+)?|net\s*\.\s*http_\w+)\s*\("
OUTBOUND_NAME = r"^(dblink\w*|http(_\w+)?)$"


def _own(conn: psycopg.Connection[Any], relation: QualifiedName) -> list[str]:
    rows = conn.execute(
        queries.get("doctor_outbound_triggers"),
        {
            "relation": relation.identifier.as_string(conn),
            "outbound": OUTBOUND,
            "outbound_name": OUTBOUND_NAME,
        },
    ).fetchall()
    return [f"trigger {name} ({function}) on {relation}" for name, function in rows]


def outbound_triggers(
    conn: psycopg.Connection[Any],
    relation: QualifiedName,
    related: Sequence[QualifiedName] = (),
) -> list[str]:
    """The outbound triggers a write to `relation` would fire: its own, and those of any of
    `related` that its trigger functions write to (a ledger trigger that updates the balance)."""
    found = _own(conn, relation)
    bodies = [
        str(body)
        for (body,) in conn.execute(
            queries.get("doctor_trigger_bodies"),
            {"relation": relation.identifier.as_string(conn)},
        ).fetchall()
    ]
    for other in related:
        if other == relation:
            continue
        written = re.compile(
            rf"(update|insert\s+into|delete\s+from|merge\s+into)\s+[\w.\"]*\b"
            rf"{re.escape(other.table_name)}\b",
            re.IGNORECASE,
        )
        if any(written.search(body) for body in bodies):
            found += _own(conn, other)
    return found


def skip_note(triggers: list[str]) -> str:
    return (
        f"probe skipped: {triggers[0]}{' and others' if len(triggers) > 1 else ''} "
        "calls outside the database (a rollback cannot take that back): catalog verdict"
    )
