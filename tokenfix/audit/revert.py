"""`revert RUN_ID`: put back the values a run replaced, row by row, with compare-and-set.

A row is restored only where its written columns still hold exactly what the run wrote; rows
changed since (by the app, or by a later run) are reported and left alone. A balance row the
run created is deleted only if the whole row is untouched and nothing references it. The
revert is itself a run in the audit trail, under the lease.

A dry run decides by the same rules (queries/revert_plan.sql, which the revert's own
statement includes) in read-only transactions: no lease, no audit schema or rows, so it works
on a hot standby. `user` narrows either to one owner's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from psycopg import sql
from psycopg.types.json import Jsonb

from tokenfix import queries
from tokenfix.audit import adjust, trail
from tokenfix.audit.lease import WriterLease
from tokenfix.audit.written import View, legacy_columns, written_view
from tokenfix.base.errors import BadInput, Declined
from tokenfix.base.records import RevertChange, RevertSkip
from tokenfix.base.spool import Spool
from tokenfix.config.settings import Settings
from tokenfix.db.session import Connection, require_primary, transaction
from tokenfix.ledger import keys, visibility
from tokenfix.ledger.model import BalanceModel
from tokenfix.ledger.model import load as load_model
from tokenfix.mapping.types import Mapping, default_mapping

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
    dry_run: bool = False
    """Nothing written: the counts and changes say what the revert would do now."""
    user: str | None = None
    """Only this owner's rows (its key as the database writes it), or all of them."""
    rows_restored: int = 0
    profiles_deleted: int = 0
    profiles_recreated: int = 0
    rows_left_alone: int = 0
    warnings: list[str] = field(default_factory=list)
    """For a dry run: row-level security hides rows from the tool's role (see visibility)."""
    changes: Spool[RevertChange] = field(default_factory=Spool, repr=False)

    def tally(self, change: RevertChange) -> None:
        if not change.reverted:
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
    unknown = trail.unknown_run(run_id)
    with transaction(conn, settings, read_only=True):
        if not trail.exists(conn, settings):
            raise unknown
        row = conn.execute(trail.compose("run_lookup", settings), {"run_id": run_id}).fetchone()
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
    dry_run: bool = False,
    user: str | None = None,
) -> RevertOutcome:
    """Put back what run `run_id` replaced (only `user`'s rows, when given); with `dry_run`,
    say what that would do now and write nothing. A `user` the run never changed is bad input
    (exit 2): an operator who typed a wrong key must hear so, not "nothing to revert"."""
    model = load_model(conn, settings, mapping)
    run = lookup(conn, settings, run_id)
    check_same_mapping(run, model.mapping, settings)
    key = owner_key(conn, model, user) if user is not None else None
    outcome = RevertOutcome(
        run_id=None,
        reverted_run_id=run_id,
        already_reverted_by=run["reverted_by"],
        dry_run=dry_run,
        user=key,
    )
    if adjust.is_adjustment_run(conn, settings, run_id):  # a grant, deduct or booking
        adjust.revert_adjustments(conn, model, run_id, outcome, key=key, confirm=confirm)
        return outcome
    if dry_run:
        outcome.warnings = visibility.read_warnings(
            conn, settings, model.mapping, balance_only=True
        )
        with rows_to_revert(conn, model, run_id, key) as written:
            _dry_run(conn, model, written, outcome)
        return outcome
    require_primary(conn)
    # A row hidden by a policy would read as deleted since the run: refuse before the lease.
    visibility.require_every_row(conn, settings, model.mapping, balance_only=True)
    origin = trail.Origin.here()
    new_run = uuid.uuid4()
    with WriterLease(
        conn,
        settings,
        command="revert",
        run_id=new_run,
        origin=origin,
        table=model.mapping.balance.table,
    ) as lease:
        written = rows_to_revert(conn, model, run_id, key)
        if written.count and confirm is not None and not confirm(written.count):
            written.close()
            raise Declined("nothing was reverted")
        if written.count == 0:
            written.close()
            return outcome
        outcome.run_id = new_run
        options: dict[str, Any] = {"run_id": str(run_id)}
        if key is not None:
            options["user"] = key
        try:
            trail.start_run(
                conn,
                settings,
                run_id=new_run,
                command="revert",
                origin=origin,
                options=options,
                mapping=model.mapping,
                reverts_run_id=run_id,
            )
            statements = _revert_statements(conn, model)
            for batch in written.batches(settings.batch_size):
                undoes_creates = any(w.action in ("insert", "delete") for w in batch)
                statement = statements[undoes_creates]
                for change in _revert_batch(conn, model, statement, lease, batch):
                    outcome.tally(change)
                    outcome.changes.append(change)
            trail.finish_run(
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


def owner_key(conn: Connection, model: BalanceModel, user: str) -> str:
    """`user` as the database writes the key's type; one that does not cast is exit 2."""
    with transaction(conn, model.settings, read_only=True):
        return keys.check(conn, [str(user)], model.shape.key)[0]


def rows_to_revert(
    conn: Connection, model: BalanceModel, run_id: uuid.UUID, key: str | None
) -> Spool[_Written]:
    """The run's audit rows (`key`'s only, when given: none of them is bad input)."""
    written = run_changes(conn, model, run_id, key=key)
    if key is not None and written.count == 0:
        written.close()
        raise BadInput(
            f"run {run_id} did not change user {key}: nothing to revert",
            hint=f"'tokenfix history {run_id}' lists the rows it changed",
        )
    return written


def run_changes(
    conn: Connection, model: BalanceModel, run_id: uuid.UUID, *, key: str | None = None
) -> Spool[_Written]:
    """The audit rows of `run_id` (of owner `key` alone, if given), in key order (older
    layouts read as the default columns)."""
    written: Spool[_Written] = Spool()
    with transaction(conn, model.settings, read_only=True):
        fragments = trail.read_fragments(conn, model.settings)
        statement = queries.compose("run_changes", **fragments)
        for row in conn.execute(
            statement, {**legacy_columns(model.settings), "run_id": run_id, "key": key}
        ):
            written.append(_Written(*row))
    return written


def _dry_run(
    conn: Connection, model: BalanceModel, written: Spool[_Written], outcome: RevertOutcome
) -> None:
    """What the revert would do now with each row, by its own rules; read-only transactions
    only, no locks (rows the app changes meanwhile may then be judged otherwise)."""
    statement = queries.compose(
        "revert_check",
        key_type=model.key_type,
        balance=model.balance_table,
        balance_rows=model.balance_rows,
        key=model.key,
        written=model.written_json(),
        typed=model.revert_typed(),
        referenced=_referenced(conn, model),
    )
    view = written_view(model.mapping.balance)
    for batch in written.batches(model.settings.batch_size):
        with transaction(conn, model.settings, read_only=True):
            found = {
                str(row[0]): row for row in conn.execute(statement, _planned(batch)).fetchall()
            }
        for w in batch:
            _, action, reason, current = found[w.key]
            change = _result(w, action, reason, current, view, dry_run=True)
            outcome.tally(change)
            outcome.changes.append(change)


def _planned(batch: list[_Written]) -> dict[str, Any]:
    """revert_plan.sql's parameters: what to do with each row, and the values to compare."""
    return {
        "keys": [w.key for w in batch],
        "hows": [_HOW[w.action] for w in batch],
        "lefts": [Jsonb(w.after) if w.after is not None else None for w in batch],
        "restores": [Jsonb(w.before) if w.before is not None else None for w in batch],
        "full_rows": [Jsonb(w.full_row) if w.full_row is not None else None for w in batch],
        # The rows whose references are checked (only a created row is ever deleted).
        "delete_keys": [w.key for w in batch if _HOW[w.action] == "delete"],
    }


def _revert_statements(conn: Connection, model: BalanceModel) -> dict[bool, sql.Composed]:
    """revert_batch with this database's foreign keys and insertable columns filled in, for
    batches of updates alone (False) and for batches that also undo creates or deletes."""
    quoted = model.mapping.balance.table.identifier.as_string(conn)
    with transaction(conn, model.settings, read_only=True):
        columns = [
            row[0] for row in conn.execute(queries.get("insertable_columns"), {"table": quoted})
        ]
    changes, referenced = trail.table(model.settings, "changes"), _referenced(conn, model)
    return {
        creates: model.revert_batch(changes, referenced, columns, undoes_creates=creates)
        for creates in (False, True)
    }


def _referenced(conn: Connection, model: BalanceModel) -> sql.Composable:
    """Whether other rows reference balance row `balance`, from this database's foreign keys."""
    quoted = model.mapping.balance.table.identifier.as_string(conn)
    with transaction(conn, model.settings, read_only=True):
        references = conn.execute(queries.get("referencing_keys"), {"table": quoted}).fetchall()
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
                sql.SQL(", ").join(
                    sql.SQL("balance.{}").format(sql.Identifier(c)) for c in key_columns
                ),
            )
        )
    referenced = sql.SQL(" OR ").join(conditions) if conditions else sql.SQL("false")
    return sql.SQL("({})").format(referenced)


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
        locked = model.lock_rows(conn, [w.key for w in batch], for_delete=True)
        current = {str(row[0]): row[1] for row in locked}
        params = {
            **_planned(batch),
            "run_id": lease.run_id,
            "tool_version": lease.origin.tool_version,
            "host": lease.origin.host,
            **model.mapping.params(),
        }
        lease.renew(conn)  # the fence, in the writing transaction (see tokenfix.audit.lease)
        done = {str(row[0]): row for row in conn.execute(statement, params).fetchall()}
    view = written_view(model.mapping.balance)
    return [_result(w, done[w.key][1], done[w.key][2], current.get(w.key), view) for w in batch]


def _result(
    written: _Written,
    action: str | None,
    reason: RevertSkip | None,
    current: dict[str, Any] | None,
    view: View,
    *,
    dry_run: bool = False,
) -> RevertChange:
    """One row's outcome: `action` is what was written (a dry run: what would be), `reason`
    revert_plan.sql's word for a row left alone. Decided but not written means the row
    changed between the decision and the write (a key inserted meanwhile)."""
    skipped: RevertSkip | None = None
    if action is None:
        skipped = reason or "changed_since"
    elif dry_run:
        skipped = "dry_run"
    return RevertChange(
        key=written.key,
        action=_DONE[_HOW[written.action]],
        run_left=view(written.after),
        current=view(current),
        restore_to=view(written.before),
        applied=action is not None and not dry_run,
        skipped=skipped,
    )
