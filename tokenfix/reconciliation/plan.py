"""The plan of a reconcile run (docs/commands.md, docs/safety.md): one streamed set-based pass
finds every owner
whose status is not ok; a dry run reports them, a write run hands them to the writer.

The request, the plan and the run's outcome live here, below both the orchestration
(reconcile.py) and the write path (writer.py), so that imports run one way.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from tokenfix.base.errors import BadInput
from tokenfix.base.records import Amount, Candidate, Change, Counts, LedgerSums, Pair, Skip, exact
from tokenfix.base.spool import Spool
from tokenfix.db.session import Connection, transaction
from tokenfix.diagnosis.fleet import SharedDrift, Summary, causes_for, with_causes
from tokenfix.ledger import citus, keys, lotstream, periodcauses
from tokenfix.ledger.fitting import unwritable
from tokenfix.ledger.model import BalanceModel, Selection, out_of_range_names_the_tables


@dataclass(frozen=True)
class Request:
    selection: Selection
    dry_run: bool = True
    create_missing: bool = False
    settle: timedelta = timedelta(minutes=2)
    batch_size: int = 1000
    max_changes: int = 1000
    defer_edited: bool = False
    """Leave alone caches above expected that changed after their newest ledger row."""
    max_changes_source: str = "--max-changes"
    """Where the limit was set, as an error names it (`TOKENFIX_MAX_CHANGES in /etc/x.env`)."""


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
    """The remaining-only drift most drifting owners share (docs/monitoring.md: the starting
    balance?)."""
    edited: set[str] = field(default_factory=set)
    """--defer-edited: candidates whose cache was edited after their ledger (left alone)."""

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
        row_id=row.get("row_id"),
        causes=tuple(row.get("causes", ())),
        sums=_sums(row) if has_profile else None,
    )


def _sums(row: dict[str, Any]) -> LedgerSums | None:
    """The causes' evidence the pass summed beside the balance (candidates.sql), if it did."""
    if row.get("granted") is None:  # a statement that gathers none (recompute, lots)
        return None
    return LedgerSums(
        starting=exact(row["starting"]),
        granted=exact(row["granted"]),
        deducted=exact(row["deducted"]),
        override_difference=exact(row["override_difference"]),
        failed_charge_tokens=exact(row["failed_charge_tokens"]),
        failed_charge_tokens_priced=exact(row["failed_charge_tokens_priced"]),
        early=bool(row["early"]),
    )


def unknown_keys(conn: Connection, model: BalanceModel, given: Sequence[str]) -> list[str]:
    """Given keys with neither a balance row nor a ledger row (typos, wrong database)."""
    with transaction(conn, model.settings, read_only=True):
        rows = conn.execute(model.unknown_keys(), {"keys": list(given)}).fetchall()
    return [str(row[0]) for row in rows]


def checked_keys(conn: Connection, model: BalanceModel, given: Sequence[str]) -> list[str]:
    with transaction(conn, model.settings, read_only=True):
        return keys.check(conn, given, model.shape.key)


def pass_statement(model: BalanceModel, request: Request) -> tuple[sql.Composed, dict[str, Any]]:
    """The all-owners pass. Citus (docs/citus.md): the comparison summed and filtered on the
    shards and combined on the coordinator, read once."""
    name = "candidates_sharded" if model.sharded else "candidates"
    return model.with_recent(name, request.selection, request.settle)


def plan(conn: Connection, model: BalanceModel, request: Request) -> Plan:
    """One streamed set-based pass: every selected owner whose status is not ok."""
    statement, params = pass_statement(model, request)
    counts = Counts()
    candidates: Spool[Candidate] = Spool()
    summary, shared = Summary(), SharedDrift()
    unfit: list[tuple[str, str]] = []
    with (
        out_of_range_names_the_tables(model),
        transaction(conn, model.settings, read_only=True, large_aggregate=True),
    ):
        if model.sharded:
            citus.work_mem_on_workers(conn, model.settings.work_mem)
        model.without_memoize(conn)
        cursor = conn.cursor(row_factory=dict_row)
        rows: Iterable[dict[str, Any]] = (
            lotstream.candidates(conn, model, request.selection, request.settle)
            if model.mapping.lots  # folded one owner at a time (tokenfix.ledger.lotstream)
            else _sharded_rows(cursor.execute(statement, params).fetchone())
            if model.sharded
            else cursor.stream(statement, params)
        )
        for row in rows:
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
            reason = unwritable(model, found)
            if reason is not None:
                unfit.append((found.key, reason))
            shared.see(found)
            if found.has_profile:
                counts.users_with_drift += 1
            else:
                counts.missing_profiles += 1
        warnings = _plan_warnings(conn, model, request)
    reads_used = model.mapping.balance.used is not None
    if not reads_used:
        summary.cached_total = Pair(summary.cached_total.tokens_remaining, None)
    if unfit:
        warnings.append(_unwritable_warning(unfit))
    the_plan = Plan(counts, candidates, warnings, reads_used, summary)
    the_plan.shared_drift = shared.winner(counts.users_with_drift)
    if the_plan.shared_drift is not None:
        the_plan.warnings.append(_shared_drift_warning(model, the_plan, shared))
    if request.defer_edited:
        for batch in candidates.batches(CHANGES_BATCH):
            the_plan.edited |= edited_keys(conn, model, batch, request)
    return the_plan


