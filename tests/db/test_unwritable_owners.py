"""One owner cannot block the rest (docs/safety.md): an owner whose expected value does not fit
the balance column is left as it was and reported (`skipped: "unwritable"` with the reason),
the run goes on with the others and exits 1; the dry run warns naming such owners."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner

GRANT = 2_147_483_000


@pytest.fixture
def owners(ledger: Ledger) -> tuple[list[uuid.UUID], uuid.UUID]:
    """Five drifting owners; the third in key order was granted more than an integer holds."""
    users = sorted((ledger.user() for _ in range(5)), key=str)
    for user in users:
        ledger.profile(user, remaining=5, used=0)
        ledger.row(user, 100)
    huge = users[2]
    ledger.row(huge, GRANT, action="admin_grant")
    ledger.row(huge, GRANT, action="admin_grant")
    return users, huge


def remaining(conn: psycopg.Connection, user: uuid.UUID) -> int:
    row = conn.execute(
        "SELECT vibe_assistant_tokens_remaining FROM user_profiles WHERE user_id = %s", (user,)
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("batch_size", ["1", "1000"])
def test_an_owner_whose_value_does_not_fit_is_skipped_and_the_run_goes_on(
    cli: CliRunner,
    conn: psycopg.Connection,
    owners: tuple[list[uuid.UUID], uuid.UUID],
    batch_size: str,
) -> None:
    users, huge = owners
    result = cli(
        "reconcile", "--all", "--yes", "--settle", "0", "--json", "--batch-size", batch_size
    )
    assert result.exit_code == 1, result.stderr
    changes = {c["user_id"]: c for c in result.json()["changes"]}
    stuck = changes[str(huge)]
    assert (stuck["status"], stuck["applied"], stuck["skipped"]) == ("drift", False, "unwritable")
    assert "vibe_assistant_tokens_remaining" in stuck["reason"] and "integer" in stuck["reason"]
    assert stuck["expected"]["tokens_remaining"] == 2 * GRANT - 100
    assert remaining(conn, huge) == 5
    for user in users:
        if user != huge:
            assert changes[str(user)]["applied"] is True
            assert remaining(conn, user) == -100
    assert result.json()["users_updated"] == 4


def test_the_dry_run_warns_naming_the_owners_that_cannot_be_written(
    cli: CliRunner, owners: tuple[list[uuid.UUID], uuid.UUID]
) -> None:
    _, huge = owners
    result = cli("reconcile", "--all", "--dry-run", "--settle", "0", "--json")
    assert result.exit_code == 1
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert any(str(huge) in line and "does not fit" in line for line in warnings), result.stderr


MAPPING = """
[balance]
table = "user_profiles"
key = "user_id"
remaining = "vibe_assistant_tokens_remaining"
used = "vibe_assistant_tokens_used"

[balance.write]
vibe_assistant_tokens_remaining = "expected_remaining * 1"
vibe_assistant_tokens_used = "expected_used"

[[ledger]]
table = "token_usage"
key = "user_id"
at = "created_at"
amount = "tokens_used"
kind = "CASE WHEN action_type = 'admin_grant' THEN 'grant' ELSE 'charge' END"
counted = "success"
"""


def test_a_value_that_only_the_database_finds_too_large_is_skipped_too(
    cli: CliRunner,
    conn: psycopg.Connection,
    owners: tuple[list[uuid.UUID], uuid.UUID],
    tmp_path: Path,
) -> None:
    _, huge = owners
    path = tmp_path / "computed.toml"
    path.write_text(MAPPING)
    result = cli("reconcile", "--all", "--yes", "--settle", "0", "--json", "--mapping", str(path))
    assert result.exit_code == 1, result.stderr
    data = json.loads(result.stdout)
    stuck = next(c for c in data["changes"] if c["user_id"] == str(huge))
    assert stuck["skipped"] == "unwritable" and "out of range" in stuck["reason"]
    assert data["users_updated"] == 4
    assert remaining(conn, huge) == 5


def test_a_check_constraint_still_rolls_its_batch_back(
    cli: CliRunner, conn: psycopg.Connection, ledger: Ledger
) -> None:
    conn.execute(
        "ALTER TABLE user_profiles ADD CONSTRAINT no_negative"
        " CHECK (vibe_assistant_tokens_remaining >= 0)"
    )
    user = ledger.profile(ledger.user(), remaining=5)
    ledger.row(user, 100)
    result = cli("reconcile", "--all", "--yes", "--settle", "0")
    assert result.exit_code == 3
    assert "no_negative" in result.stderr
