"""docs/mapping.md: where the mapping comes from, and what a bad mapping file gets told."""

from __future__ import annotations

import tomllib
from pathlib import Path

import psycopg
import pytest

from tests.db.test_mapping_shapes import EXAMPLES
from tests.support.clirunner import CliRunner
from tests.unit.test_mapping_toml import BAD_FILES

CREDITS = EXAMPLES / "credits" / "tokenfix.toml"


@pytest.fixture
def credits_schema(conn: psycopg.Connection) -> None:
    conn.execute((EXAMPLES / "credits" / "schema.sql").read_text())
    conn.execute(
        "INSERT INTO profiles (id, email, credits, created_at)"
        " VALUES ('00000000-0000-0000-0000-000000000001', 'a@example.com', 100, '2026-01-01')"
    )


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def test_a_mapping_file_is_found_by_flag_by_environment_and_in_the_working_directory(
    cli: CliRunner, credits_schema: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    flag = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", str(CREDITS))
    assert flag.exit_code == 0 and flag.json()["users_checked"] == 1
    monkeypatch.setenv("TOKENFIX_MAPPING", str(CREDITS))
    assert cli("reconcile", "--all", "--dry-run", "--json").json()["users_checked"] == 1
    monkeypatch.delenv("TOKENFIX_MAPPING")
    (tmp_path / "tokenfix.toml").write_text(CREDITS.read_text())
    local = cli("reconcile", "--all", "--dry-run", "--json")
    assert local.json()["users_checked"] == 1
    assert (
        local.stderr
        == "note: using the mapping in ./tokenfix.toml (found in the working directory)\n"
    )


def test_the_mapping_in_effect_prints_as_toml_whatever_its_source(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = cli("mapping")
    assert default.exit_code == 0
    assert "the default mapping (TOKENFIX_* settings)" in default.stdout
    parsed = tomllib.loads(default.stdout)
    assert parsed["balance"]["table"] == "user_profiles"
    assert parsed["ledger"][0]["kind"].startswith("CASE WHEN action_type IN ('admin_grant')")
    monkeypatch.setenv("TOKENFIX_GRANT_ACTION", "admin_grant,purchase")
    assert "IN ('admin_grant', 'purchase')" in cli("mapping").stdout
    monkeypatch.delenv("TOKENFIX_GRANT_ACTION")
    from_file = cli("mapping", "--mapping", str(CREDITS))
    assert f"the mapping file {CREDITS}" in from_file.stdout
    assert tomllib.loads(from_file.stdout)["balance"]["starting"].startswith("CASE WHEN created_at")


def test_the_mapping_command_reads_the_settings_in_an_env_file(
    cli: CliRunner, tmp_path: Path
) -> None:
    env = tmp_path / "cron.env"
    env.write_text("TOKENFIX_GRANT_ACTION=admin_grant,purchase\n")
    printed = cli("mapping", "--env-file", str(env))
    assert printed.exit_code == 0
    assert "IN ('admin_grant', 'purchase')" in printed.stdout


def test_a_mapping_beside_an_explicit_table_setting_is_bad_input_naming_both(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENFIX_PROFILES_TABLE", "accounts")
    result = cli("reconcile", "--all", "--dry-run", "--mapping", str(CREDITS))
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert "--mapping" in line and "TOKENFIX_PROFILES_TABLE" in line


@pytest.mark.parametrize(("text", "expected"), BAD_FILES[:2])
def test_a_bad_mapping_file_is_bad_input_naming_file_line_and_key(
    cli: CliRunner, tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = cli("reconcile", "--all", "--dry-run", "--mapping", str(path))
    assert result.exit_code == 2
    line = one_line(result.stderr)
    assert str(path) in line and expected in line, line


def test_create_missing_needs_a_create_section(cli: CliRunner, credits_schema: None) -> None:
    result = cli("reconcile", "--all", "--yes", "--create-missing", "--mapping", str(CREDITS))
    assert result.exit_code == 2
    assert "[balance.create]" in one_line(result.stderr)


def test_a_mapping_without_used_shows_null_used_beside_the_expected_charges(
    cli: CliRunner, conn: psycopg.Connection, credits_schema: None
) -> None:
    conn.execute(
        "INSERT INTO credit_transactions (user_id, amount, type, created_at) VALUES"
        " ('00000000-0000-0000-0000-000000000001', -30, 'usage', '2026-02-01')"
    )
    (change,) = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", str(CREDITS)).json()[
        "changes"
    ]
    assert change["current"] == {"tokens_remaining": 100, "tokens_used": None}
    assert change["expected"] == {"tokens_remaining": 70, "tokens_used": 30}
    assert change["drift"] == {"tokens_remaining": 30, "tokens_used": None}
    diagnosed = cli(
        "diagnose", "00000000-0000-0000-0000-000000000001", "--json", "--mapping", str(CREDITS)
    ).json()
    assert diagnosed["drift"] == {"tokens_remaining": 30, "tokens_used": None}
    assert [c["code"] for c in diagnosed["causes"]] == ["stopped_updating"]
