"""docs/monitoring.md, connecting the way the app does: env files, libpq's own variables and service
files, app-style URLs, and errors that name the place that gave the bad value."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner
from tokenfix.db.target import app_url

UNREACHABLE = "postgresql://nobody:pw@127.0.0.1:9/none"


@pytest.fixture
def user(ledger: Ledger) -> uuid.UUID:
    return ledger.profile(ledger.user(), remaining=0, used=0)


@pytest.fixture
def runner(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI with no database in the environment: each test says where it comes from."""
    monkeypatch.delenv("TOKENFIX_DATABASE_URL")
    return cli


def server(db_url: str) -> dict[str, str]:
    params = conninfo_to_dict(db_url)
    return {key: str(params[key]) for key in ("host", "port", "user", "dbname")}


def url_of(db_url: str, query: str = "") -> str:
    s = server(db_url)
    return f"postgresql://{s['user']}@{s['host']}:{s['port']}/{s['dbname']}{query}"


def tokenfix(*args: str, cwd: Path | str, **env: str) -> subprocess.CompletedProcess[str]:
    """tokenfix in its own process: only what `env` adds (the fixture removed TOKENFIX_*,
    DATABASE_URL and PG* from this one)."""
    return subprocess.run(
        [sys.executable, "-m", "tokenfix", *args],
        capture_output=True, text=True, timeout=60, cwd=cwd, env={**os.environ, **env},
    )  # fmt: skip


# -- env files ------------------------------------------------------------------------------


def test_a_later_env_file_wins_the_environment_beats_files_and_flags_beat_all(
    runner: CliRunner, db_url: str, user: uuid.UUID, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    first = tmp_path / "first.env"
    first.write_text(f"DATABASE_URL={UNREACHABLE}\nTOKENFIX_STARTING_BALANCE=100\n")
    second = tmp_path / "second.env"
    second.write_text(f"DATABASE_URL='{db_url}'\n")
    files = ("--env-file", str(first), "--env-file", str(second))

    result = runner("diagnose", str(user), "--json", *files)
    assert result.json()["expected"]["tokens_remaining"] == 100  # from the first file
    assert (
        runner("diagnose", str(user), "--env-file", str(second), "--env-file", str(first)).exit_code
        == 3
    )

    monkeypatch.setenv("TOKENFIX_STARTING_BALANCE", "7")
    assert (
        runner("diagnose", str(user), "--json", *files).json()["expected"]["tokens_remaining"] == 7
    )

    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)
    assert runner("diagnose", str(user), *files).exit_code == 3
    assert runner("diagnose", str(user), *files, "-d", db_url).exit_code == 1  # drift: 7 vs 0


def test_an_env_file_replaces_the_dotenv_of_the_working_directory(
    runner: CliRunner, db_url: str, user: uuid.UUID, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(f"TOKENFIX_DATABASE_URL={UNREACHABLE}\n")
    (tmp_path / "tokenfix.env").write_text(f"TOKENFIX_DATABASE_URL='{db_url}'\n")
    assert runner("diagnose", str(user)).exit_code == 3
    assert runner("diagnose", str(user), "--env-file", "tokenfix.env").exit_code == 0


def test_a_missing_env_file_exits_2_naming_it(runner: CliRunner, tmp_path: Path) -> None:
    result = runner("reconcile", "--all", "--dry-run", "--env-file", "/etc/tokenfix/nope.env")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: env file /etc/tokenfix/nope.env not found "
        "(give the path of an existing file to --env-file)\n"
    )


def test_every_database_command_takes_env_file(runner: CliRunner) -> None:
    for command in ("diagnose", "reconcile", "history", "revert", "doctor", "config"):
        result = runner(command, "--help")
        assert "--env-file" in result.stdout, command


def test_a_cron_job_run_from_another_directory_reads_its_env_file(
    db_url: str, ledger: Ledger, tmp_path: Path
) -> None:
    drifting = ledger.profile(ledger.user(), remaining=5, used=0)
    settings = tmp_path / "etc" / "tokenfix.env"
    settings.parent.mkdir()
    settings.write_text(f"TOKENFIX_DATABASE_URL='{db_url}'\nTOKENFIX_STARTING_BALANCE=0\n")
    done = tokenfix(
        "reconcile", "--all", "--dry-run", "--json", "--env-file", str(settings), cwd="/"
    )
    assert (done.returncode, done.stderr) == (1, "")
    assert '"users_with_drift": 1' in done.stdout and str(drifting) in done.stdout

    without = tokenfix("reconcile", "--all", "--dry-run", "--json", cwd="/")
    assert without.returncode == 2
    assert without.stderr.startswith("error: no database given")


# -- libpq's environment and service files ---------------------------------------------------


