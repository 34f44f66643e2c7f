"""docs/monitoring.md support lookups: `history --user KEY`, `history RUN_ID`, `revert RUN_ID --dry-run`
and `revert RUN_ID --user KEY`, against real runs on a real server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.db.test_audit_schema import create_layout_0
from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner

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


# -- history --user -----------------------------------------------------------------------


def test_history_user_lists_every_change_newest_first_reverts_included(
    cli: CliRunner, ledger: Ledger, run: dict
) -> None:
    a = run["a"]
    undo = cli("revert", run["run_id"], "--user", str(a), "--yes", "--json").json()["run_id"]
    again = cli("reconcile", str(a), "--yes", "--json").json()["run_id"]
    result = cli("history", "--user", str(a), "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert set(data) >= ENVELOPE and data["user_id"] == str(a)
    shown = [
        (c["run_id"], c["command"], c["user_id"], c["action"], c["before"], c["after"],
         c["reverts_run_id"], c["reverted_by"])
        for c in data["changes"]
    ]  # fmt: skip
    assert shown == [
        (again, "reconcile", str(a), "update", balance(0, 0), balance(-30, 30), None, None),
        (undo, "revert", str(a), "restore", balance(-30, 30), balance(0, 0), run["run_id"], None),
        (run["run_id"], "reconcile", str(a), "update", balance(0, 0), balance(-30, 30), None, undo),
    ]
    times = [c["changed_at"] for c in data["changes"]]
    assert times == sorted(times, reverse=True)


def test_history_user_shows_a_table_with_the_reverting_run(
    cli: CliRunner, ledger: Ledger, run: dict
) -> None:
    undo = cli("revert", run["run_id"], "--user", str(run["a"]), "--yes", "--json").json()
    table = cli("history", "--user", str(run["a"]))
    assert table.exit_code == 0
    assert f"Changes to user {run['a']}, newest first" in table.stdout
    assert f"reverted by {undo['run_id']}" in table.stdout
    assert "0 / 0" in table.stdout and "-30 / 30" in table.stdout


def test_history_user_of_an_owner_never_changed_is_empty_and_says_so(
    cli: CliRunner, ledger: Ledger, run: dict
) -> None:
    other = ledger.profile(ledger.user())
    result = cli("history", "--user", str(other), "--json")
    assert (result.exit_code, result.json()["user_id"], result.json()["changes"]) == (
        0,
        str(other),
        [],
    )
    human = cli("history", "--user", str(other))
    assert (human.exit_code, human.stdout) == (0, f"No changes recorded for user {other}.\n")


def test_history_user_before_any_write_is_empty(cli: CliRunner, ledger: Ledger) -> None:
    user = ledger.profile(ledger.user())
    result = cli("history", "--user", str(user), "--json")
    assert (result.exit_code, result.json()["changes"]) == (0, [])
    assert ledger.conn.execute("SELECT to_regnamespace('tokenfix')").fetchone() == (None,)


def test_history_user_with_a_malformed_key_exits_2_with_one_line(cli: CliRunner, run: dict) -> None:
    result = cli("history", "--user", "not-a-uuid")
    assert result.exit_code == 2
    assert result.stderr == "error: not a valid user id: 'not-a-uuid' is not a UUID\n"
    as_json = cli("history", "--user", "not-a-uuid", "--json")
    assert as_json.exit_code == 2
    assert as_json.json()["error"] == {
        "message": "not a valid user id: 'not-a-uuid' is not a UUID",
        "exit_code": 2,
    }


WALLETS = """
[balance]
table = "team_wallets"
key = "id"
remaining = "credits"

[balance.write]
credits = "expected_remaining"

