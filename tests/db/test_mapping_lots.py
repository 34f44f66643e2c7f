"""Lots on the database (examples/lots): plan credits that expire monthly and burn first,
top-ups that never expire, promos voided by support, usage. The expected balances come from
a naive re-statement of the rule (below, written apart from tokenfix.ledger.lots), the drift is
injected, and every command works through the mapping: dry run, diagnose, write, revert,
doctor."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.db.test_mapping_shapes import EXAMPLES
from tests.support.clirunner import CliRunner, exact

MAPPING = EXAMPLES / "lots" / "tokenfix.toml"
NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)
EXAMPLE = uuid.UUID(int=1000)


@dataclass
class Grant:
    id: int
    amount: Decimal
    priority: int
    effective: datetime
    expires: datetime | None = None
    voided: datetime | None = None

    @property
    def end(self) -> datetime | None:
        ends = [t for t in (self.expires, self.voided) if t is not None]
        return min(ends) if ends else None


def reference(grants: list[Grant], usage: list[tuple[datetime, int, Decimal]]) -> Decimal:
    """The app's rule, stated naively: before each use, the grants that became spendable
    pay any debt in order; the use then burns the spendable grants in priority, expiry
    (never last), start, id order; what none covers is debt."""
    left = {g.id: g.amount for g in grants}
    started: set[int] = set()
    debt = Decimal(0)

    def burn_order(g: Grant) -> tuple[Any, ...]:
        return (g.priority, g.expires is None, g.expires or NOW, g.effective, g.id)

    def start_until(t: datetime) -> None:
        nonlocal debt
        for g in sorted(grants, key=lambda g: (g.effective, burn_order(g))):
            if g.id in started or g.effective > t or (g.end is not None and g.end <= g.effective):
                continue
            started.add(g.id)
            paid = min(debt, left[g.id])
            left[g.id] -= paid
            debt -= paid

    for at, _, amount in sorted(usage):
        start_until(at)
        for g in sorted(grants, key=burn_order):
            if g.id in started and (g.end is None or g.end > at) and amount > 0:
                taken = min(amount, left[g.id])
                left[g.id] -= taken
                amount -= taken
        debt += amount
    start_until(NOW)
    live = sum(
        (left[g.id] for g in grants if g.id in started and (g.end is None or g.end > NOW)),
        start=Decimal(0),
    )
    return live - debt


@dataclass
class World:
    expected: dict[str, Decimal] = field(default_factory=dict)
    drift: dict[str, Decimal] = field(default_factory=dict)
    expiry_not_applied: set[str] = field(default_factory=set)


def build(conn: psycopg.Connection, rng: random.Random) -> World:
    conn.execute((EXAMPLES / "lots" / "schema.sql").read_text())
    world = World()
    next_id = iter(range(1, 10**6))
    for n in range(16):
        account = uuid.UUID(int=n + 1)
        conn.execute("INSERT INTO accounts (id) VALUES (%s)", (account,))
        grants: list[Grant] = []
        for month in range(3):  # plan credits: this month and the two before
            start = NOW - (month * 30 + rng.randint(1, 20)) * DAY
            grants.append(Grant(0, Decimal(1000), 0, start, start + 30 * DAY))
        for _ in range(rng.randint(0, 3)):  # top-ups, sometimes the same instant as a plan
            at = rng.choice([grants[1].effective, NOW - rng.randint(1, 80) * DAY])
            grants.append(Grant(0, Decimal(rng.randint(1, 40) * 50), 10, at))
        if rng.random() < 0.5:  # a promo, sometimes voided by support
            at = NOW - rng.randint(10, 70) * DAY
            voided = at + rng.randint(0, 20) * DAY if rng.random() < 0.5 else None
            grants.append(Grant(0, Decimal(300), 5, at, at + 25 * DAY, voided))
        if rng.random() < 0.3:  # a grant effective next week: not spendable yet
            grants.append(Grant(0, Decimal(999), 0, NOW + 7 * DAY))
        for g in grants:
            g.id = next(next_id)
            conn.execute(
                "INSERT INTO credit_grants (id, account_id, source, amount, priority, effective_at,"
                " expires_at, voided_at) OVERRIDING SYSTEM VALUE"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (g.id, account, {0: "plan", 5: "promo", 10: "top_up"}[g.priority], g.amount,
                 g.priority, g.effective, g.expires, g.voided),
            )  # fmt: skip
        conn.execute(  # a deleted grant: not a lot
            "INSERT INTO credit_grants (id, account_id, source, amount, effective_at, deleted_at)"
            " OVERRIDING SYSTEM VALUE VALUES (%s, %s, 'promo', 5000, %s, %s)",
            (next(next_id), account, NOW - 50 * DAY, NOW - 49 * DAY),
        )
        usage = []
        for _ in range(rng.randint(0, 25)):
            at = NOW - timedelta(minutes=rng.randint(60, 100 * 24 * 60))
            amount = Decimal(rng.randint(1, 40000)) / 100
            ident = conn.execute(
                "INSERT INTO usage_events (account_id, credits, model, created_at)"
                " VALUES (%s, %s, 'gpt-x', %s) RETURNING id",
                (account, amount, at),
            ).fetchone()
            assert ident is not None
            usage.append((at, ident[0], amount))
        expected = reference(grants, usage)
        cached = expected
        if n % 4 == 1:  # the app never took an expired plan's remainder off
            forfeited = _forfeited_by_latest_plan(grants, usage)
            if forfeited:
                cached = expected + forfeited
                world.expiry_not_applied.add(str(account))
        elif n % 5 == 2:
            cached = expected + Decimal("3.5")  # a use the app never charged
        conn.execute("UPDATE accounts SET credits = %s WHERE id = %s", (cached, account))
        world.expected[str(account)] = expected
        if cached != expected:
            world.drift[str(account)] = expected
    assert world.expiry_not_applied and len(world.drift) > len(world.expiry_not_applied)
    return world


def _forfeited_by_latest_plan(
    grants: list[Grant], usage: list[tuple[datetime, int, Decimal]]
) -> Decimal:
    """What the latest expired plan grant forfeited: the balance with it never expiring,
    minus the balance (only when that grant was not otherwise touched after its expiry)."""
    expired = [g for g in grants if g.priority == 0 and g.expires and g.expires <= NOW]
    if not expired:
        return Decimal(0)
    latest = max(expired, key=lambda g: g.expires or NOW)
    kept = [
        Grant(g.id, g.amount, g.priority, g.effective, NOW + DAY if g is latest else g.expires,
              g.voided)
        for g in grants
    ]  # fmt: skip
    later = [u for u in usage if latest.expires and u[0] >= latest.expires]
    if later:  # later uses would have burned it: not a pure forfeit
        return Decimal(0)
    return reference(kept, usage) - reference(grants, usage)


def issue_example(conn: psycopg.Connection) -> None:
    """A top-up of 1,000 (priority 0) expiring mid-period beside a default grant of 1,000:
    600 used before the expiry, 800 after. The app's balance is 200."""
    conn.execute("INSERT INTO accounts (id, credits) VALUES (%s, 200)", (EXAMPLE,))
    mid = NOW - 10 * DAY
    conn.execute("SELECT setval(pg_get_serial_sequence('credit_grants', 'id'), 10000000)")
    conn.execute(
        "INSERT INTO credit_grants (account_id, source, amount, priority, effective_at,"
        " expires_at) VALUES (%s, 'top_up', 1000, 0, %s, %s), (%s, 'plan', 1000, 1, %s, NULL)",
        (EXAMPLE, mid - 20 * DAY, mid, EXAMPLE, mid - 20 * DAY),
    )
    conn.execute(
        "INSERT INTO usage_events (account_id, credits, model, created_at)"
        " VALUES (%s, 600, 'm', %s), (%s, 800, 'm', %s)",
        (EXAMPLE, mid - DAY, EXAMPLE, mid + DAY),
    )


