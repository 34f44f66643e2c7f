"""`tokenfix init` on schemas it used to get wrong: a ledger with balance-like columns is not
the balance table (a balance table has one row per owner), and a ledger column is paired
with the balance key only when its type casts to the key's."""

from __future__ import annotations

import tomllib
import uuid
from pathlib import Path

import psycopg

from tests.db.test_init import drop_the_seed
from tests.db.test_mapping_shapes import EXAMPLES
from tests.support.clirunner import CliRunner

SCHEMA = """
CREATE TABLE projects (id bigint PRIMARY KEY, name text);
CREATE TABLE accounts (
    id          uuid PRIMARY KEY,
    credits     bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- Many rows per account: a ledger, although it has token and credit columns.
CREATE TABLE credit_usage_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    uuid NOT NULL REFERENCES accounts (id),
    credits_used  integer NOT NULL,
    tokens        integer NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- A user_id that points at another table, and a text account_id that is no uuid.
CREATE TABLE api_calls (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint REFERENCES projects (id),
    account_id  text,
    cost        integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
"""


def test_init_drafts_the_one_row_per_owner_table_and_pairs_only_keys_that_cast(
    cli: CliRunner, conn: psycopg.Connection
) -> None:
    drop_the_seed(conn)
    conn.execute(SCHEMA)
    conn.execute("INSERT INTO projects VALUES (1, 'p')")
    for n in range(5):
        account = uuid.UUID(int=n + 1)
        conn.execute("INSERT INTO accounts (id, credits) VALUES (%s, 100)", (account,))
        for _ in range(4):
            conn.execute(
                "INSERT INTO credit_usage_events (account_id, credits_used, tokens)"
                " VALUES (%s, 3, 1200)",
                (account,),
            )
        conn.execute(
            "INSERT INTO api_calls (user_id, account_id, cost) VALUES (1, %s, 2)", (f"acct_{n}",)
        )
    result = cli("init")
    assert result.exit_code == 0, result.stderr
    found = tomllib.loads(result.stdout)
    assert (found["balance"]["table"], found["balance"]["key"]) == ("accounts", "id")
    assert found["balance"]["remaining"] == "credits"
    ledgers = {ledger["table"]: ledger for ledger in found.get("ledger", [])}
    assert ledgers["credit_usage_events"]["key"] == "account_id"
    assert "api_calls" not in ledgers, result.stdout


def _draft_of(cli: CliRunner, conn: psycopg.Connection, example: str) -> tuple[dict, str]:
    drop_the_seed(conn)
    conn.execute((EXAMPLES / example / "schema.sql").read_text())
    result = cli("init")
    assert result.exit_code == 0, result.stderr
    return tomllib.loads(result.stdout), result.stdout


def test_init_drafts_the_period_from_a_reset_column_and_its_duration(
    cli: CliRunner, conn: psycopg.Connection
) -> None:
    found, text = _draft_of(cli, conn, "periods")
    balance = found["balance"]
    assert balance["table"] == "customer_entitlements"
    assert balance["period_end"] == "next_reset_at"
    assert balance["period_start"] == "next_reset_at - reset_interval"
    assert balance["period_length"] == "reset_interval"
    assert "guess: the next reset" in text


def test_init_drafts_lots_from_a_table_with_an_amount_and_an_expiry(
    cli: CliRunner, conn: psycopg.Connection, tmp_path: Path
) -> None:
    found, text = _draft_of(cli, conn, "lots")
    (lots,) = found["lots"]
    assert (lots["table"], lots["key"], lots["amount"]) == ("credit_grants", "account_id", "amount")
    assert (lots["at"], lots["expires_at"]) == ("effective_at", "expires_at")
    assert (lots["voided_at"], lots["priority"], lots["id"]) == ("voided_at", "priority", "id")
    assert lots["where"] == "deleted_at IS NULL"
    assert [ledger["table"] for ledger in found["ledger"]] == ["usage_events"]
    assert "guess: an amount and an expiry" in text
    path = tmp_path / "draft.toml"  # the draft runs as it is
    path.write_text(text)
    run = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", str(path))
    assert run.exit_code == 0, run.stderr


def test_init_drafts_a_snapshot_table_with_latest_and_row_id(
    cli: CliRunner, conn: psycopg.Connection, tmp_path: Path
) -> None:
    from tests.db.test_mapping_snapshots import build

    drop_the_seed(conn)
    build(conn)
    result = cli("init")
    assert result.exit_code == 0, result.stderr
    found = tomllib.loads(result.stdout)
    balance = found["balance"]
    assert (balance["table"], balance["key"]) == ("balance_snapshots", "owner_id")
    assert (balance["latest"], balance["row_id"]) == ("at DESC, id DESC", "id")
    assert [ledger["table"] for ledger in found["ledger"]] == ["usage_records"]
    assert "guess: several rows per owner" in result.stdout
    path = tmp_path / "draft.toml"
    path.write_text(result.stdout)
    run = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", str(path))
    assert run.exit_code in (0, 1), run.stderr
    assert run.json()["users_checked"] == 12
