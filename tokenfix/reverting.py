"""`revert RUN_ID`: put back the values a run replaced, row by row, with compare-and-set.

A row is restored only where its written columns still hold exactly what the run wrote; rows
changed since (by the app, or by a later run) are reported and left alone. A balance row the
run created is deleted only if the whole row is untouched and nothing references it. The
revert is itself a run in the audit trail, under the lease.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from psycopg import sql
from psycopg.types.json import Jsonb

from tokenfix import audit, queries
from tokenfix.db import Connection, require_primary, transaction
from tokenfix.errors import BadInput, Declined
from tokenfix.lease import WriterLease
from tokenfix.mapping import Mapping, default_mapping
from tokenfix.model import BalanceModel
from tokenfix.model import load as load_model
from tokenfix.records import RevertChange
from tokenfix.settings import Settings
from tokenfix.spool import Spool

# How to undo each kind of audit row: a row the run changed is restored, a row it created is
# deleted, a row it deleted is re-created.
_HOW = {"update": "restore", "restore": "restore", "insert": "delete", "delete": "recreate"}
_DONE: dict[str, Literal["restore", "delete", "insert"]] = {
    "restore": "restore",
    "delete": "delete",
    "recreate": "insert",
}


@dataclass
class RevertOutcome:
    run_id: uuid.UUID | None
    reverted_run_id: uuid.UUID
    already_reverted_by: uuid.UUID | None
    rows_restored: int = 0
    profiles_deleted: int = 0
    profiles_recreated: int = 0
    rows_left_alone: int = 0
    changes: Spool[RevertChange] = field(default_factory=Spool, repr=False)

    def tally(self, change: RevertChange) -> None:
        if not change.applied:
            self.rows_left_alone += 1
        elif change.action == "restore":
            self.rows_restored += 1
        elif change.action == "delete":
            self.profiles_deleted += 1
        else:
            self.profiles_recreated += 1

    def close(self) -> None:
        self.changes.close()


@dataclass(frozen=True)
class _Written:
    """One audit row of the reverted run."""

    key: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    full_row: dict[str, Any] | None


def parse_run_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        shown = "".join(ch if ch.isprintable() else "?" for ch in text)[:60]
        raise BadInput(
            f"not a valid run id: {shown!r} (see 'tokenfix history' for run ids)"
        ) from None


def lookup(conn: Connection, settings: Settings, run_id: uuid.UUID) -> dict[str, Any]:
    """The recorded run (any audit layout), with `reverted_by`; unknown is bad input."""
    unknown = BadInput(f"unknown run {run_id}", hint="'tokenfix history' lists the recorded runs")
    with transaction(conn, settings, read_only=True):
        if not audit.exists(conn, settings):
            raise unknown
        row = conn.execute(audit.compose("run_lookup", settings), {"run_id": run_id}).fetchone()
    if row is None:
        raise unknown
    return {**row[0], "reverted_by": row[1]}


def check_same_mapping(run: dict[str, Any], mapping: Mapping, settings: Settings) -> None:
    """A run is reverted through the mapping it wrote through (its balance side), else the
    columns restored would not be the ones it wrote (exit 2)."""
    recorded = run.get("mapping_hash") or default_mapping(settings).balance_hash()
    if recorded != mapping.balance_hash():
        table = run.get("balance_table") or str(default_mapping(settings).balance.table)
        raise BadInput(
            f"run {run['run_id']} wrote {table} through another mapping than the one in "
            f"effect ({mapping.origin}); nothing was reverted",
            hint="revert it with the mapping it was written with (--mapping PATH)",
        )


def revert(
    conn: Connection,
    settings: Settings,
    run_id: uuid.UUID,
    *,
    mapping: Mapping | None = None,
    confirm: Callable[[int], bool] | None = None,
) -> RevertOutcome:
    model = load_model(conn, settings, mapping)
    run = lookup(conn, settings, run_id)
    check_same_mapping(run, model.mapping, settings)
    require_primary(conn)
    origin = audit.Origin.here()
    new_run = uuid.uuid4()
    reverted_by = run["reverted_by"]
    outcome = RevertOutcome(run_id=None, reverted_run_id=run_id, already_reverted_by=reverted_by)
    with WriterLease(conn, settings, command="revert", run_id=new_run, origin=origin) as lease:
        written = run_changes(conn, model, run_id)
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
                mapping=model.mapping,
                reverts_run_id=run_id,
            )
            statement = _revert_statement(conn, model)
            for batch in written.batches(settings.batch_size):
                for change in _revert_batch(conn, model, statement, lease, batch):
                    outcome.tally(change)
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
        finally:
            written.close()
    return outcome


def run_changes(conn: Connection, model: BalanceModel, run_id: uuid.UUID) -> Spool[_Written]:
    """The audit rows of `run_id`, in key order (older layouts read as the default columns)."""
    written: Spool[_Written] = Spool()
    columns = default_mapping(model.settings).balance
    params = {
        "run_id": run_id,
        "remaining": columns.write[0][0],
        "used": columns.write[1][0],
    }
    with transaction(conn, model.settings, read_only=True):
        for row in conn.execute(audit.compose("run_changes", model.settings), params):
            written.append(_Written(*row))
    return written


def _revert_statement(conn: Connection, model: BalanceModel) -> sql.Composed:
    """revert_batch with this database's foreign keys and insertable columns filled in."""
    table = model.mapping.balance.table
    quoted = table.identifier.as_string(conn)
    with transaction(conn, model.settings, read_only=True):
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
                sql.SQL(", ").join(sql.SQL("b.{}").format(sql.Identifier(c)) for c in key_columns),
            )
        )
    referenced = sql.SQL(" OR ").join(conditions) if conditions else sql.SQL("false")
    return model.revert_batch(
        audit.table(model.settings, "changes"), sql.SQL("({})").format(referenced), columns
    )


