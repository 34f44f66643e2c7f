"""`revert RUN_ID`: put back the values a run replaced, row by row, with compare-and-set.

A row is restored only where it still holds exactly what the run wrote; rows changed since
(by the app, or by a later run) are reported and left alone. A profile the run created is
deleted under the same rule. The revert is itself a run in the audit trail, under the lease.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tokenfix import audit, queries
from tokenfix.db import Connection, require_primary, transaction
from tokenfix.errors import BadInput, Declined
from tokenfix.lease import WriterLease
from tokenfix.model import BalanceModel
from tokenfix.reconcile import load_model
from tokenfix.settings import Settings
from tokenfix.spool import Spool


@dataclass
class RevertOutcome:
    run_id: uuid.UUID | None
    reverted_run_id: uuid.UUID
    already_reverted_by: uuid.UUID | None
    rows_restored: int = 0
    profiles_deleted: int = 0
    profiles_recreated: int = 0
    rows_left_alone: int = 0
    changes: Spool = field(default_factory=Spool, repr=False)


def parse_run_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        shown = "".join(ch if ch.isprintable() else "?" for ch in text)[:60]
        raise BadInput(
            f"not a valid run id: {shown!r} (see 'tokenfix history' for run ids)"
        ) from None


def _lookup(conn: Connection, settings: Settings, run_id: uuid.UUID) -> dict[str, Any]:
    unknown = BadInput(f"unknown run {run_id}", hint="'tokenfix history' lists the recorded runs")
    with transaction(conn, settings, read_only=True):
        if not audit.exists(conn, settings):
            raise unknown
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(audit.compose("run_lookup", settings), {"run_id": run_id}).fetchone()
    if row is None:
        raise unknown
    return row


def _state(remaining: Any, used: Any, action: str, side: str) -> dict[str, Any] | None:
    """A side of an audit row as a balance, or None where that side had no row."""
    no_row = (action == "insert" and side == "before") or (action == "delete" and side == "after")
    return None if no_row else {"tokens_remaining": remaining, "tokens_used": used}


def revert(
    conn: Connection,
    settings: Settings,
    run_id: uuid.UUID,
    *,
    confirm: Callable[[int], bool] | None = None,
) -> RevertOutcome:
    model = load_model(conn, settings)
    run = _lookup(conn, settings, run_id)
    require_primary(conn)
    origin = audit.Origin.here()
    new_run = uuid.uuid4()
    outcome = RevertOutcome(
        run_id=None, reverted_run_id=run_id, already_reverted_by=run["reverted_by"]
    )
    with WriterLease(conn, settings, command="revert", run_id=new_run, origin=origin) as lease:
        written = _run_changes(conn, settings, run_id)
        if written.count and confirm is not None and not confirm(written.count):
            raise Declined("nothing was reverted")
        if written.count == 0:
            return outcome
        outcome.run_id = new_run
        try:
            audit.start_run(
                conn,
                settings,
                run_id=new_run,
                command="revert",
                origin=origin,
                options={"run_id": str(run_id)},
                reverts_run_id=run_id,
            )
            statement = _revert_statement(conn, settings, model)
            for batch in written.batches(settings.batch_size):
                for change in _revert_batch(conn, settings, model, statement, lease, batch):
                    _tally(outcome, change)
                    outcome.changes.append(change)
            audit.finish_run(
                conn,
                settings,
                new_run,
                "completed",
                {
                    "users_updated": outcome.rows_restored,
                    "profiles_created": outcome.profiles_recreated,
                    "profiles_deleted": outcome.profiles_deleted,
                    "users_changed": outcome.rows_left_alone,
                },
            )
        except BaseException as exc:
            lease.record_end(new_run, exc)
            raise
    return outcome


def _tally(outcome: RevertOutcome, change: dict[str, Any]) -> None:
    if not change["applied"]:
        outcome.rows_left_alone += 1
    elif change["action"] == "restore":
        outcome.rows_restored += 1
    elif change["action"] == "delete":
        outcome.profiles_deleted += 1
    else:
        outcome.profiles_recreated += 1


def _run_changes(conn: Connection, settings: Settings, run_id: uuid.UUID) -> Spool:
    written = Spool()
    with transaction(conn, settings, read_only=True):
        for row in conn.execute(audit.compose("run_changes", settings), {"run_id": run_id}):
            user_id, action, before_remaining, before_used, after_remaining, after_used = row[:6]
            written.append(
                {
                    "user_id": str(user_id),
                    "action": action,
                    "before": _state(before_remaining, before_used, action, "before"),
                    "after": _state(after_remaining, after_used, action, "after"),
                    "full_row": row[6],
                }
            )
    return written


def _revert_statement(conn: Connection, settings: Settings, model: BalanceModel) -> sql.Composed:
    """revert_batch with this database's foreign keys and insertable columns filled in."""
    table = model.settings.profiles_table
    quoted = table.identifier.as_string(conn)
    with transaction(conn, settings, read_only=True):
        references = conn.execute(queries.get("referencing_keys"), {"table": quoted}).fetchall()
        columns = [
            row[0] for row in conn.execute(queries.get("insertable_columns"), {"table": quoted})
        ]
    conditions: list[sql.Composable] = []
    for ref_schema, ref_table, ref_columns, key_columns, visible in references:
        if not visible:
            # Rows we cannot see may reference it: never delete on a guess.
            conditions.append(sql.SQL("true"))
            continue
        conditions.append(
            sql.SQL("EXISTS (SELECT FROM {} AS r WHERE ({}) = ({}))").format(
                sql.Identifier(ref_schema, ref_table),
                sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(c)) for c in ref_columns),
                sql.SQL(", ").join(sql.SQL("p.{}").format(sql.Identifier(c)) for c in key_columns),
            )
        )
    referenced = sql.SQL(" OR ").join(conditions) if conditions else sql.SQL("false")
    return model.compose(
        "revert_batch",
        changes=audit.table(settings, "changes"),
        referenced=sql.SQL("({})").format(referenced),
        insert_columns=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        restore_columns=sql.SQL(", ").join(
            sql.SQL("r.{}").format(sql.Identifier(c)) for c in columns
        ),
    )


