"""Support adjustments as JSON and as plain lines (no rich: cron runs them too)."""

from __future__ import annotations

from typing import Any

from tokenfix.render.json import amount, dumps, pair

_DONE = {"grant": "granted", "deduct": "deducted"}


def _booking(b: Any) -> dict[str, Any]:
    return {
        "user_id": b.key,
        "kind": b.kind,
        "amount": amount(b.amount),
        "before": pair(b.before),
        "after": pair(b.after),
        "expected_before": pair(b.expected_before),
        "drift": pair(b.drift),
        "ledger_row": b.ledger_row,
        "applied": b.applied,
    }


def adjust_document(outcome: Any, envelope: dict[str, Any]) -> dict[str, Any]:
    """The booking as the `--json` document (docs/output.md)."""
    r = outcome.request
    document = {
        "run_id": outcome.run_id,
        "command": r.kind,
        "user_id": r.key,
        "amount": amount(r.amount),
        "reason": r.reason,
        "idempotency_key": r.idempotency_key,
        "already_booked_by": outcome.already_booked_by,
        "reverted_by": outcome.reverted_by,
        "booking": _booking(outcome.booking) if outcome.booking is not None else None,
        **envelope,
    }
    return document


def adjust_json(outcome: Any, envelope: dict[str, Any]) -> str:
    return dumps(adjust_document(outcome, envelope))


def _side(p: Any, name: str) -> Any:
    value = getattr(p, name) if p is not None else None
    return "(no balance row)" if value is None else value


def preview_lines(booking: Any) -> list[str]:
    """Before → after of the cached balance, and the drift the owner keeps."""
    before, after = booking.before, booking.after
    lines = [
        f"{booking.kind} {booking.amount} to {booking.key}: remaining "
        f"{_side(before, 'tokens_remaining')} → {_side(after, 'tokens_remaining')}"
        + (
            f", used {before.tokens_used} (unchanged)"
            if before is not None
            and before.tokens_used is not None
            and before.tokens_remaining is not None
            else ""
        )
    ]
    lines += drift_lines(booking)
    return lines


def drift_lines(booking: Any) -> list[str]:
    drift = booking.drift
    if drift is None or not any(d for d in (drift.tokens_remaining, drift.tokens_used)):
        return []
    parts = [
        f"{name} {value:+}"
        for name, value in (("remaining", drift.tokens_remaining), ("used", drift.tokens_used))
        if value
    ]
    return [
        f"note: {booking.key} already differs from its ledger ({', '.join(parts)}, cached − "
        "ledger); left as it was: 'tokenfix diagnose' explains it, 'tokenfix reconcile KEY "
        "--direction ledger' books it"
    ]


def adjust_lines(outcome: Any) -> list[str]:
    r = outcome.request
    if outcome.already_booked_by is not None:
        reverted = (
            f" (reverted by run {outcome.reverted_by})" if outcome.reverted_by is not None else ""
        )
        return [
            f"already booked: idempotency key {r.idempotency_key!r} was booked by run "
            f"{outcome.already_booked_by}{reverted}; nothing was written"
        ]
    b = outcome.booking
    lines = [
        f"{_DONE[r.kind]} {r.amount} to {r.key}: remaining "
        f"{_side(b.before, 'tokens_remaining')} → "
        f"{b.after.tokens_remaining} (run {outcome.run_id}; 'tokenfix revert {outcome.run_id}' "
        "undoes it)"
    ]
    return lines + drift_lines(b)


def ledger_json(outcome: Any, envelope: dict[str, Any]) -> str:
    document = {
        "run_id": outcome.run_id,
        "dry_run": outcome.dry_run,
        "direction": "ledger",
        "reason": outcome.reason,
        "users_checked": outcome.users_checked,
        "rows_booked": 0 if outcome.dry_run else len(outcome.bookings),
        "bookings": [_booking(b) for b in outcome.bookings],
        "skipped": [{"user_id": k, "reason": why} for k, why in outcome.skipped],
        **envelope,
    }
    return dumps(document)


def ledger_lines(outcome: Any, *, asking: bool = False) -> list[str]:
    """What was booked (or, a dry run or `asking` before writing, what would be)."""
    verb = "would book" if outcome.dry_run or asking else "booked"
    lines = []
    for b in outcome.bookings:
        used = (
            f"; used differs by {b.drift.tokens_used:+} (reported, not booked)"
            if b.drift is not None and b.drift.tokens_used
            else ""
        )
        lines.append(
            f"{b.key}: {verb} a {b.kind} of {b.amount} (cached remaining "
            f"{b.before.tokens_remaining}, ledger {b.expected_before.tokens_remaining}){used}"
        )
    for key, why in outcome.skipped:
        lines.append(f"{key}: left alone ({why})")
    if not outcome.bookings:
        lines.append("the ledger already explains every cached remaining: nothing to book")
    elif outcome.run_id is not None:
        lines.append(f"run {outcome.run_id}; 'tokenfix revert {outcome.run_id}' undoes it")
    return lines


def adjustments_json(found: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "run_id": str(a.run_id),
            "command": a.command,
            "at": a.changed_at.isoformat(),
            "kind": a.kind,
            "amount": amount(a.amount),
            "reason": a.reason,
            "idempotency_key": a.idempotency_key,
            "ledger": a.ledger,
            "reverted_by": str(a.reverted_by) if a.reverted_by else None,
        }
        for a in found
    ]


def adjustments_lines(found: list[Any]) -> list[str]:
    if not found:
        return []
    lines = ["Support adjustments (tokenfix grant / deduct / --direction ledger), newest first:"]
    for a in found:
        reverted = f", reverted by {a.reverted_by}" if a.reverted_by else ""
        lines.append(
            f"  {a.changed_at.isoformat(timespec='seconds')}  {a.kind} {a.amount}  "
            f"{a.reason or '(no reason)'}  (run {a.run_id}{reverted})"
        )
    return lines
