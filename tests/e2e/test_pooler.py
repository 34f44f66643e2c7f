"""Through a real transaction-mode pooler (PgBouncer): every command works, the lease holds.

Session advisory locks and server-side prepared statements break behind a transaction pooler;
tokenfix uses neither. These tests skip where PgBouncer is not installed on a developer's machine;
under CI (.ci/run installs it) a missing PgBouncer is a failure, never a skip.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner
from tests.support.pgbouncer import INSTALL_HINT, find_pgbouncer, pgbouncer, pool_mode, through
from tests.support.processes import finish, run_waiting_on

pytestmark = pytest.mark.skipif(
    find_pgbouncer() is None and not os.environ.get("CI"), reason=INSTALL_HINT
)


@pytest.fixture(autouse=True)
def installed() -> None:
    if find_pgbouncer() is None:  # only under CI, where .ci/run installs it
        pytest.fail(INSTALL_HINT, pytrace=False)


HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture
def pooled_url(db_url: str) -> Iterator[str]:
    with pgbouncer(db_url, users=["postgres"]) as port:
        assert pool_mode(port) == "transaction"
        yield through(db_url, port)


def test_every_command_works_through_pgbouncer_in_transaction_mode(
    cli: CliRunner, pooled_url: str, ledger: Ledger
) -> None:
    user = ledger.profile(ledger.user(), remaining=0)
    ledger.row(user, 100, at=HOUR_AGO)
    diagnosed = cli("diagnose", str(user), "--json", "-d", pooled_url)
    assert (diagnosed.exit_code, diagnosed.json()["status"]) == (1, "drift")
    dry = cli("reconcile", "--all", "--dry-run", "--json", "-d", pooled_url)
    assert (dry.exit_code, len(dry.json()["changes"])) == (1, 1)
    wrote = cli("reconcile", "--all", "--yes", "--json", "-d", pooled_url)
    assert wrote.exit_code == 0, wrote.stderr
    assert ledger.cached(user) == (-100, 100)
    history = cli("history", "--json", "-d", pooled_url).json()
    assert history["runs"][0]["run_id"] == wrote.json()["run_id"]
    assert cli("revert", wrote.json()["run_id"], "--yes", "-d", pooled_url).exit_code == 0
    assert ledger.cached(user) == (0, 0)


def test_a_second_writer_is_locked_out_through_pgbouncer(
    cli: CliRunner, pooled_url: str, db_url: str, ledger: Ledger
) -> None:
    user = ledger.profile(ledger.user(), remaining=0)
    ledger.row(user, 100, at=HOUR_AGO)
    with run_waiting_on(
        db_url, user, "reconcile", "--all", "--yes", "--json", run_url=pooled_url
    ) as first:
        second = cli("reconcile", "--all", "--yes", "-d", pooled_url)
    assert second.exit_code == 3
    assert f"pid {first.process.pid}" in second.stderr
    code, out, err = finish(first.process)
    assert code == 0, err
    assert json.loads(out)["users_updated"] == 1


def test_doctor_detects_the_pooler(cli: CliRunner, pooled_url: str) -> None:
    data = cli("doctor", "--json", "-d", pooled_url).json()
    pooler = next(c for c in data["checks"] if c["name"] == "pooler")
    assert pooler["status"] == "ok"
    assert "a pooler or proxy" in pooler["message"]


def test_doctor_detects_the_pooler_when_libpq_variables_route_us(
    cli: CliRunner, pooled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = conninfo_to_dict(pooled_url)
    monkeypatch.delenv("TOKENFIX_DATABASE_URL")
    for name, key in [("PGHOST", "host"), ("PGPORT", "port"), ("PGUSER", "user"),
                      ("PGDATABASE", "dbname")]:  # fmt: skip
        monkeypatch.setenv(name, str(params[key]))
    data = cli("doctor", "--json").json()
    pooler = next(c for c in data["checks"] if c["name"] == "pooler")
    assert f"dialled port {params['port']}" in pooler["message"]
