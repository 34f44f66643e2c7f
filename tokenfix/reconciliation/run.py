"""`reconcile`: find every owner whose cached balance disagrees with the ledger, and fix it safely.

Shape (docs/safety.md): one streamed, set-based pass over the ledger finds the candidates; each
batch
then locks its balance rows in key order, recomputes those owners from the ledger (by index)
in a fresh statement, re-checks the settle window, and writes with compare-and-set, all in one
transaction that also renews the writer lease and records the audit rows (writer.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from tokenfix.audit import trail
from tokenfix.audit.lease import WriterLease
from tokenfix.base.errors import BadInput, DatabaseProblem, Declined
from tokenfix.base.records import Amount, Counts
from tokenfix.config.settings import Settings
from tokenfix.db.session import Connection, require_primary, transaction
from tokenfix.ledger import visibility
from tokenfix.ledger.model import Selection
from tokenfix.ledger.model import load as load_model
from tokenfix.mapping.types import BalanceSide, Mapping, default_mapping
from tokenfix.reconciliation.plan import (
    Outcome,
    Plan,
    Request,
    check_brake,
    checked_keys,
    dry_run,
    unknown_keys,
)
from tokenfix.reconciliation.plan import plan as plan_candidates
from tokenfix.reconciliation.writer import Progress, Writer

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


Confirm = Callable[[Plan, int], bool]


def plan(
    conn: Connection,
    settings: Settings,
    request: Request,
    *,
    mapping: Mapping | None = None,
    starting_balance: Amount | None = None,
) -> Plan:
    """Every selected owner whose status is not ok, without writing (close() it after)."""
    warnings = visibility.read_warnings(conn, settings, mapping)
    model = load_model(conn, settings, mapping, starting_balance=starting_balance)
    the_plan = plan_candidates(conn, model, request)
    the_plan.warnings[:0] = warnings
    return the_plan


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
    on_warning: Callable[[str], None] | None = None,
    on_run: Callable[[uuid.UUID], None] | None = None,
) -> Outcome:
    """Check the selected owners and, unless a dry run, fix them under the writer lease.
    `on_warning` hears a warning that is known before the scan as soon as it is known (the
    plan's warnings, `on_plan`, come after it); `on_run` hears the run id once the run is
    recorded (an error after it belongs to that run)."""
    if request.defer_edited and (mapping or default_mapping(settings)).balance.changed_at is None:
        raise BadInput(
            "--defer-edited needs [balance] changed_at in the mapping (when a balance row last "
            'changed, e.g. changed_at = "updated_at"); nothing was read or written',
            hint="'tokenfix mapping > tokenfix.toml', add changed_at under [balance], then "
            "pass --mapping tokenfix.toml",
        )
    # Row-level security first (docs/monitoring.md): before any table is read, and a write run
    # refuses before its lease, its audit row or any write.
    warnings: list[str] = []
    if request.dry_run:
        warnings = visibility.read_warnings(conn, settings, mapping)
        for warning in warnings:
            if on_warning is not None:
                on_warning(warning)
    else:
        visibility.require_every_row(conn, settings, mapping)
    model = load_model(conn, settings, mapping, starting_balance=starting_balance)
    selection = request.selection
    if selection.excluded:
        # Before the lease and the audit schema: a line of an exclude file that is not a key
        # is bad input (BadKey names it), not a database error half-way through the run.
        checked_keys(conn, model, selection.excluded)
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
        the_plan = plan_candidates(conn, model, request)
        the_plan.warnings[:0] = warnings
        if on_plan:
            on_plan(the_plan)
        return dry_run(conn, model, the_plan, request, on_progress)

    require_primary(conn)
    if not model.shape.key_unique:
        raise _no_row_identity(model.mapping.balance)
    if request.create_missing and model.mapping.balance.create is None:
        raise BadInput(
            "--create-missing needs a [balance.create] section in the mapping: how a new "
            "balance row is made"
        )
    origin = trail.Origin.here()
    run_id = uuid.uuid4()
    with WriterLease(
        conn,
        settings,
        command="reconcile",
        run_id=run_id,
        origin=origin,
        table=model.mapping.balance.table,
    ) as lease:
        the_plan = plan_candidates(conn, model, request)
        the_plan.warnings[:0] = _mint_warnings(conn, settings, model.mapping)
        if on_plan:
            on_plan(the_plan)
        planned = check_brake(the_plan, request)
        writer = Writer(conn, model, request, lease, origin, on_progress=on_progress)
        if planned == 0:  # all deferred or not ours to create: no audit run for nothing
            return writer.apply(the_plan, run_id=None)
        if confirm is not None and not confirm(the_plan, planned):
            raise Declined("nothing written")
        try:
            trail.start_run(
                conn,
                settings,
                run_id=run_id,
                command="reconcile",
                origin=origin,
                options=_options(request),
                mapping=model.mapping,
            )
            if on_run is not None:
                on_run(run_id)
            outcome = writer.apply(the_plan, run_id=run_id)
            trail.finish_run(conn, settings, run_id, "completed", counts_of(outcome.counts))
        except BaseException as exc:
            lease.record_end(run_id, exc)
            raise
        return outcome


def _mint_warnings(conn: Connection, settings: Settings, mapping: Mapping) -> list[str]:
    """docs/doctor.md: before writing, the cheap catalog look at who else can write the ledger."""
    # Imported here: dry runs and diagnose never ask, and start-up counts (docs/performance.md).
    from tokenfix.health.mint import ledger_mint_risks, mint_warning

    with transaction(conn, settings, read_only=True):
        warning = mint_warning(ledger_mint_risks(conn, settings, mapping))
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


def _no_row_identity(balance: BalanceSide) -> DatabaseProblem:
    """Why a write run cannot name the balance row it changes, and the fix doctor gives (for
    snapshots never a key on the owner: it would forbid the table's history)."""
    if balance.latest is not None and balance.row_id is not None:
        return DatabaseProblem(
            f"{balance.table}.{balance.row_id} (row_id) has no unique index, alone or beside "
            f"{balance.key}: tokenfix cannot name the one row it changes; nothing was written",
            hint="map as row_id a column with a unique index (the table's primary key); "
            "'tokenfix doctor' checks it",
        )
    return DatabaseProblem(
        f"{balance.table}.{balance.key} has no unique index: tokenfix cannot tell which of "
        "an owner's rows is the balance, nor guard an insert; nothing was written",
        hint=f"ALTER TABLE {balance.table} ADD PRIMARY KEY ({balance.key}) after removing "
        "duplicates, if it holds one row per owner (history: map [balance] latest and row_id); "
        "'tokenfix doctor' checks it",
    )
