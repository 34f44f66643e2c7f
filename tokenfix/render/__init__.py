"""Rendering of plain results: rich layouts for people on stdout, JSON and CSV for machines.

stdout carries the result only; messages and progress go to stderr.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def plain(value: Any) -> Any:
    """JSON for values json does not know: times as ISO 8601, durations in seconds."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=plain)


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def make_consoles() -> tuple[Console, Console]:
    """stdout for results, stderr for the rest; 160 columns off a terminal (logs, pipes)."""
    out, err = Console(), Console(stderr=True)
    for console in (out, err):
        if not console.is_terminal:
            console.width = max(console.width, 160)
    return out, err
