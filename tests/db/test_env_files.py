"""Env files and the database they choose (docs/configuration.md): the tool's own URL wins
wherever each name is set, `--env-file` replaces ./.env, a line that does not parse is bad
input naming the file and line, and an error about a setting names where it came from."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner, Result

APP_URL = "postgresql://app@app-db.invalid/appdb"


@pytest.fixture
def tokenfix(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """The CLI with no URL in the environment: each test says where the URL comes from."""
    return CliRunner(capsys)


def one_error(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def drifting(conn: psycopg.Connection) -> uuid.UUID:
    ledger = Ledger(conn)
    user = ledger.profile(ledger.user(), remaining=900, used=0)
    ledger.row(user, 100)
    return user


def remaining(conn: psycopg.Connection, user: uuid.UUID) -> int:
    row = conn.execute(
        "SELECT vibe_assistant_tokens_remaining FROM user_profiles WHERE user_id = %s", (user,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_tools_url_in_an_env_file_beats_the_apps_url_in_the_environment(
    tokenfix: CliRunner,
    db_url: str,
    second_db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with (
        psycopg.connect(db_url, autocommit=True) as tool,
        psycopg.connect(second_db_url, autocommit=True) as app,
    ):
        ours, theirs = drifting(tool), drifting(app)
        monkeypatch.setenv("DATABASE_URL", second_db_url)
        env = tmp_path / "tool.env"
        env.write_text(f"TOKENFIX_DATABASE_URL={db_url}\n")
        result = tokenfix("reconcile", "--all", "--yes", "--settle", "0", "--env-file", str(env))
        assert result.exit_code == 0, result.stderr
        assert remaining(tool, ours) == -100
        assert remaining(app, theirs) == 900


@pytest.mark.parametrize(
    ("environment", "files", "winner"),
    [
        ({"DATABASE_URL": APP_URL}, ["TOKENFIX_DATABASE_URL=postgresql://tool@tool-db/t"], 0),
        (
            {},
            ["DATABASE_URL=" + APP_URL + "\nTOKENFIX_DATABASE_URL=postgresql://tool@tool-db/t"],
            0,
        ),
        ({}, ["TOKENFIX_DATABASE_URL=postgresql://tool@tool-db/t", "DATABASE_URL=" + APP_URL], 0),
        ({"TOKENFIX_DATABASE_URL": "postgresql://tool@tool-db/t"}, ["DATABASE_URL=" + APP_URL], -1),
    ],
)
def test_the_specific_name_wins_wherever_each_is_set(
    tokenfix: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    files: list[str],
    winner: int,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    arguments = []
    for number, text in enumerate(files):
        path = tmp_path / f"{number}.env"
        path.write_text(text + "\n")
        arguments += ["--env-file", str(path)]
    data = tokenfix("config", "--json", *arguments).json()
    assert data["connection"]["target"] == "tool@tool-db:5432/t"
    source = data["settings"]["database_url"]["source"]
    assert source["name"] == "TOKENFIX_DATABASE_URL"
    expected_path = str(tmp_path / f"{winner}.env") if winner >= 0 else None
    assert source["path"] == expected_path


@pytest.mark.parametrize("command", [["config"], ["reconcile", "--all", "--dry-run"], ["doctor"]])
def test_an_env_file_line_that_does_not_parse_is_bad_input_naming_file_and_line(
    tokenfix: CliRunner, tmp_path: Path, command: list[str]
) -> None:
    env = tmp_path / "tool.env"
    env.write_text("# the brake\nTOKENFIX_BATCH_SIZE=10\nTOKENFIX_MAX_CHANGES='5\n")
    result = tokenfix(*command, "--env-file", str(env))
    assert result.exit_code == 2
    line = one_error(result)
    assert f"{env}, line 3" in line and "does not parse" in line, line


def test_a_dot_env_that_does_not_parse_is_bad_input_too(
    tokenfix: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text('TOKENFIX_MAX_CHANGES="5\n')
    result = tokenfix("config")
    assert result.exit_code == 2
    assert f"{tmp_path / '.env'}, line 1" in one_error(result)


def test_an_env_file_that_is_not_utf8_is_bad_input_naming_the_line(
    tokenfix: CliRunner, tmp_path: Path
) -> None:
    env = tmp_path / "latin1.env"
    env.write_bytes(b"TOKENFIX_BATCH_SIZE=10\nTOKENFIX_AUDIT_SCHEMA=caf\xe9\n")
    result = tokenfix("config", "--env-file", str(env))
    assert result.exit_code == 2
    line = one_error(result)
    assert f"{env}, line 2" in line and "UTF-8" in line, line


def test_an_env_file_with_a_nul_byte_is_bad_input_naming_the_line(
    tokenfix: CliRunner, tmp_path: Path
) -> None:
    env = tmp_path / "nul.env"
    env.write_bytes(b"TOKENFIX_BATCH_SIZE=10\n\nTOKENFIX_AUDIT_SCHEMA=a\x00b\n")
    result = tokenfix("config", "--env-file", str(env))
    assert result.exit_code == 2
    assert f"{env}, line 3" in one_error(result)


def test_an_env_file_replaces_dot_env_entirely(tokenfix: CliRunner, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"DATABASE_URL={APP_URL}\nTOKENFIX_LOCK_TIMEOUT=9s\n")
    other = tmp_path / "other.env"
    other.write_text("TOKENFIX_BATCH_SIZE=5\n")
    data = tokenfix("config", "--json", "--env-file", str(other)).json()
    assert data["settings"]["database_url"]["value"] is None
    assert data["settings"]["database_url"]["source"]["kind"] == "default"
    assert data["settings"]["lock_timeout"]["value"] == "5s"
    assert data["env_files"] == [str(other)]
    run = tokenfix("reconcile", "--all", "--dry-run", "--env-file", str(other))
    assert run.exit_code == 2
    assert "no database given" in one_error(run)
    assert "app-db" not in run.stderr


def test_config_names_the_file_each_value_came_from(tokenfix: CliRunner, tmp_path: Path) -> None:
    first, second = tmp_path / "base.env", tmp_path / "site.env"
    first.write_text("TOKENFIX_BATCH_SIZE=5\nTOKENFIX_LOCK_TIMEOUT=9s\n")
    second.write_text("TOKENFIX_LOCK_TIMEOUT=3s\nTOKENFIX_DATABASE_URL=postgresql://t@h/d\n")
    data = tokenfix("config", "--json", "--env-file", str(first), "--env-file", str(second)).json()
    sources = {name: row["source"]["path"] for name, row in data["settings"].items()}
    assert sources["batch_size"] == str(first)
    assert sources["lock_timeout"] == str(second)
    assert sources["database_url"] == str(second)
    assert sources["work_mem"] is None


def test_the_brake_names_the_env_file_that_set_it(
    tokenfix: CliRunner, db_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    for _ in range(3):
        drifting(conn)
    env = tmp_path / "cron.env"
    env.write_text(f"TOKENFIX_DATABASE_URL={db_url}\nTOKENFIX_MAX_CHANGES=2\n")
    result = tokenfix("reconcile", "--all", "--yes", "--settle", "0", "--env-file", str(env))
    assert result.exit_code == 2
    line = one_error(result)
    assert f"TOKENFIX_MAX_CHANGES in {env}" in line, line
    assert "--max-changes 2" not in line, line
    flagged = tokenfix(
        "reconcile", "--all", "--yes", "--settle", "0", "--env-file", str(env),
        "--max-changes", "1",
    )  # fmt: skip
    assert "--max-changes 1" in one_error(flagged)


def test_a_starting_balance_the_column_cannot_hold_names_the_env_file(
    tokenfix: CliRunner, db_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    drifting(conn)
    env = tmp_path / "cron.env"
    env.write_text(f"TOKENFIX_DATABASE_URL={db_url}\nTOKENFIX_STARTING_BALANCE=99999999999999\n")
    result = tokenfix("reconcile", "--all", "--dry-run", "--env-file", str(env))
    assert result.exit_code == 2
    line = one_error(result)
    assert f"(TOKENFIX_STARTING_BALANCE in {env})" in line, line
    assert "--starting-balance" not in line, line
