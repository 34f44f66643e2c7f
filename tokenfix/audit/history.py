"""Support lookups (docs/monitoring.md): every change the tool made to one owner, and one run's
rows.

Read-only, from the audit trail alone (a standby serves them too). An owner is matched
through the mapping in effect: only runs that wrote its balance table by its key count, since
the same key text in another balance table (a wallet 42 beside an organisation 42) is another
owner. Those other changes are counted, not shown, so that the operator hears of them.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from tokenfix import queries
from tokenfix.audit import trail
from tokenfix.audit.trail import RunSummary
from tokenfix.audit.written import View, legacy_columns, written_view
from tokenfix.base.records import AuditedChange
from tokenfix.base.spool import Spool
from tokenfix.config.settings import Settings
from tokenfix.db.session import Connection, transaction
from tokenfix.ledger import keys
from tokenfix.ledger.model import load as load_model
from tokenfix.mapping.types import Mapping, default_mapping

_NEWEST_FIRST = sql.SQL("c.changed_at DESC, c.id DESC")
_KEY_ORDER = sql.SQL("coalesce(c.key, c.user_id::text), c.id")


@dataclass
class OwnerHistory:
    key: str
    """The owner's key as the database writes its type."""
    changes: list[AuditedChange]
    """Newest first, reverts included."""
    elsewhere: dict[str, int] = field(default_factory=dict)
    """Changes to the same key text in other balance tables (by table): not this owner's."""


@dataclass
class RunHistory:
    run: RunSummary
    key: str | None
    """Only this owner's rows, or (None) all of them."""
    changes: Spool[AuditedChange] = field(default_factory=Spool, repr=False)
    """In key order (the order revert puts them back in)."""

    def close(self) -> None:
        self.changes.close()


def owner_history(
    conn: Connection,
    settings: Settings,
    user: str,
    *,
    mapping: Mapping | None = None,
    limit: int | None = None,
) -> OwnerHistory:
    """Every row the tool wrote for owner `user` through the mapping's balance table, newest
    first (the latest `limit` of them); a key that does not cast to the key's type is bad
    input (exit 2), one the tool never wrote to has an empty list."""
    model = load_model(conn, settings, mapping)
    with transaction(conn, settings, read_only=True):
        key = keys.check(conn, [str(user)], model.shape.key)[0]
        if not trail.exists(conn, settings):
            return OwnerHistory(key, [])
        table = model.mapping.balance.table.identifier.as_string(conn)
        rows = _read(conn, settings, _NEWEST_FIRST, key=key, table=table, balance=model.mapping)
    found = OwnerHistory(key, [])
    view = written_view(model.mapping.balance)
    elsewhere: Counter[str] = Counter()
    for row in rows:
        if row["here"]:
            found.changes.append(_change(row, view))
        else:
            elsewhere[row["balance_table"]] += 1
    found.changes = found.changes[:limit]
    found.elsewhere = dict(sorted(elsewhere.items()))
    return found


def run_history(
    conn: Connection,
    settings: Settings,
    run_id: uuid.UUID,
    *,
    user: str | None = None,
    mapping: Mapping | None = None,
    limit: int | None = None,
) -> RunHistory:
    """Run `run_id` as `history` lists it, and the rows it wrote in key order (only `user`'s,
    the first `limit`); an unknown run is bad input (exit 2)."""
    summary = trail.run_summary(conn, settings, run_id)
    the_mapping = mapping or default_mapping(settings)
    key = None
    if user is not None:
        model = load_model(conn, settings, the_mapping)
        with transaction(conn, settings, read_only=True):
            key = keys.check(conn, [str(user)], model.shape.key)[0]
    found = RunHistory(summary, key)
    view = written_view(the_mapping.balance)
    with transaction(conn, settings, read_only=True):
        for row in _read(conn, settings, _KEY_ORDER, run_id=run_id, key=key, limit=limit):
            found.changes.append(_change(row, view))
    return found


def _read(
    conn: Connection,
    settings: Settings,
    order: sql.Composable,
    *,
    run_id: uuid.UUID | None = None,
    key: str | None = None,
    table: str | None = None,
    balance: Mapping | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    params = {
        **legacy_columns(settings),
        "run_id": run_id,
        "key": key,
        "table": table,
        "balance_key": balance.balance.key if balance is not None else None,
        "default_table": str(default_mapping(settings).balance.table),
        "limit": limit,
    }
    fragments = trail.read_fragments(conn, settings)
    statement = queries.compose("audit_changes", **fragments, order=order)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(statement, params).fetchall()


def _change(row: dict[str, Any], view: View) -> AuditedChange:
    return AuditedChange(
        run_id=row["run_id"],
        command=row["command"],
        key=row["key"],
        action=row["action"],
        changed_at=row["changed_at"],
        before=view(row["before"]),
        after=view(row["after"]),
        reverts_run_id=row["reverts_run_id"],
        reverted_by=row["reverted_by"],
    )
