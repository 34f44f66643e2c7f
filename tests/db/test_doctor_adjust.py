"""doctor's `adjust_rows`: the rows grant and deduct insert compile, and the tool's role may
INSERT them into that ledger (and the check says which privilege is missing)."""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from tests.db.test_doctor import doctor
from tests.db.test_mapping_shapes import EXAMPLES
from tests.support.builders import ensure_role
from tests.support.clirunner import CliRunner


def test_the_default_adjust_rows_compile_and_may_be_inserted(cli: CliRunner) -> None:
    _, checks = doctor(cli)
    assert checks["adjust_rows"]["status"] == "ok"
    assert "token_usage" in checks["adjust_rows"]["message"]


def test_a_role_without_insert_on_the_ledger_fails_naming_the_grant(
    cli: CliRunner, conn: psycopg.Connection, db_url: str
) -> None:
    ensure_role(conn, "tokenfix_no_insert", "LOGIN")
    conn.execute("GRANT SELECT, UPDATE ON ALL TABLES IN SCHEMA public TO tokenfix_no_insert")
    _, checks = doctor(cli, "-d", make_conninfo(db_url, user="tokenfix_no_insert"), "--no-probe")
    check = checks["adjust_rows"]
    assert check["status"] == "fail"
    assert "may not INSERT into token_usage" in check["message"]
    assert check["fix"].startswith("GRANT INSERT (user_id, action_type, model_used, tokens_used")
    assert check["fix"].endswith('ON "token_usage" TO "tokenfix_no_insert"')
    conn.execute("GRANT INSERT ON token_usage TO tokenfix_no_insert")
    _, checks = doctor(cli, "-d", make_conninfo(db_url, user="tokenfix_no_insert"), "--no-probe")
    assert checks["adjust_rows"]["status"] == "ok"


def test_an_adjust_expression_that_does_not_compile_fails(
    cli: CliRunner, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute((EXAMPLES / "credits" / "schema.sql").read_text())
    text = (EXAMPLES / "credits" / "tokenfix.toml").read_text()
    mapping = tmp_path / "m.toml"
    mapping.write_text(text.replace('note = "reason"', 'note = "reasn"', 1))
    _, checks = doctor(cli, "--mapping", str(mapping), "--no-probe")
    check = checks["adjust_rows"]
    assert check["status"] == "fail" and "[adjust] grant row does not compile" in check["message"]
    assert "reasn" in check["message"]
    _, checks = doctor(cli, "--mapping", str(EXAMPLES / "credits" / "tokenfix.toml"), "--no-probe")
    assert checks["adjust_rows"]["status"] == "ok"


def test_a_mapping_without_adjust_is_said_to_refuse_grants(
    cli: CliRunner, conn: psycopg.Connection
) -> None:
    conn.execute((EXAMPLES / "acquired-used" / "schema.sql").read_text())
    mapping = str(EXAMPLES / "acquired-used" / "tokenfix.toml")
    _, checks = doctor(cli, "--mapping", mapping, "--no-probe")
    assert checks["adjust_rows"]["status"] == "ok"
    assert "grant and deduct are refused" in checks["adjust_rows"]["message"]