@pytest.fixture
def world(conn: psycopg.Connection) -> World:
    found = build(conn, random.Random("lots"))
    issue_example(conn)
    found.expected[str(EXAMPLE)] = Decimal(200)
    return found


def test_the_dry_run_finds_exactly_the_injected_drift(cli: CliRunner, world: World) -> None:
    result = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", str(MAPPING))
    assert result.exit_code == 1, result.stderr
    data = exact(result.stdout)
    assert data["users_checked"] == len(world.expected)
    found = {c["user_id"]: c["expected"]["tokens_remaining"] for c in data["changes"]}
    assert found == world.drift


def test_diagnose_lists_every_lot_and_names_expiry_not_applied(
    cli: CliRunner, world: World
) -> None:
    example = exact(cli("diagnose", str(EXAMPLE), "--json", "--mapping", str(MAPPING)).stdout)
    assert example["status"] == "ok" and example["expected"]["tokens_remaining"] == 200
    assert sorted((x["amount"], x["consumed"], x["forfeited"], x["remaining"])
                  for x in example["lots"]) == [(1000, 600, 400, 0), (1000, 800, 0, 200)]  # fmt: skip
    for key in sorted(world.expected):
        data = exact(cli("diagnose", key, "--json", "--mapping", str(MAPPING)).stdout)
        assert data["expected"]["tokens_remaining"] == world.expected[key]
        for lot in data["lots"]:
            assert lot["consumed"] + lot["forfeited"] + lot["remaining"] == lot["amount"]
            assert set(lot) == {"name", "id", "amount", "at", "expires_at", "consumed",
                                "forfeited", "remaining"}  # fmt: skip
        codes = {c["code"] for c in data["causes"]}
        assert ("expiry_not_applied" in codes) == (key in world.expiry_not_applied), data
    shown = cli("diagnose", str(EXAMPLE), "--mapping", str(MAPPING))
    assert "Lots" in shown.stdout and "forfeited" in shown.stdout


