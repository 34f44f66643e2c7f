"""The plan of a reconcile run (SPEC §4, §7): one streamed set-based pass finds every owner
whose status is not ok; a dry run reports them, a write run hands them to the writer.

The request, the plan and the run's outcome live here, below both the orchestration
(reconcile.py) and the write path (writer.py), so that imports run one way.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from psycopg.rows import dict_row

from tokenfix import keys
from tokenfix.db import Connection, transaction
from tokenfix.errors import BadInput
from tokenfix.fleet import SharedDrift, Summary, causes_for, with_causes
from tokenfix.model import BalanceModel, Selection, out_of_range_names_the_tables
from tokenfix.records import Amount, Candidate, Change, Counts, Pair, Skip
from tokenfix.spool import Spool


@dataclass(frozen=True)
class Request:
    selection: Selection
    dry_run: bool = True
    create_missing: bool = False
    settle: timedelta = timedelta(minutes=2)
    batch_size: int = 1000
    max_changes: int = 1000


@dataclass
class Plan:
    """The candidates of a run (owners whose status is not ok), in key order, on disk."""

    counts: Counts
    candidates: Spool[Candidate]
    warnings: list[str] = field(default_factory=list)
    """Things the operator should know that do not stop the run (shown on stderr)."""
    reads_used: bool = True
    summary: Summary = field(default_factory=Summary)
    """Totals read by the pass; the causes are added as the changes are made."""
    shared_drift: Amount | None = None
    """The remaining-only drift most drifting owners share (SPEC §12: the starting balance?)."""

    def close(self) -> None:
        self.candidates.close()


@dataclass
class Outcome:
    run_id: uuid.UUID | None
    dry_run: bool
    counts: Counts
    changes: Spool[Change] = field(repr=False)
    warnings: list[str] = field(default_factory=list)
    reads_used: bool = True
    """Whether the mapping has a `used` side (if not, used is neither compared nor shown)."""
    summary: Summary = field(default_factory=Summary)

    @property
    def unresolved(self) -> int:
        """Changes not (exactly) applied: drift or missing profiles left for a later run."""
        return sum(1 for change in self.changes if not change.resolved)

    def close(self) -> None:
        self.changes.close()

    def __enter__(self) -> Outcome:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def candidate(row: dict[str, Any], model: BalanceModel) -> Candidate:
    """A candidate from a row of `candidates` or `recompute`."""
    b = model.mapping.balance
    has_profile = bool(row["has_profile"])
    current = drift = None
    null_cache = False
    if has_profile:
        current = Pair.of(row["current_remaining"], row["current_used"] if b.used else None)
        drift = Pair.of(
            row["drift_remaining"] if b.remaining else None,
            row["drift_used"] if b.used else None,
        )
        null_cache = (b.remaining is not None and row["current_remaining"] is None) or (
            b.used is not None and row["current_used"] is None
        )
    return Candidate(
        key=str(row["key"]),
        has_profile=has_profile,
        current=current,
        expected=Pair.of(row["expected_remaining"], row["expected_used"]),
        drift=drift,
        recent=bool(row["recent"]),
        null_cache=null_cache,
    )


def unknown_keys(conn: Connection, model: BalanceModel, given: Sequence[str]) -> list[str]:
    """Given keys with neither a balance row nor a ledger row (typos, wrong database)."""
    with transaction(conn, model.settings, read_only=True):
        rows = conn.execute(model.unknown_keys(), {"keys": list(given)}).fetchall()
    return [str(row[0]) for row in rows]


def checked_keys(conn: Connection, model: BalanceModel, given: Sequence[str]) -> list[str]:
    with transaction(conn, model.settings, read_only=True):
        return keys.check(conn, given, model.shape.key)


def plan(conn: Connection, model: BalanceModel, request: Request) -> Plan:
    """One streamed set-based pass: every selected owner whose status is not ok."""
    statement, params = model.with_recent("candidates", request.selection, request.settle)
    counts = Counts()
    candidates: Spool[Candidate] = Spool()
    summary, shared = Summary(), SharedDrift()
    with (
        out_of_range_names_the_tables(model),
        transaction(conn, model.settings, read_only=True, large_aggregate=True),
    ):
        cursor = conn.cursor(row_factory=dict_row)
        for row in cursor.stream(statement, params):
            if row["is_total"]:
                counts.users_checked = int(row["users_checked"])
                summary.cached_total = Pair.of(
                    row["cached_remaining_total"], row["cached_used_total"]
                )
                summary.expected_total = Pair.of(
                    row["expected_remaining_total"], row["expected_used_total"]
                )
                continue
            found = candidate(row, model)
            candidates.append(found)
            shared.see(found)
            if found.has_profile:
                counts.users_with_drift += 1
            else:
                counts.missing_profiles += 1
        warnings = _plan_warnings(conn, model, request)
    reads_used = model.mapping.balance.used is not None
    if not reads_used:
        summary.cached_total = Pair(summary.cached_total.tokens_remaining, None)
    the_plan = Plan(counts, candidates, warnings, reads_used, summary)
    the_plan.shared_drift = shared.winner(counts.users_with_drift)
    if the_plan.shared_drift is not None:
        the_plan.warnings.append(_shared_drift_warning(model, the_plan, shared))
    return the_plan


def _shared_drift_warning(model: BalanceModel, plan: Plan, shared: SharedDrift) -> str:
    drift = plan.shared_drift
    assert drift is not None
    users = shared.counts[drift]
    suggested = model.starting_balance + drift
    return (
        f"{users:,} of {plan.counts.users_with_drift:,} drifting users are off by exactly "
        f"{drift:+,} remaining and nothing else: is the starting balance right? With "
        f"TOKENFIX_STARTING_BALANCE={suggested} (now {model.starting_balance}) they would be "
        "in step (cause starting_balance)"
    )


def _plan_warnings(conn: Connection, model: BalanceModel, request: Request) -> list[str]:
    warnings = []
    balance = model.mapping.balance
    if not model.shape.key_unique:
        warnings.append(
            f"{balance.table}.{balance.key} has no unique index: an owner with two balance rows "
            "is listed twice, and write runs are refused until it has one ('tokenfix doctor')"
        )
    if request.settle > timedelta(0):
        statement, params = model.future_rows()
        row = conn.execute(statement, params).fetchone()
        if row and row[0]:
            owners, latest = row
            tables = ", ".join(str(s.table) for s in model.mapping.ledgers)
            warnings.append(
                f"{owners:,} {'user has' if owners == 1 else 'users have'} ledger rows dated in "
                f"the future (the latest at {latest.isoformat(timespec='seconds')}): they stay "
                f"deferred (recent activity) until then; check the clock of whatever writes "
                f"{tables}"
            )
    return warnings


def _would_write(c: Candidate, request: Request) -> bool:
    return not c.recent and (c.has_profile or request.create_missing)


def check_brake(plan: Plan, request: Request) -> int:
    """The cron brake (SPEC §4): refuse a write run that would change too many rows."""
    planned = sum(1 for c in plan.candidates if _would_write(c, request))
    if request.max_changes and planned > request.max_changes:
        raise BadInput(
            f"this run would change {planned} profile rows, more than --max-changes "
            f"{request.max_changes}; nothing was written",
            hint="check a --dry-run first (is TOKENFIX_STARTING_BALANCE right?), then raise "
            "--max-changes, or pass 0 for no limit",
        )
    return planned


def skip_reason(c: Candidate, request: Request) -> Skip | None:
    """Why a candidate is not written, before any lock is taken (None: try to write it)."""
    if not c.has_profile and not request.create_missing:
        return "no_create_missing"
    if c.recent:
        return "recent_activity"
    if request.dry_run:
        return "dry_run"
    return None


def causes(
    conn: Connection, model: BalanceModel, candidates: Iterable[Candidate]
) -> dict[str, tuple[str, ...]]:
    """The cause codes of the plan's drifting candidates, all of them in one statement (one
    set-based pass, never a statement per batch: docs/performance.md), in its own read-only
    transaction. Owners without a code are left out."""
    # The drifting owners' ledger rows (about 100 an owner at the benchmark's scale) are
    # summed in hash aggregates: with the default 4MB of work_mem they spill. The planner's
    # estimate crosses jit_above_cost, yet compiling costs more than it saves on these rows.
    with transaction(conn, model.settings, read_only=True, large_aggregate=True):
        if conn.info.server_version >= 110000:  # jit exists from PostgreSQL 11
            conn.execute("SELECT set_config('jit', 'off', true)")
        return causes_for(conn, model, candidates)


def dry_run(conn: Connection, model: BalanceModel, plan: Plan, request: Request) -> Outcome:
    changes: Spool[Change] = Spool()
    outcome = Outcome(
        run_id=None,
        dry_run=True,
        counts=plan.counts,
        changes=changes,
        warnings=plan.warnings,
        reads_used=plan.reads_used,
        summary=plan.summary,
    )
    codes = causes(conn, model, plan.candidates)
    for c in plan.candidates:
        change = Change.of(c, skipped=skip_reason(c, request))
        change = with_causes(change, codes.get(c.key, ()), plan.shared_drift)
        plan.counts.tally(change)
        plan.summary.add(change)
        changes.append(change)
    plan.close()
    return outcome