_ROW_COLUMNS = (
    "has_profile",
    "current_remaining",
    "current_used",
    "expected_remaining",
    "expected_used",
    "drift_remaining",
    "drift_used",
    "row_id",
    "starting",
    "granted",
    "deducted",
    "override_difference",
    "failed_charge_tokens",
    "failed_charge_tokens_priced",
    "early",
)
_TOTAL_COLUMNS = (
    "users_checked",
    "cached_remaining_total",
    "cached_used_total",
    "expected_remaining_total",
    "expected_used_total",
)


def _sharded_rows(found: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    """The rows `candidates` streams, from the one row of `candidates_sharded`: the owners
    whose status is not ok in the key's own order, then the totals."""
    assert found is not None  # an aggregate without GROUP BY returns one row
    recent = set(found["recent_keys"] or ())
    for position in found["key_order"] or ():
        at = position - 1
        key = found["key_text"][at]
        row = {name: found[name][at] for name in _ROW_COLUMNS}
        yield {**row, "is_total": False, "key": key, "recent": key in recent}
    yield {"is_total": True, **{name: found[name] for name in _TOTAL_COLUMNS}}


def _unwritable_warning(unfit: list[tuple[str, str]]) -> str:
    shown = "; ".join(f"{key}: {reason}" for key, reason in unfit[:5])
    more = f"; and {len(unfit) - 5:,} more" if len(unfit) > 5 else ""
    owners = (
        "1 user's expected balance"
        if len(unfit) == 1
        else f"{len(unfit):,} users' expected balances"
    )
    return (
        f"{owners} cannot be written ({shown}{more}): a write run leaves them as they are "
        "(skipped: unwritable); check their ledger rows for extreme amounts"
    )


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
    """The cron brake (docs/commands.md): refuse a write run that would change too many rows."""
    planned = sum(
        1 for c in plan.candidates if _would_write(c, request) and c.key not in plan.edited
    )
    if request.max_changes and planned > request.max_changes:
        source, limit = request.max_changes_source, request.max_changes
        named = f"{source} {limit}" if source.startswith("--") else f"{limit} ({source})"
        raise BadInput(
            f"this run would change {planned} profile rows, more than {named}; nothing was written",
            hint="check a --dry-run first (is TOKENFIX_STARTING_BALANCE right?), then raise "
            "the limit (--max-changes wins over the setting), or pass 0 for no limit",
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


CHANGES_BATCH = 1000
"""Drifting owners are handled this many at a time (progress, --defer-edited)."""


def edited_keys(
    conn: Connection, model: BalanceModel, batch: list[Candidate], request: Request
) -> set[str]:
    """With --defer-edited: the batch's owners whose cache is above expected and whose balance
    row changed more than --settle after their newest ledger row (a hand edit, say a support
    credit: a human looks, the run does not take it back). A cache that stopped following
    (its row older than the newest charge) is not one of them."""
    above = [
        c.key
        for c in batch
        if request.defer_edited
        and c.has_profile
        and c.drift is not None
        and c.drift.tokens_remaining is not None
        and c.drift.tokens_remaining > 0
    ]
    if not above:
        return set()
    with transaction(conn, model.settings, read_only=True):
        rows = conn.execute(
            model.edited_after_ledger(), {"keys": above, "edit_settle": request.settle}
        ).fetchall()
    return {str(row[0]) for row in rows}


def causes(
    conn: Connection, model: BalanceModel, candidates: Iterable[Candidate]
) -> dict[str, tuple[str, ...]]:
    """The cause codes of the plan's drifting candidates, from the evidence the plan's pass
    gathered with their balances; the few owners whose causes need rows read again are read
    by one statement for all of them (never a statement per batch: docs/performance.md), in
    its own read-only transaction. Owners without a code are left out."""
    # Those owners' ledger rows (about 100 an owner at the benchmark's scale) are summed and
    # sorted: with the default 4MB of work_mem they spill. The planner's estimate crosses
    # jit_above_cost, yet compiling costs more than it saves on these rows.
    if model.mapping.lots:  # the causes of sums do not hold: the fold named its own
        return {c.key: c.causes for c in candidates if c.causes}
    if model.mapping.balance.has_periods:  # the one-pass evidence does not know periods
        # Their rows lie all over the ledger: with 4MB the bitmap of a batch of 1,000 owners
        # turns lossy and every row of most pages is tested again (0.75 s instead of 0.25 s at
        # the benchmark's scale, docs/performance.md).
        with transaction(conn, model.settings, read_only=True, large_aggregate=True):
            return periodcauses.period_not_reset(conn, model, candidates)
    with transaction(conn, model.settings, read_only=True, large_aggregate=True):
        if model.sharded:
            citus.work_mem_on_workers(conn, model.settings.work_mem)
        if conn.info.server_version >= 110000:  # jit exists from PostgreSQL 11
            conn.execute("SELECT set_config('jit', 'off', true)")
        model.without_memoize(conn)
        return causes_for(conn, model, candidates)


def dry_run(
    conn: Connection,
    model: BalanceModel,
    plan: Plan,
    request: Request,
    on_progress: Callable[[int], None] | None = None,
) -> Outcome:
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
    for batch in plan.candidates.batches(CHANGES_BATCH):
        for c in batch:
            edited = c.key in plan.edited
            reason = "edited_after_ledger" if edited else skip_reason(c, request)
            change = Change.of(c, skipped=reason)
            change = with_causes(change, codes.get(c.key, ()), plan.shared_drift)
            plan.counts.tally(change)
            plan.summary.add(change)
            changes.append(change)
        if on_progress is not None:
            on_progress(len(batch))
    plan.close()
    return outcome
