"""What a person at a terminal sees while `reconcile` runs (docs/commands.md): one line on
stderr from the first second to the last, saying what is being read or written and how long
the run has taken, and, before a write, the rows it would write.

Nothing here when stderr is not a terminal: cron's runs never import rich.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

PROMPT_ROWS = 20
"""Rows the write prompt shows before asking (then a count of the rest)."""


class Feedback:
    """Progress and the write prompt, on stderr, on a terminal only."""

    def __init__(self, *, show: bool, quiet: bool, dry_run: bool, started: float) -> None:
        self.show = show and sys.stderr.isatty()
        self.quiet = quiet
        self.dry_run = dry_run
        self.started = _process_started(started)
        self.err: Any = None
        self.progress: Any = None
        self.task: Any = None
        self.warned: list[str] = []
        self.target: Any = None
        self.request: Any = None
        self.asks = False
        """Whether a write is confirmed first (no --yes): it is not "writing" until then."""
        if self.show:
            self._start()

    # -- the progress line --------------------------------------------------------------

    def _start(self) -> None:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

        self.err = self.err or _stderr_console()
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            TextColumn("{task.fields[count]}"),
            _Elapsed(self.started),
            console=self.err,
            transient=True,
        )
        self.task = self.progress.add_task("reading the settings", total=None, count="")
        self.progress.start()

    def phase(self, description: str, total: int | None = None) -> None:
        """What the run does now; `total` when it goes through a known number of owners."""
        if self.progress is None:
            return
        count = f"0/{total:,}" if total is not None else ""
        self.progress.reset(self.task, total=total, description=description, count=count)
        self.progress.refresh()  # every phase reaches the screen, however short

    def advance(self, users: int) -> None:
        if self.progress is None:
            return
        self.progress.advance(self.task, users)
        task = self.progress.tasks[0]
        if task.total is not None:
            shown = f"{int(task.completed):,}/{int(task.total):,}"
            self.progress.update(self.task, count=shown)

    def done(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    # -- what the run reports -------------------------------------------------------------

    def connecting(self, settings: Any) -> None:
        from tokenfix.db.target import database_url, describe_target

        self.target = settings
        self.phase(f"connecting to {describe_target(database_url(settings))}")

    def reading(self) -> None:
        self.phase("reading the balances and the ledger (one pass)")

    def warn(self, warning: str) -> None:
        """A warning known before the scan (row-level security): shown at once, not again."""
        from tokenfix.cli.options import warning_line

        self.warned.append(warning)
        if not self.quiet:
            self._above(lambda: warning_line(warning))

    def planned(self, plan: Any) -> None:
        from tokenfix.cli.options import warning_line

        if not self.quiet:
            for warning in plan.warnings:
                if warning not in self.warned:
                    self._above(lambda w=warning: warning_line(w))
        total = plan.candidates.count
        if self.dry_run:
            self.phase(f"finding the causes of {total:,} owners' drift", total)
        elif self.asks:
            self.phase("choosing the rows to write", total)
        else:
            self.phase("writing", total)

    def _above(self, write: Any) -> None:
        """A line printed above the progress line, which stays."""
        if self.progress is not None:
            self.progress.stop()
            write()
            self.progress.start()
        else:
            write()

    # -- the write prompt -----------------------------------------------------------------

    def confirm(self, plan: Any, planned: int) -> bool:
        from tokenfix.base.words import plural
        from tokenfix.cli.options import ask
        from tokenfix.db.target import database_url, describe_target
        from tokenfix.reconciliation.plan import skip_reason
        from tokenfix.render.reconcile import planned_rows

        self.err = self.err or _stderr_console()
        live = self.progress is not None
        if live:
            self.progress.stop()
        rows = (c for c in plan.candidates if skip_reason(c, self.request) is None)
        self.err.print(planned_rows(rows, planned, PROMPT_ROWS, reads_used=plan.reads_used))
        counts = plan.counts
        self.err.print(
            f"{plural(counts.users_with_drift, 'user')} with drift and "
            f"{plural(counts.missing_profiles, 'missing profile')} found; "
            f"{plural(planned, 'row')} would be written to "
            f"{describe_target(database_url(self.target))}.",
            highlight=False,
        )
        answer = ask("Write them?", timeout=self.target.prompt_timeout)
        if live and answer:
            self.progress.start()
            self.phase("writing", plan.candidates.count)
        return answer


def _process_started(fallback: float) -> float:
    """When this process began, on the time.monotonic() clock: the elapsed time a person sees
    counts Python's own start-up too (Linux; elsewhere, from when the command began)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as uptime:
            booted_for = float(uptime.read().split()[0])
        age = booted_for - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return fallback
    return time.monotonic() - age if 0 <= age < 3600 else fallback


def _stderr_console() -> Any:
    from tokenfix.render.console import make_consoles

    return make_consoles()[1]


def _elapsed_text(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _Elapsed(started: float) -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Elapsed(ProgressColumn):
        """Time since the command started (not since the phase did)."""

        def render(self, task: Any) -> Text:
            return Text(_elapsed_text(time.monotonic() - started), style="progress.elapsed")

    return Elapsed()
