"""Causes in one set-based pass (docs/performance.md, docs/monitoring.md): the evidence of every
drifting owner of a run is read by one statement, whatever their number and the batch size,
never one statement per batch of owners; the codes stay those of each owner's drift."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

import tokenfix
from tests.support.builders import Ledger
from tokenfix.config.settings import Settings

# The opening words of the evidence statement (tokenfix/queries/fleet_evidence.sql).
EVIDENCE = "The evidence the likely causes"
MORE_THAN_A_BATCH = 1_005  # the dry run used to read the causes 1,000 owners at a time


@pytest.fixture
def evidence_statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every evidence statement the tool sends, as the server receives it (watched, not
    replaced: the statements still run on the test's database)."""
    seen: list[str] = []
    execute = psycopg.Connection.execute

    def watching(self: psycopg.Connection[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        text = query.as_string(self) if isinstance(query, sql.Composable) else str(query)
        if EVIDENCE in text:
            seen.append(text)
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


def test_a_dry_run_reads_the_evidence_of_more_than_a_batch_of_owners_in_one_statement(
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
    assert len(evidence_statements) == 1


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


def test_owners_whose_drift_no_cause_explains_are_checked_in_the_same_statement(
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
    assert len(evidence_statements) == 1
