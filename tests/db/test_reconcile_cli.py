"""`tokenfix reconcile`: selection, options, the JSON, CSV, and exit codes."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner

ENVELOPE = {"generated_at", "duration_s", "tool_version", "target"}  # docs/monitoring.md
SUMMARY_KEYS = {
    "run_id",
    "dry_run",
    "users_checked",
    "users_with_drift",
    "missing_profiles",
    "users_updated",
    "profiles_created",
    "users_deferred",
    "users_changed",
    "warnings",  # docs/doctor.md: what a write run should know (API roles minting ledger rows…)
    "summary",  # docs/monitoring.md
    "changes",
    *ENVELOPE,
}
CHANGE_KEYS = {"user_id", "status", "current", "expected", "drift", "applied", "skipped", "causes"}


@pytest.fixture
def three_users(ledger: Ledger) -> dict[str, uuid.UUID]:
    """One in step, one drifting, one with ledger rows but no profile."""
    ok = ledger.profile(ledger.user(), remaining=-100, used=100)
    ledger.row(ok, 100)
    drifting = ledger.profile(ledger.user(), remaining=500, used=0)
    ledger.row(drifting, 40)
    missing = ledger.user()
    ledger.row(missing, 25)
    return {"ok": ok, "drift": drifting, "missing": missing}


def test_dry_run_json_has_the_section_5_shape(cli: CliRunner, three_users: dict) -> None:
    result = cli("reconcile", "--all", "--dry-run", "--json")
    assert result.exit_code == 1
    data = result.json()
    assert set(data) == SUMMARY_KEYS
    assert (data["run_id"], data["dry_run"], data["users_checked"]) == (None, True, 3)
    assert (data["users_with_drift"], data["missing_profiles"]) == (1, 1)
    assert [set(c) for c in data["changes"]] == [CHANGE_KEYS, CHANGE_KEYS]
    by_user = {c["user_id"]: c for c in data["changes"]}
    assert by_user[str(three_users["drift"])] == {
        "user_id": str(three_users["drift"]),
        "status": "drift",
        "current": {"tokens_remaining": 500, "tokens_used": 0},
        "expected": {"tokens_remaining": -40, "tokens_used": 40},
        "drift": {"tokens_remaining": 540, "tokens_used": -40},
        "applied": False,
        "skipped": "dry_run",
        "causes": [],
    }
    assert by_user[str(three_users["missing"])]["skipped"] == "no_create_missing"
    assert by_user[str(three_users["missing"])]["current"] is None


def test_changes_are_ordered_by_user_id(cli: CliRunner, ledger: Ledger) -> None:
    for _ in range(20):
        ledger.profile(ledger.user(), remaining=1)
    ids = [c["user_id"] for c in cli("reconcile", "--all", "--dry-run", "--json").json()["changes"]]
    assert ids == sorted(ids) and len(ids) == 20


def test_a_write_run_fixes_drift_and_reports_its_run(
    cli: CliRunner, ledger: Ledger, three_users: dict
) -> None:
    result = cli("reconcile", "--all", "--yes", "--json", "--settle", "0")
    assert result.exit_code == 1  # the missing profile remains without --create-missing
    data = result.json()
    assert data["dry_run"] is False and data["run_id"]
    assert (data["users_updated"], data["profiles_created"]) == (1, 0)
    assert ledger.cached(three_users["drift"]) == (-40, 40)
    assert ledger.cached(three_users["missing"]) is None


def test_create_missing_inserts_profiles_and_exits_0(
    cli: CliRunner, ledger: Ledger, three_users: dict
) -> None:
    result = cli("reconcile", "--all", "--yes", "--create-missing", "--json")
    assert result.exit_code == 0
    assert result.json()["profiles_created"] == 1
    assert ledger.cached(three_users["missing"]) == (-25, 25)


def test_a_second_run_finds_nothing(cli: CliRunner, three_users: dict) -> None:
    assert cli("reconcile", "--all", "--yes", "--create-missing").exit_code == 0
    again = cli("reconcile", "--all", "--dry-run", "--json")
    assert again.exit_code == 0
    assert again.json()["changes"] == []


def test_only_the_given_users_are_checked(
    cli: CliRunner, ledger: Ledger, three_users: dict
) -> None:
    result = cli(
        "reconcile", str(three_users["drift"]), str(three_users["ok"]), "--dry-run", "--json"
    )
    data = result.json()
    assert data["users_checked"] == 2
    assert [c["user_id"] for c in data["changes"]] == [str(three_users["drift"])]


def test_user_ids_can_come_from_stdin(
    cli: CliRunner, three_users: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = f"{three_users['drift']}\n\n# a comment\n{three_users['missing']}\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))
    data = cli("reconcile", "-", "--dry-run", "--json").json()
    assert data["users_checked"] == 2
    assert {c["user_id"] for c in data["changes"]} == {
        str(three_users["drift"]),
        str(three_users["missing"]),
    }


def test_a_bad_id_on_stdin_names_its_line(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{uuid.uuid4()}\nnope\n"))
    result = cli("reconcile", "-", "--dry-run")
    assert result.exit_code == 2
    assert "stdin line 2" in result.stderr


def test_an_unknown_user_id_exits_2(cli: CliRunner) -> None:
    result = cli("reconcile", str(uuid.uuid4()), "--dry-run")
    assert result.exit_code == 2
    assert "unknown user" in result.stderr


def test_since_limits_the_run_to_recently_active_users(cli: CliRunner, ledger: Ledger) -> None:
    old = ledger.profile(ledger.user(), remaining=7)
    ledger.row(old, 10, at=datetime.now(UTC) - timedelta(days=3))
    fresh = ledger.profile(ledger.user(), remaining=7)
    ledger.row(fresh, 10, at=datetime.now(UTC) - timedelta(days=3))  # whole ledger is recomputed
    ledger.row(fresh, 5, at=datetime.now(UTC) - timedelta(hours=1))
    data = cli("reconcile", "--all", "--since", "24h", "--dry-run", "--json").json()
    assert data["users_checked"] == 1
    (change,) = data["changes"]
    assert change["user_id"] == str(fresh)
    assert change["expected"] == {"tokens_remaining": -15, "tokens_used": 15}
    iso = (datetime.now(UTC) - timedelta(days=4)).isoformat()
    assert (
        cli("reconcile", "--all", "--since", iso, "--dry-run", "--json").json()["users_checked"]
        == 2
    )


def test_users_with_recent_rows_are_deferred(cli: CliRunner, ledger: Ledger) -> None:
    user = ledger.profile(ledger.user())
    ledger.row(user, 10, at=datetime.now(UTC) - timedelta(seconds=30))
    result = cli("reconcile", "--all", "--yes", "--json")
    assert result.exit_code == 1
    (change,) = result.json()["changes"]
    assert (change["applied"], change["skipped"]) == (False, "recent_activity")
    assert result.json()["users_deferred"] == 1
    assert ledger.cached(user) == (0, 0)
    assert cli("reconcile", "--all", "--yes", "--settle", "10s").exit_code == 0
    assert ledger.cached(user) == (-10, 10)


def test_a_profile_without_ledger_rows_is_checked_against_the_starting_balance(
    cli: CliRunner, ledger: Ledger
) -> None:
    user = ledger.profile(ledger.user(), remaining=0)
    data = cli("reconcile", "--all", "--dry-run", "--json", "--starting-balance", "300").json()
    assert [c["user_id"] for c in data["changes"]] == [str(user)]
    assert data["changes"][0]["expected"] == {"tokens_remaining": 300, "tokens_used": 0}


def test_csv_has_a_header_and_one_row_per_change(cli: CliRunner, three_users: dict) -> None:
    result = cli("reconcile", "--all", "--dry-run", "--format", "csv")
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "user_id,status,current_remaining,current_used,expected_remaining,expected_used,"
        "drift_remaining,drift_used,applied,skipped"
    )
    assert f"{three_users['drift']},drift,500,0,-40,40,540,-40,false,dry_run" in lines
    assert f"{three_users['missing']},missing_profile,,,-25,25,,,false,no_create_missing" in lines
    assert len(lines) == 3


def test_the_table_lists_users_and_a_summary(cli: CliRunner, three_users: dict) -> None:
    result = cli("reconcile", "--all", "--dry-run")
    assert str(three_users["drift"]) in result.stdout
    assert str(three_users["ok"]) not in result.stdout
    assert "Checked 3 users: 1 with drift, 1 missing profile." in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dry-run"], "give user ids (or '-' to read them from stdin), or --all"),
        (["--since", "60d", "--dry-run"], "--since narrows the users given: give user ids"),
        ([str(uuid.uuid4()), "--all", "--dry-run"], "not both"),
        (["--all", "--dry-run", "--json", "--format", "csv"], "--json and --format"),
        (["--all", "--dry-run", "--since", "yesterday"], "--since"),
        (["--all", "--dry-run", "--settle", "2 minutes"], "--settle"),
        (["--all", "--dry-run", "--format", "xml"], "xml"),
        (["--all", "--dry-run", "--batch-size", "0"], "--batch-size"),
        (["not-a-uuid", "--dry-run"], "not a valid user id"),
        (["--all"], "--yes"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli: CliRunner, args: list[str], message: str) -> None:
    result = cli("reconcile", *args)
    assert result.exit_code == 2
    if "--json" in args:  # docs/monitoring.md: asked for JSON, a failure is a JSON error object too
        assert result.json()["error"]["exit_code"] == 2
    else:
        assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


def test_nothing_to_do_exits_0_without_a_run(cli: CliRunner, conn: psycopg.Connection) -> None:
    result = cli("reconcile", "--all", "--yes", "--json")
    assert result.exit_code == 0
    assert result.json()["run_id"] is None
    assert result.json()["changes"] == []
