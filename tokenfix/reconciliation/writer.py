"""The write path of `reconcile` (docs/safety.md): batches, locks, compare-and-set, audit, retries.

Each batch is one transaction: lock the batch's balance rows in key order, recompute those
owners from the ledger in a fresh statement (so it sees everything the app committed before we
got the locks), re-check the settle window, renew the writer lease (fencing), then write with
compare-and-set and record every written row in the audit trail. A failure rolls the whole
batch back; lock timeouts, deadlocks and serialization failures are retried.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from tokenfix.audit import trail
from tokenfix.audit.lease import WriterLease
from tokenfix.base.errors import DatabaseProblem, first_line
from tokenfix.base.records import Candidate, Change, Pair
from tokenfix.base.spool import Spool
from tokenfix.base.words import plural
from tokenfix.db import yielding
from tokenfix.db.session import Connection, transaction
from tokenfix.diagnosis.fleet import with_causes
from tokenfix.ledger import lotstream
from tokenfix.ledger.fitting import unwritable
from tokenfix.ledger.model import BalanceModel, Selection
from tokenfix.reconciliation.plan import Outcome, Plan, Request, candidate, causes, skip_reason

RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected, pg_errors.LockNotAvailable)
MAX_ATTEMPTS = 5
CONSTRAINT_ERRORS = (psycopg.IntegrityError, pg_errors.NumericValueOutOfRange)

Progress = Callable[[int], None]


@dataclass(frozen=True)
class _Decision:
    """What a batch does with one candidate, decided under lock."""

    change: Change
    """The entry if nothing is written (skipped, or left alone)."""
    action: str | None = None
    """update / insert, or None: nothing to write."""
    fresh: Candidate | None = None
    before: dict[str, Any] | None = None
    """The written columns as read under lock: the compare-and-set's expectation."""


