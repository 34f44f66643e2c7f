"""docs/balance-model.md row by row, through the one SQL implementation every command uses."""

from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg
import pytest

from tests.support.builders import BASE_TIME, Ledger
from tokenfix.config.settings import Settings
from tokenfix.diagnosis.report import Diagnosis, diagnose


def check(conn: psycopg.Connection, settings: Settings, user: uuid.UUID) -> Diagnosis:
    with psycopg.connect(settings.database_url.get_secret_value()) as own:  # type: ignore[union-attr]
        own.autocommit = True
        return diagnose(own, settings, user)


def expected(conn: psycopg.Connection, settings: Settings, user: uuid.UUID) -> tuple[int, int]:
    result = check(conn, settings, user)
    assert result.expected is not None
    return result.expected.tokens_remaining, result.expected.tokens_used


@pytest.fixture
def user(ledger: Ledger) -> uuid.UUID:
    return ledger.profile(ledger.user())


def test_a_charge_adds_to_used_and_takes_from_remaining(conn, settings, ledger, user) -> None:
    ledger.row(user, 100)
    ledger.row(user, 250)
    assert expected(conn, settings, user) == (-350, 350)


def test_failed_rows_have_no_effect(conn, settings, ledger, user) -> None:
    ledger.row(user, 500, success=False)
    assert expected(conn, settings, user) == (0, 0)
    assert check(conn, settings, user).usage.failed_records == 1  # type: ignore[union-attr]


def test_zero_token_rows_have_no_effect(conn, settings, ledger, user) -> None:
    ledger.row(user, 0)
    ledger.row(user, 0, action="admin_grant")
    result = check(conn, settings, user)
    assert (result.expected.tokens_remaining, result.expected.tokens_used) == (0, 0)  # type: ignore[union-attr]
    assert result.usage.zero_token_records == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("tokens", "success"),
    [(None, True), (-5, True), (100, None), (None, None), (-5, False), (None, False)],
)
def test_invalid_rows_have_no_effect_and_are_counted(
    conn, settings, ledger, user, tokens, success
) -> None:
    ledger.row(user, tokens, success=success)
    result = check(conn, settings, user)
    assert result.expected.tokens_used == 0  # type: ignore[union-attr]
    assert result.usage.invalid_records == 1  # type: ignore[union-attr]
    assert result.usage.failed_records == 0  # type: ignore[union-attr]


def test_grants_add_to_remaining_and_deducts_take_from_it(conn, settings, ledger, user) -> None:
    ledger.row(user, 1000, action="admin_grant", model=None)
    ledger.row(user, 300, action="admin_deduct", model=None)
    assert expected(conn, settings, user) == (700, 0)


def test_grant_and_deduct_lists_may_name_several_actions(conn, db_url, ledger, user) -> None:
    settings = Settings(
        database_url=db_url,
        grant_action="admin_grant, purchase",
        deduct_action="refund,admin_deduct",
    )
    ledger.row(user, 1000, action="purchase")
    ledger.row(user, 50, action="admin_grant")
    ledger.row(user, 200, action="refund")
    assert expected(conn, settings, user) == (850, 0)


def test_starting_balance_is_added_to_remaining(conn, db_url, ledger, user) -> None:
    ledger.row(user, 100)
    assert expected(conn, Settings(database_url=db_url, starting_balance=5000), user) == (4900, 100)


def test_a_profile_without_ledger_rows_expects_the_starting_balance(conn, db_url, ledger) -> None:
    user = ledger.profile(ledger.user(), remaining=200)
    result = check(conn, Settings(database_url=db_url, starting_balance=200), user)
    assert result.status == "ok"
    assert (result.expected.tokens_remaining, result.expected.tokens_used) == (200, 0)  # type: ignore[union-attr]


def test_an_override_prices_matching_charges(conn, settings, ledger, user) -> None:
    ledger.override("chat_conversation", 10)
    ledger.row(user, 100)
    ledger.row(user, 100, action="image_generation")
    assert expected(conn, settings, user) == (-110, 110)


def test_a_model_specific_override_beats_a_model_agnostic_one(conn, settings, ledger, user) -> None:
    ledger.override("chat_conversation", 7, model="gpt-4", id=1)
    # agnostic, newer window and higher id: still loses to the model-specific one
    ledger.override("chat_conversation", 3, valid_from=BASE_TIME, id=99)
    ledger.row(user, 100, model="gpt-4")
    ledger.row(user, 100, model="claude")
    assert expected(conn, settings, user) == (-10, 10)


