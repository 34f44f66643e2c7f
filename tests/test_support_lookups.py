"""SPEC §12 support lookups: `revert RUN_ID --dry-run` and `revert RUN_ID --user KEY`, against
real runs on a real server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.builders import Ledger
from tests.clirunner import CliRunner
from tests.test_audit_schema import create_layout_0

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)
ENVELOPE = {"generated_at", "duration_s", "tool_version", "target"}


def balance(remaining: int, used: int) -> dict[str, int]:
    return {"tokens_remaining": remaining, "tokens_used": used}


@pytest.fixture
def run(cli: CliRunner, ledger: Ledger) -> dict:
    """One write run: user a from (0, 0) to (-30, 30), user b from (0, 0) to (-20, 20)."""
    a, b = sorted(ledger.profile(ledger.user()) for _ in range(2))
    ledger.row(a, 30, at=HOUR_AGO)
    ledger.row(b, 20, at=HOUR_AGO)
    result = cli("reconcile", "--all", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    return {"run_id": result.json()["run_id"], "a": a, "b": b}


def audit_rows(ledger: Ledger) -> tuple:
    return (
        ledger.conn.execute("SELECT * FROM tokenfix.runs ORDER BY run_id").fetchall(),
        ledger.conn.execute("SELECT * FROM tokenfix.changes ORDER BY id").fetchall(),
        ledger.conn.execute("SELECT * FROM tokenfix.lease").fetchall(),
    )


def change_app_side(ledger: Ledger, user: uuid.UUID, tokens: int) -> None:
    """The app charges `tokens` after the run (ledger row and cache both)."""
    ledger.row(user, tokens, at=HOUR_AGO + timedelta(minutes=5))
    ledger.conn.execute(
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining ="
        " vibe_assistant_tokens_remaining - %s, vibe_assistant_tokens_used ="
        " vibe_assistant_tokens_used + %s WHERE user_id = %s",
        (tokens, tokens, user),
    )


# -- revert --dry-run ---------------------------------------------------------------------


def test_a_dry_run_changes_nothing_and_says_what_it_would_restore(
    cli: CliRunner, ledger: Ledger, run: dict
) -> None:
    audit = audit_rows(ledger)
    result = cli("revert", run["run_id"], "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert set(data) >= ENVELOPE
    assert {k: data[k] for k in ("run_id", "dry_run", "reverted_run_id", "user_id")} == {
        "run_id": None,
        "dry_run": True,
        "reverted_run_id": run["run_id"],
        "user_id": None,
    }
    assert (data["rows_restored"], data["profiles_deleted"], data["rows_left_alone"]) == (2, 0, 0)
    assert [(c["user_id"], c["current"], c["restore_to"], c["applied"], c["skipped"])
            for c in data["changes"]] == [
        (str(run["a"]), balance(-30, 30), balance(0, 0), False, "dry_run"),
        (str(run["b"]), balance(-20, 20), balance(0, 0), False, "dry_run"),
    ]  # fmt: skip
    assert (ledger.cached(run["a"]), ledger.cached(run["b"])) == ((-30, 30), (-20, 20))
    assert audit_rows(ledger) == audit
    assert audit[2] == []  # no lease row, before or after


def test_a_dry_run_exits_1_when_a_row_changed_since_and_the_revert_agrees(
    cli: CliRunner, ledger: Ledger, run: dict
) -> None:
    change_app_side(ledger, run["a"], 9)
    dry = cli("revert", run["run_id"], "--dry-run", "--json")
    assert dry.exit_code == 1
    data = dry.json()
    assert (data["rows_restored"], data["rows_left_alone"]) == (1, 1)
    assert [(c["user_id"], c["current"], c["skipped"]) for c in data["changes"]] == [
        (str(run["a"]), balance(-39, 39), "changed_since"),
        (str(run["b"]), balance(-20, 20), "dry_run"),
    ]
    human = cli("revert", run["run_id"], "--dry-run")
    assert "would be left alone: changed since the run" in human.stdout
    assert "Dry run: would revert 1 row of run" in human.stdout
    assert "Nothing was written." in human.stdout
    real = cli("revert", run["run_id"], "--yes", "--json")
    assert real.exit_code == 1
    assert [(c["user_id"], c["applied"], c["skipped"]) for c in real.json()["changes"]] == [
        (str(run["a"]), False, "changed_since"),
        (str(run["b"]), True, None),
    ]


def test_a_dry_run_takes_no_lease_so_a_writing_run_does_not_block_it(
    cli: CliRunner, ledger: Ledger, run: dict
) -> None:
    ledger.conn.execute(
        "INSERT INTO tokenfix.lease (name, holder, run_id, command, host, pid, started_at,"
        " expires_at) VALUES ('writer', gen_random_uuid(), gen_random_uuid(), 'reconcile',"
        " 'cron-1', 4242, now(), now() + interval '1 hour')"
    )
    held = ledger.conn.execute("SELECT * FROM tokenfix.lease").fetchall()
    assert cli("revert", run["run_id"], "--yes").exit_code == 3  # the real one waits its turn
    assert cli("revert", run["run_id"], "--dry-run").exit_code == 0
    assert ledger.conn.execute("SELECT * FROM tokenfix.lease").fetchall() == held


def test_a_dry_run_on_a_fresh_database_creates_no_audit_schema(
    cli: CliRunner, ledger: Ledger
) -> None:
    result = cli("revert", str(uuid.uuid4()), "--dry-run")
    assert result.exit_code == 2 and "unknown run" in result.stderr
    assert ledger.conn.execute("SELECT to_regnamespace('tokenfix')").fetchone() == (None,)


def test_a_dry_run_of_a_malformed_or_unknown_run_exits_2(cli: CliRunner, run: dict) -> None:
    assert cli("revert", "nope", "--dry-run").exit_code == 2
    unknown = cli("revert", str(uuid.uuid4()), "--dry-run", "--json")
    assert (unknown.exit_code, unknown.json()["error"]["exit_code"]) == (2, 2)


def test_a_dry_run_needs_no_yes_off_a_terminal(cli: CliRunner, run: dict) -> None:
    # (the test's stdin is not a terminal: a writing revert would refuse here)
    assert cli("revert", run["run_id"], "--dry-run").exit_code == 0


def test_a_dry_run_reports_a_created_profile_it_would_delete_and_one_it_would_not(
    cli: CliRunner, ledger: Ledger
) -> None:
    kept, referenced = sorted(ledger.user() for _ in range(2))
    for user in (kept, referenced):
        ledger.row(user, 40, at=HOUR_AGO)
    run_id = cli("reconcile", "--all", "--yes", "--create-missing", "--json").json()["run_id"]
    ledger.conn.execute("CREATE TABLE app_projects (owner uuid REFERENCES user_profiles (user_id))")
    ledger.conn.execute("INSERT INTO app_projects VALUES (%s)", (referenced,))
    data = cli("revert", run_id, "--dry-run", "--json").json()
    assert (data["profiles_deleted"], data["rows_left_alone"]) == (1, 1)
    assert [(c["user_id"], c["action"], c["skipped"]) for c in data["changes"]] == [
        (str(kept), "delete", "dry_run"),
        (str(referenced), "delete", "referenced"),
    ]
    assert (ledger.cached(kept), ledger.cached(referenced)) == ((-40, 40), (-40, 40))


# -- revert --user ------------------------------------------------------------------------


def test_revert_user_reverts_only_that_owner_and_a_full_revert_then_the_rest(
    cli: CliRunner, ledger: Ledger, run: dict
) -> None:
    a, b = run["a"], run["b"]
    one = cli("revert", run["run_id"], "--user", str(a), "--yes", "--json")
    assert one.exit_code == 0, one.stderr
    data = one.json()
    assert (data["user_id"], data["dry_run"], data["rows_restored"]) == (str(a), False, 1)
    assert [c["user_id"] for c in data["changes"]] == [str(a)]
    assert (ledger.cached(a), ledger.cached(b)) == ((0, 0), (-20, 20))
    # A revert of one owner's rows is not a revert of the run.
    runs = {r["run_id"]: r for r in cli("history", "--json").json()["runs"]}
    assert runs[run["run_id"]]["reverted_by"] is None

    rest = cli("revert", run["run_id"], "--yes", "--json")
    assert rest.exit_code == 1  # a's row is left alone: it already holds its old values
    assert "already reverted" not in rest.stderr
    assert [(c["user_id"], c["applied"], c["skipped"]) for c in rest.json()["changes"]] == [
        (str(a), False, "already_restored"),
        (str(b), True, None),
    ]
    assert (ledger.cached(a), ledger.cached(b)) == ((0, 0), (0, 0))
    runs = {r["run_id"]: r for r in cli("history", "--json").json()["runs"]}
    assert runs[run["run_id"]]["reverted_by"] == rest.json()["run_id"]


def test_revert_user_with_dry_run_shows_that_owner_only_and_writes_nothing(
    cli: CliRunner, ledger: Ledger, run: dict
) -> None:
    audit = audit_rows(ledger)
    result = cli("revert", run["run_id"], "--user", str(run["b"]), "--dry-run", "--json")
    assert result.exit_code == 0
    data = result.json()
    assert (data["user_id"], data["rows_restored"]) == (str(run["b"]), 1)
    assert [(c["user_id"], c["skipped"]) for c in data["changes"]] == [(str(run["b"]), "dry_run")]
    assert audit_rows(ledger) == audit
    assert ledger.cached(run["b"]) == (-20, 20)


def test_revert_user_of_an_owner_the_run_never_changed_exits_2(
    cli: CliRunner, ledger: Ledger, run: dict
) -> None:
    stranger = ledger.profile(ledger.user())
    audit = audit_rows(ledger)
    for extra in ([], ["--dry-run"]):
        result = cli("revert", run["run_id"], "--user", str(stranger), "--yes", *extra)
        assert result.exit_code == 2
        assert result.stderr == (
            f"error: run {run['run_id']} did not change user {stranger}: nothing to revert"
            f" ('tokenfix history {run['run_id']}' lists the rows it changed)\n"
        )
    assert audit_rows(ledger) == audit


def test_revert_user_with_a_malformed_key_exits_2(cli: CliRunner, run: dict) -> None:
    result = cli("revert", run["run_id"], "--user", "42", "--yes")
    assert result.exit_code == 2
    assert result.stderr == "error: not a valid user id: '42' is not a UUID\n"


def test_a_run_of_the_first_audit_layout_is_read_without_migrating(
    cli: CliRunner, ledger: Ledger
) -> None:
    # What the first release wrote for a run that fixed `user` from (0, 0) to (-25, 25); a
    # dry run reads it as it is (a standby could not migrate it).
    create_layout_0(ledger.conn)
    user = ledger.profile(ledger.user(), remaining=-25, used=25)
    old_run = uuid.uuid4()
    ledger.conn.execute(
        "INSERT INTO tokenfix.runs (run_id, command, status, tool_version, host, pid)"
        " VALUES (%s, 'reconcile', 'completed', '0.1.0', 'old-host', 1)",
        (old_run,),
    )
    ledger.conn.execute(
        "INSERT INTO tokenfix.changes (run_id, user_id, action, before_remaining, before_used,"
        " after_remaining, after_used, tool_version, host)"
        " VALUES (%s, %s, 'update', 0, 0, -25, 25, '0.1.0', 'old-host')",
        (old_run, user),
    )
    dry = cli("revert", str(old_run), "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    assert [(c["current"], c["restore_to"], c["skipped"]) for c in dry.json()["changes"]] == [
        (balance(-25, 25), balance(0, 0), "dry_run")
    ]
    assert ledger.conn.execute("SELECT to_regclass('tokenfix.layout')").fetchone() == (None,)
    assert ledger.cached(user) == (-25, 25)
