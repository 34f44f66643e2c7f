"""One writer per balance table (docs/safety.md): besides its own lease, a write run refuses
at once (exit 3, before writing, naming the other run and its audit schema) when a live lease
for the same balance table exists in another tokenfix audit schema of the database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner
from tests.support.processes import finish, run_waiting_on, start
from tokenfix.audit import trail
from tokenfix.audit.lease import WriterLease
from tokenfix.base.identifiers import QualifiedName
from tokenfix.config.settings import Settings
from tokenfix.db import session


@pytest.fixture
def drifting(ledger: Ledger) -> uuid.UUID:
    user = ledger.profile(ledger.user(), remaining=900)
    ledger.row(user, 100)
    return user


def remaining(conn: psycopg.Connection, user: uuid.UUID) -> int:
    row = conn.execute(
        "SELECT vibe_assistant_tokens_remaining FROM user_profiles WHERE user_id = %s", (user,)
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def ops_run(db_url: str) -> Iterator[WriterLease]:
    """A run holding its lease with the audit schema tokenfix_ops, writing user_profiles."""
    settings = Settings(database_url=db_url, audit_schema="tokenfix_ops")
    with session.connect(settings) as conn:
        lease = WriterLease(
            conn,
            settings,
            command="reconcile",
            run_id=uuid.uuid4(),
            origin=trail.Origin.here(),
            table=QualifiedName(["user_profiles"]),
        )
        with lease:
            yield lease


def test_a_live_lease_on_the_same_table_in_another_audit_schema_refuses_the_run(
    cli: CliRunner, conn: psycopg.Connection, drifting: uuid.UUID, ops_run: WriterLease
) -> None:
    result = cli("reconcile", "--all", "--yes", "--settle", "0")
    assert result.exit_code == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "tokenfix_ops" in lines[0] and str(ops_run.run_id) in lines[0], lines[0]
    assert "user_profiles" in lines[0]
    assert remaining(conn, drifting) == 900
    # Our own lease was given back: once the other run ends, this one goes through.
    ops_run.release()
    assert cli("reconcile", "--all", "--yes", "--settle", "0").exit_code == 0
    assert remaining(conn, drifting) == -100


def test_the_other_run_is_refused_too_whichever_schema_came_first(
    cli: CliRunner, db_url: str, drifting: uuid.UUID, ops_run: WriterLease
) -> None:
    settings = Settings(database_url=db_url, audit_schema="tokenfix_third")
    with session.connect(settings) as conn:
        lease = WriterLease(
            conn,
            settings,
            command="reconcile",
            run_id=uuid.uuid4(),
            origin=trail.Origin.here(),
            table=QualifiedName(["public", "user_profiles"]),
        )
        with pytest.raises(Exception, match="tokenfix_ops"):
            lease.acquire()
        own = conn.execute("SELECT count(*) FROM tokenfix_third.lease").fetchone()
        assert own == (0,), "the refused run kept its own lease"


def test_a_lease_on_another_table_or_an_expired_one_does_not_block(
    cli: CliRunner,
    conn: psycopg.Connection,
    db_url: str,
    drifting: uuid.UUID,
) -> None:
    conn.execute("CREATE TABLE other_balances (id int PRIMARY KEY)")
    settings = Settings(database_url=db_url, audit_schema="tokenfix_ops")
    with session.connect(settings) as tool:
        lease = WriterLease(
            tool,
            settings,
            command="reconcile",
            run_id=uuid.uuid4(),
            origin=trail.Origin.here(),
            table=QualifiedName(["other_balances"]),
        )
        with lease:
            assert cli("reconcile", "--all", "--dry-run").exit_code == 1
            result = cli("reconcile", "--all", "--yes", "--settle", "0")
            assert result.exit_code == 0, result.stderr
    conn.execute(
        "INSERT INTO tokenfix_ops.lease (name, holder, command, host, pid, started_at, expires_at)"
        " SELECT 'table ' || 'user_profiles'::regclass::oid, gen_random_uuid(), 'reconcile',"
        " 'gone', 1, now() - interval '1 hour', now() - interval '1 minute'"
    )
    user = Ledger(conn).profile(uuid.uuid4(), remaining=7)
    assert cli("reconcile", "--all", "--yes", "--settle", "0").exit_code == 0
    assert remaining(conn, user) == 0


def test_two_runs_with_different_audit_schemas_never_write_the_same_table_at_once(
    db_url: str, conn: psycopg.Connection, drifting: uuid.UUID
) -> None:
    """As the fault campaign ran it: two cron jobs, TOKENFIX_AUDIT_SCHEMA tokenfix_ops and
    tokenfix, on the same table; the first is mid-batch (waiting on a row the app holds)."""
    args = ("reconcile", "--all", "--yes", "--settle", "0")
    with run_waiting_on(db_url, drifting, *args, TOKENFIX_AUDIT_SCHEMA="tokenfix_ops") as first:
        second = start(db_url, *args, TOKENFIX_LOCK_TIMEOUT="200ms")
        code, _, err = finish(second, timeout=60)
        assert code == 3, err
        assert "tokenfix_ops" in err and "user_profiles" in err, err
    code, _, err = finish(first.process)
    assert code == 0, err
    assert remaining(conn, drifting) == -100
    written = conn.execute("SELECT count(*) FROM tokenfix_ops.changes").fetchone()
    assert written == (1,)
