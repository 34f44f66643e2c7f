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

import psycopg
from psycopg.rows import dict_row

from tokenfix import audit, queries
from tokenfix.db import require_primary, transaction
from tokenfix.errors import BadInput
from tokenfix.lease import WriterLease
from tokenfix.reconcile import Declined, load_model
from tokenfix.settings import Settings
from tokenfix.spool import Spool

Connection = psycopg.Connection[Any]


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


def _state(remaining: int | None, used: int | None) -> dict[str, int] | None:
    return (
        None
        if remaining is None
        else {"tokens_remaining": remaining, "tokens_used": int(used or 0)}
    )


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
        written = Spool()
        with transaction(conn, settings, read_only=True):
            for row in conn.execute(audit.compose("run_changes", settings), {"run_id": run_id}):
                written.append(
                    {
                        "user_id": str(row[0]),
                        "before": _state(row[1], row[2]),
                        "after": _state(row[3], row[4]),
                    }
                )
        if written.count and confirm is not None and not confirm(written.count):
            raise Declined("nothing was reverted")
        if written.count == 0:
            return outcome
        audit.start_run(
            conn,
            settings,
            run_id=new_run,
            command="revert",
            origin=origin,
            options={"run_id": str(run_id)},
            reverts_run_id=run_id,
        )
        outcome.run_id = new_run
        try:
            for batch in written.batches(settings.batch_size):
                for change in _revert_batch(
                    conn, settings, model.fragments(), lease, origin, batch
                ):
                    _tally(outcome, change)
                    outcome.changes.append(change)
        except BaseException as exc:
            audit.record_failure(conn, settings, new_run, exc)
            raise
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


def _revert_batch(
    conn: Connection,
    settings: Settings,
    fragments: dict[str, Any],
    lease: WriterLease,
    origin: audit.Origin,
    batch: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    ids = sorted(uuid.UUID(c["user_id"]) for c in batch)
    statement = queries.compose(
        "revert_batch", **fragments, changes=audit.table(settings, "changes")
    )
    with transaction(conn, settings):
        lock = queries.compose("lock_profile_values", **fragments)
        current = {
            str(row[0]): _state(row[1], row[2])
            for row in conn.execute(lock, {"user_ids": ids}).fetchall()
        }
        params = {
            "user_ids": [uuid.UUID(c["user_id"]) for c in batch],
            "left_remaining": [
                c["after"]["tokens_remaining"] if c["after"] else None for c in batch
            ],
            "left_used": [c["after"]["tokens_used"] if c["after"] else None for c in batch],
            "restore_remaining": [
                c["before"]["tokens_remaining"] if c["before"] else None for c in batch
            ],
            "restore_used": [c["before"]["tokens_used"] if c["before"] else None for c in batch],
            "run_id": lease.run_id,
            "tool_version": origin.tool_version,
            "host": origin.host,
        }
        lease.renew(conn)  # the fence, in the writing transaction (see tokenfix.lease)
        done = {str(row[0]): row[1] for row in conn.execute(statement, params).fetchall()}
    return [
        {
            "user_id": c["user_id"],
            "action": done.get(c["user_id"]) or _intended_action(c),
            "run_left": c["after"],
            "current": current.get(c["user_id"]),
            "restore_to": c["before"],
            "applied": c["user_id"] in done,
            "skipped": None if c["user_id"] in done else "changed_since",
        }
        for c in batch
    ]


def _intended_action(change: dict[str, Any]) -> str:
    if change["after"] is None:
        return "insert"
    return "delete" if change["before"] is None else "restore"
