"""Tool durations (docs/commands.md) such as `90s`, `2m`, `24h`, `7d`, and `--since` times."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tokenfix.base.errors import BadInput

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# A century back is far beyond any ledger, and well inside what both Python's timedelta and
# PostgreSQL's timestamp arithmetic hold (`--since 99999999h` is "timestamp out of range").
LONGEST = timedelta(days=36_500)


def parse_duration(text: str, *, option: str) -> timedelta:
    """`90s`, `2m`, `24h`, `7d`; a bare `0` means none."""
    found = _DURATION.match(text)
    if not found or (found.group(2) == "" and found.group(1) != "0"):
        raise BadInput(f"{option} {text!r} is not a duration such as 90s, 2m, 24h or 7d")
    amount, unit = int(found.group(1)), found.group(2) or "s"
    try:
        duration = timedelta(**{_UNITS[unit]: amount})
    except OverflowError:
        duration = LONGEST + LONGEST
    if duration > LONGEST:
        raise BadInput(f"{option} {text!r} is too long: at most {LONGEST.days}d (100 years)")
    return duration


def parse_since(text: str) -> datetime | timedelta:
    """An ISO time (naive means UTC), or a duration meaning that long before now.

    A duration stays a duration so the server's clock, not ours, decides what "ago" means.
    """
    if _DURATION.match(text):
        return parse_duration(text, option="--since")
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadInput(
            f"--since {text!r} is neither an ISO time (2026-11-24T00:00:00Z) nor a duration (24h)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