def test_a_write_run_converges_and_revert_restores(
    cli: CliRunner, conn: psycopg.Connection, world: World
) -> None:
    snapshot = "SELECT id::text, credits FROM accounts ORDER BY id"
    before = conn.execute(snapshot).fetchall()
    run = cli("reconcile", "--all", "--yes", "--json", "--mapping", str(MAPPING))
    assert run.exit_code == 0, run.stdout[run.stdout.index('"changes"') :]
    assert run.json()["users_updated"] == len(world.drift)
    assert dict(conn.execute(snapshot).fetchall()) == world.expected
    again = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", str(MAPPING))
    assert again.exit_code == 0 and again.json()["changes"] == []
    undo = cli("revert", run.json()["run_id"], "--yes", "--mapping", str(MAPPING))
    assert undo.exit_code == 0, undo.stderr
    assert conn.execute(snapshot).fetchall() == before


def test_doctor_passes_the_lots_mapping(cli: CliRunner, world: World) -> None:
    doctor = cli("doctor", "--json", "--mapping", str(MAPPING))
    checks = {c["name"]: c for c in doctor.json()["checks"]}
    assert checks["mapping_lots_grants"]["status"] == "ok", checks["mapping_lots_grants"]
    assert all(checks[n]["status"] == "ok" for n in checks if n.startswith("mapping_")), checks


def test_periods_and_lots_in_one_mapping_are_refused(cli: CliRunner, tmp_path: Path) -> None:
    both = tmp_path / "both.toml"
    both.write_text(MAPPING.read_text().replace('starting = "0"', 'period_start = "updated_at"'))
    result = cli("reconcile", "--all", "--dry-run", "--mapping", str(both))
    assert result.exit_code == 2
    assert "periods" in result.stderr and "[[lots]]" in result.stderr


@pytest.mark.parametrize("write", [False, True], ids=["dry_run", "write"])
def test_reconcile_names_expiry_not_applied_as_diagnose_does(
    cli: CliRunner, world: World, write: bool
) -> None:
    mode = "--yes" if write else "--dry-run"
    result = cli("reconcile", "--all", mode, "--json", "--mapping", str(MAPPING))
    assert result.exit_code == (0 if write else 1), result.stderr
    data = exact(result.stdout)
    codes = {c["user_id"]: c["causes"] for c in data["changes"]}
    assert set(codes) == set(world.drift)
    for key, found in codes.items():
        assert ("expiry_not_applied" in found) == (key in world.expiry_not_applied), (key, found)
    named = {c["code"]: c for c in data["summary"]["causes"]}["expiry_not_applied"]
    assert named["users"] == len(world.expiry_not_applied)
    assert named["drift"]["tokens_remaining"] == sum(
        c["drift"]["tokens_remaining"]
        for c in data["changes"]
        if c["user_id"] in world.expiry_not_applied
    )
