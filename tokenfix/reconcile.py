"""`reconcile`: find every user whose cached balance disagrees with the ledger, and fix it safely.

Shape (SPEC §7): one streamed, set-based pass over the ledger finds the candidates; each batch
then locks its profile rows in user_id order, recomputes those users from the ledger (by
index) in a fresh statement, re-checks the settle window, and writes with compare-and-set, all
in one transaction that also renews the writer lease and records the audit rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from tokenfix import audit, catalog
from tokenfix.db import Connection, require_primary, transaction
from tokenfix.doctor.mint import ledger_mint_risks, mint_warning
from tokenfix.errors import BadInput, DatabaseProblem, Declined
from tokenfix.lease import WriterLease
from tokenfix.model import BalanceModel, out_of_range_names_the_tables
from tokenfix.settings import Settings
from tokenfix.spool import Spool


@dataclass(frozen=True)
class Selection:
    """Which users a run checks: all, a list, and/or those active since a time."""

    user_ids: tuple[uuid.UUID, ...] | None = None
    since: datetime | timedelta | None = None


@dataclass(frozen=True)
class Request:
    selection: Selection
    dry_run: bool = True
    create_missing: bool = False
    settle: timedelta = timedelta(minutes=2)
    batch_size: int = 1000
    max_changes: int = 1000


@dataclass
class Counts:
    users_checked: int = 0
    users_with_drift: int = 0
    missing_profiles: int = 0
    users_updated: int = 0
    profiles_created: int = 0
    users_deferred: int = 0
    users_changed: int = 0


@dataclass
class Plan:
    """The candidates of a run (users whose status is not ok), in user_id order, on disk."""

    counts: Counts
    candidates: Spool
    warnings: list[str] = field(default_factory=list)
    """Things the operator should know that do not stop the run (shown on stderr)."""

    def planned_writes(self, request: Request) -> int:
        return sum(1 for c in self.candidates if _write_intended(c, request))


@dataclass
class Outcome:
    run_id: uuid.UUID | None
    dry_run: bool
    counts: Counts
    changes: Spool = field(repr=False)
    unresolved: int = 0
    """Changes not applied: drift or missing profiles left for a later run."""
    warnings: list[str] = field(default_factory=list)


def _selection_sql(
    model: BalanceModel, selection: Selection
) -> tuple[sql.Composable, sql.Composable, dict[str, Any]]:
    ledger: list[sql.Composable] = []
    profiles: list[sql.Composable] = []
    params: dict[str, Any] = {}
    if selection.user_ids is not None:
        params["user_ids"] = list(selection.user_ids)
        ledger.append(sql.SQL("u.user_id = ANY(%(user_ids)s)"))
        profiles.append(sql.SQL("p.user_id = ANY(%(user_ids)s)"))
    if selection.since is not None:
        params["since"] = selection.since
        moment = (
            sql.SQL("statement_timestamp() - %(since)s::interval")
            if isinstance(selection.since, timedelta)
            else sql.SQL("%(since)s::timestamptz")
        )
        # An array from an init plan, not IN (subquery): the planner then reads the few
        # recently active users' rows by the user_id index instead of scanning the ledger.
        recent_users = sql.SQL(
            "ARRAY(SELECT DISTINCT s.user_id FROM {usage} AS s WHERE s.created_at >= {moment})"
        ).format(usage=model.settings.usage_table.identifier, moment=moment)
        ledger.append(sql.SQL("u.user_id = ANY({})").format(recent_users))
        profiles.append(sql.SQL("p.user_id = ANY({})").format(recent_users))

    def both(parts: list[sql.Composable]) -> sql.Composable:
        return sql.SQL(" AND ").join(parts) if parts else sql.SQL("TRUE")

    return both(ledger), both(profiles), params


def balances_statement(
    model: BalanceModel, selection: Selection, settle: timedelta
) -> tuple[sql.Composed, dict[str, Any]]:
    """The expected-vs-cached comparison of the selected users, and its parameters."""
    ledger_selection, profile_selection, params = _selection_sql(model, selection)
    statement = model.compose(
        "balances", ledger_selection=ledger_selection, profile_selection=profile_selection
    )
    # No settle window: NULL matches no row, whatever the clocks say.
    params |= {**model.params(), "settle": settle if settle > timedelta(0) else None}
    return statement, params


def with_recent(
    model: BalanceModel, name: str, selection: Selection, settle: timedelta
) -> tuple[sql.Composed, dict[str, Any]]:
    """`candidates` or `recompute`: the comparison plus each user's `recent` flag."""
    balances, params = balances_statement(model, selection, settle)
    recent_users = model.compose("recent_users")
    return model.compose(name, balances=balances, recent_users=recent_users), params