@dataclass
class Writer:
    """Applies a plan batch by batch under the writer lease (docs/safety.md)."""

    conn: Connection
    model: BalanceModel
    request: Request
    lease: WriterLease
    origin: trail.Origin
    on_progress: Progress | None = None
    give_way: yielding.GiveWay | None = None
    """How our batches give way in a lock cycle with the app (decided once, on first use)."""

    def apply(self, plan: Plan, *, run_id: uuid.UUID | None) -> Outcome:
        """Write every batch; `run_id` is None when the plan writes nothing (no audit run)."""
        changes: Spool[Change] = Spool()
        outcome = Outcome(
            run_id, False, plan.counts, changes, plan.warnings, plan.reads_used, plan.summary
        )
        # The causes of the drift the plan found (docs/monitoring.md: judged whether or not fixed),
        # for
        # The causes of the drift the plan found (judged whether or not fixed), for
        # every candidate in one statement, read before any write transaction opens.
        codes = causes(self.conn, self.model, plan.candidates)
        for batch in plan.candidates.batches(self.request.batch_size):
            results: dict[str, Change] = {}
            to_write = []
            for c in batch:
                edited = c.key in plan.edited
                reason = "edited_after_ledger" if edited else skip_reason(c, self.request)
                if reason is None:
                    to_write.append(c)
                else:
                    results[c.key] = Change.of(c, skipped=reason)
            if to_write:
                results |= self._write_with_retries(to_write)
            for c in batch:
                change = with_causes(results[c.key], codes.get(c.key, ()), plan.shared_drift)
                outcome.counts.tally(change)
                outcome.summary.add(change)
                changes.append(change)
            if self.on_progress:
                self.on_progress(len(batch))
        plan.close()
        return outcome

    def _way(self) -> yielding.GiveWay:
        if self.give_way is None:
            with transaction(self.conn, self.model.settings, read_only=True):
                self.give_way = yielding.decide(self.conn, self.model.settings)
        return self.give_way

    def _write_with_retries(self, candidates: list[Candidate]) -> dict[str, Change]:
        attempts = self._way().attempts
        for attempt in range(1, attempts + 1):
            try:
                return self._write(candidates)
            except RETRYABLE as exc:
                if attempt == attempts:
                    raise DatabaseProblem(
                        f"gave up on a batch of {plural(len(candidates), 'user')} after "
                        f"{attempt} attempts: "
                        f"{first_line(str(exc))}; earlier batches are written and audited",
                        hint="the app holds these rows; re-run later, or raise "
                        "TOKENFIX_LOCK_TIMEOUT",
                    ) from exc
                # Exponential backoff with jitter, so two contenders do not retry in step.
                time.sleep(min(5.0, 0.1 * 2**attempt) * (0.5 + random.random()))
            except pg_errors.NumericValueOutOfRange as exc:
                # Only the owners whose value does not fit are left alone; the others are
                # written (one owner must not block every owner after it, night after night).
                unfit = self._unwritable_among(candidates)
                if not unfit:
                    raise self._name_the_rejected_user(candidates, exc) from exc
                results = {
                    c.key: Change.of(c, skipped="unwritable").but(reason=unfit[c.key])
                    for c in candidates
                    if c.key in unfit
                }
                rest = [c for c in candidates if c.key not in unfit]
                return results | (self._write_with_retries(rest) if rest else {})
            except CONSTRAINT_ERRORS as exc:
                raise self._name_the_rejected_user(candidates, exc) from exc
        raise AssertionError("unreachable")

    def _unwritable_among(self, candidates: list[Candidate]) -> dict[str, str]:
        """The owners whose write alone is out of range (each tried, then all rolled back),
        with the database's reason."""
        found: dict[str, str] = {}
        table = self.model.mapping.balance.table
        try:
            with (
                transaction(self.conn, self.model.settings) as conn,
                conn.transaction(force_rollback=True),
            ):
                for c in candidates:
                    try:
                        with conn.transaction():
                            self._probe_one(c)
                    except pg_errors.NumericValueOutOfRange as exc:
                        reason = first_line(exc.diag.message_primary or str(exc))
                        found[c.key] = f"{reason} (writing {table})"
                    except CONSTRAINT_ERRORS:
                        continue  # not this one's range: the batch's own error names it
        except psycopg.Error:
            if self.conn.broken:
                raise
        return found

    def _write(self, candidates: list[Candidate]) -> dict[str, Change]:
        settings = self.model.settings
        with transaction(self.conn, settings, large_aggregate=True):
            befores = self._lock([c.key for c in candidates])
            fresh = self._recompute([c.key for c in candidates])
            decisions = [self._decide(c, fresh.get(c.key), befores.get(c.key)) for c in candidates]
            planned = [d for d in decisions if d.action is not None]
            # The fence: renewed in the same transaction as the writes, so a run whose lease
            # was taken over cannot commit. Renewed only now, after the lock waits, so the
            # heartbeat is not kept off the lease row for the whole batch.
            self.lease.renew(self.conn)
            written = self._execute_writes(planned)
        results: dict[str, Change] = {}
        for decision in decisions:
            key = decision.change.key
            if decision.action is None:
                results[key] = decision.change
            elif key in written:
                results[key] = _as_written(decision, written[key], self._reads)
            else:
                results[key] = decision.change.but(skipped="changed_concurrently")
        return results

    @property
    def _reads(self) -> Pair:
        """Which sides the mapping reads: a 1 for each (a marker, not an amount)."""
        balance = self.model.mapping.balance
        return Pair(1 if balance.remaining else None, 1 if balance.used else None)

    def _lock(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        # In key order, giving way to the app in a lock cycle (yielding.py).
        with yielding.lock_step(self.conn, self.model.settings, self._way()):
            rows = self.model.lock_rows(self.conn, keys)
        return {str(row[0]): row[1] for row in rows}

    def _recompute(self, keys: list[str]) -> dict[str, tuple[Candidate, bool]]:
        """Each owner as the ledger says now, and whether it still needs attention."""
        selection = Selection(keys=tuple(keys))
        if self.model.mapping.lots:  # folded one owner at a time (tokenfix.ledger.lotstream)
            owners = lotstream.owners(
                self.conn, self.model, selection, self.request.settle, stream=False
            )
            rows = [lotstream.comparison(owner, self.model) for owner in owners]
        else:
            statement, params = self.model.with_recent("recompute", selection, self.request.settle)
            with self.conn.cursor(row_factory=dict_row) as cur:
                rows = cur.execute(statement, params).fetchall()
        found = ((candidate(row, self.model), bool(row["attention"])) for row in rows)
        return {c.key: (c, attention) for c, attention in found}

    def _decide(
        self,
        planned: Candidate,
        fresh: tuple[Candidate, bool] | None,
        before: dict[str, Any] | None,
    ) -> _Decision:
        left_alone = _Decision(Change.of(planned, skipped="changed_concurrently"))
        if fresh is None or fresh[0].has_profile != planned.has_profile:
            return left_alone
        now, attention = fresh
        if planned.row_id is not None and (before or {}).get("tf_row_id") != planned.row_id:
            # Snapshots: a newer row became the owner's balance since the plan read it.
            return _Decision(Change.of(planned, skipped="newer_snapshot"))
        if now.recent:
            return _Decision(Change.of(now, skipped="recent_activity"))
        if not attention:
            return left_alone  # the app (or someone) fixed it meanwhile: nothing to write
        reason = unwritable(self.model, now)
        if reason is not None:
            return _Decision(Change.of(now, skipped="unwritable").but(reason=reason))
        # Values read under lock: if the app changed the row since the plan, this is the re-read.
        action = "update" if now.has_profile else "insert"
        return _Decision(Change.of(now, skipped=None), action, now, before)

    def _execute_writes(self, planned: list[_Decision]) -> dict[str, tuple[Any, Any]]:
        """Write the planned rows; what the database stored, by owner, for those it wrote."""
        if not planned:
            return {}
        params = {
            "keys": [d.change.key for d in planned],
            "actions": [d.action for d in planned],
            "befores": [Jsonb(d.before) if d.before is not None else None for d in planned],
            "expected_remaining": [_text(d.change.expected.tokens_remaining) for d in planned],
            "expected_used": [_text(d.change.expected.tokens_used) for d in planned],
            "run_id": self.lease.run_id,
            "tool_version": self.origin.tool_version,
            "host": self.origin.host,
            **self.model.mapping.params(),
        }
        statement = self.model.write_batch(
            trail.table(self.model.settings, "changes"),
            creates=any(d.action == "insert" for d in planned),
        )
        rows = self.conn.execute(statement, params).fetchall()
        return {str(row[0]): (row[1], row[2]) for row in rows}

    def _name_the_rejected_user(
        self, candidates: list[Candidate], original: psycopg.Error
    ) -> DatabaseProblem:
        """Replay the batch one owner at a time (then roll it all back) to name the culprit."""
        culprit, error = None, original
        try:
            with (
                transaction(self.conn, self.model.settings) as conn,
                conn.transaction(force_rollback=True),
            ):
                for c in candidates:
                    try:
                        with conn.transaction():
                            self._probe_one(c)
                    except CONSTRAINT_ERRORS as exc:
                        culprit, error = c.key, exc
                        break
        except psycopg.Error:
            pass
        constraint = error.diag.constraint_name or error.diag.column_name or "a constraint"
        table = error.diag.table_name or str(self.model.mapping.balance.table)
        who = f"user {culprit}" if culprit else f"a batch of {plural(len(candidates), 'user')}"
        return DatabaseProblem(
            f"writing {who} was rejected by {constraint} on {table}: "
            f"{first_line(error.diag.message_primary or str(error))}; that batch was rolled back",
            hint="earlier batches are written and audited; fix the row or the constraint, "
            "then re-run",
        )

    def _probe_one(self, planned: Candidate) -> None:
        before = self._lock([planned.key]).get(planned.key)
        fresh = self._recompute([planned.key]).get(planned.key)
        decision = self._decide(planned, fresh, before)
        if decision.action is not None:
            self._execute_writes([decision])


def _as_written(decision: _Decision, stored: tuple[Any, Any], reads: Pair) -> Change:
    """The change entry of a row the statement wrote, judged by what the database stored.

    A trigger or rule may store something else than what we wrote: the entry then carries
    `stored` (and needs attention). If what it stored is what the row held before, the write
    changed nothing: no update (no audit row), not applied. `reads` says which sides the
    mapping reads (a side it does not read is never compared).
    """
    change = decision.change.but(applied=True, skipped=None)
    kept = Pair.of(stored[0], stored[1])
    if _same(kept, change.expected, reads):
        return change
    change = change.but(stored=kept)
    before = decision.fresh.current if decision.fresh is not None else None
    if decision.action == "update" and before is not None and _same(kept, before, reads):
        change = change.but(applied=False)
    return change


def _text(amount: Any) -> str | None:
    """An amount as its exact decimal text (an int and a Decimal mix in one array)."""
    return None if amount is None else str(amount)


def _same(a: Pair, b: Pair, reads: Pair) -> bool:
    remaining = reads.tokens_remaining is None or a.tokens_remaining == b.tokens_remaining
    used = reads.tokens_used is None or a.tokens_used == b.tokens_used
    return remaining and used
