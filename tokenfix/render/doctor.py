"""`doctor` output for people: one line per check (the JSON: render.json)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tokenfix.health.run import Report

MARK = {"ok": ("ok", "green"), "warn": ("warn", "yellow"), "fail": ("FAIL", "bold red")}


def render_report(console: Console, report: Report) -> None:
    table = Table(show_header=False, show_edge=False, box=None, pad_edge=False)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True, style="bold")
    table.add_column("finding")
    for check in report.checks:
        word, style = MARK[check.status]
        finding = Text(check.message)
        if check.fix:
            finding.append("\n→ fix: ", style="cyan")
            finding.append(check.fix)
        table.add_row(Text(word, style=style), check.name, finding)
    console.print(table)
    counts = {s: sum(1 for c in report.checks if c.status == s) for s in ("ok", "warn", "fail")}
    console.print(f"\n{counts['ok']} ok, {counts['warn']} warnings, {counts['fail']} failures.")
