"""`tokenfix demo --load URL` (docs/commands.md): the demo's sample in a database of one's own
server, ready for every command; never into a database that already holds the tables."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tests.conftest import url_for
from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner
from tokenfix.demo.pgserver import Server
from tokenfix.demo.sample import STARTING_BALANCE


@pytest.fixture
def empty_db_url(pg_server: Server) -> Iterator[str]:
    name = f"tokenfix_load_{os.getpid()}"
    with psycopg.connect(pg_server.url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield url_for(pg_server.url, name)
    with psycopg.connect(pg_server.url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_the_sample_loads_into_an_empty_database_of_ones_own(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, empty_db_url: str
) -> None:
    cli = CliRunner(capsys)
    loaded = cli("demo", "--load", empty_db_url, "--users", "50")
    assert loaded.exit_code == 0, loaded.stderr
    assert f"TOKENFIX_STARTING_BALANCE={STARTING_BALANCE}" in loaded.stdout
    with psycopg.connect(empty_db_url) as conn:
        users = conn.execute("SELECT count(*) FROM user_profiles").fetchone()
    assert users is not None and users[0] > 0
    monkeypatch.setenv("TOKENFIX_DATABASE_URL", empty_db_url)
    monkeypatch.setenv("TOKENFIX_STARTING_BALANCE", str(STARTING_BALANCE))
    dry = cli("reconcile", "--all", "--dry-run", "--json")
    assert dry.exit_code == 1 and dry.json()["users_with_drift"] > 0


def test_the_sample_never_goes_into_a_database_holding_the_tables(
    cli: CliRunner, db_url: str, ledger: Ledger
) -> None:
    ledger.profile(ledger.user())  # the app's one user
    result = cli("demo", "--load", db_url)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and "already has" in result.stderr
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM user_profiles").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM token_usage").fetchone() == (0,)
