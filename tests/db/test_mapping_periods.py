"""Periods (docs/balance-model.md): a monthly allowance that resets (examples/periods). Only
the rows of the owner's period count; the rest are out_of_period; a cache still holding the
previous period's balance is named period_not_reset."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.db.test_mapping_shapes import EXAMPLES
from tests.support.clirunner import CliRunner, exact

MAPPING = EXAMPLES / "periods" / "tokenfix.toml"
NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)


@dataclass
class Periods:
    expected: dict[str, int] = field(default_factory=dict)
    drift: dict[str, int] = field(default_factory=dict)
    not_reset: set[str] = field(default_factory=set)
    out_of_period: dict[str, int] = field(default_factory=dict)


def build(conn: psycopg.Connection, rng: random.Random) -> Periods:
    """20 entitlements, 30- or 7-day periods, events over the last three periods; the
    reset job missed some entitlements, the metering missed some charges."""
    conn.execute((EXAMPLES / "periods" / "schema.sql").read_text())
    found = Periods()
    for n in range(20):
        key = f"cus_{n:03d}:ai_tokens"
        length = timedelta(days=30 if n % 3 else 7)
        next_reset = NOW + rng.randint(1, 6) * DAY - timedelta(hours=n)
        start = next_reset - length
        allowance = rng.choice([1000, 5000, 20000])
        conn.execute(
            "INSERT INTO customer_entitlements (id, customer_id, feature_id, allowance, balance,"
            " next_reset_at, reset_interval) VALUES (%s, %s, 'ai_tokens', %s, 0, %s, %s)",
            (key, f"cus_{n:03d}", allowance, next_reset, length),
        )
        current = previous = outside = 0
        for _ in range(rng.randint(2, 12)):
            at = start - 2 * length + rng.random() * (NOW - timedelta(hours=1) - start + 2 * length)
            value = rng.randint(1, 300)
            status = "failed" if rng.random() < 0.1 else "completed"
            conn.execute(
                "INSERT INTO events (entitlement_id, value, status, created_at)"
                " VALUES (%s, %s, %s, %s)",
                (key, value, status, at),
            )
            if at < start:
                outside += 1
            if status != "completed":
                continue
            if at >= start:
                current += value
            elif at >= start - length:
                previous += value
        expected = allowance - current
        cached = expected
        if n % 7 == 3 and previous and previous != current:
            cached = allowance - previous  # the reset job never ran for it
            found.not_reset.add(key)
        elif n % 5 == 0 and current:
            cached = expected + 17  # a charge the metering missed
        conn.execute("UPDATE customer_entitlements SET balance = %s WHERE id = %s", (cached, key))
        found.expected[key] = expected
        found.out_of_period[key] = outside
        if cached != expected:
            found.drift[key] = expected
    assert found.not_reset and len(found.drift) > len(found.not_reset)
    return found


@pytest.fixture
def periods(conn: psycopg.Connection) -> Periods:
    return build(conn, random.Random("periods"))


def test_the_dry_run_counts_only_each_owners_period(cli: CliRunner, periods: Periods) -> None:
    result = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", str(MAPPING))
    assert result.exit_code == 1, result.stderr
    data = exact(result.stdout)
    assert data["users_checked"] == len(periods.expected)
    found = {c["user_id"]: c["expected"]["tokens_remaining"] for c in data["changes"]}
    assert found == periods.drift


def test_diagnose_shows_the_period_the_rows_outside_it_and_period_not_reset(
    cli: CliRunner, periods: Periods
) -> None:
    for key in sorted(periods.expected):
        result = cli("diagnose", key, "--json", "--ledger", "50", "--mapping", str(MAPPING))
        data = exact(result.stdout)
        assert data["expected"]["tokens_remaining"] == periods.expected[key]
        assert data["period"]["start"] < data["period"]["end"]
        assert data["usage"].get("out_of_period_records", 0) == periods.out_of_period[key]
        classes = [row["class"] for row in data["ledger"]]
        assert classes.count("out_of_period") == periods.out_of_period[key]
        codes = {c["code"] for c in data["causes"]}
        assert ("period_not_reset" in codes) == (key in periods.not_reset), (key, data["causes"])
    shown = cli("diagnose", sorted(periods.not_reset)[0], "--mapping", str(MAPPING))
    assert "period " in shown.stdout and "period_not_reset" in shown.stdout


def test_a_write_run_converges_and_revert_restores(
    cli: CliRunner, conn: psycopg.Connection, periods: Periods
) -> None:
    snapshot = "SELECT id, balance FROM customer_entitlements ORDER BY id"
    before = conn.execute(snapshot).fetchall()
    run = cli("reconcile", "--all", "--yes", "--json", "--mapping", str(MAPPING))
    assert run.exit_code == 0, run.stderr
    assert run.json()["users_updated"] == len(periods.drift)
    written = dict(conn.execute(snapshot).fetchall())
    assert written == periods.expected
    again = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", str(MAPPING))
    assert again.exit_code == 0 and again.json()["changes"] == []
    undo = cli("revert", run.json()["run_id"], "--yes", "--mapping", str(MAPPING))
    assert undo.exit_code == 0, undo.stderr
    assert conn.execute(snapshot).fetchall() == before


def test_doctor_passes_the_periods_mapping_and_checks_the_types(
    cli: CliRunner, periods: Periods, tmp_path: Path
) -> None:
    doctor = cli("doctor", "--json", "--mapping", str(MAPPING))
    checks = {c["name"]: c for c in doctor.json()["checks"]}
    assert all(checks[n]["status"] == "ok" for n in checks if n.startswith("mapping_")), checks
    broken = tmp_path / "broken.toml"
    broken.write_text(MAPPING.read_text().replace('"reset_interval"', '"allowance"'))
    failing = cli("doctor", "--json", "--mapping", str(broken)).json()["checks"]
    message = next(c["message"] for c in failing if c["name"] == "mapping_balance")
    assert "period_length" in message and "expected a interval" in message


def _codes(data: dict[str, Any]) -> dict[str, list[str]]:
    return {c["user_id"]: c["causes"] for c in data["changes"]}


@pytest.mark.parametrize("write", [False, True], ids=["dry_run", "write"])
def test_reconcile_names_period_not_reset_as_diagnose_does(
    cli: CliRunner, periods: Periods, write: bool
) -> None:
    mode = "--yes" if write else "--dry-run"
    result = cli("reconcile", "--all", mode, "--json", "--mapping", str(MAPPING))
    assert result.exit_code == (0 if write else 1), result.stderr
    data = exact(result.stdout)
    codes = _codes(data)
    assert set(codes) == set(periods.drift)
    for key, found in codes.items():
        assert ("period_not_reset" in found) == (key in periods.not_reset), (key, found)
    summary = {c["code"]: c for c in data["summary"]["causes"]}
    named = summary["period_not_reset"]
    assert named["users"] == len(periods.not_reset)
    assert named["drift"]["tokens_remaining"] == sum(
        c["drift"]["tokens_remaining"] for c in data["changes"] if c["user_id"] in periods.not_reset
    )
