"""The write path of `reconcile` (SPEC §7): batches, locks, compare-and-set, audit, retries.

Each batch is one transaction: renew the writer lease (fencing), lock the batch's profile
rows in user_id order, recompute those users from the ledger in a fresh statement (so it sees
everything the app committed before we got the locks), re-check the settle window, then write
with compare-and-set and record every written row in the audit trail. A failure rolls the
whole batch back; lock timeouts, deadlocks and serialization failures are retried.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row

from tokenfix import audit
from tokenfix.db import Connection, transaction
from tokenfix.errors import DatabaseProblem, first_line
from tokenfix.lease import WriterLease
from tokenfix.model import BalanceModel
from tokenfix.reconcile import (
    Outcome,
    Plan,
    Progress,
    Request,
    Selection,
    change_record,
    skip_reason,
    tally,
    with_recent,
)
from tokenfix.settings import Settings
from tokenfix.spool import Spool

RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected, pg_errors.LockNotAvailable)
MAX_ATTEMPTS = 5
CONSTRAINT_ERRORS = (psycopg.IntegrityError, pg_errors.NumericValueOutOfRange)


@dataclass
class Writer:
    """Applies a plan batch by batch under the writer lease (SPEC §7)."""

    conn: Connection
    model: BalanceModel
    request: Request
    lease: WriterLease
    origin: audit.Origin
    on_progress: Progress | None = None

    @property
    def settings(self) -> Settings:
        return self.model.settings

    def apply(self, plan: Plan, *, run_id: uuid.UUID | None) -> Outcome:
        """Write every batch; `run_id` is None when the plan writes nothing (no audit run)."""
        changes = Spool()
        outcome = Outcome(
            run_id=run_id,
            dry_run=False,
            counts=plan.counts,
            changes=changes,
            warnings=plan.warnings,
        )
        for batch in plan.candidates.batches(self.request.batch_size):
            for change in self._batch(batch):
                tally(outcome.counts, change)
                outcome.unresolved += 0 if change["applied"] and "stored" not in change else 1
                changes.append(change)
            if self.on_progress:
                self.on_progress(len(batch))
        return outcome

    def _batch(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results: dict[str, dict[str, Any]] = {}
        to_write: list[dict[str, Any]] = []
        for candidate in batch:
            reason = skip_reason(candidate, self.request)
            if reason is None:
                to_write.append(candidate)
            else:
                results[candidate["user_id"]] = change_record(
                    candidate, applied=False, skipped=reason
                )
        if to_write:
            results |= self._write_with_retries(to_write)
        return [results[c["user_id"]] for c in batch]

    def _write_with_retries(self, candidates: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return self._write(candidates)
            except RETRYABLE as exc:
                if attempt == MAX_ATTEMPTS:
                    raise DatabaseProblem(
                        f"gave up on a batch of {len(candidates)} users after {attempt} attempts: "
                        f"{first_line(str(exc))}; earlier batches are written and audited",
                        hint="the app holds these rows; re-run later, or raise "
                        "TOKENFIX_LOCK_TIMEOUT",
                    ) from exc
                # Exponential backoff with jitter, so two contenders do not retry in step.
                time.sleep(min(5.0, 0.1 * 2**attempt) * (0.5 + random.random()))
            except CONSTRAINT_ERRORS as exc:
                raise self._name_the_rejected_user(candidates, exc) from exc
        raise AssertionError("unreachable")

    def _write(self, candidates: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        ids = sorted(uuid.UUID(c["user_id"]) for c in candidates)
        with transaction(self.conn, self.settings, large_aggregate=True):
            self.conn.execute(self.model.compose("lock_profiles"), {"user_ids": ids})
            fresh = self._recompute(ids)
            decisions = [self._decide(c, fresh.get(c["user_id"])) for c in candidates]
            planned = [d for d in decisions if d.action is not None]
            # The fence: renewed in the same transaction as the writes, so a run whose lease
            # was taken over cannot commit. Renewed only now, after the lock waits, so the
            # heartbeat is not kept off the lease row for the whole batch.
            self.lease.renew(self.conn)
            written = self._execute_writes(planned)
        results: dict[str, dict[str, Any]] = {}
        for decision in decisions:
            if decision.action is None:
                results[decision.user_id] = decision.record
            elif decision.user_id in written:
                results[decision.user_id] = _as_written(decision, written[decision.user_id])
            else:
                results[decision.user_id] = {**decision.record, "skipped": "changed_concurrently"}
        return results

    def _recompute(self, ids: list[uuid.UUID]) -> dict[str, dict[str, Any]]:
        statement, params = with_recent(
            self.model, "recompute", Selection(user_ids=tuple(ids)), self.request.settle
        )
        with self.conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(statement, params).fetchall()
        return {str(row["user_id"]): {**row, "user_id": str(row["user_id"])} for row in rows}

    def _decide(self, candidate: dict[str, Any], fresh: dict[str, Any] | None) -> _Decision:
        uid = candidate["user_id"]
        left_alone = change_record(candidate, applied=False, skipped="changed_concurrently")
        if fresh is None or fresh["has_profile"] != candidate["has_profile"]:
            return _Decision(uid, None, left_alone)
        if fresh["recent"]:
            return _Decision(
                uid, None, change_record(fresh, applied=False, skipped="recent_activity")
            )
        in_step = fresh["has_profile"] and (
            fresh["current_remaining"] == fresh["expected_remaining"]
            and fresh["current_used"] == fresh["expected_used"]
        )
        if in_step:  # the app (or someone) fixed it meanwhile: nothing to write
            return _Decision(uid, None, left_alone)
        # Values read under lock: if the app changed the row since the plan, this is the re-read.
        action = "update" if fresh["has_profile"] else "insert"
        return _Decision(uid, action, change_record(fresh, applied=False, skipped=None), fresh)

    def _execute_writes(self, planned: list[_Decision]) -> dict[str, tuple[Any, Any]]:
        """Write the planned rows; what the database stored, by user, for those it wrote."""
        if not planned:
            return {}
        params = {
            "user_ids": [uuid.UUID(d.user_id) for d in planned],
            "actions": [d.action for d in planned],
            "before_remaining": [d.fresh["current_remaining"] for d in planned],
            "before_used": [d.fresh["current_used"] for d in planned],
            "after_remaining": [d.fresh["expected_remaining"] for d in planned],
            "after_used": [d.fresh["expected_used"] for d in planned],
            "run_id": self.lease.run_id,
            "tool_version": self.origin.tool_version,
            "host": self.origin.host,
        }
        statement = self.model.compose("write_batch", changes=audit.table(self.settings, "changes"))
        rows = self.conn.execute(statement, params).fetchall()
        return {str(row[0]): (row[1], row[2]) for row in rows}

    def _name_the_rejected_user(
        self, candidates: list[dict[str, Any]], original: psycopg.Error
    ) -> DatabaseProblem:
        """Replay the batch one user at a time (then roll it all back) to name the culprit."""
        culprit, error = None, original
        try:
            with (
                transaction(self.conn, self.settings) as conn,
                conn.transaction(force_rollback=True),
            ):
                for candidate in candidates:
                    try:
                        with conn.transaction():
                            self._probe_one(candidate)
                    except CONSTRAINT_ERRORS as exc:
                        culprit, error = candidate["user_id"], exc
                        break
        except psycopg.Error:
            pass
        constraint = error.diag.constraint_name or error.diag.column_name or "a constraint"
        table = error.diag.table_name or str(self.settings.profiles_table)
        who = f"user {culprit}" if culprit else f"a batch of {len(candidates)} users"
        return DatabaseProblem(
            f"writing {who} was rejected by {constraint} on {table}: "
            f"{first_line(error.diag.message_primary or str(error))}; that batch was rolled back",
            hint="earlier batches are written and audited; fix the row or the constraint, "
            "then re-run",
        )

    def _probe_one(self, candidate: dict[str, Any]) -> None:
        uid = uuid.UUID(candidate["user_id"])
        fresh = self._recompute([uid]).get(candidate["user_id"])
        if fresh is None:
            return
        decision = self._decide(candidate, fresh)
        if decision.action is not None:
            self._execute_writes([decision])


def _as_written(decision: _Decision, stored: tuple[Any, Any]) -> dict[str, Any]:
    """The change entry of a row the statement wrote, judged by what the database stored.

    A trigger or rule may store something else than what we wrote: the entry then carries
    `stored` (and needs attention). If what it stored is what the row held before, the write
    changed nothing: no update (no audit row), not applied.
    """
    intended = (decision.fresh["expected_remaining"], decision.fresh["expected_used"])
    record = {**decision.record, "applied": True, "skipped": None}
    if stored == intended:
        return record
    record["stored"] = {"tokens_remaining": stored[0], "tokens_used": stored[1]}
    before = (decision.fresh["current_remaining"], decision.fresh["current_used"])
    if decision.action == "update" and stored == before:
        record["applied"] = False
    return record


@dataclass
class _Decision:
    user_id: str
    action: str | None
    record: dict[str, Any]
    fresh: dict[str, Any] = field(default_factory=dict)
