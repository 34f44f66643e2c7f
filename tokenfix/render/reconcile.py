"""`reconcile` output: a rich table per chunk of changes, the §5 JSON object, or CSV.

Changes are read back from the run's spool and written out as they come, so output costs the
same memory for ten users as for a million.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from itertools import islice
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tokenfix.reconcile import Outcome
from tokenfix.render import plural

TABLE_CHUNK = 500
CSV_COLUMNS = (
    "user_id",
    "status",
    "current_remaining",
    "current_used",
    "expected_remaining",
    "expected_used",
    "drift_remaining",
    "drift_used",
    "applied",
    "skipped",
)
SKIP_WORDS = {
    None: "",
    "dry_run": "dry run",
    "recent_activity": "deferred (recent activity)",
    "changed_concurrently": "left alone (changed during the run)",
    "no_create_missing": "needs --create-missing",
}


def summary_json(outcome: Outcome) -> dict[str, Any]:
    c = outcome.counts
    return {
        "run_id": str(outcome.run_id) if outcome.run_id else None,
        "dry_run": outcome.dry_run,
        "users_checked": c.users_checked,
        "users_with_drift": c.users_with_drift,
        "missing_profiles": c.missing_profiles,
        "users_updated": c.users_updated,
        "profiles_created": c.profiles_created,
        "users_deferred": c.users_deferred,
        "users_changed": c.users_changed,
        "warnings": outcome.warnings,
    }


def write_json(stream: TextIO, outcome: Outcome) -> None:
    """The §5 object; `changes` streamed one entry per line, in user_id order."""
    head = json.dumps(summary_json(outcome), indent=2)[:-2]  # drop the closing "\n}"
    stream.write(head + ',\n  "changes": [')
    for index, change in enumerate(outcome.changes):
        stream.write(("\n    " if index == 0 else ",\n    ") + json.dumps(change))
    stream.write("\n  ]\n}\n" if outcome.changes.count else "]\n}\n")


def _flat(change: dict[str, Any]) -> list[Any]:
    current = change["current"] or {}
    drift = change["drift"] or {}
    return [
        change["user_id"],
        change["status"],
        current.get("tokens_remaining", ""),
        current.get("tokens_used", ""),
        change["expected"]["tokens_remaining"],
        change["expected"]["tokens_used"],
        drift.get("tokens_remaining", ""),
        drift.get("tokens_used", ""),
        str(change["applied"]).lower(),
        change["skipped"] or "",
    ]


def write_csv(stream: TextIO, outcome: Outcome) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for change in outcome.changes:
        writer.writerow(_flat(change))


def _amount(value: Any, *, signed: bool = False) -> str:
    if value is None:
        return "NULL" if not signed else "?"
    return f"{value:+,}" if signed else f"{value:,}"


def _pair(values: dict[str, Any] | None, *, signed: bool = False) -> Text:
    """remaining / used, as one cell."""
    if values is None:
        return Text("—", style="dim")
    remaining, used = values["tokens_remaining"], values["tokens_used"]
    text = f"{_amount(remaining, signed=signed)} / {_amount(used, signed=signed)}"
    return Text(text, style="bold red") if signed else Text(text)


def _what_happened(change: dict[str, Any]) -> Text:
    stored = change.get("stored")
    if stored is not None:
        kept = f"{stored['tokens_remaining']:,} / {stored['tokens_used']:,}"
        verb = "written, but" if change["applied"] else "not changed:"
        return Text(f"{verb} the database stored {kept}", style="bold yellow")
    if change["applied"]:
        done = "updated" if change["status"] == "drift" else "profile created"
        return Text(done, style="green")
    return Text(SKIP_WORDS[change["skipped"]], style="yellow")


def _chunks(changes: Any, size: int) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(changes)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _table(chunk: list[dict[str, Any]], *, first: bool) -> Table:
    # Fixed widths so that successive chunks line up as one table.
    table = Table(show_header=first, show_edge=False, pad_edge=False)
    table.add_column("user_id", width=36, no_wrap=True)
    table.add_column("status", width=7, no_wrap=True)
    for name in ("cached rem. / used", "expected", "drift"):
        table.add_column(name, justify="right", width=18, no_wrap=True)
    table.add_column("result", min_width=12)
    for change in chunk:
        table.add_row(
            change["user_id"],
            "drift" if change["status"] == "drift" else "missing",
            _pair(change["current"]),
            _pair(change["expected"]),
            _pair(change["drift"], signed=True),
            _what_happened(change),
        )
    return table


def render_outcome(console: Console, outcome: Outcome) -> None:
    for index, chunk in enumerate(_chunks(outcome.changes, TABLE_CHUNK)):
        console.print(_table(chunk, first=index == 0))
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
