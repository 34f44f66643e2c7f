"""docs/monitoring.md: `revert --dry-run` and the history lookups work on a real hot standby (read-only
server), where a writing revert is refused.

A primary and a standby of their own: the runs written here must not change what the other
standby tests (test_tls_and_standby.py) find on theirs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

import tokenfix
from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner
from tests.support.processes import wait_until
from tests.support.servers import ExtraCluster, server_binaries
from tokenfix.demo.pgserver import Server

SCHEMA = Path(__file__).resolve().parents[2] / "sql" / "schema.sql"


@dataclass(frozen=True)
class Replicated:
    primary: Server
    standby: Server
    run_id: str
    users: tuple[uuid.UUID, uuid.UUID]


@pytest.fixture(scope="module")
def replicated() -> Iterator[Replicated]:
    """A write run on the primary (two users corrected), replayed on the standby."""
    bindir = server_binaries()
    primary = ExtraCluster(bindir, label="lookups-primary").start()
    try:
        with psycopg.connect(primary.url, autocommit=True) as conn:
            conn.execute(SCHEMA.read_text())
            ledger = Ledger(conn)
            users = tuple(sorted(ledger.profile(ledger.user()) for _ in range(2)))
            for tokens, user in zip((30, 20), users, strict=True):
                ledger.row(user, tokens, at=datetime.now(UTC) - timedelta(hours=1))
        settings = tokenfix.load_settings(database_url=primary.url)
        with tokenfix.connect(settings) as conn:
            request = tokenfix.Request(tokenfix.Selection(), dry_run=False)
            with tokenfix.reconcile(conn, settings, request) as outcome:
                run_id = str(outcome.run_id)
        standby = ExtraCluster(bindir, label="lookups-standby").start_standby_of(primary)
    except BaseException:
        primary.stop()
        raise

    def replayed() -> bool:
        with psycopg.connect(standby.url) as conn:
            found = conn.execute("SELECT to_regclass('tokenfix.changes') IS NOT NULL").fetchone()
            if found != (True,):
                return False
            return conn.execute("SELECT count(*) FROM tokenfix.changes").fetchone() == (2,)

    try:
        wait_until(replayed, what="the standby to replay the run")
        yield Replicated(primary, standby, run_id, users)  # type: ignore[arg-type]
    finally:
        standby.stop()
        primary.stop()


def test_a_revert_dry_run_works_on_a_standby(cli: CliRunner, replicated: Replicated) -> None:
    with psycopg.connect(replicated.standby.url) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    result = cli("revert", replicated.run_id, "--dry-run", "--json", "-d", replicated.standby.url)
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert (data["dry_run"], data["run_id"], data["rows_restored"], data["rows_left_alone"]) == (
        True,
        None,
        2,
        0,
    )
    assert [(c["user_id"], c["restore_to"], c["skipped"]) for c in data["changes"]] == [
        (str(user), {"tokens_remaining": 0, "tokens_used": 0}, "dry_run")
        for user in replicated.users
    ]


def test_a_revert_of_one_user_dry_run_works_on_a_standby(
    cli: CliRunner, replicated: Replicated
) -> None:
    user = str(replicated.users[1])
    args = ("revert", replicated.run_id, "--user", user, "--dry-run", "--json")
    result = cli(*args, "-d", replicated.standby.url)
    assert result.exit_code == 0, result.stderr
    assert [c["user_id"] for c in result.json()["changes"]] == [user]


def test_a_writing_revert_is_refused_on_a_standby(cli: CliRunner, replicated: Replicated) -> None:
    result = cli("revert", replicated.run_id, "--yes", "-d", replicated.standby.url)
    assert result.exit_code == 3
    assert "read-only standby" in result.stderr


def test_the_history_lookups_work_on_a_standby(cli: CliRunner, replicated: Replicated) -> None:
    url = replicated.standby.url
    run = cli("history", replicated.run_id, "--json", "-d", url)
    assert run.exit_code == 0, run.stderr
    assert [c["user_id"] for c in run.json()["changes"]] == [str(u) for u in replicated.users]
    owner = cli("history", "--user", str(replicated.users[0]), "--json", "-d", url)
    assert owner.exit_code == 0, owner.stderr
    assert [(c["run_id"], c["after"]) for c in owner.json()["changes"]] == [
        (replicated.run_id, {"tokens_remaining": -30, "tokens_used": 30})
    ]
