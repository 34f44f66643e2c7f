"""A fix is printed only when it closes its hole: each privilege or policy fix is applied in a
savepoint that is always rolled back, with a lock timeout of 100 ms (a lock the app holds is
never waited for), and the check's own probes are run again under it. A fix that cannot be
tried (no ownership, a lock not granted at once, probes off) is printed marked "unverified".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from tokenfix import queries
from tokenfix.base.errors import first_line
from tokenfix.base.identifiers import QualifiedName

UNVERIFIED = "unverified"


@dataclass(frozen=True)
class Trial:
    closed: bool | None
    """True: the hole is closed under the fix; False: still open; None: not tried."""
    why: str = ""
    """Why it was not tried."""


def _why(exc: psycopg.Error) -> str:
    state = exc.sqlstate or ""
    if state == "42501":
        return "the tool's role may not make this change (not the owner)"
    if state in ("55P03", "57014"):
        return "the lock it needs was not granted at once (the app is using the table)"
    message = exc.diag.message_primary or str(exc)
    return f"the database refused it ({first_line(message)})"


def trial(
    conn: psycopg.Connection[Any],
    statements: Sequence[sql.Composed],
    still_open: Callable[[], bool],
    table: QualifiedName,
) -> Trial:
    """Apply `statements` (changes to `table`), ask `still_open`, undo everything."""
    row = conn.execute(
        queries.get("fix_trial_can_alter"), {"relation": table.identifier.as_string(conn)}
    ).fetchone()
    if row is None or not row[0]:
        return Trial(None, f"the tool's role does not own {table}, so doctor could not try it")
    with conn.transaction(savepoint_name="tokenfix_fix") as attempt:
        conn.execute(queries.get("fix_trial_begin"))
        try:
            with conn.transaction(savepoint_name="tokenfix_fix_apply"):
                for statement in statements:
                    conn.execute(statement)
        except psycopg.Error as exc:
            if conn.broken:
                raise
            result = Trial(None, _why(exc))
        else:
            result = Trial(not still_open())
        raise psycopg.Rollback(attempt)
    return result


def owner_change(
    conn: psycopg.Connection[Any], table: QualifiedName, role: str
) -> list[sql.Composed]:
    """An API role that owns `table` keeps every privilege whatever REVOKE says, and passes
    its row-level security: the table goes to another owner, and the role keeps reading it."""
    row = conn.execute(
        queries.get("doctor_table_owner"),
        {"role": role, "relation": table.identifier.as_string(conn)},
    ).fetchone()
    if row is None or not row[1]:
        return []
    return [
        sql.SQL("ALTER TABLE {} OWNER TO {}").format(table.identifier, sql.Identifier(row[2])),
        sql.SQL("GRANT SELECT ON {} TO {}").format(table.identifier, sql.Identifier(role)),
    ]


def rendered(conn: psycopg.Connection[Any], statements: Sequence[sql.Composed]) -> str:
    return " ".join(f"{s.as_string(conn)};" for s in statements)


def unverified(text: str, why: str) -> str:
    return f"{text} ({UNVERIFIED}: {why})"