def _revert_batch(
    conn: Connection,
    model: BalanceModel,
    statement: sql.Composed,
    lease: WriterLease,
    batch: list[_Written],
) -> list[RevertChange]:
    with transaction(conn, model.settings):
        # Locked first, in key order (FOR UPDATE: a row about to be deleted must not gain a
        # reference meanwhile); the revert then reads in a fresh statement, so a row the app
        # inserted that references a created balance row is seen.
        locked = conn.execute(
            model.lock(for_delete=True), {"keys": [w.key for w in batch]}
        ).fetchall()
        current = {str(row[0]): row[1] for row in locked}
        params = {
            "keys": [w.key for w in batch],
            "hows": [_HOW[w.action] for w in batch],
            "lefts": [Jsonb(w.after) if w.after is not None else None for w in batch],
            "restores": [Jsonb(w.before) if w.before is not None else None for w in batch],
            "full_rows": [Jsonb(w.full_row) if w.full_row is not None else None for w in batch],
            "run_id": lease.run_id,
            "tool_version": lease.origin.tool_version,
            "host": lease.origin.host,
            **model.mapping.params(),
        }
        lease.renew(conn)  # the fence, in the writing transaction (see tokenfix.lease)
        done = {str(row[0]): row for row in conn.execute(statement, params).fetchall()}
    view = _balance_view(model)
    return [_result(w, done[w.key], current.get(w.key), view) for w in batch]


def _balance_view(model: BalanceModel) -> Callable[[dict[str, Any] | None], dict[str, Any] | None]:
    """How to show a row's written columns: as tokens_remaining / tokens_used when the mapping
    reads its balance straight from two of them (the default mapping does), else by column."""
    b = model.mapping.balance
    written = set(b.compared_columns)
    names = {
        "tokens_remaining": b.remaining.text if b.remaining else None,
        "tokens_used": b.used.text if b.used else None,
    }
    if not all(column in written for column in names.values() if column is not None):
        return lambda columns: columns
    sides = {side: column for side, column in names.items() if column is not None}

    def view(columns: dict[str, Any] | None) -> dict[str, Any] | None:
        if columns is None or set(columns) != set(sides.values()):
            return columns
        return {side: columns[column] for side, column in sides.items()}

    return view


def _result(
    written: _Written,
    row: Any,
    current: dict[str, Any] | None,
    view: Callable[[dict[str, Any] | None], dict[str, Any] | None],
) -> RevertChange:
    _, action, verifiable, referenced = row
    skipped: Literal["changed_since", "referenced", "unverifiable"] | None = None
    if action is None:
        skipped = "changed_since"
        if not verifiable:
            skipped = "unverifiable"
        elif referenced:
            skipped = "referenced"
    return RevertChange(
        key=written.key,
        action=_DONE[_HOW[written.action]],
        run_left=view(written.after),
        current=view(current),
        restore_to=view(written.before),
        applied=action is not None,
        skipped=skipped,
    )
