"""A person at a terminal (docs/commands.md): the progress line says what is being read and how
long it has taken from the first moment to the last, the write prompt shows the rows before
asking, and "no" is an answer, not an error."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tests.support.builders import Ledger
from tests.support.terminal import Terminal

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)
ELAPSED = re.compile(r"\d+:\d\d:\d\d")


def drifting(ledger: Ledger, count: int) -> list[str]:
    users = [ledger.profile(ledger.user(), remaining=0) for _ in range(count)]
    for user in users:
        ledger.row(user, 40, at=HOUR_AGO)
    return sorted(str(user) for user in users)


def frames(raw: str) -> list[str]:
    """Each redraw of the progress line, as the terminal showed it."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    return [line.strip() for line in re.split(r"[\r\n⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]", text) if line.strip()]


def test_the_progress_line_names_every_phase_with_the_elapsed_time(
    db_url: str, ledger: Ledger
) -> None:
    drifting(ledger, 3)
    terminal = Terminal("reconcile", "--all", "--dry-run", env={"TOKENFIX_DATABASE_URL": db_url})
    assert terminal.finish() == 1
    shown = frames(terminal.raw)
    phases = ["connecting to postgres@127.0.0.1", "reading the balances and the ledger",
              "finding the causes of 3 owners' drift"]  # fmt: skip
    seen = [next((i for i, f in enumerate(shown) if p in f), None) for p in phases]
    assert None not in seen, shown
    assert seen == sorted(seen)  # type: ignore[type-var]
    for index in seen:
        assert ELAPSED.search(shown[index]), shown[index]  # type: ignore[index]
    first_output = next(i for i, f in enumerate(shown) if "user_id" in f)
    assert first_output > max(seen)  # type: ignore[type-var]


def test_the_write_prompt_shows_the_first_20_rows_and_a_count(db_url: str, ledger: Ledger) -> None:
    users = drifting(ledger, 23)
    terminal = Terminal("reconcile", "--all", env={"TOKENFIX_DATABASE_URL": db_url})
    screen = terminal.read_until("Write them?")
    question = screen.index("Write them?")
    for user in users[:20]:
        assert 0 <= screen.index(user) < question
    assert users[20] not in screen and users[22] not in screen
    assert "… and 3 more rows" in screen
    assert "+40 / -40" in screen  # the drift it would fix, as the table shows it
    terminal.type("n\r")
    assert terminal.finish() == 1


def test_answering_no_says_nothing_written_and_is_no_error(db_url: str, ledger: Ledger) -> None:
    users = drifting(ledger, 2)
    terminal = Terminal("reconcile", "--all", env={"TOKENFIX_DATABASE_URL": db_url})
    terminal.read_until("Write them?")
    terminal.type("n\r")
    assert terminal.finish() == 1
    after = terminal.screen.split("Write them?", 1)[1]
    assert "nothing written" in after and "error" not in after
    assert [ledger.cached(u) for u in users] == [(0, 0), (0, 0)]


def test_the_table_starts_printing_after_a_few_rows_not_a_chunk(db_url: str) -> None:
    """Laying out rows costs ~2 ms each on a small VM: the first rows must not wait for 500."""
    from rich.console import Console
    from rich.table import Table

    from tokenfix.base.records import Change, Counts, Pair
    from tokenfix.base.spool import Spool
    from tokenfix.reconciliation.plan import Outcome
    from tokenfix.render.reconcile import render_outcome

    changes: Spool[Change] = Spool()
    for number in range(1200):
        changes.append(Change(key=f"user-{number:05d}", status="drift", current=Pair(0, 0),
                              expected=Pair(-40, 40), drift=Pair(40, -40), applied=False,
                              skipped="dry_run"))  # fmt: skip
    printed: list[int] = []

    class Recording(Console):
        def print(self, *objects: object, **kwargs: object) -> None:
            printed.extend(o.row_count for o in objects if isinstance(o, Table))

    with Outcome(run_id=None, dry_run=True, counts=Counts(), changes=changes) as outcome:
        render_outcome(Recording(width=120), outcome)
    *rows, _causes = printed
    assert sum(rows) == 1200
    assert rows[0] <= 50
