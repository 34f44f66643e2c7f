"""`tokenfix sql [NAME]`: the shipped SQL, listed or printed, so an installed tool carries its
psql runbook too."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner
from tokenfix.base.resources import SQL_FILES
from tokenfix.demo.pgserver import find_program

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tokenfix(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    return CliRunner(capsys)


def test_without_a_name_it_lists_every_file_with_its_purpose(tokenfix: CliRunner) -> None:
    result = tokenfix("sql")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (
        "schema                  the default schema's tables, with their default names, for a new install\n"
        "record_counts           one user's ledger rows and tokens, counted by row class\n"
        "current_balance         one user's cached balance (no row: the profile is missing)\n"
        "records_before_profile  one user's ledger rows written before their profile row existed\n"
        "expected_balance        one user's balance recomputed from the ledger, beside the cached one, with the drift\n"
        "fix-user-token-balance  the runbook fallback: reconcile one user's balance with nothing but psql\n"
        "citus_distribute        the default schema's tables distributed with Citus by owner, as tokenfix needs\n"
    )


def test_the_list_covers_every_file_of_sql() -> None:
    shipped = {str(p.relative_to(ROOT / "sql")) for p in (ROOT / "sql").rglob("*.sql")}
    assert {item.relative for item in SQL_FILES} == shipped


@pytest.mark.parametrize(
    "name", ["record_counts", "record_counts.sql", "diagnostics/record_counts"]
)
def test_a_name_prints_the_file(tokenfix: CliRunner, name: str) -> None:
    result = tokenfix("sql", name)
    assert result.exit_code == 0
    assert result.stdout == (ROOT / "sql/diagnostics/record_counts.sql").read_text()


def test_path_prints_where_the_file_is(tokenfix: CliRunner) -> None:
    result = tokenfix("sql", "schema", "--path")
    assert result.stdout == f"{ROOT / 'sql' / 'schema.sql'}\n"
    listed = tokenfix("sql", "--path").stdout.splitlines()
    assert listed[-2].split() == [
        "fix-user-token-balance",
        str(ROOT / "sql/scripts/fix-user-token-balance.sql"),
    ]


def test_an_unknown_name_exits_2_listing_the_names(tokenfix: CliRunner) -> None:
    result = tokenfix("sql", "fix_balance")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: no SQL file called 'fix_balance'; the files are: schema, record_counts, "
        "current_balance, records_before_profile, expected_balance, fix-user-token-balance, "
        "citus_distribute\n"
    )


def test_the_printed_runbook_script_runs_on_its_own_through_psql(
    tokenfix: CliRunner, db_url: str, ledger: Ledger
) -> None:
    user = ledger.profile(ledger.user(), remaining=12345, used=1)
    ledger.row(user, 1000, action="admin_grant", model=None)
    ledger.row(user, 100)
    script = tokenfix("sql", "fix-user-token-balance").stdout
    assert "\\ir " not in script.replace("-- \\ir ", "")  # the include is written in place
    psql = find_program("psql")
    assert psql is not None
    done = subprocess.run(
        [str(psql), db_url, "-X", "-v", f"user_id={user}", "-f", "-"],
        input=script, capture_output=True, text=True, timeout=60, cwd="/",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "expected remaining 900 used 100" in done.stdout
    assert ledger.cached(user) == (900, 100)
