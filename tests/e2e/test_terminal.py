"""On a terminal, writing asks first: 'no' writes nothing, 'yes' writes (docs/commands.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.builders import Ledger
from tests.support.terminal import Terminal

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


def drifting_users(ledger: Ledger, count: int = 2) -> list:
    users = [ledger.profile(ledger.user(), remaining=0) for _ in range(count)]
    for user in users:
        ledger.row(user, 40, at=HOUR_AGO)
    return users


def test_answering_no_at_the_prompt_writes_nothing(db_url: str, ledger: Ledger) -> None:
    users = drifting_users(ledger)
    terminal = Terminal("reconcile", "--all", env={"TOKENFIX_DATABASE_URL": db_url})
    screen = terminal.read_until("Write them?")
    assert "2 users with drift" in screen and "2 rows would be written" in screen
    terminal.type("n\r")
    assert terminal.finish() == 1
    assert [ledger.cached(u) for u in users] == [(0, 0), (0, 0)]


def test_the_prompt_counts_one_user_in_the_singular(db_url: str, ledger: Ledger) -> None:
    drifting_users(ledger, 1)
    terminal = Terminal("reconcile", "--all", env={"TOKENFIX_DATABASE_URL": db_url})
    screen = terminal.read_until("Write them?")
    assert "1 user with drift and 0 missing profiles found; 1 row would be written" in screen
    terminal.type("n\r")
    assert terminal.finish() == 1


def test_answering_yes_at_the_prompt_writes_and_shows_the_run(db_url: str, ledger: Ledger) -> None:
    users = drifting_users(ledger)
    terminal = Terminal("reconcile", "--all", env={"TOKENFIX_DATABASE_URL": db_url})
    terminal.read_until("Write them?")
    terminal.type("y\r")
    assert terminal.finish() == 0
    assert "undo with 'tokenfix revert" in terminal.screen
    assert [ledger.cached(u) for u in users] == [(-40, 40), (-40, 40)]


def test_revert_asks_first_on_a_terminal(db_url: str, ledger: Ledger) -> None:
    users = drifting_users(ledger, 1)
    done = Terminal("reconcile", "--all", "--yes", "--json", env={"TOKENFIX_DATABASE_URL": db_url})
    assert done.finish() == 0
    run_id = ledger.conn.execute("SELECT run_id::text FROM tokenfix.runs").fetchone()[0]  # type: ignore[index]
    terminal = Terminal("revert", run_id, env={"TOKENFIX_DATABASE_URL": db_url})
    terminal.read_until("Put back the values it replaced?")
    terminal.type("y\r")
    assert terminal.finish() == 0
    assert ledger.cached(users[0]) == (0, 0)
