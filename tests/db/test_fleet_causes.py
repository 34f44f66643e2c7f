"""docs/monitoring.md "Why, for the whole fleet": causes on every change, the fleet's starting balance,
and the run's summary, for a fleet whose every drifting user has one known cause."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.support.builders import BASE_TIME, Ledger
from tests.support.clirunner import CliRunner


def before_profile(ledger: Ledger) -> uuid.UUID:
    """Two charges before the profile existed were never applied: drift +30 / -30."""
    user = ledger.user()
    ledger.row(user, 10, at=BASE_TIME - timedelta(days=2))
    ledger.row(user, 20, at=BASE_TIME - timedelta(days=1))
    ledger.row(user, 50, at=BASE_TIME + timedelta(days=1))
    return ledger.profile(user, remaining=-50, used=50, created_at=BASE_TIME)


def stopped_updating(ledger: Ledger) -> uuid.UUID:
    """The cache stopped after two charges: drift +70 / -70."""
    user = ledger.profile(ledger.user(), remaining=-30, used=30)
    for tokens in (10, 20, 30, 40):
        ledger.row(user, tokens)
    return user


def overrides_not_applied(ledger: Ledger) -> uuid.UUID:
    """Charged tokens instead of the override price 10: drift -180 / +180."""
    user = ledger.profile(ledger.user(), remaining=-200, used=200)
    ledger.row(user, 100, action="summarize")
    ledger.row(user, 100, action="summarize")
    return user


def failed_rows_charged(ledger: Ledger) -> uuid.UUID:
    """A failed call was charged: drift -50 / +50."""
    user = ledger.profile(ledger.user(), remaining=-150, used=150)
    ledger.row(user, 100)
    ledger.row(user, 50, success=False)
    return user


def grants_not_applied(ledger: Ledger) -> uuid.UUID:
    """A grant of 1,000 never reached the cache: drift -1,000 / +0."""
    user = ledger.profile(ledger.user(), remaining=-100, used=100)
    ledger.row(user, 1000, action="admin_grant")
    ledger.row(user, 100)
    return user


def deducts_not_applied(ledger: Ledger) -> uuid.UUID:
    """A deduct of 300 never reached the cache: drift +300 / +0."""
    user = ledger.profile(ledger.user(), remaining=1000, used=0)
    ledger.row(user, 1000, action="admin_grant")
    ledger.row(user, 300, action="admin_deduct")
    return user


def unexplained(ledger: Ledger) -> uuid.UUID:
    """Off by 11 where the rows before the profile explain 10: drift +11 / -11, no cause."""
    user = ledger.user()
    ledger.row(user, 10, at=BASE_TIME - timedelta(days=1))
    ledger.row(user, 50, at=BASE_TIME + timedelta(days=1))
    return ledger.profile(user, remaining=-49, used=49, created_at=BASE_TIME)


SINGLE_CAUSES = {
    "before_profile": (before_profile, (30, -30)),
    "stopped_updating": (stopped_updating, (70, -70)),
    "overrides_not_applied": (overrides_not_applied, (-180, 180)),
    "failed_rows_charged": (failed_rows_charged, (-50, 50)),
    "grants_not_applied": (grants_not_applied, (-1000, 0)),
    "deducts_not_applied": (deducts_not_applied, (300, 0)),
}


@pytest.fixture
def fleet(ledger: Ledger) -> dict[str, list[uuid.UUID]]:
    """Two users of each single cause, one unexplained, two in step, one missing profile."""
    ledger.override("summarize", 10)
    users: dict[str, list[uuid.UUID]] = {}
    for code, (build, _) in SINGLE_CAUSES.items():
        users[code] = [build(ledger), build(ledger)]
    users["unexplained"] = [unexplained(ledger)]
    for _ in range(2):
        in_step = ledger.profile(ledger.user(), remaining=-100, used=100)
        ledger.row(in_step, 100)
    missing = ledger.user()
    ledger.row(missing, 25)
    users["missing"] = [missing]
    return users


def dry_run(cli: CliRunner, *extra: str) -> dict:
    result = cli("reconcile", "--all", "--dry-run", "--json", *extra)
    assert result.exit_code == 1, result.stderr
    return result.json()


def test_every_change_carries_exactly_its_users_cause(
    cli: CliRunner, fleet: dict[str, list[uuid.UUID]]
) -> None:
    by_user = {c["user_id"]: c for c in dry_run(cli)["changes"]}
    for code, users in fleet.items():
        for user in users:
            expected = [] if code in ("unexplained", "missing") else [code]
            assert by_user[str(user)]["causes"] == expected, code


def test_the_fleets_causes_are_the_ones_diagnose_names_for_each_user(
    cli: CliRunner, fleet: dict[str, list[uuid.UUID]]
) -> None:
    for change in dry_run(cli)["changes"]:
        if change["status"] != "drift":
            continue
        diagnosed = cli("diagnose", change["user_id"], "--json").json()
        assert change["causes"] == [c["code"] for c in diagnosed["causes"]]


def test_the_summary_counts_users_and_drift_by_cause(
    cli: CliRunner, fleet: dict[str, list[uuid.UUID]]
) -> None:
    summary = dry_run(cli)["summary"]
    expected = [
        {"code": code, "users": 2, "drift": {"tokens_remaining": 2 * r, "tokens_used": 2 * u}}
        for code, (_, (r, u)) in sorted(SINGLE_CAUSES.items())
    ]
    assert summary["causes"] == expected
    assert summary["unexplained_users"] == 1  # the missing profile is not a drift


def test_the_summary_totals_cached_and_expected_over_users_with_a_profile(
    cli: CliRunner, fleet: dict[str, list[uuid.UUID]], ledger: Ledger
) -> None:
    summary = dry_run(cli)["summary"]
    cached = ledger.conn.execute(
        "SELECT sum(vibe_assistant_tokens_remaining), sum(vibe_assistant_tokens_used)"
        " FROM user_profiles"
    ).fetchone()
    assert cached is not None
    assert summary["cached_total"] == {"tokens_remaining": cached[0], "tokens_used": cached[1]}
    drift = [sum(d[i] for _, d in SINGLE_CAUSES.values()) * 2 + (11, -11)[i] for i in (0, 1)]
    assert summary["expected_total"] == {
        "tokens_remaining": cached[0] - drift[0],
        "tokens_used": cached[1] - drift[1],
    }
    # By hand, remaining: -160 - 200 - 40 - 200 + 1,800 + 1,400 - 60 - 200 (the two in step).
    assert summary["expected_total"] == {"tokens_remaining": 2340, "tokens_used": 1060}


def test_the_table_ends_with_the_summary(cli: CliRunner, fleet: dict[str, list[uuid.UUID]]) -> None:
    out = cli("reconcile", "--all", "--dry-run").stdout
    assert "Drift by cause" in out
    lines = out.splitlines()
    row = next(line for line in lines if line.lstrip().startswith("grants_not_applied"))
    assert row.split() == ["grants_not_applied", "│", "2", "│", "-2,000", "/", "+0"]
    unexplained_row = next(line for line in lines if line.lstrip().startswith("unexplained"))
    assert unexplained_row.split()[:3] == ["unexplained", "│", "1"]
    assert lines[-2].startswith("Over every user with a balance row: cached ")
    assert lines[-1].startswith("Checked 16 users: 13 with drift, 1 missing profile.")


# -- the fleet's starting balance -----------------------------------------------------------


def shared_drift_fleet(ledger: Ledger, sharing: int, others: int) -> list[uuid.UUID]:
    """`sharing` users whose caches hold 1,000 more than the ledger gives (nothing else
    differs), and `others` off by a remaining-and-used drift no cause explains."""
    shared = []
    for _ in range(sharing):
        user = ledger.profile(ledger.user(), remaining=900, used=100)
        ledger.row(user, 100)
        shared.append(user)
    for _ in range(others):
        user = ledger.profile(ledger.user(), remaining=-7, used=7)
        ledger.row(user, 100)
    return shared


def test_many_users_sharing_one_remaining_drift_are_marked_starting_balance(
    cli: CliRunner, ledger: Ledger
) -> None:
    shared = shared_drift_fleet(ledger, sharing=5, others=5)
    result = cli("reconcile", "--all", "--dry-run", "--json")
    data = result.json()
    by_user = {c["user_id"]: c["causes"] for c in data["changes"]}
    assert sorted(u for u, causes in by_user.items() if causes) == sorted(map(str, shared))
    assert all(by_user[str(u)] == ["starting_balance"] for u in shared)
    assert data["summary"]["causes"] == [
        {"code": "starting_balance", "users": 5,
         "drift": {"tokens_remaining": 5000, "tokens_used": 0}},
    ]  # fmt: skip
    assert data["summary"]["unexplained_users"] == 5
    (warning,) = data["warnings"]
    assert "5 of 10 drifting users are off by exactly +1,000 remaining" in warning
    assert "TOKENFIX_STARTING_BALANCE=1000 (now 0)" in warning
    assert result.stderr == f"warning: {warning}\n"


@pytest.mark.parametrize(
    ("sharing", "others"),
    [(4, 0), (5, 6)],
    ids=["fewer than five users", "fewer than half the drifting users"],
)
def test_a_shared_drift_below_the_bar_is_not_the_fleets(
    cli: CliRunner, ledger: Ledger, sharing: int, others: int
) -> None:
    shared_drift_fleet(ledger, sharing=sharing, others=others)
    data = cli("reconcile", "--all", "--dry-run", "--json").json()
    assert all(c["causes"] == [] for c in data["changes"])
    assert data["warnings"] == []
    assert data["summary"]["unexplained_users"] == sharing + others


def test_with_that_starting_balance_the_shared_drift_is_gone(
    cli: CliRunner, ledger: Ledger
) -> None:
    shared_drift_fleet(ledger, sharing=5, others=1)
    data = cli("reconcile", "--all", "--dry-run", "--json", "--starting-balance", "1000").json()
    assert data["users_with_drift"] == 1
