"""A dry run cannot write, whatever a mapping says (docs/safety.md): expressions are compiled
and run only as single expressions, through the extended query protocol, in read-only
transactions; an expression that is not one expression is bad input naming it."""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner, Result
from tokenfix.base.errors import BadInput
from tokenfix.config.settings import Settings
from tokenfix.db.session import connect, transaction
from tokenfix.health.run import run_doctor
from tokenfix.ledger import shape
from tokenfix.mapping.types import Expr, default_mapping

ESCAPE = (
    "1); COMMIT; UPDATE user_profiles SET vibe_assistant_tokens_remaining = 0; COMMIT; SELECT (1"
)

MAPPING = """
[balance]
table = "user_profiles"
key = "user_id"
remaining = {remaining}
used = "vibe_assistant_tokens_used"

[balance.write]
vibe_assistant_tokens_remaining = "expected_remaining"
vibe_assistant_tokens_used = "expected_used"

[[ledger]]
table = "token_usage"
key = "user_id"
at = "created_at"
amount = "tokens_used"
kind = "CASE WHEN action_type = 'admin_grant' THEN 'grant' ELSE 'charge' END"
counted = "success"
"""


def mapping_file(tmp_path: Path, remaining: str) -> Path:
    path = tmp_path / "escape.toml"
    # A JSON string is a TOML basic string: escapes and all.
    path.write_text(MAPPING.format(remaining=json.dumps(remaining)))
    return path


@pytest.fixture
def owners(ledger: Ledger) -> list[uuid.UUID]:
    found = []
    for _ in range(3):
        user = ledger.profile(ledger.user(), remaining=500, used=0)
        ledger.row(user, 500, action="admin_grant")
        found.append(user)
    return found


def balances(conn: psycopg.Connection) -> list[int]:
    rows = conn.execute(
        "SELECT vibe_assistant_tokens_remaining FROM user_profiles ORDER BY user_id"
    ).fetchall()
    return [int(row[0]) for row in rows]


def one_error(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_a_mapping_expression_that_is_several_statements_cannot_write_in_a_dry_run(
    cli: CliRunner, conn: psycopg.Connection, owners: list[uuid.UUID], tmp_path: Path
) -> None:
    path = mapping_file(tmp_path, ESCAPE)
    result = cli("reconcile", "--all", "--dry-run", "--mapping", str(path))
    assert balances(conn) == [500, 500, 500]
    assert result.exit_code == 2, result.stderr
    line = one_error(result)
    assert "balance.remaining" in line and "not one SQL expression" in line, line
    assert str(path) in line and "line 5" in line, line


def test_diagnose_refuses_the_same_expression_before_reading_anything(
    cli: CliRunner, conn: psycopg.Connection, owners: list[uuid.UUID], tmp_path: Path
) -> None:
    path = mapping_file(tmp_path, ESCAPE)
    result = cli("diagnose", str(owners[0]), "--mapping", str(path))
    assert balances(conn) == [500, 500, 500]
    assert result.exit_code == 2
    assert "not one SQL expression" in one_error(result)


@pytest.mark.parametrize(
    "text",
    [
        "1) FROM user_profiles UNION ALL SELECT (2",
        "vibe_assistant_tokens_remaining -- the rest is hidden",
        "'unclosed",
        "(1",
        "1 /* unclosed",
    ],
)
def test_what_is_not_one_expression_is_named_before_connecting(
    cli: CliRunner, tmp_path: Path, text: str
) -> None:
    result = cli("mapping", "--mapping", str(mapping_file(tmp_path, text)))
    assert result.exit_code == 2
    assert "balance.remaining: is not one SQL expression" in one_error(result)


@pytest.mark.parametrize(
    "text",
    [
        "coalesce(vibe_assistant_tokens_remaining, 0) + length(';)(') * 0",
        "vibe_assistant_tokens_remaining + length($$;)$$) * 0",
        "vibe_assistant_tokens_remaining + length(E'\\';') * 0 /* ( */",
        "vibe_assistant_tokens_remaining -- a note\n + 0",
    ],
)
def test_one_expression_with_semicolons_and_parentheses_inside_literals_is_accepted(
    cli: CliRunner, owners: list[uuid.UUID], tmp_path: Path, text: str
) -> None:
    result = cli("reconcile", "--all", "--dry-run", "--mapping", str(mapping_file(tmp_path, text)))
    assert result.exit_code == 0, result.stderr


def test_expressions_are_compiled_through_the_extended_protocol(
    conn: psycopg.Connection, owners: list[uuid.UUID], settings: Settings
) -> None:
    """Even a mapping built in Python, past the file's checks: the server is sent one
    statement it cannot split, so nothing after the first `;` ever runs."""
    mapping = default_mapping(settings)
    balance = dataclasses.replace(mapping.balance, remaining=Expr.raw(ESCAPE))
    escaping = dataclasses.replace(mapping, balance=balance, from_settings=False)
    with (
        connect(settings) as tool,
        transaction(tool, settings, read_only=True),
        pytest.raises(BadInput, match="not one SQL expression"),
    ):
        shape.describe(tool, escaping)
    assert balances(conn) == [500, 500, 500]


def test_a_mapping_function_that_writes_is_the_expression_trying_to_write(
    cli: CliRunner, conn: psycopg.Connection, owners: list[uuid.UUID], tmp_path: Path
) -> None:
    conn.execute("CREATE TABLE stolen (n bigint)")
    conn.execute(
        "CREATE FUNCTION steal(n bigint) RETURNS bigint LANGUAGE plpgsql AS"
        " $$ BEGIN INSERT INTO stolen VALUES (n); RETURN n; END $$"
    )
    path = mapping_file(tmp_path, "steal(vibe_assistant_tokens_remaining)")
    dry = cli("reconcile", "--all", "--dry-run", "--mapping", str(path))
    assert dry.exit_code == 2, dry.stderr
    line = one_error(dry)
    assert "tried to write" in line and "steal" in line, line
    assert "read-only" not in line.split("(")[0] and "primary" not in line, line
    diagnosed = cli("diagnose", str(owners[0]), "--mapping", str(path))
    assert diagnosed.exit_code == 2 and "tried to write" in one_error(diagnosed)
    assert conn.execute("SELECT count(*) FROM stolen").fetchone() == (0,)


def test_doctor_compiles_the_same_expressions_without_running_what_follows(
    conn: psycopg.Connection, owners: list[uuid.UUID], settings: Settings
) -> None:
    mapping = default_mapping(settings)
    balance = dataclasses.replace(mapping.balance, remaining=Expr.raw(ESCAPE))
    escaping = dataclasses.replace(mapping, balance=balance, from_settings=False)
    report = run_doctor(settings, probe=False, mapping=escaping)
    expressions = next(c for c in report.checks if c.name == "mapping_balance")
    assert expressions.status == "fail"
    assert balances(conn) == [500, 500, 500]