def test_libpq_variables_connect_when_no_url_is_given(
    db_url: str, user: uuid.UUID, tmp_path: Path
) -> None:
    s = server(db_url)
    done = tokenfix(
        "diagnose", str(user), "--json", cwd=tmp_path,
        PGHOST=s["host"], PGPORT=s["port"], PGUSER=s["user"], PGDATABASE=s["dbname"],
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    assert '"status": "ok"' in done.stdout


def test_a_service_file_entry_connects(db_url: str, user: uuid.UUID, tmp_path: Path) -> None:
    s = server(db_url)
    services = tmp_path / "pg_service.conf"
    services.write_text(
        "# the fleet's databases\n[billing]\n"
        f"host={s['host']}\nport={s['port']}\nuser={s['user']}\ndbname={s['dbname']}\n"
    )
    by_variable = tokenfix(
        "diagnose", str(user), cwd=tmp_path, PGSERVICEFILE=str(services), PGSERVICE="billing"
    )
    assert (by_variable.returncode, by_variable.stderr) == (0, "")
    by_url = tokenfix(
        "diagnose", str(user), "-d", "service=billing", cwd=tmp_path, PGSERVICEFILE=str(services)
    )
    assert (by_url.returncode, by_url.stderr) == (0, "")


def test_a_service_that_is_not_defined_is_named(tmp_path: Path) -> None:
    services = tmp_path / "pg_service.conf"
    services.write_text("[billing]\nhost=127.0.0.1\nport=9\n")
    done = tokenfix(
        "diagnose", str(uuid.uuid4()), cwd=tmp_path, PGSERVICEFILE=str(services), PGSERVICE="bill"
    )
    assert done.returncode == 3
    assert done.stderr.startswith("error: cannot connect to ")
    assert "(from libpq's PGSERVICE)" in done.stderr and '"bill"' in done.stderr


def test_libpq_settings_that_name_no_database_are_not_a_target(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No test database here: these variables would reach the harness's own connections.
    monkeypatch.setenv("PGSSLMODE", "require")
    monkeypatch.setenv("PGPASSWORD", "s3cr3t-pw")
    result = CliRunner(capsys)("diagnose", str(uuid.uuid4()))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no database given: set TOKENFIX_DATABASE_URL")
    assert "PGHOST" in result.stderr and "s3cr3t-pw" not in result.stderr


# -- URLs as apps write them ------------------------------------------------------------------


def test_a_prisma_url_connects_with_one_note_about_what_it_ignores(
    runner: CliRunner, db_url: str, user: uuid.UUID
) -> None:
    url = url_of(db_url, "?schema=public&pgbouncer=true&connection_limit=1&pool_timeout=20")
    result = runner("diagnose", str(user), "--json", "-d", url)
    assert result.exit_code == 0
    assert result.json()["status"] == "ok"
    assert result.stderr == (
        "note: ignoring pgbouncer, connection_limit, pool_timeout in the URL from "
        "--database-url: settings of the app's own driver or pool, unknown to libpq\n"
    )


def test_prismas_schema_is_the_search_path_of_every_transaction(
    runner: CliRunner, db_url: str, ledger: Ledger, conn: object, tmp_path: Path
) -> None:
    user = ledger.profile(ledger.user(), remaining=-40, used=40)
    ledger.row(user, 40)
    for statement in (
        "CREATE SCHEMA billing",
        "ALTER TABLE user_profiles SET SCHEMA billing",
        "ALTER TABLE token_usage SET SCHEMA billing",
        "ALTER TABLE ai_action_token_overrides SET SCHEMA billing",
    ):
        conn.execute(statement)  # type: ignore[attr-defined]
    (tmp_path / ".env").write_text(f"DATABASE_URL={url_of(db_url, '?schema=billing')}\n")
    result = runner("diagnose", str(user), "--json")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.json()["usage"]["charged_tokens"] == 40
    assert runner("diagnose", str(user), "-d", url_of(db_url)).exit_code == 3  # not in public


def test_only_parameters_libpq_does_not_know_are_dropped() -> None:
    fitted = app_url(
        "postgresql://app:pw@db:6543/postgres?sslmode=require&pgbouncer=true"
        "&application_name=web&connect_timeout=5&schema=my%22app&statement_cache_size=0"
    )
    assert fitted.conninfo == (
        "postgresql://app:pw@db:6543/postgres?sslmode=require&application_name=web&connect_timeout=5"
    )
    assert fitted.ignored == ("pgbouncer", "statement_cache_size")
    assert fitted.search_path == '"my""app"'


def test_a_question_mark_in_a_password_is_not_a_query() -> None:
    url = "postgresql://app:pa?ss=word@db/postgres"
    assert app_url(url).conninfo == url
    assert app_url(url).ignored == ()


def test_a_key_value_string_stays_strict(runner: CliRunner) -> None:
    result = runner("diagnose", str(uuid.uuid4()), "-d", "host=db pgbouncer=true")
    assert result.exit_code == 2
    assert "--database-url is not a valid connection string" in result.stderr


# -- errors name the source of the bad value --------------------------------------------------


def test_a_bad_url_from_plain_database_url_in_dotenv_names_that_variable_and_file(
    runner: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("DATABASE_URL=postgresql://app:s3cr3t-pw@[db/app\n")
    result = runner("diagnose", str(uuid.uuid4()))
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert line.startswith(
        f"error: DATABASE_URL in {tmp_path / '.env'} is not a valid connection string: "
    )
    assert "TOKENFIX_DATABASE_URL" not in line and "s3cr3t-pw" not in line


def test_an_unreachable_server_names_where_its_url_came_from(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)
    result = runner("diagnose", str(uuid.uuid4()))
    assert result.exit_code == 3
    assert result.stderr.startswith(
        "error: cannot connect to nobody@127.0.0.1:9/none (from DATABASE_URL): "
    )
    assert "'tokenfix config' shows where the settings came from" in result.stderr


def test_a_bad_setting_in_an_env_file_names_the_variable_and_the_file(
    runner: CliRunner, tmp_path: Path
) -> None:
    settings = tmp_path / "cron.env"
    settings.write_text("TOKENFIX_LOCK_TIMEOUT=soon\n")
    result = runner("reconcile", "--all", "--dry-run", "--env-file", str(settings))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: bad setting TOKENFIX_LOCK_TIMEOUT in {settings}: ")


def test_a_bad_flag_value_names_the_flag(runner: CliRunner, db_url: str) -> None:
    result = runner("reconcile", "--all", "--dry-run", "-d", db_url, "--batch-size", "1000000")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: bad setting --batch-size: ")
