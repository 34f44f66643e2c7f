"""Random ledgers and overrides: the SQL model agrees with the pure-Python reference of docs/balance-model.md."""

from __future__ import annotations

import uuid
from dataclasses import astuple
from datetime import timedelta

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import reference
from tests.support.builders import BASE_TIME
from tokenfix.config.settings import Settings
from tokenfix.diagnosis.report import diagnose

minutes = st.integers(min_value=0, max_value=60)
models = st.sampled_from([None, "gpt-4", "claude"])
ledger_rows = st.lists(
    st.tuples(
        st.sampled_from(["chat", "image", "admin_grant", "admin_deduct"]),
        models,
        st.one_of(st.none(), st.integers(min_value=-5, max_value=500)),
        st.sampled_from([True, True, True, False, None]),
        minutes,
    ),
    max_size=25,
)
override_rows = st.lists(
    st.tuples(
        st.sampled_from(["chat", "image", "admin_grant"]),
        models,
        st.integers(min_value=0, max_value=50),
        st.booleans(),
        st.one_of(st.none(), minutes),
        st.one_of(st.none(), minutes),
    ),
    max_size=6,
)


def at(minute: int | None):
    return None if minute is None else BASE_TIME + timedelta(minutes=minute)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=ledger_rows, overrides=override_rows, starting=st.integers(-100, 1000))
def test_sql_model_matches_the_reference(
    conn: psycopg.Connection, db_url: str, rows: list, overrides: list, starting: int
) -> None:
    conn.execute("TRUNCATE token_usage, ai_action_token_overrides, user_profiles")
    user = uuid.uuid4()
    conn.execute(
        "INSERT INTO user_profiles (user_id, vibe_assistant_tokens_remaining, vibe_assistant_tokens_used)"
        " VALUES (%s, 0, 0)",
        (user,),
    )
    ref_overrides = [
        reference.Override(i + 1, action, model, cost, active, at(start), at(end))
        for i, (action, model, cost, active, start, end) in enumerate(overrides)
    ]
    for o in ref_overrides:  # the dataclass fields are the table's columns, in order
        conn.execute(
            "INSERT INTO ai_action_token_overrides VALUES (%s, %s, %s, %s, %s, %s, %s)", astuple(o)
        )
    ref_rows = [
        reference.Row(i + 1, user, action, model, tokens, success, at(minute))  # type: ignore[arg-type]
        for i, (action, model, tokens, success, minute) in enumerate(rows)
    ]
    for r in ref_rows:
        conn.execute("INSERT INTO token_usage VALUES (%s, %s, %s, %s, %s, %s, %s)", astuple(r))
    want = reference.expected(ref_rows, ref_overrides, starting_balance=starting)
    result = diagnose(conn, Settings(database_url=db_url, starting_balance=starting), user)
    assert result.expected is not None
    assert (result.expected.tokens_remaining, result.expected.tokens_used) == (
        want.remaining,
        want.used,
    )
    classes = [reference.row_class(r, ("admin_grant",), ("admin_deduct",)) for r in ref_rows]
    assert result.usage is not None
    assert result.usage.invalid_records == classes.count("invalid")
    assert result.usage.charge_records == classes.count("charge")
