"""docs/safety.md: no run holds the app's rows or its lease for long, however it ends.

A run stopped (SIGSTOP: Ctrl-Z, a laptop lid, a partition) loses its transaction to the idle
timeout; a server restart mid-run ends in a failed run and a free lease; a heartbeat whose
connection dies reconnects; a run that died is shown as abandoned.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner
from tests.support.gate import GATE, backend_at_the_gate, closed_gate, install_gate
from tests.support.processes import finish, run_waiting_on, start, wait_until
from tests.support.servers import server_binaries
from tokenfix.demo.pgserver import LocalCluster, Server

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


def drifting(ledger: Ledger) -> uuid.UUID:
    return ledger.drifting(100)


def lease_rows(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM tokenfix.lease").fetchone()
    return int(row[0]) if row else 0


def test_a_stopped_run_loses_its_locks_within_the_idle_timeout(
    db_url: str, conn: psycopg.Connection, ledger: Ledger
) -> None:
    user = drifting(ledger)
    install_gate(conn)
    with closed_gate(db_url) as keeper:
        run = start(
            db_url, "reconcile", "--all", "--yes", "--settle", "0", TOKENFIX_IDLE_TIMEOUT="1s"
        )
        wait_until(lambda: backend_at_the_gate(conn), what="the batch to reach the gate")
        run.send_signal(signal.SIGSTOP)
        keeper.rollback()  # the statement finishes; the stopped tool never commits
        with psycopg.connect(db_url, autocommit=True) as app:
            app.execute("SET lock_timeout = '20s'")
            waited = time.monotonic()
            app.execute(
                "UPDATE user_profiles SET vibe_assistant_tokens_remaining = -5 WHERE user_id = %s",
                (user,),
            )
            waited = time.monotonic() - waited
        run.send_signal(signal.SIGCONT)
        code, _, err = finish(run)
    assert waited < 5, f"the app waited {waited:.1f}s on a stopped run"
    assert code == 3
    assert "TOKENFIX_IDLE_TIMEOUT" in err and len(err.strip().splitlines()) == 1, err
    assert ledger.cached(user) == (-5, 0)  # the stopped batch never committed
    wait_until(lambda: lease_rows(conn) == 0, timeout=10, what="the lease to be released")
    assert conn.execute("SELECT status FROM tokenfix.runs").fetchone() == ("failed",)


@pytest.fixture
def own_server() -> Iterator[tuple[LocalCluster, Server]]:
    """A server of its own, to restart under a running write (never the session's server)."""
    cluster = LocalCluster(server_binaries(), label="restart test")
    server = cluster.start()
    yield cluster, server
    cluster.stop()


def restart(cluster: LocalCluster, *, down_for: float) -> None:
    pg_ctl = [*cluster.prefix, str(cluster.bindir / "pg_ctl"), "-D", str(cluster.datadir)]
    # fast: backends are terminated, committed work kept (the cluster runs with
    # synchronous_commit off, so an immediate stop could lose the last commits)
    subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], check=True, capture_output=True)
    time.sleep(down_for)
    options = f"-p {cluster.port} -k {cluster.base} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*pg_ctl, "-l", str(cluster.logfile), "-w", "-o", options, "start"],
        check=True,
        capture_output=True,
    )


def test_a_server_restart_mid_run_ends_in_a_failed_run_and_a_free_lease(
    own_server: tuple[LocalCluster, Server],
) -> None:
    from tests.conftest import SCHEMA

    cluster, server = own_server
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(SCHEMA.read_text())
        ledger = Ledger(conn)
        users = [drifting(ledger) for _ in range(3)]
        install_gate(conn)
    keeper = psycopg.connect(server.url)
    keeper.execute("SELECT pg_advisory_xact_lock(%s)", (GATE,))  # the gate, shut
    run = start(server.url, "reconcile", "--all", "--yes", "--settle", "0", "--batch-size", "1")
    with psycopg.connect(server.url, autocommit=True) as watcher:
        wait_until(lambda: backend_at_the_gate(watcher), what="a batch to reach the gate")
    restart(cluster, down_for=2.0)  # the run's connection dies; the server is down 2s
    keeper.close()
    code, _, err = finish(run)
    assert code == 3
    assert "lost the connection" in err or "terminat" in err, err
    with psycopg.connect(server.url, autocommit=True) as conn:
        assert lease_rows(conn) == 0  # released after reconnecting with backoff
        assert conn.execute("SELECT status FROM tokenfix.runs").fetchone() == ("failed",)
        ledger = Ledger(conn)
        assert [ledger.cached(u) for u in users] == [(0, 0)] * 3
    again = finish(start(server.url, "reconcile", "--all", "--yes", "--settle", "0"))
    assert again[0] == 0, again[2]


def test_a_heartbeat_whose_connection_dies_reconnects_and_keeps_the_lease(
    db_url: str, conn: psycopg.Connection, ledger: Ledger, cli: CliRunner
) -> None:
    user = drifting(ledger)
    with run_waiting_on(
        db_url, user, "reconcile", "--all", "--yes", "--settle", "0", TOKENFIX_LEASE_TTL="3"
    ) as held:
        heartbeat = wait_until(
            lambda: conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'tokenfix'"
                " AND datname = current_database() AND pid <> %s",
                (held.backend_pid,),
            ).fetchone(),
            what="the heartbeat's connection",
        )[0]
        conn.execute("SELECT pg_terminate_backend(%s)", (heartbeat,))
        time.sleep(4.5)  # longer than the lease's life: only a reconnected heartbeat keeps it
        second = cli("reconcile", "--all", "--yes", "--settle", "0")
        assert second.exit_code == 3 and f"pid {held.process.pid}" in second.stderr
        held.release()
        code, _, err = finish(held.process)
    assert code == 0, err
    assert ledger.cached(user) == (-100, 100)


def test_a_killed_run_is_shown_as_abandoned_once_its_lease_lapses(
    db_url: str, ledger: Ledger, cli: CliRunner
) -> None:
    user = drifting(ledger)
    with run_waiting_on(
        db_url, user, "reconcile", "--all", "--yes", "--settle", "0", TOKENFIX_LEASE_TTL="2"
    ) as held:
        statuses = cli("history", "--json").json()["runs"]
        assert [r["status"] for r in statuses] == ["running"]
        held.process.kill()
        held.process.wait()
    time.sleep(2.5)
    runs = cli("history", "--json").json()["runs"]
    assert [r["status"] for r in runs] == ["abandoned"]
    assert "abandoned" in cli("history").stdout
    # A later run takes the expired lease over and the dead one stays abandoned.
    assert cli("reconcile", "--all", "--yes", "--settle", "0").exit_code == 0
    assert [r["status"] for r in cli("history", "--json").json()["runs"]] == [
        "completed",
        "abandoned",
    ]
    assert ledger.cached(user) == (-100, 100)


def test_every_transaction_sets_the_idle_timeout_and_the_connection_keepalives(
    db_url: str,
) -> None:
    from tokenfix.config.settings import Settings
    from tokenfix.db import session

    settings = Settings(database_url=db_url, idle_timeout="7s")
    with session.connect(settings) as conn:
        assert conn.info.get_parameters()["keepalives"] == "1"
        for read_only in (True, False):
            with session.transaction(conn, settings, read_only=read_only):
                row = conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()
                assert row == ("7s",)
        assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone() == ("0",)