def test_the_latest_valid_from_wins_and_null_counts_as_earliest(
    conn, settings, ledger, user
) -> None:
    ledger.override("chat_conversation", 1, id=50)
    ledger.override("chat_conversation", 2, valid_from=BASE_TIME - timedelta(days=30), id=2)
    ledger.override("chat_conversation", 3, valid_from=BASE_TIME - timedelta(days=1), id=1)
    ledger.row(user, 100)
    assert expected(conn, settings, user) == (-3, 3)


def test_equal_overrides_tie_on_the_highest_id(conn, settings, ledger, user) -> None:
    ledger.override("chat_conversation", 4, model="gpt-4", valid_from=BASE_TIME, id=10)
    ledger.override("chat_conversation", 6, model="gpt-4", valid_from=BASE_TIME, id=11)
    ledger.row(user, 100)
    assert expected(conn, settings, user) == (-6, 6)


def test_validity_windows_include_from_and_exclude_until(conn, settings, ledger, user) -> None:
    start, end = BASE_TIME + timedelta(hours=1), BASE_TIME + timedelta(hours=2)
    ledger.override("chat_conversation", 1, valid_from=start, valid_until=end)
    ledger.row(user, 100, at=start - timedelta(microseconds=1))  # before: 100
    ledger.row(user, 100, at=start)  # inside: 1
    ledger.row(user, 100, at=end - timedelta(microseconds=1))  # inside: 1
    ledger.row(user, 100, at=end)  # after: 100
    assert expected(conn, settings, user) == (-202, 202)


def test_inactive_overrides_are_ignored(conn, settings, ledger, user) -> None:
    ledger.override("chat_conversation", 1, active=False)
    ledger.row(user, 100)
    assert expected(conn, settings, user) == (-100, 100)


def test_overrides_never_price_grants_or_deducts(conn, settings, ledger, user) -> None:
    ledger.override("admin_grant", 1)
    ledger.override("admin_deduct", 1)
    ledger.row(user, 1000, action="admin_grant")
    ledger.row(user, 100, action="admin_deduct")
    assert expected(conn, settings, user) == (900, 0)


def test_a_missing_overrides_table_means_no_overrides(conn, settings, ledger, user) -> None:
    ledger.row(user, 100)
    conn.execute("DROP TABLE ai_action_token_overrides")
    assert expected(conn, settings, user) == (-100, 100)


def test_missing_window_columns_mean_unbounded_overrides(conn, settings, ledger, user) -> None:
    ledger.override("chat_conversation", 5, valid_until=BASE_TIME)  # expired, until the column goes
    ledger.row(user, 100)
    conn.execute(
        "ALTER TABLE ai_action_token_overrides DROP COLUMN valid_from, DROP COLUMN valid_until"
    )
    assert expected(conn, settings, user) == (-5, 5)


def test_override_records_and_their_difference_are_reported(conn, settings, ledger, user) -> None:
    ledger.override("chat_conversation", 30)
    ledger.row(user, 100)
    ledger.row(user, 20)
    ledger.row(user, 100, action="other")
    usage = check(conn, settings, user).usage
    assert usage is not None
    assert (usage.override_records, usage.override_token_difference) == (2, (30 - 100) + (30 - 20))
    assert (usage.charge_records, usage.charged_tokens) == (3, 160)


def test_rows_created_before_the_profile_are_counted(conn, settings, ledger) -> None:
    user = ledger.user()
    ledger.row(user, 10, at=BASE_TIME - timedelta(days=2))
    ledger.row(user, 10, at=BASE_TIME - timedelta(days=1))
    ledger.row(user, 10, at=BASE_TIME + timedelta(days=1))
    ledger.profile(user, created_at=BASE_TIME)
    assert check(conn, settings, user).usage.records_before_profile == 2  # type: ignore[union-attr]


def test_class_counts_add_up_to_the_total(conn, settings, ledger, user) -> None:
    for tokens, success, action in [
        (10, True, "chat"),
        (0, True, "chat"),
        (5, False, "chat"),
        (None, True, "chat"),
        (10, True, "admin_grant"),
        (3, True, "admin_deduct"),
    ]:
        ledger.row(user, tokens, success=success, action=action)
    u = check(conn, settings, user).usage
    assert u is not None
    parts = (
        u.failed_records,
        u.zero_token_records,
        u.invalid_records,
        u.grant_records,
        u.deduct_records,
        u.charge_records,
    )
    assert parts == (1, 1, 1, 1, 1, 1)
    assert sum(parts) == u.total_records == 6
    assert u.total_tokens_logged == 28
