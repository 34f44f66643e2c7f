"""reconcile's table at a terminal of 120 columns: every result reads whole (docs/commands.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.builders import Ledger
from tests.support.terminal import Terminal

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


def test_needs_create_missing_reads_whole_at_120_columns(db_url: str, ledger: Ledger) -> None:
    drifting = ledger.profile(ledger.user(), remaining=1_000_000, used=2_500_000)
    ledger.row(drifting, 123_456, at=HOUR_AGO)
    ledger.row(ledger.user(), 40, at=HOUR_AGO)  # ledger rows, no profile
    terminal = Terminal(
        "reconcile", "--all", "--yes", env={"TOKENFIX_DATABASE_URL": db_url}, columns=120
    )
    assert terminal.finish() == 1
    lines = terminal.screen.splitlines()
    assert any("needs --create-missing" in line for line in lines), terminal.screen
    table = [line for line in lines if "│" in line or "┃" in line]
    assert table and all(len(line.rstrip()) <= 120 for line in table), terminal.screen
