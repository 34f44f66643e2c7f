"""`tokenfix init` (docs/mapping.md): a draft mapping from the catalogs, every guess marked."""

from __future__ import annotations

import random
import tomllib
from pathlib import Path

import psycopg
import pytest

from tests.db.test_mapping_shapes import EXAMPLES, SHAPES
from tests.support.clirunner import CliRunner


def drop_the_seed(conn: psycopg.Connection) -> None:
    conn.execute("DROP TABLE token_usage, user_profiles, ai_action_token_overrides")


def draft(cli: CliRunner) -> dict:
    result = cli("init")
    assert result.exit_code == 0, result.stderr
    assert "# guess:" in result.stdout
    return tomllib.loads(result.stdout)


def test_the_seed_schema_drafts_its_own_mapping(cli: CliRunner) -> None:
    found = draft(cli)
    assert (found["balance"]["table"], found["balance"]["key"]) == ("user_profiles", "user_id")
    assert found["balance"]["remaining"] == "vibe_assistant_tokens_remaining"
    assert found["balance"]["used"] == "vibe_assistant_tokens_used"
    (ledger,) = found["ledger"]
    assert (ledger["table"], ledger["key"], ledger["amount"]) == (
        "token_usage",
        "user_id",
        "tokens_used",
    )
    assert (ledger["at"], ledger["counted"]) == ("created_at", "success")
    assert found["pricing"]["overrides"] == "ai_action_token_overrides"


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_example_shape_gets_a_draft_naming_its_tables(
    cli: CliRunner, conn: psycopg.Connection, shape: str
) -> None:
    drop_the_seed(conn)
    conn.execute((EXAMPLES / shape / "schema.sql").read_text())
    SHAPES[shape](conn, random.Random(shape))
    found = draft(cli)
    example = tomllib.loads((EXAMPLES / shape / "tokenfix.toml").read_text())
    assert found["balance"]["table"] == example["balance"]["table"]
    assert found["balance"]["key"] == example["balance"]["key"]
    assert {ledger["table"] for ledger in found["ledger"]} == {
        ledger["table"] for ledger in example["ledger"]
    }
    for ledger in found["ledger"]:
        wanted = next(e for e in example["ledger"] if e["table"] == ledger["table"])
        assert ledger["key"] == wanted["key"] and ledger["at"] == wanted["at"]


def test_signed_amounts_and_a_type_column_are_guessed_and_said_so(
    cli: CliRunner, conn: psycopg.Connection
) -> None:
    drop_the_seed(conn)
    conn.execute((EXAMPLES / "credits" / "schema.sql").read_text())
    SHAPES["credits"](conn, random.Random("credits"))
    text = cli("init").stdout
    (ledger,) = tomllib.loads(text)["ledger"]
    assert ledger["amount"] == "abs(amount)"
    assert "WHEN 'purchase' THEN 'grant'" in ledger["kind"]
    assert "WHEN 'usage' THEN 'charge'" in ledger["kind"]
    assert "guess: a signed amount" in text


def test_no_balance_table_exits_1_and_output_refuses_to_overwrite(
    cli: CliRunner, conn: psycopg.Connection, tmp_path: Path
) -> None:
    target = tmp_path / "tokenfix.toml"
    assert cli("init", "--output", str(target)).exit_code == 0
    assert tomllib.loads(target.read_text())["balance"]["table"] == "user_profiles"
    refused = cli("init", "--output", str(target))
    assert refused.exit_code == 2 and "--force" in refused.stderr
    assert cli("init", "--output", str(target), "--force").exit_code == 0
    drop_the_seed(conn)
    empty = cli("init")
    assert empty.exit_code == 1 and empty.stdout == ""
    assert "no plausible balance table" in empty.stderr
