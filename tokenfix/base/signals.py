"""SIGINT, SIGTERM and SIGHUP end a run cleanly (docs/safety.md): one exception, raised once.

The handler raises `Interrupted` in the main thread wherever it is. It derives from
SystemExit on purpose: psycopg treats SystemExit (like KeyboardInterrupt) as an interrupt and
cancels the statement the connection is running before re-raising, `except Exception`
blocks let it through, and click does not turn it into its own Abort (which would lose the
signal number). A second signal during the cleanup is ignored: the cleanup is bounded to a
few seconds, and a half-done cleanup is what leaves a lease held.

A signal that lands while Python runs a finalizer (a `__del__`, a weakref or gc callback, as
imports and psycopg's connection pool do) cannot propagate from there: Python would print
"Exception ignored in …" with a traceback and carry on, and the run would never stop. Our
unraisable hook catches that case, prints nothing, and has the signal delivered again a moment
later (from a thread: a signal raised inside the hook would be handled inside the hook), so
that the handler raises where the exception can travel.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from types import FrameType
from typing import Any

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}


class Interrupted(SystemExit):
    """The process received SIGINT, SIGTERM or SIGHUP; exit code 128 + its number."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum
        self.detail: str | None = None
        """What the run did about it (set by the write path), for the one stderr line."""

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return NAMES.get(signal.Signals(self.signum), f"signal {self.signum}")

    def __str__(self) -> str:
        return f"interrupted by {self.name}"


_received: list[int] = []


def _handler(signum: int, frame: FrameType | None) -> None:
    if _received:  # already unwinding: let the cleanup finish
        return
    _received.append(signum)
    raise Interrupted(signum)


def _unraisable(unraisable: Any) -> None:
    exc = unraisable.exc_value
    if isinstance(exc, Interrupted):
        # Swallowed by a finalizer: forget it and have it raised again, outside.
        import threading

        _received.clear()
        threading.Thread(target=_deliver_again, args=(exc.signum,), daemon=True).start()
        return
    _previous_hook(unraisable)


def _deliver_again(signum: int) -> None:
    time.sleep(REDELIVERY_DELAY_S)
    os.kill(os.getpid(), signum)


REDELIVERY_DELAY_S = 0.05
_previous_hook = sys.unraisablehook


def install() -> None:
    """Handle the three signals; an inherited "ignore" (nohup for SIGHUP) stays ignored."""
    global _previous_hook
    _received.clear()
    if sys.unraisablehook is not _unraisable:
        _previous_hook, sys.unraisablehook = sys.unraisablehook, _unraisable
    for signum in HANDLED:
        if signal.getsignal(signum) is signal.SIG_IGN:
            continue
        signal.signal(signum, _handler)


def received() -> int | None:
    """The first signal received since install(), if any."""
    return _received[0] if _received else None
