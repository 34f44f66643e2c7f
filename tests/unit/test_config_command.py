"""`tokenfix config`: every setting in effect with its source, passwords never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.clirunner import CliRunner
from tokenfix.config.settings import Settings

# No test database: config connects to nothing.


@pytest.fixture
def tokenfix(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    return CliRunner(capsys)


@pytest.fixture
def cron_env(tmp_path: Path) -> Path:
    path = tmp_path / "cron.env"
    path.write_text(
        "DATABASE_URL=postgresql://app:s3cr3t-pw@db.example.com:6543/postgres"
        "?schema=billing&pgbouncer=true&connection_limit=1\n"
        "TOKENFIX_LOCK_TIMEOUT=9s\n"
        "NEXT_PUBLIC_SUPABASE_URL=https://example.supabase.co\n"
    )
    return path


def test_each_setting_is_shown_once_with_its_source(
    tokenfix: CliRunner, cron_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENFIX_STARTING_BALANCE", "1000")
    monkeypatch.setenv("COLUMNS", "400")  # one line per row, to read them back
    result = tokenfix("config", "--env-file", str(cron_env))
    assert (result.exit_code, result.stderr) == (0, "")
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in lines[1:21]}
    assert len(rows) == len(Settings.model_fields) == 20
    assert rows["TOKENFIX_DATABASE_URL"] == [
        "postgresql://app:***@db.example.com:6543/postgres?schema=billing&pgbouncer=true&connection_limit=1",
        f"{cron_env} (DATABASE_URL)",
    ]
    assert rows["TOKENFIX_LOCK_TIMEOUT"] == ["9s", str(cron_env)]
    assert rows["TOKENFIX_STARTING_BALANCE"] == ["1000", "environment"]
    assert rows["TOKENFIX_BATCH_SIZE"] == ["1000", "default"]
    assert lines[-4:] == [
        f"env files read: {cron_env}",
        "connection: app@db.example.com:6543/postgres, from DATABASE_URL in " + str(cron_env),
        'search_path: "billing" (the URL\'s schema parameter)',
        "ignored URL parameters: pgbouncer, connection_limit (unknown to libpq)",
    ]
    assert "s3cr3t" not in result.stdout


def test_the_json_gives_each_source_by_kind_name_and_path(
    tokenfix: CliRunner, cron_env: Path
) -> None:
    result = tokenfix(
        "config", "--env-file", str(cron_env), "-d", "postgresql://me:pw2@db/x", "--json"
    )
    assert result.exit_code == 0
    data = result.json()
    assert data["settings"]["database_url"] == {
        "variable": "TOKENFIX_DATABASE_URL",
        "value": "postgresql://me:***@db/x",
        "source": {"kind": "flag", "name": "--database-url", "path": None},
    }
    assert data["settings"]["lock_timeout"]["source"] == {
        "kind": "file", "name": "TOKENFIX_LOCK_TIMEOUT", "path": str(cron_env),
    }  # fmt: skip
    assert data["settings"]["work_mem"] == {
        "variable": "TOKENFIX_WORK_MEM",
        "value": "64MB",
        "source": {"kind": "default", "name": None, "path": None},
    }
    assert list(data["settings"]) == list(Settings.model_fields)
    assert data["env_files"] == [str(cron_env)]
    assert data["connection"] == {
        "target": "me@db:5432/x",
        "source": "--database-url",
        "search_path": None,
        "ignored_parameters": [],
    }
    assert data["connection_error"] is None
    assert "pw2" not in result.stdout and "s3cr3t" not in result.stdout


def test_libpqs_own_variables_are_shown_and_named_as_the_target(
    tokenfix: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"PGHOST": "db.internal", "PGUSER": "ops", "PGPASSWORD": "s3cr3t-pw",
                        "PGSSLMODE": "require"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    data = tokenfix("config", "--json").json()
    assert data["libpq_environment"] == {
        "PGHOST": "db.internal", "PGPASSWORD": "***", "PGSSLMODE": "require", "PGUSER": "ops",
    }  # fmt: skip
    assert data["connection"]["source"] == "libpq's PGHOST, PGUSER"
    assert data["connection"]["target"] == "ops@db.internal:5432/ops"
    assert data["target"] == "ops@db.internal:5432/ops"  # the envelope names it too
    assert data["settings"]["database_url"]["value"] is None
    table = tokenfix("config").stdout
    assert "PGPASSWORD                  ***" in table and "s3cr3t" not in table


def test_with_nothing_configured_it_says_so_and_exits_0(tokenfix: CliRunner) -> None:
    result = tokenfix("config", "--json")
    assert result.exit_code == 0
    data = result.json()
    assert data["connection"] is None
    assert data["connection_error"].startswith("no database given: set TOKENFIX_DATABASE_URL")
    assert data["env_files"] == []


def test_a_mapping_file_in_the_working_directory_is_shown_as_found(
    tokenfix: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / "tokenfix.toml").write_text("[balance]\n")
    data = tokenfix("config", "--json").json()
    assert data["settings"]["mapping"] == {
        "variable": "TOKENFIX_MAPPING",
        "value": "tokenfix.toml",
        "source": {"kind": "found", "name": None, "path": str(tmp_path / "tokenfix.toml")},
    }


def test_a_bad_setting_exits_2_naming_it_and_its_file(tokenfix: CliRunner, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TOKENFIX_IDLE_TIMEOUT=100ms\n")
    result = tokenfix("config")
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: bad setting TOKENFIX_IDLE_TIMEOUT in {tmp_path / '.env'}: "
        "'100ms' is too short: at least 1s\n"
    )


def test_the_json_carries_the_envelope(tokenfix: CliRunner, cron_env: Path) -> None:
    data = tokenfix("config", "--env-file", str(cron_env), "--json").json()
    assert {"generated_at", "duration_s", "tool_version"} <= data.keys()
    assert data["target"] == "app@db.example.com:6543/postgres"
