"""`tokenfix diagnose`: the JSON contract, exit codes and the human layout."""

from __future__ import annotations

import uuid
from datetime import timedelta

from tests.support.builders import BASE_TIME, Ledger
from tests.support.clirunner import CliRunner

USAGE_KEYS = {
    "total_records",
    "total_tokens_logged",
    "failed_records",
    "zero_token_records",
    "invalid_records",
    "records_before_profile",
    "grant_records",
    "granted_tokens",
    "deduct_records",
    "deducted_tokens",
    "charge_records",
    "charged_tokens",
    "override_records",
    "override_token_difference",
    "first_activity",
    "last_activity",
}
LEDGER_KEYS = {
    "id",
    "created_at",
    "action_type",
    "model_used",
    "tokens_used",
    "success",
    "class",
    "effective",
    "expected_remaining",
}


def seed_user_with_drift(ledger: Ledger) -> uuid.UUID:
    ledger.override("chat_conversation", 40, model="gpt-4")
    user = ledger.user()
    ledger.row(user, 75, at=BASE_TIME - timedelta(hours=1))  # before the profile
    ledger.profile(user, remaining=900, used=100, created_at=BASE_TIME)
    ledger.row(user, 1000, action="admin_grant", model=None)
    ledger.row(user, 100)  # priced 40 by the override
    ledger.row(user, 60, model="claude")
    ledger.row(user, 0)
    ledger.row(user, 500, success=False)
    ledger.row(user, None)
    ledger.row(user, 200, action="admin_deduct", model=None)
    return user


def test_json_has_exactly_the_section_5_keys_and_numbers(cli: CliRunner, ledger: Ledger) -> None:
    user = seed_user_with_drift(ledger)
    result = cli("diagnose", str(user), "--json")
    assert result.exit_code == 1
    data = result.json()
    assert set(data) == {
        "user_id",
        "status",
        "profile",
        "usage",
        "expected",
        "overdrawn",
        "drift",
        "causes",
        *("generated_at", "duration_s", "tool_version", "target"),  # docs/monitoring.md's envelope
    }
    assert set(data["usage"]) == USAGE_KEYS
    assert set(data["profile"]) == {"tokens_remaining", "tokens_used", "created_at", "updated_at"}
    assert data["user_id"] == str(user)
    assert data["status"] == "drift"
    usage = data["usage"]
    assert (usage["total_records"], usage["total_tokens_logged"]) == (8, 1935)
    assert (usage["charge_records"], usage["charged_tokens"]) == (3, 40 + 60 + 40)
    assert (usage["override_records"], usage["override_token_difference"]) == (
        2,
        (40 - 75) + (40 - 100),
    )
    assert (usage["grant_records"], usage["granted_tokens"]) == (1, 1000)
    assert (usage["deduct_records"], usage["deducted_tokens"]) == (1, 200)
    assert (usage["failed_records"], usage["zero_token_records"], usage["invalid_records"]) == (
        1,
        1,
        1,
    )
    assert usage["records_before_profile"] == 1
    assert usage["first_activity"] == (BASE_TIME - timedelta(hours=1)).isoformat()
    assert data["expected"] == {"tokens_remaining": 1000 - 200 - 140, "tokens_used": 140}
    assert data["drift"] == {"tokens_remaining": 900 - 660, "tokens_used": 100 - 140}
    assert data["overdrawn"] is False
    assert result.stderr == ""


def test_a_matching_balance_is_ok_and_exits_0(cli: CliRunner, ledger: Ledger) -> None:
    user = ledger.profile(ledger.user(), remaining=-100, used=100)
    ledger.row(user, 100)
    result = cli("diagnose", str(user), "--json")
    assert result.exit_code == 0
    assert result.json()["status"] == "ok"
    assert result.json()["drift"] == {"tokens_remaining": 0, "tokens_used": 0}
    assert result.json()["causes"] == []


def test_a_negative_expected_balance_is_flagged_overdrawn(cli: CliRunner, ledger: Ledger) -> None:
    user = ledger.profile(ledger.user(), remaining=-100, used=100)
    ledger.row(user, 100)
    assert cli("diagnose", str(user), "--json").json()["overdrawn"] is True


def test_ledger_rows_without_a_profile_are_missing_profile(cli: CliRunner, ledger: Ledger) -> None:
    user = ledger.user()
    ledger.row(user, 100)
    result = cli("diagnose", str(user), "--json")
    assert result.exit_code == 1
    data = result.json()
    assert (data["status"], data["profile"], data["drift"]) == ("missing_profile", None, None)
    assert data["expected"] == {"tokens_remaining": -100, "tokens_used": 100}


def test_an_unknown_user_is_not_found_and_exits_2(cli: CliRunner) -> None:
    user = uuid.uuid4()
    result = cli("diagnose", str(user), "--json")
    assert result.exit_code == 2
    data = result.json()
    for envelope in ("generated_at", "duration_s", "tool_version", "target"):  # docs/monitoring.md
        data.pop(envelope)
    assert data == {"user_id": str(user), "status": "not_found"}
    assert "not found" in result.stderr


def test_ledger_lists_the_last_rows_with_a_running_balance(cli: CliRunner, ledger: Ledger) -> None:
    user = ledger.profile(ledger.user())
    ledger.row(user, 1000, action="admin_grant", model=None)
    ledger.row(user, 100)
    ledger.row(user, 30, success=False)
    ledger.row(user, 250)
    data = cli("diagnose", str(user), "--json", "--ledger", "3").json()
    rows = data["ledger"]
    assert [set(r) for r in rows] == [LEDGER_KEYS] * 3
    assert [(r["class"], r["effective"], r["expected_remaining"]) for r in rows] == [
        ("charge", 100, 900),
        ("failed", 0, 900),
        ("charge", 250, 650),
    ]


def test_human_output_shows_status_balance_and_causes(cli: CliRunner, ledger: Ledger) -> None:
    user = ledger.profile(ledger.user(), remaining=0, used=0)
    ledger.row(user, 100)
    result = cli("diagnose", str(user))
    assert result.exit_code == 1
    for expected in (str(user), "DRIFT", "remaining", "-100", "+100", "stopped updating"):
        assert expected in result.stdout
    assert result.stderr == ""


def test_quiet_prints_nothing_and_keeps_the_exit_code(cli: CliRunner, ledger: Ledger) -> None:
    user = ledger.profile(ledger.user(), remaining=5)
    result = cli("diagnose", str(user), "--quiet")
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", "")