def _revert_batch(
    conn: Connection,
    settings: Settings,
    model: BalanceModel,
    statement: sql.Composed,
    lease: WriterLease,
    batch: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    ids = sorted(uuid.UUID(c["user_id"]) for c in batch)
    with transaction(conn, settings):
        # Locked first, in user_id order; the revert then reads in a fresh statement, so a
        # row the app inserted meanwhile that references a created profile is seen.
        lock = model.compose("lock_profile_values")
        current = {
            str(row[0]): _state(row[1], row[2], "update", "after")
            for row in conn.execute(lock, {"user_ids": ids}).fetchall()
        }
        params = {
            "user_ids": [uuid.UUID(c["user_id"]) for c in batch],
            "hows": [_HOW[c["action"]] for c in batch],
            "left_remaining": [_value(c["after"], "tokens_remaining") for c in batch],
            "left_used": [_value(c["after"], "tokens_used") for c in batch],
            "restore_remaining": [_value(c["before"], "tokens_remaining") for c in batch],
            "restore_used": [_value(c["before"], "tokens_used") for c in batch],
            "full_rows": [Jsonb(c["full_row"]) if c["full_row"] else None for c in batch],
            "run_id": lease.run_id,
            "tool_version": lease.origin.tool_version,
            "host": lease.origin.host,
        }
        lease.renew(conn)  # the fence, in the writing transaction (see tokenfix.lease)
        done = {str(row[0]): row for row in conn.execute(statement, params).fetchall()}
    return [_result(c, done[c["user_id"]], current.get(c["user_id"])) for c in batch]


# How to undo each kind of audit row: a row the run changed is restored, a row it created is
# deleted, a row it deleted is re-created.
_HOW = {"update": "restore", "restore": "restore", "insert": "delete", "delete": "recreate"}


def _value(state: dict[str, Any] | None, key: str) -> Any:
    return state[key] if state is not None else None


def _result(change: dict[str, Any], row: Any, current: dict[str, Any] | None) -> dict[str, Any]:
    _, action, _, _, verifiable, referenced = row
    applied = action is not None
    skipped = None
    if not applied:
        skipped = "changed_since"
        if not verifiable:
            skipped = "unverifiable"
        elif referenced:
            skipped = "referenced"
    return {
        "user_id": change["user_id"],
        "action": action or _intended_action(change),
        "run_left": change["after"],
        "current": current,
        "restore_to": change["before"],
        "applied": applied,
        "skipped": skipped,
    }


def _intended_action(change: dict[str, Any]) -> str:
    return {"restore": "restore", "delete": "delete", "recreate": "insert"}[_HOW[change["action"]]]
