"""Support adjustments go through the ledger: `grant`, `deduct`, their revert and idempotency."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner

DAY_AGO = datetime.now(UTC) - timedelta(days=1)


def balance(conn: psycopg.Connection, user: uuid.UUID) -> tuple[int, int]:
    row = conn.execute(
        "SELECT vibe_assistant_tokens_remaining, vibe_assistant_tokens_used FROM user_profiles"
        " WHERE user_id = %s",
        (user,),
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def admin_rows(conn: psycopg.Connection, user: uuid.UUID) -> list[tuple]:
    return conn.execute(
        "SELECT action_type, tokens_used, success, model_used FROM token_usage"
        " WHERE user_id = %s AND action_type LIKE 'admin%%' ORDER BY id",
        (user,),
    ).fetchall()


def nothing_written(conn: psycopg.Connection, user: uuid.UUID, before: tuple[int, int]) -> bool:
    runs = conn.execute("SELECT to_regclass('tokenfix.runs') IS NOT NULL").fetchone()
    no_runs = not (runs and runs[0]) or conn.execute(
        "SELECT count(*) FROM tokenfix.runs"
    ).fetchone() == (0,)
    fixture_rows = [("admin_grant", 1000, True, None)]
    return balance(conn, user) == before and admin_rows(conn, user) == fixture_rows and no_runs


@pytest.fixture
def customer(ledger: Ledger) -> uuid.UUID:
    """A user in step with the ledger: 1000 starting (a grant), 300 spent."""
    user = ledger.profile(ledger.user(), remaining=700, used=300)
    ledger.row(user, 1000, action="admin_grant", model=None, at=DAY_AGO)
    ledger.row(user, 300, at=DAY_AGO + timedelta(minutes=1))
    return user


def test_grant_books_a_ledger_row_and_moves_the_cache_by_the_amount(
    cli: CliRunner, conn: psycopg.Connection, customer: uuid.UUID
) -> None:
    result = cli("grant", str(customer), "500", "--reason", "ticket 4411", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    data = result.json()
    assert data["command"] == "grant" and data["reason"] == "ticket 4411"
    assert data["booking"]["before"] == {"tokens_remaining": 700, "tokens_used": 300}
    assert data["booking"]["after"] == {"tokens_remaining": 1200, "tokens_used": 300}
    assert balance(conn, customer) == (1200, 300)
    assert admin_rows(conn, customer) == [
        ("admin_grant", 1000, True, None),
        ("admin_grant", 500, True, None),
    ]
    run = conn.execute(
        "SELECT command, options->>'reason', status FROM tokenfix.runs WHERE run_id = %s",
        (data["run_id"],),
    ).fetchone()
    assert run == ("grant", "ticket 4411", "completed")
    booked = conn.execute(
        "SELECT adjustment->'row'->>'tokens_used', adjustment->>'reason' FROM tokenfix.changes"
        " WHERE run_id = %s",
        (data["run_id"],),
    ).fetchone()
    assert booked == ("500", "ticket 4411")


def test_deduct_books_a_deduct_row_and_lowers_the_cache(
    cli: CliRunner, conn: psycopg.Connection, customer: uuid.UUID
) -> None:
    result = cli("deduct", str(customer), "200", "--reason", "duplicate refund", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "deducted 200" in result.stdout and "700 → 500" in result.stdout
    assert balance(conn, customer) == (500, 300)
    assert admin_rows(conn, customer)[-1] == ("admin_deduct", 200, True, None)


def test_a_nightly_run_after_a_grant_changes_nothing(
    cli: CliRunner, conn: psycopg.Connection, customer: uuid.UUID
) -> None:
    assert cli("grant", str(customer), "500", "--reason", "goodwill", "--yes").exit_code == 0
    nightly = cli("reconcile", "--all", "--yes", "--settle", "0", "--json")
    assert nightly.exit_code == 0, nightly.stderr
    assert nightly.json()["changes"] == [] and nightly.json()["run_id"] is None
    assert balance(conn, customer) == (1200, 300)


def test_a_grant_keeps_the_drift_the_owner_already_had_and_says_so(
    cli: CliRunner, conn: psycopg.Connection, customer: uuid.UUID
) -> None:
    conn.execute(
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = 1200 WHERE user_id = %s",
        (customer,),
    )  # a hand edit: +500 that no ledger row explains
    result = cli("grant", str(customer), "100", "--reason", "ticket 9", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["booking"]["drift"] == {"tokens_remaining": 500, "tokens_used": 0}
    assert balance(conn, customer) == (1300, 300)
    human = cli("grant", str(customer), "1", "--reason", "ticket 10", "--yes")
    assert "already differs from its ledger (remaining +500" in human.stdout
    diagnosed = cli("diagnose", str(customer), "--json").json()
    assert diagnosed["drift"] == {"tokens_remaining": 500, "tokens_used": 0}


def test_revert_deletes_the_row_and_moves_the_cache_back(
    cli: CliRunner, conn: psycopg.Connection, ledger: Ledger, customer: uuid.UUID
) -> None:
    run_id = cli("grant", str(customer), "500", "--reason", "oops", "--yes", "--json").json()[
        "run_id"
    ]
    # The app charges meanwhile (row and cache): the revert keeps that charge.
    ledger.row(customer, 50, at=datetime.now(UTC))
    conn.execute(
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = 1150,"
        " vibe_assistant_tokens_used = 350 WHERE user_id = %s",
        (customer,),
    )
    reverted = cli("revert", run_id, "--yes", "--json")
    assert reverted.exit_code == 0, reverted.stderr
    assert balance(conn, customer) == (650, 350)
    assert admin_rows(conn, customer) == [("admin_grant", 1000, True, None)]
    history = cli("history", "--json").json()["runs"]
    grant_run = next(r for r in history if r["run_id"] == run_id)
    assert grant_run["reverted_by"] == reverted.json()["run_id"]
    again = cli("revert", run_id, "--yes")
    assert again.exit_code == 1  # its row is gone: left alone, nothing moved
    assert balance(conn, customer) == (650, 350)


def test_revert_is_refused_when_the_booked_row_changed(
    cli: CliRunner, conn: psycopg.Connection, customer: uuid.UUID
) -> None:
    run_id = cli("grant", str(customer), "500", "--reason", "x", "--yes", "--json").json()["run_id"]
    conn.execute(
        "UPDATE token_usage SET tokens_used = 400 WHERE user_id = %s AND tokens_used = 500",
        (customer,),
    )
    reverted = cli("revert", run_id, "--yes", "--json")
    assert reverted.exit_code == 1
    assert reverted.json()["changes"][0]["skipped"] == "changed_since"
    assert balance(conn, customer) == (1200, 300)  # neither the row nor the cache


def test_revert_is_refused_when_the_booked_row_is_referenced(
    cli: CliRunner, conn: psycopg.Connection, customer: uuid.UUID
) -> None:
    run_id = cli("grant", str(customer), "500", "--reason", "x", "--yes", "--json").json()["run_id"]
    conn.execute(
        "CREATE TABLE invoices (usage_id bigint REFERENCES token_usage (id));"
        "INSERT INTO invoices SELECT id FROM token_usage WHERE tokens_used = 500"
    )
    reverted = cli("revert", run_id, "--yes", "--json")
    assert reverted.exit_code == 1
    assert reverted.json()["changes"][0]["skipped"] == "referenced"
    assert balance(conn, customer) == (1200, 300)
    assert len(admin_rows(conn, customer)) == 2


def test_the_same_idempotency_key_books_once(
    cli: CliRunner, conn: psycopg.Connection, customer: uuid.UUID
) -> None:
    args = ("grant", str(customer), "500", "--reason", "t-1", "--idempotency-key", "t-1", "--yes")
    first = cli(*args, "--json")
    assert first.exit_code == 0
    second = cli(*args)
    assert second.exit_code == 0
    assert "already booked" in second.stdout and first.json()["run_id"] in second.stdout
    assert balance(conn, customer) == (1200, 300)
    assert len(admin_rows(conn, customer)) == 2
    again = cli(*args, "--json").json()
    assert again["already_booked_by"] == first.json()["run_id"] and again["run_id"] is None


def test_an_idempotency_key_reused_for_another_adjustment_is_refused(
    cli: CliRunner, conn: psycopg.Connection, customer: uuid.UUID
) -> None:
    assert cli("grant", str(customer), "5", "--reason", "a", "--idempotency-key", "k",
               "--yes").exit_code == 0  # fmt: skip
    other = cli("grant", str(customer), "6", "--reason", "b", "--idempotency-key", "k", "--yes")
    assert other.exit_code == 2 and "idempotency key 'k' was used by run" in other.stderr
    assert balance(conn, customer) == (705, 300)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("0", "--reason", "r", "--yes"), "AMOUNT 0 is not positive"),
        (("-5", "--reason", "r", "--yes"), "AMOUNT -5 is not positive"),
        (("ten", "--reason", "r", "--yes"), "AMOUNT 'ten' is not a number"),
        (("5", "--reason", "  ", "--yes"), "--reason is empty"),
        (("5", "--yes"), "Missing option '--reason'"),
        (("5", "--reason", "r"), "without --yes when not on a terminal"),
    ],
)
def test_bad_input_is_refused_with_nothing_written(
    cli: CliRunner, conn: psycopg.Connection, customer: uuid.UUID, args: tuple, message: str
) -> None:
    for command in ("grant", "deduct"):
        result = cli(command, str(customer), *args)
        assert result.exit_code == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
        assert nothing_written(conn, customer, (700, 300))


def test_an_unknown_or_malformed_key_is_refused_with_nothing_written(
    cli: CliRunner, conn: psycopg.Connection, customer: uuid.UUID, ledger: Ledger
) -> None:
    unknown = cli("grant", str(uuid.uuid4()), "5", "--reason", "r", "--yes")
    assert unknown.exit_code == 2 and "no balance row for" in unknown.stderr
    malformed = cli("grant", "not-a-user", "5", "--reason", "r", "--yes")
    assert malformed.exit_code == 2 and "is not a UUID" in malformed.stderr
    only_ledger = ledger.user()
    ledger.row(only_ledger, 5)
    missing = cli("grant", str(only_ledger), "5", "--reason", "r", "--yes")
    assert missing.exit_code == 2 and "--create-missing creates" in missing.stderr
    assert nothing_written(conn, customer, (700, 300))


def test_a_null_cache_is_refused(
    cli: CliRunner, conn: psycopg.Connection, customer: uuid.UUID
) -> None:
    conn.execute("ALTER TABLE user_profiles ALTER vibe_assistant_tokens_remaining DROP NOT NULL")
    conn.execute(
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = NULL WHERE user_id = %s",
        (customer,),
    )
    result = cli("grant", str(customer), "5", "--reason", "r", "--yes")
    assert result.exit_code == 2 and "is NULL" in result.stderr


def test_history_shows_the_adjustment_with_its_reason(cli: CliRunner, customer: uuid.UUID) -> None:
    cli("grant", str(customer), "5", "--reason", "refund #77", "--yes")
    runs = cli("history", "--json").json()["runs"]
    assert runs[0]["command"] == "grant" and runs[0]["reason"] == "refund #77"
    assert "refund #77" in cli("history").stdout


def test_diagnose_shows_the_adjustments_with_their_reasons(
    cli: CliRunner, customer: uuid.UUID
) -> None:
    assert cli("diagnose", str(customer), "--json").json().get("adjustments") is None
    cli("grant", str(customer), "500", "--reason", "refund #4411", "--yes")
    run_id = cli("deduct", str(customer), "20", "--reason", "typo", "--yes", "--json").json()[
        "run_id"
    ]
    reverted = cli("revert", run_id, "--yes", "--json").json()["run_id"]
    found = cli("diagnose", str(customer), "--json").json()["adjustments"]
    assert [(a["kind"], a["amount"], a["reason"]) for a in found] == [
        ("deduct", 20, "typo"),
        ("grant", 500, "refund #4411"),
    ]
    assert found[0]["reverted_by"] == reverted and found[1]["reverted_by"] is None
    human = cli("diagnose", str(customer)).stdout
    assert "grant 500  refund #4411" in human and f"reverted by {reverted}" in human


def test_revert_dry_run_says_what_it_would_do_and_writes_nothing(
    cli: CliRunner, conn: psycopg.Connection, customer: uuid.UUID
) -> None:
    run_id = cli("grant", str(customer), "500", "--reason", "x", "--yes", "--json").json()["run_id"]
    dry = cli("revert", run_id, "--dry-run", "--json")
    assert dry.exit_code == 0 and dry.json()["changes"][0]["skipped"] == "dry_run"
    conn.execute(
        "UPDATE token_usage SET tokens_used = 499 WHERE user_id = %s AND tokens_used = 500",
        (customer,),
    )
    dry = cli("revert", run_id, "--dry-run", "--json")
    assert dry.exit_code == 1 and dry.json()["changes"][0]["skipped"] == "changed_since"
    assert balance(conn, customer) == (1200, 300)
    assert cli("history", run_id).exit_code == 0
    assert cli("history", "--user", str(customer)).exit_code == 0


def test_revert_dry_run_of_a_grant_shows_the_cache_now_and_where_it_would_go(
    cli: CliRunner, conn: psycopg.Connection, customer: uuid.UUID
) -> None:
    run_id = cli("grant", str(customer), "500", "--reason", "x", "--yes", "--json").json()["run_id"]
    conn.execute(  # the app spends 100 after the grant: the revert moves back from there
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = 1100,"
        " vibe_assistant_tokens_used = 400 WHERE user_id = %s",
        (customer,),
    )
    change = cli("revert", run_id, "--dry-run", "--json").json()["changes"][0]
    remaining, used = "vibe_assistant_tokens_remaining", "vibe_assistant_tokens_used"
    assert change["current"] == {remaining: 1100, used: 400}
    assert change["restore_to"] == {remaining: 600, used: 400}
    human = cli("revert", run_id, "--dry-run").stdout
    assert "no row" not in human and "400 / 1,100" in human and "400 / 600" in human
    assert balance(conn, customer) == (1100, 400)
    applied = cli("revert", run_id, "--yes", "--json").json()["changes"][0]
    assert applied["restore_to"] == change["restore_to"]


def test_create_missing_creates_the_balance_row_at_the_ledger_plus_the_amount(
    cli: CliRunner, conn: psycopg.Connection, ledger: Ledger
) -> None:
    user = ledger.user()
    ledger.row(user, 1000, action="admin_grant", model=None, at=DAY_AGO)
    ledger.row(user, 300, at=DAY_AGO)
    result = cli(
        "grant", str(user), "500", "--reason", "welcome back", "--create-missing", "--yes", "--json"
    )
    assert result.exit_code == 0, result.stderr
    assert result.json()["booking"]["before"] == {"tokens_remaining": None, "tokens_used": None}
    assert balance(conn, user) == (1200, 300)
    assert cli("diagnose", str(user), "--json").json()["status"] == "ok"
    nobody = uuid.uuid4()
    created = cli("grant", str(nobody), "50", "--reason", "new", "--create-missing", "--yes")
    assert created.exit_code == 0, created.stderr
    assert balance(conn, nobody) == (50, 0)
    run_id = cli("history", "--json").json()["runs"][0]["run_id"]
    assert cli("revert", run_id, "--yes").exit_code == 0
    assert balance(conn, nobody) == (0, 0)


def test_a_live_lease_keeps_a_grant_out_with_nothing_written(
    cli: CliRunner, conn: psycopg.Connection, customer: uuid.UUID
) -> None:
    assert cli("grant", str(customer), "1", "--reason", "r", "--yes").exit_code == 0
    conn.execute(
        "INSERT INTO tokenfix.lease VALUES ('writer', gen_random_uuid(), NULL, 'reconcile',"
        " 'busy-host', 777, now(), now() + interval '1 minute')"
    )
    locked_out = cli("grant", str(customer), "500", "--reason", "r", "--yes")
    assert locked_out.exit_code == 3 and "busy-host" in locked_out.stderr
    assert balance(conn, customer) == (701, 300)
    assert conn.execute("SELECT count(*) FROM tokenfix.runs").fetchone() == (1,)


def test_a_trigger_that_stores_another_balance_rolls_the_grant_back(
    cli: CliRunner, conn: psycopg.Connection, customer: uuid.UUID
) -> None:
    conn.execute(
        "CREATE FUNCTION cap() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " NEW.vibe_assistant_tokens_remaining := least(NEW.vibe_assistant_tokens_remaining, 1000);"
        " RETURN NEW; END $$;"
        "CREATE TRIGGER cap BEFORE UPDATE ON user_profiles FOR EACH ROW EXECUTE FUNCTION cap()"
    )
    result = cli("grant", str(customer), "500", "--reason", "r", "--yes")
    assert result.exit_code == 3 and "stored 1000 instead of 1200" in result.stderr
    assert nothing_written(conn, customer, (700, 300))


def test_a_retry_after_a_revert_still_books_nothing_and_says_so(
    cli: CliRunner, conn: psycopg.Connection, customer: uuid.UUID
) -> None:
    args = ("grant", str(customer), "500", "--reason", "t", "--idempotency-key", "t-9", "--yes")
    run_id = cli(*args, "--json").json()["run_id"]
    reverted = cli("revert", run_id, "--yes", "--json").json()["run_id"]
    retry = cli(*args, "--json")
    assert retry.exit_code == 0
    assert retry.json()["already_booked_by"] == run_id
    assert retry.json()["reverted_by"] == reverted
    assert "reverted by run" in cli(*args).stdout
    assert balance(conn, customer) == (700, 300)


def test_revert_leaves_both_alone_when_the_cache_was_nulled_since(
    cli: CliRunner, conn: psycopg.Connection, customer: uuid.UUID
) -> None:
    run_id = cli("grant", str(customer), "500", "--reason", "x", "--yes", "--json").json()["run_id"]
    conn.execute("ALTER TABLE user_profiles ALTER vibe_assistant_tokens_remaining DROP NOT NULL")
    conn.execute(
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = NULL WHERE user_id = %s",
        (customer,),
    )
    preview = cli("revert", run_id, "--dry-run", "--json")
    assert preview.exit_code == 1  # the dry run says what the revert then does
    assert preview.json()["changes"][0]["skipped"] == "changed_since"
    assert preview.json()["rows_restored"] == 0
    reverted = cli("revert", run_id, "--yes", "--json")
    assert reverted.exit_code == 1
    assert reverted.json()["changes"][0]["skipped"] == "changed_since"
    assert len(admin_rows(conn, customer)) == 2  # the booked row stays with the cache
