"""SIGINT, SIGTERM and SIGHUP end a run cleanly (SPEC §7): one exception, raised once.

The handler raises `Interrupted` in the main thread wherever it is. It derives from
SystemExit on purpose: psycopg treats SystemExit (like KeyboardInterrupt) as an interrupt and
cancels the statement the connection is running before re-raising, `except Exception`
blocks let it through, and click does not turn it into its own Abort (which would lose the
signal number). A second signal during the cleanup is ignored: the cleanup is bounded to a
few seconds, and a half-done cleanup is what leaves a lease held.
"""

from __future__ import annotations

import signal
from types import FrameType

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


def install() -> None:
    """Handle the three signals; an inherited "ignore" (nohup for SIGHUP) stays ignored."""
    _received.clear()
    for signum in HANDLED:
        if signal.getsignal(signum) is signal.SIG_IGN:
            continue
        signal.signal(signum, _handler)


def received() -> int | None:
    """The first signal received since install(), if any."""
    return _received[0] if _received else None
