"""What every JSON output carries besides its content (docs/monitoring.md): when, how long, which
tool,
which database (`user@host:port/db`, never a password)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tokenfix import __version__

if TYPE_CHECKING:
    from tokenfix.config.settings import Settings

_run: dict[str, Any] = {"started": time.monotonic(), "target": None, "mode": None, "run_id": None}


def start(args: list[str]) -> None:
    """A command begins: its clock starts, and whether its output is JSON (and which kind)."""
    _run["started"] = time.monotonic()
    _run["target"] = None
    _run["mode"] = _mode(args)
    _run["run_id"] = None


def _mode(args: list[str]) -> str | None:
    if "--json" in args:
        return "json"
    for index, arg in enumerate(args):
        value = args[index + 1] if arg == "--format" and index + 1 < len(args) else None
        if arg.startswith("--format="):
            value = arg.split("=", 1)[1]
        if value in ("json", "jsonl"):
            return value
    return None


def started() -> float:
    """When the command began (time.monotonic())."""
    return float(_run["started"])


def mode() -> str | None:
    return _run["mode"]  # type: ignore[no-any-return]


def remember_run(run_id: Any) -> None:
    """The command recorded a run: an error from here on names it."""
    _run["run_id"] = str(run_id) if run_id is not None else None


def run_id() -> str | None:
    return _run["run_id"]  # type: ignore[no-any-return]


def remember_target(settings: Settings) -> None:
    """The database the command talks to, once its settings are known."""
    from tokenfix.base.errors import BadInput
    from tokenfix.db.target import describe_target, target

    try:
        # The URL, or libpq's PG* variables and service file when no URL is given.
        _run["target"] = describe_target(target(settings).conninfo)
    except BadInput:
        _run["target"] = None


def envelope() -> dict[str, Any]:
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - _run["started"], 3),
        "tool_version": __version__,
        "target": _run["target"],
    }