def load_model(conn: Connection, settings: Settings) -> BalanceModel:
    with transaction(conn, settings, read_only=True):
        tables = catalog.load(conn, settings)
        catalog.require_balance_tables(tables, settings)
        catalog.check_starting_balance(tables, settings)
        return BalanceModel.load(conn, settings, tables)


def unknown_users(
    conn: Connection, model: BalanceModel, user_ids: Iterable[uuid.UUID]
) -> list[uuid.UUID]:
    """Given ids with neither a profile nor a ledger row (typos, wrong database)."""
    with transaction(conn, model.settings, read_only=True):
        rows = conn.execute(model.compose("unknown_users"), {"user_ids": list(user_ids)}).fetchall()
    return [row[0] for row in rows]


def plan(conn: Connection, model: BalanceModel, request: Request) -> Plan:
    """One streamed set-based pass: every selected user whose status is not ok."""
    statement, params = with_recent(model, "candidates", request.selection, request.settle)
    counts = Counts()
    candidates = Spool()
    with (
        out_of_range_names_the_tables(model),
        transaction(conn, model.settings, read_only=True, large_aggregate=True),
    ):
        cursor = conn.cursor(row_factory=dict_row)
        for row in cursor.stream(statement, params):
            if row["is_total"]:
                counts.users_checked = int(row["users_checked"])
                continue
            record = {key: row[key] for key in _CANDIDATE_KEYS}
            record["user_id"] = str(row["user_id"])
            candidates.append(record)
            if row["has_profile"]:
                counts.users_with_drift += 1
            else:
                counts.missing_profiles += 1
        warnings = _plan_warnings(conn, model, request)
    return Plan(counts=counts, candidates=candidates, warnings=warnings)


def _plan_warnings(conn: Connection, model: BalanceModel, request: Request) -> list[str]:
    warnings = []
    profiles = model.settings.profiles_table
    if not model.profiles_key_unique:
        warnings.append(
            f"{profiles}.user_id has no unique index: a user with two profile rows is listed "
            "twice, and write runs are refused until it has one ('tokenfix doctor')"
        )
    if request.settle > timedelta(0):
        row = conn.execute(model.compose("future_rows")).fetchone()
        if row and row[0]:
            users, latest = row
            warnings.append(
                f"{users:,} {'user has' if users == 1 else 'users have'} ledger rows dated in "
                "the future "
                f"(the latest at {latest.isoformat(timespec='seconds')}): they stay deferred "
                "(recent activity) until then; check the clock of whatever writes "
                f"{model.settings.usage_table}"
            )
    return warnings


_CANDIDATE_KEYS = (
    "user_id",
    "has_profile",
    "current_remaining",
    "current_used",
    "expected_remaining",
    "expected_used",
    "recent",
)


def _write_intended(candidate: dict[str, Any], request: Request) -> bool:
    return not candidate["recent"] and (candidate["has_profile"] or request.create_missing)


def check_brake(plan: Plan, request: Request) -> int:
    """The cron brake (SPEC §4): refuse a write run that would change too many rows."""
    planned = plan.planned_writes(request)
    if request.max_changes and planned > request.max_changes:
        raise BadInput(
            f"this run would change {planned} profile rows, more than --max-changes "
            f"{request.max_changes}; nothing was written",
            hint="check a --dry-run first (is TOKENFIX_STARTING_BALANCE right?), then raise "
            "--max-changes, or pass 0 for no limit",
        )
    return planned


def change_record(
    candidate: dict[str, Any], *, applied: bool, skipped: str | None
) -> dict[str, Any]:
    """A §5 `changes` entry."""
    has_profile = candidate["has_profile"]
    current = (
        {
            "tokens_remaining": candidate["current_remaining"],
            "tokens_used": candidate["current_used"],
        }
        if has_profile
        else None
    )
    expected = {
        "tokens_remaining": candidate["expected_remaining"],
        "tokens_used": candidate["expected_used"],
    }
    drift = (
        {
            "tokens_remaining": _difference(
                candidate["current_remaining"], candidate["expected_remaining"]
            ),
            "tokens_used": _difference(candidate["current_used"], candidate["expected_used"]),
        }
        if has_profile
        else None
    )
    return {
        "user_id": candidate["user_id"],
        "status": "drift" if has_profile else "missing_profile",
        "current": current,
        "expected": expected,
        "drift": drift,
        "applied": applied,
        "skipped": skipped,
    }


