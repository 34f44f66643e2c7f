"""`--metrics-file` on every exit (docs/monitoring.md): the run that measured something writes
its numbers; any other ending (a mistyped flag, a bad setting, a failure, a signal) writes its
exit code from `run()`, which knows it. The path is read from the raw arguments too, so that a
usage error Click raises before the command runs still leaves its `tokenfix_exit_code 2`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

OPTION = "--metrics-file"

_run: dict[str, Any] = {"path": None, "started": time.monotonic()}


def start(args: list[str]) -> None:
    """A command begins: its clock starts, and the metrics file it names, if any."""
    _run["started"] = time.monotonic()
    _run["path"] = _named(args)


def _named(args: list[str]) -> Path | None:
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg == OPTION and index + 1 < len(args):
            return Path(args[index + 1])
        if arg.startswith(OPTION + "="):
            return Path(arg.split("=", 1)[1])
    return None


def expect(path: Path | None) -> None:
    """The path as the command parsed it (the raw arguments' guess is only for usage errors)."""
    _run["path"] = path


def done(code: int, outcome: Any, alerting_users: int) -> None:
    """The run measured the balances: its numbers, written now (a closed stdout pipe later
    must not take them away)."""
    path = _run["path"]
    if path is not None:
        from tokenfix.render import metrics

        metrics.write(path, exit_code=code, duration_s=_elapsed(), outcome=outcome,
                      alerting_users=alerting_users)  # fmt: skip
        _run["path"] = None  # written: what follows must not overwrite it


def finish(code: int) -> None:
    """The command ended with `code` without writing its numbers: its exit code, the previous
    file's drift gauges kept."""
    path = _run["path"]
    if path is None:
        return
    _run["path"] = None
    from tokenfix.render import metrics

    try:
        metrics.write(path, exit_code=code, duration_s=_elapsed())
    except OSError as exc:
        sys.stderr.write(f"error: cannot write {OPTION} {path}: {exc.strerror or exc}\n")


def _elapsed() -> float:
    return time.monotonic() - float(_run["started"])
