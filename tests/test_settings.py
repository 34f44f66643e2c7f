"""SPEC §6: environment, then .env, overridden by flags; names are identifiers; DSNs redacted."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.builders import Ledger
from tests.clirunner import CliRunner
from tokenfix.db import describe_target, redact
from tokenfix.errors import BadInput
from tokenfix.settings import load_settings


@pytest.fixture
def user(ledger: Ledger) -> uuid.UUID:
    return ledger.profile(ledger.user())


@pytest.mark.parametrize("variable", ["TOKENFIX_DATABASE_URL", "DATABASE_URL"])
def test_the_url_can_come_from_a_dotenv_file(
    cli: CliRunner,
    db_url: str,
    user: uuid.UUID,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    variable: str,
) -> None:
    monkeypatch.delenv("TOKENFIX_DATABASE_URL")
    (tmp_path / ".env").write_text(f"{variable}='{db_url}'\nNEXT_PUBLIC_APP_SETTING=x\n")
    assert cli("diagnose", str(user)).exit_code == 0


def test_plain_database_url_is_the_fallback(
    cli: CliRunner, db_url: str, user: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TOKENFIX_DATABASE_URL")
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert cli("diagnose", str(user)).exit_code == 0


def test_the_environment_beats_dotenv_and_the_flag_beats_both(
    cli: CliRunner, db_url: str, user: uuid.UUID, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    unreachable = "postgresql://nobody@127.0.0.1:9/none"
    (tmp_path / ".env").write_text(f"TOKENFIX_DATABASE_URL={unreachable}\n")
    assert cli("diagnose", str(user)).exit_code == 0  # TOKENFIX_DATABASE_URL in the env wins
    monkeypatch.setenv("TOKENFIX_DATABASE_URL", unreachable)
    assert cli("diagnose", str(user)).exit_code == 3
    assert cli("diagnose", str(user), "-d", db_url).exit_code == 0


def test_starting_balance_comes_from_the_environment_or_the_flag(
    cli: CliRunner, user: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENFIX_STARTING_BALANCE", "250")
    data = cli("diagnose", str(user), "--json").json()
    assert data["expected"]["tokens_remaining"] == 250
    data = cli("diagnose", str(user), "--json", "--starting-balance", "0").json()
    assert data["expected"]["tokens_remaining"] == 0


def test_action_lists_are_comma_separated_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENFIX_GRANT_ACTION", " admin_grant , purchase,subscription_refill ")
    settings = load_settings()
    assert settings.grant_action == ("admin_grant", "purchase", "subscription_refill")
    assert settings.special_actions == (
        "admin_grant",
        "purchase",
        "subscription_refill",
        "admin_deduct",
    )


def test_an_action_cannot_be_both_grant_and_deduct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKENFIX_DEDUCT_ACTION", "admin_grant")
    with pytest.raises(BadInput, match="either a grant or a deduct"):
        load_settings()


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        (
            "postgresql://alice:s3cret@db.example.com:6543/postgres?sslmode=require",
            "postgresql://alice:***@db.example.com:6543/postgres?sslmode=require",
        ),
        (
            "host=db user=alice password=s3cret dbname=app",
            "host=db user=alice password=*** dbname=app",
        ),
        (
            "postgresql://db/app?user=alice&password=s3cret",
            "postgresql://db/app?user=alice&password=***",
        ),
    ],
)
def test_a_dsn_is_redacted(dsn: str, shown: str) -> None:
    assert redact(dsn) == shown
    assert "s3cret" not in describe_target(dsn)


def test_the_target_is_named_without_the_password() -> None:
    assert describe_target("postgresql://alice:s3cret@db:5433/app") == "alice@db:5433/app"
