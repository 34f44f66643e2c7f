"""`history` and `revert` output."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tokenfix.audit.history import OwnerHistory, RunHistory
from tokenfix.audit.revert import RevertOutcome
from tokenfix.audit.trail import RunSummary
from tokenfix.base.records import AuditedChange, RevertChange
from tokenfix.base.words import plural

LEFT_ALONE = {
    "changed_since": "left alone: changed since the run",
    "already_restored": "left alone: already holds the values from before the run",
    "referenced": "left alone: other rows reference it",
    "unverifiable": "left alone: written by an older tokenfix that kept no full row",
}
WOULD = {"restore": "would restore", "delete": "would delete", "insert": "would re-create"}


def _written(run: RunSummary) -> str:
    """What the run wrote, from its audit rows (a failed run wrote its earlier batches)."""
    if run.command == "revert":
        return (
            f"{run.rows_updated} restored, {run.rows_deleted} del., {run.rows_inserted} re-created"
        )
    return f"{run.rows_updated} upd., {run.rows_inserted} new"


def render_history(console: Console, runs: list[RunSummary]) -> None:
    if not runs:
        console.print("No writing runs recorded yet.")
        return
    table = Table(show_edge=False)
    for name in ("run_id", "command", "started", "status", "by", "rows", "left", "note"):
        table.add_column(name, no_wrap=name != "note")
    for run in runs:
        note = ""
        if run.reverts_run_id:
            note = f"reverts {run.reverts_run_id}"
        if run.reverted_by:
            note = f"reverted by {run.reverted_by}"
        if run.error:
            note = run.error
        if run.reason:
            note = f"{run.reason}; {note}" if note else run.reason
        status_style = {"completed": "green", "failed": "red", "abandoned": "red"}.get(
            run.status, "yellow"
        )
        table.add_row(
            str(run.run_id),
            run.command,
            run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            Text(run.status, style=status_style),
            f"{run.db_role}@{run.host}",
            _written(run),
            str((run.users_changed or 0) + (run.users_deferred or 0)),
            note,
        )
    console.print(table)


def render_revert(console: Console, outcome: RevertOutcome) -> None:
    table = Table(show_edge=False)
    for name in ("user_id", "action", "run left", "now", "restore to", "result"):
        table.add_column(name, no_wrap=True)
    for change in outcome.changes:
        if change.applied:
            result = Text("done", style="green")
        elif change.skipped == "dry_run":
            result = Text(WOULD[change.action], style="green")
        else:
            left = LEFT_ALONE[change.skipped or "changed_since"]
            result = Text(f"would be {left}" if outcome.dry_run else left, style="yellow")
        table.add_row(
            change.key,
            change.action,
            _values(change.run_left),
            _values(change.current),
            _restore_cell(change),
            result,
        )
    if outcome.changes.count:
        console.print(table)
    done = outcome.rows_restored + outcome.profiles_deleted + outcome.profiles_recreated
    rows = f" of user {outcome.user}" if outcome.user else ""
    counts = (
        f"{outcome.rows_restored} restored, {outcome.profiles_deleted} created profiles deleted,"
        f" {outcome.profiles_recreated} re-created"
    )
    if outcome.dry_run:
        console.print(
            f"Dry run: would revert {plural(done, 'row')}{rows} of run {outcome.reverted_run_id}"
            f" ({counts}); {outcome.rows_left_alone} would be left alone. Nothing was written.",
            soft_wrap=True,
        )
        return
    line = (
        f"Reverted {plural(done, 'row')}{rows} of run {outcome.reverted_run_id}"
        f" ({counts}); {outcome.rows_left_alone} left alone."
    )
    if outcome.run_id:
        line += f" This revert is run {outcome.run_id}."
    console.print(line, soft_wrap=True)


def render_owner_history(console: Console, history: OwnerHistory) -> None:
    if not history.changes:
        console.print(f"No changes recorded for user {history.key}.")
        return
    table = Table(show_edge=False, title=f"Changes to user {history.key}, newest first")
    for name in ("changed", "run_id", "command", "action", "before", "after", "note"):
        table.add_column(name, no_wrap=name != "note")
    for change in history.changes:
        table.add_row(
            change.changed_at.strftime("%Y-%m-%d %H:%M:%S"),
            str(change.run_id),
            change.command,
            change.action,
            _values(change.before),
            _values(change.after),
            _note(change),
        )
    console.print(table)


def render_run_history(console: Console, history: RunHistory) -> None:
    run = history.run
    rows = f" for user {history.key}" if history.key else ""
    console.print(
        f"Run {run.run_id}: {run.command}, {run.status}, started"
        f" {run.started_at.strftime('%Y-%m-%d %H:%M:%S')} by {run.db_role}@{run.host};"
        f" {_written(run)}."
        + (f" It reverts run {run.reverts_run_id}." if run.reverts_run_id else ""),
        soft_wrap=True,
    )
    if not history.changes.count:
        console.print(f"No rows written{rows}.")
        return
    # One line per written column, beside its name: the key stays whole at 80 columns.
    changes = list(history.changes)
    notes = any(change.reverted_by for change in changes)
    table = Table(show_edge=False, pad_edge=False)
    width = max((len(change.key) for change in changes), default=7)
    table.add_column("user_id", no_wrap=True, min_width=width)
    table.add_column("action", no_wrap=True)
    table.add_column("column", no_wrap=True)
    table.add_column("before", no_wrap=True, justify="right")
    table.add_column("after", no_wrap=True, justify="right")
    if notes:
        table.add_column("note")
    for change in changes:
        columns = list(dict.fromkeys([*(change.before or {}), *(change.after or {})]))
        for index, column in enumerate(columns or [""]):
            first = index == 0
            cells = [
                change.key if first else "",
                change.action if first else "",
                column,
                _cell(change.before, column),
                _cell(change.after, column),
            ]
            if notes:
                reverted = f"reverted by {change.reverted_by}" if change.reverted_by else ""
                cells.append(reverted if first else "")
            table.add_row(*cells)
    console.print(table)


def _cell(state: dict[str, Any] | None, column: str) -> str:
    if state is None:
        return "no row"
    return _value(state.get(column))


def _restore_cell(change: RevertChange) -> str:
    """Where the row goes: its values, "no row" where the revert deletes it, "—" where a
    row the revert moves back cannot be previewed or is left alone."""
    if change.restore_to is None and change.action == "restore":
        return "—"
    return _values(change.restore_to)


def _note(change: AuditedChange) -> str:
    notes = []
    if change.reverts_run_id:
        notes.append(f"reverts {change.reverts_run_id}")
    if change.reverted_by:
        notes.append(f"reverted by {change.reverted_by}")
    return "; ".join(notes)


def _values(state: dict[str, Any] | None) -> str:
    """The written columns' values, as one cell (amounts with thousands separators,
    whatever their type); `history RUN_ID` shows each beside its column's name instead."""
    if state is None:
        return "no row"
    return " / ".join(_value(v) for v in state.values())


def _value(value: Any) -> str:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, str) and _NUMBER.fullmatch(value):  # exact decimal text
        return f"{Decimal(value):,}"
    return "NULL" if value is None else str(value)


_NUMBER = re.compile(r"-?\d+(\.\d+)?")
