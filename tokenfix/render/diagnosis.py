"""`diagnose` output: the rich layout and the §5 JSON object."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tokenfix.diagnose import Balance, Diagnosis
from tokenfix.render import iso, plural

STATUS_STYLE = {
    "ok": "bold green",
    "drift": "bold red",
    "missing_profile": "bold yellow",
    "not_found": "bold magenta",
}


def _time_as_text(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _record(obj: Any) -> dict[str, Any] | None:
    if obj is None:
        return None
    return {
        field.name: _time_as_text(getattr(obj, field.name)) for field in dataclasses.fields(obj)
    }


def diagnosis_json(d: Diagnosis) -> dict[str, Any]:
    """The §5 `diagnose --json` object."""
    if d.status == "not_found":
        return {"user_id": str(d.user_id), "status": d.status}
    out: dict[str, Any] = {
        "user_id": str(d.user_id),
        "status": d.status,
        "profile": _record(d.profile),
        "usage": _record(d.usage),
        "expected": _record(d.expected),
        "overdrawn": d.overdrawn,
        "drift": _record(d.drift),
        "causes": [{"code": c.code, "message": c.message} for c in d.causes],
    }
    if d.ledger is not None:
        out["ledger"] = [
            {
                "id": e.id,
                "created_at": iso(e.created_at),
                "action_type": e.action_type,
                "model_used": e.model_used,
                "tokens_used": e.tokens_used,
                "success": e.success,
                "class": e.row_class,
                "effective": e.effective,
                "expected_remaining": e.expected_remaining,
            }
            for e in d.ledger
        ]
    return out


def _when(value: datetime | None) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if value else "—"


def _signed(value: int | None) -> Text:
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
        lines.append(Text("profile  no user_profiles row", style="yellow"))
    if d.usage is not None:
        lines.append(
            Text(f"activity {_when(d.usage.first_activity)} → {_when(d.usage.last_activity)}")
        )
    return Panel(Group(*lines), title=f"user {d.user_id}", title_align="left", expand=False)


def _usage_table(d: Diagnosis) -> Table:
    u = d.usage
    assert u is not None
    table = Table(title="Ledger", title_justify="left", show_edge=False)
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
    table.add_row("created before the profile", f"{u.records_before_profile:,}", "")
    return table


def _balance_table(d: Diagnosis) -> Table:
    expected = d.expected or Balance(0, 0)
    table = Table(title="Balance", title_justify="left", show_edge=False)
    table.add_column("")
    table.add_column("cached", justify="right")
    table.add_column("expected", justify="right")
    table.add_column("drift", justify="right")
    for label, field in (("remaining", "tokens_remaining"), ("used", "tokens_used")):
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
    if d.profile is not None and None in (d.profile.tokens_remaining, d.profile.tokens_used):
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
    for name, justify in (
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
            str(e.id),
            _when(e.created_at),
            e.action_type,
            e.model_used or "—",
            "NULL" if e.tokens_used is None else str(e.tokens_used),
            "NULL" if e.success is None else str(e.success).lower(),
            e.row_class,
            f"{e.effective:,}",
            f"{e.expected_remaining:,}",
        )
    return table


def render_diagnosis(console: Console, d: Diagnosis) -> None:
    console.print(_summary_panel(d))
    console.print(_usage_table(d))
    console.print()
    console.print(_balance_table(d))
    console.print()
    console.print(_causes(d))
    if d.ledger is not None:
        console.print(_ledger_table(d))
