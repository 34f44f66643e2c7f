"""docs/safety.md: SIGINT, SIGTERM and SIGHUP end a run cleanly, whenever they come.

Each test stops a write run at the worst moment (its batch holds the app's rows and the lease
row, see tests/support/gate.py), signals it, and checks what the app and the next run find: the batch
rolled back, the run marked interrupted, the lease free within a few seconds, one line on
stderr, exit 128 + N.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.support.builders import Ledger
from tests.support.gate import backend_at_the_gate, closed_gate, install_gate
from tests.support.processes import finish, start, wait_until

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


def drifting_users(ledger: Ledger, count: int) -> list[uuid.UUID]:
    users = [ledger.profile(ledger.user()) for _ in range(count)]
    for user in users:
        ledger.row(user, 100, at=HOUR_AGO)
    return users


def lease_rows(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM tokenfix.lease").fetchone()
    return int(row[0]) if row else 0


def run_statuses(conn: psycopg.Connection[Any]) -> list[str]:
    return [r[0] for r in conn.execute("SELECT status FROM tokenfix.runs ORDER BY started_at")]


def assert_one_clean_line(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: interrupted by "), err
    assert "Traceback" not in err and "psycopg" not in err
    for fragment in fragments:
        assert fragment in lines[0], err


@pytest.mark.parametrize(
    ("signum", "code", "name"),
    [
        (signal.SIGINT, 130, "SIGINT"),
        (signal.SIGTERM, 143, "SIGTERM"),
        (signal.SIGHUP, 129, "SIGHUP"),
    ],
)
def test_a_signal_during_a_batch_rolls_it_back_and_frees_the_lease_at_once(
    db_url: str, conn: psycopg.Connection, ledger: Ledger, signum: int, code: int, name: str
) -> None:
    users = drifting_users(ledger, 3)
    install_gate(conn)
    with closed_gate(db_url):
        run = start(db_url, "reconcile", "--all", "--yes", "--settle", "0", "--batch-size", "2")
        wait_until(lambda: backend_at_the_gate(conn), what="the batch to reach the gate")
        signalled = time.monotonic()
        run.send_signal(signum)
        wait_until(lambda: lease_rows(conn) == 0, timeout=10, what="the lease to be released")
        released_after = time.monotonic() - signalled
        exit_code, _, err = finish(run)
    assert exit_code == code
    assert_one_clean_line(err, name, "marked interrupted", "lease is released")
    assert released_after < 5, f"lease released {released_after:.2f}s after {name}"
    assert run_statuses(conn) == ["interrupted"]
    assert [ledger.cached(u) for u in users] == [(0, 0)] * 3  # the open batch rolled back
    assert conn.execute("SELECT count(*) FROM tokenfix.changes").fetchone() == (0,)


def test_the_app_is_not_kept_waiting_after_a_signal(
    db_url: str, conn: psycopg.Connection, ledger: Ledger
) -> None:
    (user,) = drifting_users(ledger, 1)
    install_gate(conn)
    with closed_gate(db_url):
        run = start(db_url, "reconcile", "--all", "--yes", "--settle", "0")
        wait_until(lambda: backend_at_the_gate(conn), what="the batch to reach the gate")
        run.send_signal(signal.SIGTERM)
        with psycopg.connect(db_url, autocommit=True) as app:
            app.execute("SET lock_timeout = '5s'")
            waited = time.monotonic()
            app.execute(
                "UPDATE user_profiles SET vibe_assistant_tokens_remaining = -7 WHERE user_id = %s",
                (user,),
            )
            waited = time.monotonic() - waited
        assert finish(run)[0] == 143
    assert waited < 5
    assert ledger.cached(user) == (-7, 0)


def test_a_rerun_right_after_a_signal_is_not_locked_out_and_converges(
    db_url: str, conn: psycopg.Connection, ledger: Ledger
) -> None:
    users = drifting_users(ledger, 2)
    install_gate(conn)
    with closed_gate(db_url) as keeper:
        run = start(db_url, "reconcile", "--all", "--yes", "--settle", "0")
        wait_until(lambda: backend_at_the_gate(conn), what="the batch to reach the gate")
        run.send_signal(signal.SIGINT)
        assert finish(run)[0] == 130
        keeper.rollback()  # open the gate for the re-run
    again = start(db_url, "reconcile", "--all", "--yes", "--settle", "0")
    exit_code, _, err = finish(again)
    assert exit_code == 0, err
    assert [ledger.cached(u) for u in users] == [(-100, 100)] * 2
    assert run_statuses(conn) == ["interrupted", "completed"]


def test_an_inherited_sighup_ignore_is_kept(
    db_url: str, conn: psycopg.Connection, ledger: Ledger
) -> None:
    """Under nohup, SIGHUP (an SSH session closing) must not stop the run."""
    (user,) = drifting_users(ledger, 1)
    install_gate(conn)
    with closed_gate(db_url) as keeper:
        run = start(
            db_url,
            "reconcile",
            "--all",
            "--yes",
            "--settle",
            "0",
            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
        )
        wait_until(lambda: backend_at_the_gate(conn), what="the batch to reach the gate")
        run.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert run.poll() is None
        keeper.rollback()
        exit_code, _, err = finish(run)
    assert exit_code == 0, err
    assert ledger.cached(user) == (-100, 100)


@pytest.mark.parametrize("delay", [0.0, 0.15, 0.3, 0.5])
def test_a_signal_during_start_up_is_one_line_and_its_exit_code(db_url: str, delay: float) -> None:
    run = start(db_url, "reconcile", "--all", "--dry-run")
    time.sleep(delay)
    run.send_signal(signal.SIGTERM)
    exit_code, _, err = finish(run)
    if exit_code == -signal.SIGTERM:
        # Before the interpreter ran any of tokenfix (the first few dozen ms): the default
        # action, which a shell reports as 143 too; nothing was started, nothing printed.
        assert delay < 0.15 and err == ""
        return
    if exit_code in (0, 1):  # finished first: nothing to check
        return
    assert exit_code == 143, err
    assert_one_clean_line(err, "SIGTERM")


def test_a_dry_run_ends_cleanly_on_sigterm(
    db_url: str, conn: psycopg.Connection, ledger: Ledger
) -> None:
    drifting_users(ledger, 1)
    with psycopg.connect(db_url) as blocker:
        # An ACCESS EXCLUSIVE lock queued by a migration: the dry run waits behind it.
        blocker.execute("LOCK TABLE token_usage IN ACCESS EXCLUSIVE MODE")
        run = start(db_url, "reconcile", "--all", "--dry-run", TOKENFIX_LOCK_TIMEOUT="60s")
        wait_until(
            lambda: conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = 'tokenfix'"
                " AND wait_event_type = 'Lock'"
            ).fetchone(),
            what="the dry run to wait",
        )
        run.send_signal(signal.SIGTERM)
        exit_code, out, err = finish(run)
    assert exit_code == 143
    assert out == ""
    assert_one_clean_line(err, "SIGTERM")


def test_an_unanswered_prompt_times_out_and_writes_nothing(db_url: str, ledger: Ledger) -> None:
    from tests.support.terminal import Terminal

    (user,) = drifting_users(ledger, 1)
    terminal = Terminal(
        "reconcile",
        "--all",
        env={"TOKENFIX_DATABASE_URL": db_url, "TOKENFIX_PROMPT_TIMEOUT": "1"},
    )
    terminal.read_until("Write them?")
    assert terminal.finish(timeout=20) == 1
    assert "no answer within 1s; nothing was written" in terminal.screen
    assert ledger.cached(user) == (0, 0)
    assert ledger.conn.execute("SELECT count(*) FROM tokenfix.lease").fetchone() == (0,)


def test_a_signal_during_revert_marks_it_interrupted(
    db_url: str, conn: psycopg.Connection, ledger: Ledger
) -> None:
    users = drifting_users(ledger, 2)
    code, out, err = finish(start(db_url, "reconcile", "--all", "--yes", "--settle", "0", "--json"))
    assert code == 0, err
    run_id = json.loads(out)["run_id"]
    install_gate(conn)
    with closed_gate(db_url):
        revert = start(db_url, "revert", run_id, "--yes")
        wait_until(lambda: backend_at_the_gate(conn), what="the revert batch to reach the gate")
        revert.send_signal(signal.SIGTERM)
        exit_code, _, err = finish(revert)
    assert exit_code == 143
    assert_one_clean_line(err, "SIGTERM")
    assert run_statuses(conn) == ["completed", "interrupted"]
    assert lease_rows(conn) == 0
    assert [ledger.cached(u) for u in users] == [(-100, 100)] * 2


# A finalizer that is running when the signal comes: the handler's exception cannot leave it.
IN_A_FINALIZER = """
import sys, time
from tokenfix.base import signals
signals.install()
class Slow:
    def __del__(self):
        sys.stdout.write("finalizing\\n"); sys.stdout.flush()
        time.sleep(3)
try:
    Slow()  # finalized at once: the signal lands inside __del__
    time.sleep(5)  # the rest of the run
    sys.stdout.write("carried on\\n")
except signals.Interrupted as exc:
    sys.stdout.write(f"stopped by {exc.name}\\n")
    raise SystemExit(exc.exit_code)
"""


def test_a_signal_inside_a_finalizer_still_stops_the_run_without_a_traceback() -> None:
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-c", IN_A_FINALIZER], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline() == "finalizing\n"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert (process.returncode, out, err) == (143, "stopped by SIGTERM\n", "")
