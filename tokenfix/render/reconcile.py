"""`reconcile` output for people: a rich table per chunk of changes, then the summary.

Changes are read back from the run's spool and written out as they come, so output costs the
same memory for ten users as for a million. (JSON and CSV: render.json, render.csv.)
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tokenfix.records import Change, Pair
from tokenfix.words import plural

if TYPE_CHECKING:
    from tokenfix.reconcile import Outcome

TABLE_CHUNK = 500
SKIP_WORDS = {
    None: "",
    "dry_run": "dry run",
    "recent_activity": "deferred (recent activity)",
    "changed_concurrently": "left alone (changed during the run)",
    "no_create_missing": "needs --create-missing",
}


def _amount(value: Any, *, signed: bool = False) -> str:
    if value is None:
        return "NULL" if not signed else "?"
    return f"{value:+,}" if signed else f"{value:,}"


def _pair(values: Pair | None, *, signed: bool = False, reads_used: bool = True) -> Text:
    """remaining / used, as one cell; a side the mapping does not read shows as —."""
    if values is None:
        return Text("—", style="dim")
    used = _amount(values.tokens_used, signed=signed) if reads_used else "—"
    text = f"{_amount(values.tokens_remaining, signed=signed)} / {used}"
    return Text(text, style="bold red") if signed else Text(text)


def _what_happened(change: Change) -> Text:
    if change.stored is not None:
        kept = f"{_amount(change.stored.tokens_remaining)} / {_amount(change.stored.tokens_used)}"
        verb = "written, but" if change.applied else "not changed:"
        return Text(f"{verb} the database stored {kept}", style="bold yellow")
    if change.applied:
        done = "updated" if change.status == "drift" else "profile created"
        return Text(done, style="green")
    return Text(SKIP_WORDS[change.skipped], style="yellow")


def _chunks(changes: Any, size: int) -> Iterator[list[Change]]:
    iterator = iter(changes)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _table(chunk: list[Change], *, first: bool, key_width: int, reads_used: bool) -> Table:
    # Fixed widths so that successive chunks line up as one table.
    table = Table(show_header=first, show_edge=False, pad_edge=False)
    table.add_column("user_id", width=key_width, no_wrap=True)
    table.add_column("status", width=7, no_wrap=True)
    for name in ("cached rem. / used", "expected", "drift"):
        table.add_column(name, justify="right", width=18, no_wrap=True)
    table.add_column("result", min_width=12)
    for change in chunk:
        table.add_row(
            change.key,
            "drift" if change.status == "drift" else "missing",
            _pair(change.current, reads_used=reads_used),
            _pair(change.expected),
            _pair(change.drift, signed=True, reads_used=reads_used),
            _what_happened(change),
        )
    return table


def render_outcome(console: Console, outcome: Outcome) -> None:
    key_width = 7
    for index, chunk in enumerate(_chunks(outcome.changes, TABLE_CHUNK)):
        if index == 0:
            key_width = max(7, min(60, max(len(c.key) for c in chunk)))
        table = _table(chunk, first=index == 0, key_width=key_width, reads_used=outcome.reads_used)
        console.print(table)
    if outcome.changes.count:
        console.print()
    console.print(summary_line(outcome), highlight=False, soft_wrap=True)


def summary_line(outcome: Outcome) -> str:
    c = outcome.counts
    found = (
        f"Checked {plural(c.users_checked, 'user')}: {c.users_with_drift:,} with drift, "
        f"{plural(c.missing_profiles, 'missing profile')}."
    )
    if outcome.dry_run:
        if not outcome.changes.count:
            return found + " Nothing to fix."
        return found + " Dry run: nothing was written; run again without --dry-run to fix."
    parts = [f"updated {c.users_updated:,}", f"created {plural(c.profiles_created, 'profile')}"]
    if c.users_deferred:
        parts.append(f"deferred {c.users_deferred:,} (recent activity)")
    if c.users_changed:
        parts.append(f"left {c.users_changed:,} alone (changed during the run)")
    line = f"{found} {'; '.join(parts).capitalize()}."
    if outcome.run_id:
        line += f" Run {outcome.run_id}: undo with 'tokenfix revert {outcome.run_id}'."
    return line
