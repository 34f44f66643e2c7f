"""The JSON contract (docs/output.md, docs/monitoring.md), produced from the typed records in one
place.

Amounts are written as JSON numbers with every digit (simplejson writes a Decimal as its
exact decimal text, never through a float): `12.50000` stays `12.50000`, a 9,000,000,000,123
grant stays exact. No rich here: cron's `--json` path never loads it.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TextIO

import simplejson

from tokenfix.base.records import AuditedChange, Change, Pair, RevertChange


def plain(value: Any) -> Any:
    """JSON for values json does not know: times as ISO 8601, durations in seconds."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def dumps(obj: Any, *, indent: int | None = 2) -> str:
    return simplejson.dumps(obj, indent=indent, default=plain, use_decimal=True)


def amount(value: Any) -> Any:
    """An exact amount: an int stays an int, a Decimal its exact decimal text (as a number)."""
    if isinstance(value, Decimal) and not value.is_finite():
        return str(value)  # NaN / Infinity are not JSON numbers
    return value


def pair(p: Pair | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"tokens_remaining": amount(p.tokens_remaining), "tokens_used": amount(p.tokens_used)}


def change(c: Change) -> dict[str, Any]:
    """A `changes` entry with its `causes` (`stored` only when the database kept
    something else)."""
    entry: dict[str, Any] = {
        "user_id": c.key,
        "status": c.status,
        "current": pair(c.current),
        "expected": pair(c.expected),
        "drift": pair(c.drift),
        "applied": c.applied,
        "skipped": c.skipped,
        "causes": list(c.causes),
    }
    if c.stored is not None:
        entry["stored"] = pair(c.stored)
    if c.reason is not None:
        entry["reason"] = c.reason
    return entry


def record(obj: Any) -> dict[str, Any] | None:
    """A plain dataclass as JSON-ready values (times as ISO 8601, amounts exact)."""
    if obj is None:
        return None
    return {
        f.name: plain(v) if isinstance(v, datetime) else amount(v)
        for f in dataclasses.fields(obj)
        for v in (getattr(obj, f.name),)
    }


def revert_change(c: RevertChange) -> dict[str, Any]:
    return {
        "user_id": c.key,
        "action": c.action,
        "run_left": c.run_left,
        "current": c.current,
        "restore_to": c.restore_to,
        "applied": c.applied,
        "skipped": c.skipped,
    }


def write_object(stream: TextIO, head: dict[str, Any], key: str, items: Iterable[Any]) -> None:
    """`head` with `key`: a list streamed one entry per line, so output costs the same memory
    for ten entries as for a million."""
    text = dumps(head)
    stream.write(text[:-2] + f',\n  "{key}": [' if head else '{\n  "' + key + '": [')
    first = True
    for item in items:
        stream.write(("\n    " if first else ",\n    ") + dumps(item, indent=None))
        first = False
    stream.write("]\n}\n" if first else "\n  ]\n}\n")


# -- the documents ---------------------------------------------------------------------