def _difference(cached: Any, expected: Any) -> Any:
    """cached - expected; None when the cache holds NULL (drift, but of no known size)."""
    return None if cached is None else cached - expected


def skip_reason(candidate: dict[str, Any], request: Request) -> str | None:
    """Why a candidate is not written, before any lock is taken (None: try to write it)."""
    if not candidate["has_profile"] and not request.create_missing:
        return "no_create_missing"
    if candidate["recent"]:
        return "recent_activity"
    if request.dry_run:
        return "dry_run"
    return None


def tally(counts: Counts, change: dict[str, Any]) -> None:
    skipped = change["skipped"]
    if change["applied"]:
        if change["status"] == "drift":
            counts.users_updated += 1
        else:
            counts.profiles_created += 1
    elif skipped == "recent_activity":
        counts.users_deferred += 1
    elif skipped == "changed_concurrently":
        counts.users_changed += 1


def dry_run(plan: Plan, request: Request) -> Outcome:
    changes = Spool()
    outcome = Outcome(run_id=None, dry_run=True, counts=plan.counts, changes=changes)
    outcome.warnings = plan.warnings
    for candidate in plan.candidates:
        change = change_record(candidate, applied=False, skipped=skip_reason(candidate, request))
        tally(plan.counts, change)
        changes.append(change)
        outcome.unresolved += 1
    return outcome


Confirm = Callable[[Plan, int], bool]
Progress = Callable[[int], None]


def reconcile(
    conn: Connection,
    settings: Settings,
    request: Request,
    *,
    confirm: Confirm | None = None,
    on_plan: Callable[[Plan], None] | None = None,
    on_progress: Progress | None = None,
) -> Outcome:
    """Check the selected users and, unless a dry run, fix them under the writer lease."""
    from tokenfix.writer import Writer

    model = load_model(conn, settings)
    if request.selection.user_ids:
        unknown = unknown_users(conn, model, request.selection.user_ids)
        if unknown:
            shown = ", ".join(str(u) for u in unknown[:3]) + (" ..." if len(unknown) > 3 else "")
            raise BadInput(f"unknown user id(s), with no profile and no ledger rows: {shown}")
    if request.dry_run:
        the_plan = plan(conn, model, request)
        if on_plan:
            on_plan(the_plan)
        return dry_run(the_plan, request)

    require_primary(conn)
    if not model.profiles_key_unique:
        raise DatabaseProblem(
            f"{settings.profiles_table}.user_id has no unique index: tokenfix cannot tell "
            "which of a user's profile rows is the balance, nor guard an insert; nothing "
            "was written",
            hint=f"ALTER TABLE {settings.profiles_table} ADD PRIMARY KEY (user_id) after "
            "removing duplicates; 'tokenfix doctor' checks it",
        )
    origin = audit.Origin.here()
    run_id = uuid.uuid4()
    with WriterLease(conn, settings, command="reconcile", run_id=run_id, origin=origin) as lease:
        the_plan = plan(conn, model, request)
        the_plan.warnings[:0] = _mint_warnings(conn, settings)
        if on_plan:
            on_plan(the_plan)
        planned = check_brake(the_plan, request)
        if planned == 0:  # all deferred or not ours to create: no audit run for nothing
            return Writer(conn, model, request, lease, origin).apply(the_plan, run_id=None)
        if confirm is not None and not confirm(the_plan, planned):
            raise Declined("nothing was written")
        writer = Writer(conn, model, request, lease, origin, on_progress=on_progress)
        try:
            audit.start_run(
                conn,
                settings,
                run_id=run_id,
                command="reconcile",
                origin=origin,
                options=_options(request),
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
        "all": selection.user_ids is None,
        "user_ids": len(selection.user_ids) if selection.user_ids is not None else None,
        "since": str(selection.since) if selection.since is not None else None,
        "create_missing": request.create_missing,
        "settle_seconds": request.settle.total_seconds(),
        "batch_size": request.batch_size,
        "max_changes": request.max_changes,
    }
