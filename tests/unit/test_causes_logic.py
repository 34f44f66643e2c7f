"""The likely causes of a drift as pure logic (docs/balance-model.md, causes): each code is named
only when it explains the whole drift exactly, in both columns."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from tokenfix.diagnosis.causes import Evidence, StoppedUpdating, likely_causes

QUIET = Evidence(
    drift_remaining=0,
    drift_used=0,
    starting_balance=0,
    granted=0,
    deducted=0,
    override_records=0,
    override_difference=0,
    before_profile_records=0,
    before_profile_remaining=0,
    before_profile_used=0,
    failed_charge_tokens=0,
    failed_charge_tokens_priced=0,
    stopped_updating=None,
)


def codes(evidence: Evidence) -> list[str]:
    return [cause.code for cause in likely_causes(evidence)]


def test_no_drift_has_no_cause() -> None:
    assert codes(replace(QUIET, granted=500, starting_balance=100)) == []


def test_rows_before_the_profile_explain_the_drift_they_predict() -> None:
    evidence = replace(
        QUIET,
        drift_remaining=120,
        drift_used=-120,
        before_profile_records=3,
        before_profile_remaining=-120,
        before_profile_used=120,
    )
    assert codes(evidence) == ["before_profile"]
    assert likely_causes(evidence)[0].message.startswith("3 ledger rows created before")


def test_before_profile_needs_the_creation_time() -> None:
    evidence = replace(
        QUIET,
        drift_remaining=120,
        drift_used=-120,
        before_profile_remaining=-120,
        before_profile_used=120,
        has_created_at=False,
    )
    assert codes(evidence) == []


def test_a_balance_that_stopped_updating_misses_every_later_charge() -> None:
    since = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    evidence = replace(
        QUIET,
        drift_remaining=75,
        drift_used=-75,
        stopped_updating=StoppedUpdating(since=since, charges=2, tokens=75),
    )
    assert codes(evidence) == ["stopped_updating"]
    assert "2026-11-24T10:00:00+00:00" in likely_causes(evidence)[0].message


def test_overrides_not_applied_is_the_override_difference_in_both_columns() -> None:
    evidence = replace(
        QUIET, drift_remaining=40, drift_used=-40, override_records=4, override_difference=40
    )
    assert codes(evidence) == ["overrides_not_applied"]
    assert codes(replace(evidence, has_pricing=False)) == []


def test_failed_rows_charged_matches_raw_or_priced_tokens() -> None:
    raw = replace(QUIET, drift_remaining=-30, drift_used=30, failed_charge_tokens=30)
    priced = replace(
        QUIET,
        drift_remaining=-45,
        drift_used=45,
        failed_charge_tokens=30,
        failed_charge_tokens_priced=45,
    )
    assert codes(raw) == ["failed_rows_charged"]
    assert codes(priced) == ["failed_rows_charged"]


def test_grants_and_deducts_move_remaining_only() -> None:
    assert codes(replace(QUIET, drift_remaining=-500, granted=500)) == ["grants_not_applied"]
    assert codes(replace(QUIET, drift_remaining=200, deducted=200)) == ["deducts_not_applied"]
    # The same amount in the used column is another story: not explained.
    assert codes(replace(QUIET, drift_remaining=-500, drift_used=7, granted=500)) == []


def test_starting_balance_missing_from_the_cache() -> None:
    assert codes(replace(QUIET, drift_remaining=-100, starting_balance=100)) == ["starting_balance"]


def test_several_hypotheses_that_each_explain_the_whole_drift_are_all_named() -> None:
    evidence = replace(QUIET, drift_remaining=-100, starting_balance=100, granted=100, deducted=0)
    assert codes(evidence) == ["grants_not_applied", "starting_balance"]


def test_a_partial_explanation_is_no_cause() -> None:
    assert codes(replace(QUIET, drift_remaining=-501, granted=500)) == []


def test_without_a_used_side_remaining_decides_alone() -> None:
    evidence = replace(
        QUIET,
        drift_remaining=Decimal("12.50"),
        drift_used=None,
        override_difference=Decimal("12.50"),
        override_records=1,
    )
    assert codes(evidence) == ["overrides_not_applied"]