[[ledger]]
table = "team_usage"
key = "team_id"
at = "created_at"
amount = "amount"
kind = "'charge'"
"""


def test_history_user_matches_through_the_mapping_in_effect(
    cli: CliRunner, ledger: Ledger, run: dict, tmp_path: Path
) -> None:
    # A wallet whose key is the same text as user a's: another owner, in another table.
    a = run["a"]
    ledger.conn.execute(
        "CREATE TABLE team_wallets (id uuid PRIMARY KEY, credits bigint NOT NULL);"
        " CREATE TABLE team_usage (id bigserial PRIMARY KEY, team_id uuid NOT NULL,"
        " amount bigint NOT NULL, created_at timestamptz NOT NULL)"
    )
    ledger.conn.execute("INSERT INTO team_wallets VALUES (%s, 100)", (a,))
    ledger.conn.execute("INSERT INTO team_usage VALUES (DEFAULT, %s, 7, %s)", (a, HOUR_AGO))
    mapping = tmp_path / "wallets.toml"
    mapping.write_text(WALLETS)
    wallet_run = cli("reconcile", "--all", "--yes", "--json", "--mapping", str(mapping)).json()
    profiles = cli("history", "--user", str(a), "--json")
    assert [c["run_id"] for c in profiles.json()["changes"]] == [run["run_id"]]
    assert profiles.stderr == (
        f"note: changes to key {a} in other balance tables are not shown: team_wallets (1);"
        " they are another owner's (see them with --mapping)\n"
    )
    wallets = cli("history", "--user", str(a), "--json", "--mapping", str(mapping)).json()
    (change,) = wallets["changes"]
    assert (change["run_id"], change["before"], change["after"]) == (
        wallet_run["run_id"],
        {"tokens_remaining": 100},
        {"tokens_remaining": -7},
    )


# -- history RUN_ID -----------------------------------------------------------------------


def test_history_run_id_shows_the_rows_the_run_wrote(
    cli: CliRunner, ledger: Ledger, run: dict
) -> None:
    result = cli("history", run["run_id"], "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert set(data) >= ENVELOPE
    assert (data["run"]["run_id"], data["run"]["command"], data["run"]["rows_written"]) == (
        run["run_id"],
        "reconcile",
        2,
    )
    assert [(c["user_id"], c["action"], c["before"], c["after"]) for c in data["changes"]] == [
        (str(run["a"]), "update", balance(0, 0), balance(-30, 30)),
        (str(run["b"]), "update", balance(0, 0), balance(-20, 20)),
    ]
    assert {c["run_id"] for c in data["changes"]} == {run["run_id"]}
    assert cli("history", run["run_id"]).stdout.startswith(f"Run {run['run_id']}: reconcile,")


def test_history_run_id_with_user_shows_that_owners_row_only(cli: CliRunner, run: dict) -> None:
    data = cli("history", run["run_id"], "--user", str(run["b"]), "--json").json()
    assert data["user_id"] == str(run["b"])
    assert [(c["user_id"], c["after"]) for c in data["changes"]] == [
        (str(run["b"]), balance(-20, 20))
    ]


def test_history_of_a_revert_run_names_the_run_it_reverted(
    cli: CliRunner, ledger: Ledger, run: dict
) -> None:
    undo = cli("revert", run["run_id"], "--yes", "--json").json()["run_id"]
    data = cli("history", undo, "--json").json()
    assert (data["run"]["command"], data["run"]["reverts_run_id"]) == ("revert", run["run_id"])
    assert [(c["user_id"], c["action"], c["before"], c["after"], c["reverts_run_id"])
            for c in data["changes"]] == [
        (str(run["a"]), "restore", balance(-30, 30), balance(0, 0), run["run_id"]),
        (str(run["b"]), "restore", balance(-20, 20), balance(0, 0), run["run_id"]),
    ]  # fmt: skip
    original = cli("history", run["run_id"], "--json").json()
    assert [c["reverted_by"] for c in original["changes"]] == [undo, undo]
    assert f"It reverts run {run['run_id']}." in cli("history", undo).stdout


def test_history_of_an_unknown_run_exits_2_with_one_line(cli: CliRunner, run: dict) -> None:
    unknown = str(uuid.uuid4())
    result = cli("history", unknown)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: unknown run {unknown} ('tokenfix history' lists the recorded runs)\n"
    )
    as_json = cli("history", unknown, "--json")
    assert (as_json.exit_code, as_json.json()["error"]["exit_code"]) == (2, 2)


def test_history_of_a_run_before_any_write_exits_2(cli: CliRunner) -> None:
    assert cli("history", str(uuid.uuid4())).exit_code == 2


def test_history_of_a_malformed_run_id_exits_2(cli: CliRunner) -> None:
    result = cli("history", "last-tuesday")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: not a valid run id: 'last-tuesday' (see 'tokenfix history' for run ids)\n"
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
    # dry run and the lookups read it as it is (a standby could not migrate it).
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
    owner = cli("history", "--user", str(user), "--json").json()
    assert [(c["run_id"], c["before"], c["after"]) for c in owner["changes"]] == [
        (str(old_run), balance(0, 0), balance(-25, 25))
    ]
    assert [c["user_id"] for c in cli("history", str(old_run), "--json").json()["changes"]] == [
        str(user)
    ]
    assert ledger.conn.execute("SELECT to_regclass('tokenfix.layout')").fetchone() == (None,)
    assert ledger.cached(user) == (-25, 25)
