"""`diagnose` output for people: the rich layout (the JSON: render.json)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tokenfix.base.records import Pair
from tokenfix.base.words import plural
from tokenfix.diagnosis.report import Diagnosis, Usage

STATUS_STYLE = {
    "ok": "bold green",
    "drift": "bold red",
    "missing_profile": "bold yellow",
    "not_found": "bold magenta",
}


def _when(value: datetime | None) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if value else "—"


def _signed(value: Any) -> Text:
    if value is None:
        return Text("—", style="dim")
    if value == 0:
        return Text("0", style="green")
    return Text(f"{value:+,}", style="bold red")


def _summary_panel(d: Diagnosis) -> Panel:
    status = Text(d.status.upper().replace("_", " "), style=STATUS_STYLE[d.status])
    lines = [
        Text.assemble(
            "status   ",
            status,
            ("  (expected balance is negative: overdrawn)" if d.overdrawn else ""),
        )
    ]
    if d.profile is not None:
        created, updated = _when(d.profile.created_at), _when(d.profile.updated_at)
        lines.append(Text(f"profile  created {created}, updated {updated}"))
    else:
        lines.append(Text(f"profile  no {d.balance_table} row", style="yellow"))
    if d.usage is not None:
        lines.append(
            Text(f"activity {_when(d.usage.first_activity)} → {_when(d.usage.last_activity)}")
        )
    if d.period is not None:
        start = _when(d.period.start) if d.period.start else "no start"
        end = _when(d.period.end) if d.period.end else "no end"
        lines.append(Text(f"period   {start} → {end} (only rows inside it count)"))
    return Panel(Group(*lines), title=f"user {d.user_id}", title_align="left", expand=False)


def _usage_table(u: Usage, title: str = "Ledger") -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("rows")
    table.add_column("records", justify="right")
    table.add_column("tokens", justify="right")
    table.add_row("all rows", f"{u.total_records:,}", f"{u.total_tokens_logged:,}")
    table.add_row("charges (effective)", f"{u.charge_records:,}", f"{u.charged_tokens:,}")
    table.add_row(
        "  priced by an override (difference)",
        f"{u.override_records:,}",
        f"{u.override_token_difference:+,}",
    )
    table.add_row("grants", f"{u.grant_records:,}", f"{u.granted_tokens:,}")
    table.add_row("deducts", f"{u.deduct_records:,}", f"{u.deducted_tokens:,}")
    table.add_row("failed (no effect)", f"{u.failed_records:,}", "")
    table.add_row("zero tokens (no effect)", f"{u.zero_token_records:,}", "")
    table.add_row(
        Text("invalid (no effect)", style="yellow" if u.invalid_records else ""),
        f"{u.invalid_records:,}",
        "",
    )
    if u.ignored_records:
        table.add_row("ignored (kind NULL)", f"{u.ignored_records:,}", "")
    if u.out_of_period_records:
        table.add_row("outside the period (no effect)", f"{u.out_of_period_records:,}", "")
    table.add_row("created before the profile", f"{u.records_before_profile:,}", "")
    return table


def _balance_table(d: Diagnosis) -> Table:
    expected = d.expected or Pair(0, 0)
    table = Table(title="Balance", title_justify="left", show_edge=False)
    table.add_column("")
    table.add_column("cached", justify="right")
    table.add_column("expected", justify="right")
    table.add_column("drift", justify="right")
    sides = [("remaining", "tokens_remaining")]
    if d.reads_used:
        sides.append(("used", "tokens_used"))
    for label, field in sides:
        cached = getattr(d.profile, field) if d.profile else None
        drift = getattr(d.drift, field) if d.drift else None
        shown_cached = "—"
        if d.profile is not None:
            shown_cached = "NULL" if cached is None else f"{cached:,}"
        table.add_row(
            label,
            shown_cached,
            f"{getattr(expected, field):,}",
            Text("NULL cache", style="bold red")
            if d.profile and cached is None
            else _signed(drift),
        )
    return table


def _causes(d: Diagnosis) -> Text:
    if d.status == "ok":
        return Text("The cached balance matches the ledger.", style="green")
    if d.status == "missing_profile":
        return Text(
            "No profile row: 'tokenfix reconcile USER_ID --create-missing' creates it.",
            style="yellow",
        )
    read = [d.profile.tokens_remaining] if d.profile is not None else []
    if d.profile is not None and d.reads_used:  # a side the mapping does not read is no NULL
        read.append(d.profile.tokens_used)
    if None in read:
        return Text(
            "The cached balance is NULL: the app cannot spend from it. "
            "'tokenfix reconcile USER_ID' writes the expected values.",
            style="yellow",
        )
    if not d.causes:
        return Text("No single known cause explains the whole drift; compare with --ledger N.")
    text = Text("Likely cause" + ("s" if len(d.causes) > 1 else "") + ":\n", style="bold")
    for cause in d.causes:
        text.append(f"  • {cause.message} ", style="")
        text.append(f"[{cause.code}]\n", style="dim")
    return text


def _ledger_table(d: Diagnosis) -> Table:
    table = Table(
        title=f"Last {plural(len(d.ledger or ()), 'ledger row')}",
        title_justify="left",
        show_edge=False,
    )
    columns = [("source", "left")] if d.sources else []
    for name, justify in (
        *columns,
        ("id", "right"),
        ("created_at", "left"),
        ("action", "left"),
        ("model", "left"),
        ("tokens", "right"),
        ("success", "left"),
        ("class", "left"),
        ("effective", "right"),
        ("balance after", "right"),
    ):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for e in d.ledger or ():
        table.add_row(
            *([e.source] if d.sources else []),
            str(e.id),
            _when(e.created_at),
            e.action_type or "—",
            e.model_used or "—",
            "NULL" if e.tokens_used is None else str(e.tokens_used),
            "NULL" if e.success is None else str(e.success).lower(),
            e.row_class,
            f"{e.effective:,}",
            f"{e.expected_remaining:,}",
        )
    return table


def _lots_table(d: Diagnosis) -> Table:
    """Every lot after the fold: what it gave, what was spent from it, forfeited, left."""
    table = Table(title="Lots", title_justify="left", show_edge=False)
    for name in ("lot", "amount", "spendable from", "expires", "consumed", "forfeited", "left"):
        table.add_column(name, justify="left" if name in ("lot",) else "right")
    for lot in d.lots or ():
        label = lot.name if lot.id is None else f"{lot.name} {lot.id}"
        table.add_row(
            label,
            f"{lot.amount:,}",
            _when(lot.at) if lot.at else "always",
            _when(lot.expires_at) if lot.expires_at else "never",
            f"{lot.consumed:,}",
            f"{lot.forfeited:,}",
            f"{lot.remaining:,}",
        )
    return table


def render_diagnosis(console: Console, d: Diagnosis) -> None:
    console.print(_summary_panel(d))
    assert d.usage is not None
    console.print(_usage_table(d.usage))
    for source in d.sources:
        console.print(_usage_table(source.usage, title=f"  of which {source.name}"))
    console.print()
    console.print(_balance_table(d))
    console.print()
    if d.lots is not None:
        console.print(_lots_table(d))
        console.print()
    console.print(_causes(d))
    if d.ledger is not None:
        console.print(_ledger_table(d))
