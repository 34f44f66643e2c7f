"""`reconcile`: find every owner whose cached balance disagrees with the ledger, and fix it safely.

Shape (SPEC §7): one streamed, set-based pass over the ledger finds the candidates; each batch
then locks its balance rows in key order, recomputes those owners from the ledger (by index)
in a fresh statement, re-checks the settle window, and writes with compare-and-set, all in one
transaction that also renews the writer lease and records the audit rows (writer.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from psycopg.rows import dict_row

from tokenfix import audit, keys
from tokenfix.db import Connection, require_primary, transaction
from tokenfix.doctor.mint import ledger_mint_risks, mint_warning
from tokenfix.errors import BadInput, DatabaseProblem, Declined
from tokenfix.lease import WriterLease
from tokenfix.mapping import Mapping
from tokenfix.model import BalanceModel, Selection, out_of_range_names_the_tables
from tokenfix.model import load as load_model
from tokenfix.records import Amount, Candidate, Change, Counts, Pair, Skip
from tokenfix.settings import Settings
from tokenfix.spool import Spool
from tokenfix.writer import Progress, Writer

__all__ = [
    "Outcome",
    "Plan",
    "Request",
    "Selection",
    "check_brake",
    "dry_run",
    "plan",
    "reconcile",
]


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
    if has_profile:
        current = Pair(row["current_remaining"], row["current_used"] if b.used else None)
        drift = Pair(
            row["drift_remaining"] if b.remaining else None,
            row["drift_used"] if b.used else None,
        )
    return Candidate(
        key=str(row["key"]),
        has_profile=has_profile,
        current=current,
        expected=Pair(row["expected_remaining"], row["expected_used"]),
        drift=drift,
        recent=bool(row["recent"]),
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
    with (
        out_of_range_names_the_tables(model),
        transaction(conn, model.settings, read_only=True, large_aggregate=True),
    ):
        cursor = conn.cursor(row_factory=dict_row)
        for row in cursor.stream(statement, params):
            if row["is_total"]:
                counts.users_checked = int(row["users_checked"])
                continue
            found = candidate(row, model)
            candidates.append(found)
            if found.has_profile:
                counts.users_with_drift += 1
            else:
                counts.missing_profiles += 1
        warnings = _plan_warnings(conn, model, request)
    reads_used = model.mapping.balance.used is not None
    return Plan(counts, candidates, warnings, reads_used)


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


def dry_run(plan: Plan, request: Request) -> Outcome:
    changes: Spool[Change] = Spool()
    outcome = Outcome(
        run_id=None,
        dry_run=True,
        counts=plan.counts,
        changes=changes,
        warnings=plan.warnings,
        reads_used=plan.reads_used,
    )
    for c in plan.candidates:
        change = Change.of(c, skipped=skip_reason(c, request))
        plan.counts.tally(change)
        changes.append(change)
    plan.close()
    return outcome


Confirm = Callable[[Plan, int], bool]


def reconcile(
    conn: Connection,
    settings: Settings,
    request: Request,
    *,
    mapping: Mapping | None = None,
    starting_balance: Amount | None = None,
    confirm: Confirm | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    on_progress: Progress | None = None,
) -> Outcome:
    """Check the selected owners and, unless a dry run, fix them under the writer lease."""
    model = load_model(conn, settings, mapping, starting_balance=starting_balance)
    selection = request.selection
    if selection.keys is not None:
        given = checked_keys(conn, model, selection.keys)
        selection = Selection(keys=tuple(dict.fromkeys(given)), since=selection.since,
                              excluded=selection.excluded)  # fmt: skip
        request = Request(**{**request.__dict__, "selection": selection})
        unknown = unknown_keys(conn, model, given)
        if unknown:
            shown = ", ".join(unknown[:3]) + (" ..." if len(unknown) > 3 else "")
            raise BadInput(f"unknown user id(s), with no profile and no ledger rows: {shown}")
    if request.dry_run:
        the_plan = plan(conn, model, request)
        if on_plan:
            on_plan(the_plan)
        return dry_run(the_plan, request)

    require_primary(conn)
    if not model.shape.key_unique:
        balance = model.mapping.balance
        raise DatabaseProblem(
            f"{balance.table}.{balance.key} has no unique index: tokenfix cannot tell which of "
            "an owner's rows is the balance, nor guard an insert; nothing was written",
            hint=f"ALTER TABLE {balance.table} ADD PRIMARY KEY ({balance.key}) after removing "
            "duplicates; 'tokenfix doctor' checks it",
        )
    if request.create_missing and model.mapping.balance.create is None:
        raise BadInput(
            "--create-missing needs a [balance.create] section in the mapping: how a new "
            "balance row is made"
        )
    origin = audit.Origin.here()
    run_id = uuid.uuid4()
    with WriterLease(conn, settings, command="reconcile", run_id=run_id, origin=origin) as lease:
        the_plan = plan(conn, model, request)
        the_plan.warnings[:0] = _mint_warnings(conn, settings)
        if on_plan:
            on_plan(the_plan)
        planned = check_brake(the_plan, request)
        writer = Writer(conn, model, request, lease, origin, on_progress=on_progress)
        if planned == 0:  # all deferred or not ours to create: no audit run for nothing
            return writer.apply(the_plan, run_id=None)
        if confirm is not None and not confirm(the_plan, planned):
            raise Declined("nothing was written")
        try:
            audit.start_run(
                conn,
                settings,
                run_id=run_id,
                command="reconcile",
                origin=origin,
                options=_options(request),
                mapping=model.mapping,
            )
            outcome = writer.apply(the_plan, run_id=run_id)
            audit.finish_run(conn, settings, run_id, "completed", counts_of(outcome.counts))
        except BaseException as exc:
            lease.record_end(run_id, exc)
            raise
        return outcome


def _mint_warnings(conn: Connection, settings: Settings) -> list[str]:
    """SPEC §11: before writing, the cheap catalog look at who else can write the ledger."""
    with transaction(conn, settings, read_only=True):
        warning = mint_warning(ledger_mint_risks(conn, settings))
    return [warning] if warning else []


def counts_of(counts: Counts) -> dict[str, int]:
    return {
        "users_checked": counts.users_checked,
        "users_updated": counts.users_updated,
        "profiles_created": counts.profiles_created,
        "users_deferred": counts.users_deferred,
        "users_changed": counts.users_changed,
    }


def _options(request: Request) -> dict[str, Any]:
    selection = request.selection
    return {
        "all": selection.keys is None,
        "user_ids": len(selection.keys) if selection.keys is not None else None,
        "since": str(selection.since) if selection.since is not None else None,
        "create_missing": request.create_missing,
        "settle_seconds": request.settle.total_seconds(),
        "batch_size": request.batch_size,
        "max_changes": request.max_changes,
    }
