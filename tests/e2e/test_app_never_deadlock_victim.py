"""The app is never the deadlock victim (docs/safety.md): in a lock cycle with the app, the
tool's transaction gives way. Where the role may set it (a superuser here), write transactions
set a deadlock_timeout far below the server's; otherwise (a plain role) each batch's row locks
are taken with a short lock_timeout, and retried.

The cycle, made deterministic: the app has updated owner B; our batch (A < C < B) has locked A
and waits for C, which a third session holds; the app now updates A (it waits for us, and
started waiting first); C is let go, so we wait for B: a cycle in which, with the server's
deadlock_timeout on both sides, the app's check fires first and the app is aborted.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests.support.builders import Ledger, ensure_role
from tests.support.clirunner import CliRunner
from tests.support.processes import backend_waiting_on_a_lock, finish, start, wait_until

ROUNDS = int(os.environ.get("TOKENFIX_TEST_DEADLOCK_ROUNDS", "3"))
PLAIN = "tf_deadlock_plain"


@pytest.fixture(params=["superuser", "plain role"])
def tool_url(request: pytest.FixtureRequest, db_url: str, conn: psycopg.Connection) -> str:
    if request.param == "superuser":
        return db_url
    ensure_role(conn, PLAIN)
    conn.execute(
        sql.SQL(
            "GRANT SELECT, INSERT, UPDATE ON user_profiles, token_usage, ai_action_token_overrides"
            " TO {role}; GRANT CREATE ON DATABASE {db} TO {role}"
        ).format(role=sql.Identifier(PLAIN), db=sql.Identifier(conn.info.dbname))
    )
    return make_conninfo(db_url, user=PLAIN)


def waiting(conn: psycopg.Connection, pid: int) -> bool:
    row = conn.execute(
        "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,)
    ).fetchone()
    return bool(row and row[0])


def one_cycle(db_url: str, tool_url: str, watch: psycopg.Connection) -> dict[str, Any]:
    ledger = Ledger(watch)
    a, c, b = sorted((ledger.user() for _ in range(3)), key=str)
    for user in (a, c, b):
        ledger.profile(user, remaining=0)
        ledger.row(user, 100)
    charge = (
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining ="
        " vibe_assistant_tokens_remaining - 1 WHERE user_id = %s"
    )
    outcome: dict[str, Any] = {}
    with psycopg.connect(db_url) as holder, psycopg.connect(db_url) as app:
        holder.execute("SELECT 1 FROM user_profiles WHERE user_id = %s FOR UPDATE", (c,))
        app.execute(charge, (b,))
        tool = start(tool_url, "reconcile", "--all", "--yes", "--settle", "0")
        wait_until(lambda: backend_waiting_on_a_lock(watch), what="tokenfix waiting for C")

        def second_update() -> None:
            started = time.monotonic()
            try:
                app.execute(charge, (a,))
                app.commit()
                outcome["committed"] = True
            except psycopg.Error as exc:
                app.rollback()
                outcome["committed"] = False
                outcome["error"] = str(exc).splitlines()[0]
            outcome["app_waited_s"] = time.monotonic() - started

        thread = threading.Thread(target=second_update)
        thread.start()
        app_pid = app.info.backend_pid
        wait_until(lambda: waiting(watch, app_pid) or not thread.is_alive(), what="the app waiting")
        time.sleep(0.3)
        holder.rollback()  # let C go: we now wait for B, the app for A
        thread.join(timeout=30)
    code, _, err = finish(tool)
    outcome["tool_exit"] = code
    outcome["tool_stderr"] = err
    return outcome


def test_the_apps_two_row_transaction_in_reverse_key_order_always_commits(
    db_url: str, tool_url: str, conn: psycopg.Connection
) -> None:
    server_timeout = conn.execute("SHOW deadlock_timeout").fetchone()
    outcomes = [one_cycle(db_url, tool_url, conn) for _ in range(ROUNDS)]
    waits = [o["app_waited_s"] for o in outcomes]
    print(
        f"\n{'plain role' if PLAIN in tool_url else 'superuser'}: "
        f"{ROUNDS} cycles, app committed {sum(o['committed'] for o in outcomes)}, "
        f"app waited median {statistics.median(waits):.3f}s max {max(waits):.3f}s "
        f"(server deadlock_timeout {server_timeout[0] if server_timeout else '?'}), "
        f"tool exits {[o['tool_exit'] for o in outcomes]}"
    )
    for outcome in outcomes:
        assert outcome["committed"], outcome
        assert outcome["tool_exit"] in (0, 1), outcome["tool_stderr"]


def test_doctor_says_which_way_the_tool_gives_way(
    db_url: str, tool_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENFIX_DATABASE_URL", tool_url)
    checks = {c["name"]: c for c in CliRunner(capsys)("doctor", "--json").json()["checks"]}
    check = checks["deadlock_victim"]
    assert check["status"] == "ok"
    if PLAIN in tool_url:
        assert "may not set deadlock_timeout" in check["message"]
        assert "lock_timeout 250ms within 500ms" in check["message"]
        assert "GRANT SET ON PARAMETER deadlock_timeout" in check["message"]
    else:
        assert "set deadlock_timeout 50ms (the server's is 1000ms)" in check["message"]
