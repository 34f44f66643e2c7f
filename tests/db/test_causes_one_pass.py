"""Causes in one set-based pass (docs/performance.md, docs/monitoring.md): the evidence of every
drifting owner of a run comes with its balance, from the pass that computes the balances; only
the owners whose drift needs their rows in order (a cache that stopped updating) or rows older
than their balance row are read again, all of them by one statement, whatever their number
and the batch size, never one statement per batch of owners; the codes stay those of each
owner's drift."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

import tokenfix
from tests.support.builders import BASE_TIME, Ledger
from tokenfix.config.settings import Settings

# The opening words of the follow-up evidence statement (tokenfix/queries/fleet_evidence.sql).
EVIDENCE = "The evidence the likely causes"
MORE_THAN_A_BATCH = 1_005  # the dry run used to read the causes 1,000 owners at a time


@pytest.fixture
def evidence_statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every evidence statement the tool sends, as the server receives it, with its
    parameters (watched, not replaced: the statements still run on the test's database)."""
    seen: list[str] = []
    execute = psycopg.Connection.execute

    def watching(self: psycopg.Connection[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        text = query.as_string(self) if isinstance(query, sql.Composable) else str(query)
        if EVIDENCE in text:
            seen.append(f"{text} {args!r} {kwargs!r}")
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", watching)
    yield seen


def grants_never_applied(conn: psycopg.Connection[Any], owners: int) -> None:
    """`owners` owners, the n-th granted 1,000 + n tokens, one charge of 10 applied, the grant
    never added to the cache: drift -(1,000 + n) remaining, 0 used (grants_not_applied; no
    drift shared by the fleet, so no starting_balance)."""
    conn.execute(
        "CREATE TEMP TABLE owners AS SELECT gen_random_uuid() AS user_id, n"
        " FROM generate_series(1, %s) AS n",
        (owners,),
    )
    conn.execute(
        "INSERT INTO user_profiles (user_id, vibe_assistant_tokens_remaining,"
        " vibe_assistant_tokens_used, created_at, updated_at)"
        " SELECT user_id, -10, 10, '2026-01-01', '2026-01-01' FROM owners"
    )
    conn.execute(
        "INSERT INTO token_usage (user_id, action_type, model_used, tokens_used, success,"
        " created_at)"
        " SELECT user_id, 'admin_grant', NULL, 1000 + n, true, timestamptz '2026-01-02' FROM owners"
        " UNION ALL"
        " SELECT user_id, 'chat_conversation', 'gpt-4', 10, true, timestamptz '2026-01-03' FROM owners"
    )
    conn.execute("ANALYZE token_usage, user_profiles")


def test_a_dry_run_whose_evidence_came_with_the_balances_sends_no_second_statement(
    conn: psycopg.Connection[Any], settings: Settings, evidence_statements: list[str]
) -> None:
    grants_never_applied(conn, MORE_THAN_A_BATCH)
    with (
        tokenfix.connect(settings) as tool,
        tokenfix.reconcile(tool, settings, tokenfix.Request(tokenfix.Selection())) as outcome,
    ):
        changes = list(outcome.changes)
    assert len(changes) == MORE_THAN_A_BATCH
    assert {change.causes for change in changes} == {("grants_not_applied",)}
    assert evidence_statements == []


def test_a_write_run_reads_the_evidence_once_whatever_its_batch_size(
    ledger: Ledger, settings: Settings, evidence_statements: list[str]
) -> None:
    stopped = []
    for _ in range(5):  # the cache stopped after the first charge: drift +30 / -30
        user = ledger.profile(ledger.user(), remaining=-10, used=10)
        for tokens in (10, 20, 10):
            ledger.row(user, tokens)
        stopped.append(str(user))
    request = tokenfix.Request(tokenfix.Selection(), dry_run=False, batch_size=2)
    with (
        tokenfix.connect(settings) as tool,
        tokenfix.reconcile(
            tool, settings, request, confirm=lambda _plan, _planned: True
        ) as outcome,
    ):
        changes = {change.key: change for change in outcome.changes}
    assert sorted(changes) == sorted(stopped)
    assert all(change.applied for change in changes.values())
    assert {change.causes for change in changes.values()} == {("stopped_updating",)}
    assert len(evidence_statements) == 1


def test_owners_whose_drift_no_cause_explains_are_judged_on_the_passs_evidence(
    ledger: Ledger, settings: Settings, evidence_statements: list[str]
) -> None:
    explained = ledger.profile(ledger.user(), remaining=-100, used=100)
    ledger.row(explained, 1000, action="admin_grant")
    ledger.row(explained, 100)
    unexplained = ledger.profile(ledger.user(), remaining=7, used=0)
    ledger.row(unexplained, 100)
    with (
        tokenfix.connect(settings) as tool,
        tokenfix.reconcile(tool, settings, tokenfix.Request(tokenfix.Selection())) as outcome,
    ):
        causes = {change.key: change.causes for change in outcome.changes}
    assert causes == {str(explained): ("grants_not_applied",), str(unexplained): ()}
    assert evidence_statements == []


def test_causes_of_the_ledgers_sums_need_no_second_read(
    ledger: Ledger, settings: Settings, evidence_statements: list[str]
) -> None:
    """Grants, deducts, the starting balance, overrides and failed charges: sums the pass that
    computes the balances already gathers, so no evidence statement is sent."""
    ledger.override("chat_conversation", 10)
    failed = ledger.profile(ledger.user(), remaining=-160, used=160)  # 150 of a failed call
    ledger.row(failed, 100)
    ledger.row(failed, 150, action="image_generation", success=False)
    deducts = ledger.profile(ledger.user(), remaining=1000, used=0)
    ledger.row(deducts, 1000, action="admin_grant")
    ledger.row(deducts, 300, action="admin_deduct")
    overrides = ledger.profile(ledger.user(), remaining=-40, used=40)  # raw 2 x 20, priced 2 x 10
    ledger.row(overrides, 20)
    ledger.row(overrides, 20)
    with (
        tokenfix.connect(settings) as tool,
        tokenfix.reconcile(tool, settings, tokenfix.Request(tokenfix.Selection())) as outcome,
    ):
        causes = {change.key: change.causes for change in outcome.changes}
    assert causes == {
        str(failed): ("failed_rows_charged",),
        str(deducts): ("deducts_not_applied",),
        str(overrides): ("overrides_not_applied",),
    }
    assert evidence_statements == []


def test_rows_older_than_the_balance_row_are_read_only_for_their_owners(
    ledger: Ledger, settings: Settings, evidence_statements: list[str]
) -> None:
    early = ledger.user()
    ledger.row(early, 10, at=BASE_TIME - timedelta(days=1))
    ledger.row(early, 50, at=BASE_TIME + timedelta(days=1))
    ledger.profile(early, remaining=-50, used=50, created_at=BASE_TIME)
    granted = ledger.profile(ledger.user(), remaining=-100, used=100, created_at=BASE_TIME)
    ledger.row(granted, 1000, action="admin_grant", at=BASE_TIME + timedelta(days=1))
    ledger.row(granted, 100, at=BASE_TIME + timedelta(days=1))
    with (
        tokenfix.connect(settings) as tool,
        tokenfix.reconcile(tool, settings, tokenfix.Request(tokenfix.Selection())) as outcome,
    ):
        causes = {change.key: change.causes for change in outcome.changes}
    assert causes == {str(early): ("before_profile",), str(granted): ("grants_not_applied",)}
    (statement,) = evidence_statements
    assert str(early) in statement and str(granted) not in statement