def diagnosis(d: Any, envelope: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `diagnose --json` object."""
    if d.status == "not_found":
        return {**(envelope or {}), "user_id": d.user_id, "status": d.status}
    out: dict[str, Any] = {
        **(envelope or {}),
        "user_id": d.user_id,
        "status": d.status,
        "profile": record(d.profile),
        "usage": usage(d.usage),
        "expected": pair(d.expected),
        "overdrawn": d.overdrawn,
        "drift": pair(d.drift),
        "causes": [{"code": c.code, "message": c.message} for c in d.causes],
    }
    if getattr(d, "lots", None) is not None:
        out["lots"] = [
            {
                "name": lot.name,
                "id": lot.id,
                "amount": amount(lot.amount),
                "at": plain(lot.at),
                "expires_at": plain(lot.expires_at),
                "consumed": amount(lot.consumed),
                "forfeited": amount(lot.forfeited),
                "remaining": amount(lot.remaining),
            }
            for lot in d.lots
        ]
    if d.period is not None:
        out["period"] = {"start": plain(d.period.start), "end": plain(d.period.end)}
    if d.sources:
        out["sources"] = [{"name": s.name, **(usage(s.usage) or {})} for s in d.sources]
    if d.ledger is not None:
        out["ledger"] = [ledger_entry(e, with_source=bool(d.sources)) for e in d.ledger]
    return out


def usage(u: Any) -> dict[str, Any] | None:
    """The usage; `ignored_records` (kind NULL, docs/mapping.md) only when there are some: the
    default mapping never has any, and its JSON stays the object."""
    found = record(u)
    for optional in ("ignored_records", "out_of_period_records"):
        if found is not None and not found.get(optional):
            found.pop(optional, None)
    return found


def ledger_entry(e: Any, *, with_source: bool) -> dict[str, Any]:
    entry = {
        "id": e.id,
        "created_at": plain(e.created_at),
        "action_type": e.action_type,
        "model_used": e.model_used,
        "tokens_used": amount(e.tokens_used),
        "success": e.success,
        "class": e.row_class,
        "effective": amount(e.effective),
        "expected_remaining": amount(e.expected_remaining),
    }
    return {"source": e.source, **entry} if with_source else entry


def summary(s: Any) -> dict[str, Any]:
    """The `summary`: drift by cause (most users first), unexplained owners, totals."""
    ranked = sorted(s.causes.items(), key=lambda item: (-item[1].users, item[0]))
    return {
        "causes": [
            {
                "code": code,
                "users": totals.users,
                "drift": {
                    "tokens_remaining": amount(totals.remaining),
                    "tokens_used": amount(totals.used),
                },
            }
            for code, totals in ranked
        ],
        "unexplained_users": s.unexplained_users,
        "edited_users": s.edited_users,
        "cached_total": pair(s.cached_total),
        "expected_total": pair(s.expected_total),
    }


def outcome_head(o: Any, envelope: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `reconcile --json` object without its `changes`."""
    c = o.counts
    return {
        **(envelope or {}),
        "run_id": str(o.run_id) if o.run_id else None,
        "dry_run": o.dry_run,
        "users_checked": c.users_checked,
        "users_with_drift": c.users_with_drift,
        "missing_profiles": c.missing_profiles,
        "users_updated": c.users_updated,
        "profiles_created": c.profiles_created,
        "users_deferred": c.users_deferred,
        "users_changed": c.users_changed,
        "warnings": list(o.warnings),
        "summary": summary(o.summary),
    }


def write_outcome(stream: TextIO, o: Any, envelope: dict[str, Any] | None = None) -> None:
    """The object; `changes` streamed one entry per line, in key order."""
    write_object(stream, outcome_head(o, envelope), "changes", (change(c) for c in o.changes))


def write_lines(stream: TextIO, o: Any, envelope: dict[str, Any]) -> None:
    """`--format jsonl` (docs/monitoring.md): one object per line, the summary last, so that
    `>> file.jsonl` keeps a log a program reads line by line; every line stands alone with its
    `type`, the run's `run_id` (null when it recorded none), `generated_at` and `target`."""
    head = outcome_head(o, envelope)
    stamp = line_stamp(head["run_id"], envelope)
    for warning in o.warnings:
        stream.write(dumps({"type": "warning", **stamp, "message": warning}, indent=None) + "\n")
    for c in o.changes:
        stream.write(dumps({"type": "change", **stamp, **change(c)}, indent=None) + "\n")
    stream.write(dumps({"type": "summary", **stamp, **head}, indent=None) + "\n")


def line_stamp(run_id: str | None, envelope: dict[str, Any]) -> dict[str, Any]:
    """What every jsonl line carries after its `type`."""
    return {
        "run_id": run_id,
        "generated_at": envelope.get("generated_at"),
        "target": envelope.get("target"),
    }


def error(
    message: str,
    exit_code: int,
    envelope: dict[str, Any],
    *,
    line: bool,
    run_id: str | None = None,
) -> str:
    """The one JSON object a failure prints on stdout with --json / --format jsonl; `run_id`
    is the run it ended, when one was recorded."""
    found = {"error": {"message": message, "exit_code": exit_code}, **envelope}
    if line:
        return dumps({"type": "error", **line_stamp(run_id, envelope), **found}, indent=None)
    return dumps({**found, "run_id": run_id} if run_id else found)


def history(runs: Iterable[Any], envelope: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**(envelope or {}), "runs": [run_entry(run) for run in runs]}


def run_entry(run: Any) -> dict[str, Any]:
    """One run as `history --json` lists it."""
    return {
        key: value if isinstance(value, int | None) else plain(value)
        for key, value in dataclasses.asdict(run).items()
    }


def audited_change(c: AuditedChange) -> dict[str, Any]:
    """One row the tool wrote (`history --user`, `history RUN_ID`)."""
    return {
        "run_id": str(c.run_id),
        "command": c.command,
        "user_id": c.key,
        "action": c.action,
        "changed_at": plain(c.changed_at),
        "before": c.before,
        "after": c.after,
        "reverts_run_id": str(c.reverts_run_id) if c.reverts_run_id else None,
        "reverted_by": str(c.reverted_by) if c.reverted_by else None,
    }


def write_owner_history(stream: TextIO, h: Any, envelope: dict[str, Any]) -> None:
    head = {**envelope, "user_id": h.key}
    write_object(stream, head, "changes", (audited_change(c) for c in h.changes))


def write_run_history(stream: TextIO, h: Any, envelope: dict[str, Any]) -> None:
    head = {**envelope, "run": run_entry(h.run), "user_id": h.key}
    write_object(stream, head, "changes", (audited_change(c) for c in h.changes))


def revert_head(o: Any, envelope: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        **(envelope or {}),
        "run_id": str(o.run_id) if o.run_id else None,
        "dry_run": o.dry_run,
        "reverted_run_id": str(o.reverted_run_id),
        "user_id": o.user,
        "rows_restored": o.rows_restored,
        "profiles_deleted": o.profiles_deleted,
        "profiles_recreated": o.profiles_recreated,
        "rows_left_alone": o.rows_left_alone,
    }


def write_revert(stream: TextIO, o: Any, envelope: dict[str, Any] | None = None) -> None:
    head = revert_head(o, envelope)
    write_object(stream, head, "changes", (revert_change(c) for c in o.changes))


def report(r: Any, envelope: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        **(envelope or {}),
        "checks": [dataclasses.asdict(check) for check in r.checks],
        "status": r.status,
    }


def write_document_lines(
    stream: TextIO,
    head: dict[str, Any],
    items: Iterable[dict[str, Any]] | None,
    *,
    line_type: str,
) -> None:
    """Any command's document as jsonl: each entry of its list a line of `line_type`, then
    `head` as the `summary` line (a document without a list: one line of `line_type`)."""
    stamp = line_stamp(head.get("run_id"), head)
    if items is None:
        stream.write(dumps({"type": line_type, **stamp, **head}, indent=None) + "\n")
        return
    for item in items:
        stream.write(dumps({"type": line_type, **stamp, **item}, indent=None) + "\n")
    stream.write(dumps({"type": "summary", **stamp, **head}, indent=None) + "\n")
