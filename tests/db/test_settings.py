"""docs/configuration.md: environment, then .env, overridden by flags; names are identifiers; DSNs redacted."""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path

import pytest

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner
from tokenfix.base.errors import BadInput
from tokenfix.config.redact import redact
from tokenfix.config.settings import Origin, load_settings
from tokenfix.db.target import describe_target


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


def test_the_tools_own_variable_wins_over_the_apps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db/app")
    monkeypatch.setenv("TOKENFIX_DATABASE_URL", "postgresql://tool@db/app")
    settings = load_settings()
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == "postgresql://tool@db/app"
    assert str(settings.origin("database_url")) == "TOKENFIX_DATABASE_URL"


def test_every_setting_knows_where_it_came_from(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first, second = tmp_path / "first.env", tmp_path / "second.env"
    first.write_text("DATABASE_URL=postgresql://a@db/one\nTOKENFIX_LOCK_TIMEOUT=9s\n")
    second.write_text("tokenfix_lock_timeout=10s\nTOKENFIX_BATCH_SIZE=7\n")
    monkeypatch.setenv("TOKENFIX_BATCH_SIZE", "8")
    settings = load_settings(env_files=[first, second], max_changes=5, given_as="flag")
    assert (settings.lock_timeout, settings.batch_size, settings.max_changes) == ("10s", 8, 5)
    origins = {name: settings.origin(name) for name in ("database_url", "lock_timeout",
               "batch_size", "max_changes", "work_mem")}  # fmt: skip
    assert origins == {
        "database_url": Origin("file", "DATABASE_URL", first),
        "lock_timeout": Origin("file", "TOKENFIX_LOCK_TIMEOUT", second),
        "batch_size": Origin("environment", "TOKENFIX_BATCH_SIZE"),
        "max_changes": Origin("flag", "--max-changes"),
        "work_mem": Origin("default"),
    }
    assert settings.env_files == (first, second)


def test_an_env_file_read_from_a_pipe_is_read_once(tmp_path: Path) -> None:
    fifo = tmp_path / "secrets.env"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_text, args=("TOKENFIX_BATCH_SIZE=3\n",))
    writer.start()
    settings = load_settings(env_files=[fifo])  # as with --env-file <(vault read …)
    writer.join(timeout=5)
    assert settings.batch_size == 3
