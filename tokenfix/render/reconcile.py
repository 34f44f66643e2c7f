"""`reconcile` output for people: a rich table per chunk of changes, then the summary.

Changes are read back from the run's spool and written out as they come, so output costs the
same memory for ten users as for a million. (JSON and CSV: render.json, render.csv.)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from tokenfix.base.records import Candidate, Change, Pair
from tokenfix.base.words import plural

if TYPE_CHECKING:
    from tokenfix.reconciliation.plan import Outcome

TABLE_CHUNK = 500
PRINTED_ROWS = 50
"""Rows laid out at once (~2 ms each on a small VM): the first appear at once, while the
column widths still come from a whole chunk."""
SKIP_WORDS = {
    None: "",
    "dry_run": "dry run",
    "recent_activity": "deferred (recent activity)",
    "changed_concurrently": "left alone (changed during the run)",
    "no_create_missing": "needs --create-missing",
    "edited_after_ledger": "left alone (edited after the ledger)",
    "newer_snapshot": "left alone (a newer snapshot row appeared)",
    "unwritable": "left alone (does not fit the column)",
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


def _cells(change: Change, reads_used: bool) -> list[Text]:
    return [
        Text(change.key),
        Text("drift" if change.status == "drift" else "missing"),
        _pair(change.current, reads_used=reads_used),
        _pair(change.expected),
        _pair(change.drift, signed=True, reads_used=reads_used),
        _what_happened(change),
    ]


HEADERS = ("user_id", "status", "cached rem. / used", "expected", "drift", "result")


def _widths(rows: list[list[Text]]) -> list[int]:
    """Column widths from the first chunk (at least the header's, the amounts' minimum 18),
    fixed for every chunk after it so that they line up as one table."""
    minimums = (7, 7, 18, 18, 18, 12)
    return [
        max(minimum, len(header), *(len(row[i].plain) for row in rows))
        for i, (header, minimum) in enumerate(zip(HEADERS, minimums, strict=True))
    ][:5]


def _fits(widths: list[int], result: int, room: int) -> bool:
    # Six columns: five separators and one space of padding on each inner side.
    return min(widths[0], 60) + sum(widths[1:5]) + result + 5 + 10 <= room


def _half(cell: Text) -> int:
    """The width an amount pair needs once it wraps at its " / "."""
    return max(len(part) for part in cell.plain.replace(" / ", " /\n").split("\n"))


def _table(rows: list[list[Text]], *, first: bool, widths: list[int], room: int) -> Table:
    table = Table(show_header=first, show_edge=False, pad_edge=False)
    table.add_column(HEADERS[0], width=min(widths[0], 60), no_wrap=True)
    table.add_column(HEADERS[1], width=widths[1], no_wrap=True)
    result = max(12, *(len(row[5].plain) for row in rows))
    fits = _fits(widths, result, room)
    for index, (name, width) in enumerate(zip(HEADERS[2:5], widths[2:5], strict=True), 2):
        if fits:  # fixed widths: every chunk lines up as one table
            table.add_column(name, justify="right", width=width, no_wrap=True)
        else:  # a narrow terminal: an amount pair wraps at its " / ", a result never is cut
            half = max(_half(row[index]) for row in rows)
            table.add_column(name, justify="right", min_width=half)
    table.add_column(HEADERS[5], min_width=result, no_wrap=not fits)
    for row in rows:
        table.add_row(*row)
    return table


def render_outcome(console: Console, outcome: Outcome) -> None:
    widths: list[int] = []
    for index, chunk in enumerate(_chunks(outcome.changes, TABLE_CHUNK)):
        rows = [_cells(change, outcome.reads_used) for change in chunk]
        widths = widths or _widths(rows)
        for start in range(0, len(rows), PRINTED_ROWS):
            first = index == 0 and start == 0
            chunk_rows = rows[start : start + PRINTED_ROWS]
            console.print(_table(chunk_rows, first=first, widths=widths, room=console.width))
    if outcome.changes.count:
        console.print()
    console.print(_causes_table(outcome))
    console.print(_totals(outcome), highlight=False, soft_wrap=True)
    console.print(summary_line(outcome), highlight=False, soft_wrap=True)


def _causes_table(outcome: Outcome) -> Table:
    """The summary, as the table output's ending: drift by cause, the unexplained."""
    s = outcome.summary
    table = Table(title="Drift by cause", title_justify="left", show_edge=False)
    table.add_column("cause")
    table.add_column("users", justify="right")
    table.add_column("drift rem. / used", justify="right")
    for code, totals in sorted(s.causes.items(), key=lambda item: (-item[1].users, item[0])):
        drift = Pair(totals.remaining, totals.used)
        table.add_row(
            code, f"{totals.users:,}", _pair(drift, signed=True, reads_used=outcome.reads_used)
        )
    style = "bold red" if s.unexplained_users else ""
    table.add_row(Text("unexplained", style=style), f"{s.unexplained_users:,}", "")
    return table


def _totals(outcome: Outcome) -> str:
    s = outcome.summary
    cached = _pair(s.cached_total, reads_used=outcome.reads_used).plain
    expected = _pair(s.expected_total).plain
    return f"Over every user with a balance row: cached {cached}, expected {expected}."


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
    if outcome.summary.edited_users:
        parts.append(f"left {outcome.summary.edited_users:,} alone (cache edited after the ledger)")
    line = f"{found} {'; '.join(parts).capitalize()}."
    if outcome.run_id:
        line += f" Run {outcome.run_id}: undo with 'tokenfix revert {outcome.run_id}'."
    return line


def planned_rows(
    candidates: Iterable[Candidate], planned: int, shown: int, *, reads_used: bool
) -> Group:
    """What the write prompt shows before asking: the first `shown` rows it would write (in key
    order), and how many more."""
    table = Table(show_edge=False, pad_edge=False)
    for name, justify in zip(HEADERS[:5], ("left", "left", "right", "right", "right"), strict=True):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for c in islice(candidates, shown):
        table.add_row(
            Text(c.key),
            Text("drift" if c.has_profile else "missing"),
            _pair(c.current, reads_used=reads_used),
            _pair(c.expected),
            _pair(c.drift, signed=True, reads_used=reads_used),
        )
    more = planned - min(planned, shown)
    if not more:
        return Group(table)
    return Group(table, Text(f"… and {plural(more, 'more row')}", style="dim"))
