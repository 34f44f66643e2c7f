"""grant / deduct and --direction ledger at a terminal: before → after, then the question."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.builders import Ledger
from tests.support.terminal import Terminal

LONG_AGO = datetime.now(UTC) - timedelta(days=3)


def test_a_grant_at_a_terminal_shows_before_and_after_then_asks(
    db_url: str, ledger: Ledger
) -> None:
    user = ledger.profile(ledger.user(), remaining=700, used=300)
    ledger.row(user, 1000, action="admin_grant", model=None, at=LONG_AGO)
    ledger.row(user, 300, at=LONG_AGO)
    env = {"TOKENFIX_DATABASE_URL": db_url}
    declined = Terminal("grant", str(user), "500", "--reason", "ticket 1", env=env)
    screen = declined.read_until("Book it?")
    assert f"grant 500 to {user}: remaining 700 → 1200, used 300 (unchanged)" in screen
    declined.type("n\r")
    assert declined.finish() == 1
    assert ledger.cached(user) == (700, 300)
    accepted = Terminal("grant", str(user), "500", "--reason", "ticket 1", env=env)
    accepted.read_until("Book it?")
    accepted.type("y\r")
    assert accepted.finish() == 0
    assert "granted 500" in accepted.screen
    assert ledger.cached(user) == (1200, 300)


def test_booking_to_the_ledger_at_a_terminal_lists_the_rows_then_asks(
    db_url: str, ledger: Ledger
) -> None:
    user = ledger.profile(ledger.user(), remaining=1200, used=0)
    ledger.row(user, 1000, action="admin_grant", model=None, at=LONG_AGO)
    terminal = Terminal(
        "reconcile",
        str(user),
        "--direction",
        "ledger",
        "--reason",
        "hand credit",
        env={"TOKENFIX_DATABASE_URL": db_url},
    )
    screen = terminal.read_until("Book these rows?")
    assert f"{user}: would book a grant of 200" in screen
    terminal.type("y\r")
    assert terminal.finish() == 0
    assert ledger.cached(user) == (1200, 0)
