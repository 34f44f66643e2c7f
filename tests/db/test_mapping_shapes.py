"""docs/mapping.md on four shapes of real billing schemas (examples/*): each built like the real thing
(a history, the app's own rule for its balance, injected drift), then: the dry run finds
exactly the injected drift with exact expected values, a write run converges, revert restores
every written column exactly, doctor passes the mapping and names a broken expression."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.support.clirunner import CliRunner, exact

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)


@dataclass
class World:
    """A schema with its history, and what the tool must find in it."""

    table: str
    key: str
    written: list[str]
    """The columns the mapping writes (compared): what revert must restore exactly."""
    drift: dict[str, dict[str, Any]]
    """Each drifting owner's expected values, as the JSON carries them."""
    missing: dict[str, dict[str, Any]]
    """Owners with ledger rows and no balance row (expected values)."""


def credits(conn: psycopg.Connection, rng: random.Random) -> World:
    """Signed ledger, one credits column, signup credits by signup date."""
    drift, truth = {}, {}
    for n in range(30):
        user = uuid.UUID(int=rng.getrandbits(128))
        created = NOW - (200 - n * 5) * DAY  # half before, half after 2026-06-01-ish
        starting = 100 if created < datetime(2026, 6, 1, tzinfo=UTC) else 50
        balance, used = starting, 0
        conn.execute(
            "INSERT INTO profiles (id, email, credits, created_at) VALUES (%s, %s, 0, %s)",
            (user, f"u{n}@example.com", created),
        )
        for _ in range(rng.randint(0, 6)):
            kind = rng.choice(["purchase", "usage", "usage", "bonus", "refund"])
            amount = rng.randint(1, 40) * (-1 if kind == "usage" else 1)
            balance += amount
            used += -amount if kind == "usage" else 0
            conn.execute(
                "INSERT INTO credit_transactions (user_id, amount, type, created_at)"
                " VALUES (%s, %s, %s, %s)",
                (user, amount, kind, created + rng.randint(1, 4) * DAY),
            )
        cached = balance + (7 if n % 9 == 0 else 0)  # the app missed a charge now and then
        conn.execute("UPDATE profiles SET credits = %s WHERE id = %s", (cached, user))
        truth[str(user)] = {"tokens_remaining": balance, "tokens_used": used}
        if cached != balance:
            drift[str(user)] = truth[str(user)]
    return World("profiles", "id", ["credits"], drift, {})


def acquired_used(conn: psycopg.Connection, rng: random.Random) -> World:
    """Acquired + used in bigint microdollars, a text key, two ledgers, org rows excluded."""
    drift, missing = {}, {}
    for n in range(25):
        customer = f"cus_{n:03d}"
        acquired = used = 0
        for _ in range(rng.randint(1, 4)):
            amount = rng.randint(1, 50) * 1_000_000_000 * rng.choice([1, 1, 1, -1])
            org = rng.random() < 0.2
            if not org:
                acquired += amount
            conn.execute(
                "INSERT INTO credit_transactions (customer_id, org_id, amount, created_at)"
                " VALUES (%s, %s, %s, %s)",
                (customer, "org_1" if org else None, amount, NOW - rng.randint(2, 90) * DAY),
            )
        for _ in range(rng.randint(0, 5)):
            cost, error = rng.randint(1, 9_000_000_000), rng.random() < 0.15
            used += 0 if error else cost
            conn.execute(
                "INSERT INTO usage_events (customer_id, model, cost_micros, is_error, created_at)"
                " VALUES (%s, 'gpt-x', %s, %s, %s)",
                (customer, cost, error, NOW - rng.randint(2, 90) * DAY),
            )
        expected = {"tokens_remaining": acquired - used, "tokens_used": used}
        if n == 24:  # ledger rows, never a customer row
            missing[customer] = expected
            continue
        stale = n % 6 == 0  # the gateway lost usage updates for these
        conn.execute(
            "INSERT INTO customers (customer_id, credits_acquired, credits_used) VALUES (%s, %s, %s)",
            (customer, acquired, used - (123_456 if stale else 0)),
        )
        if stale:
            drift[customer] = expected
    return World("customers", "customer_id", ["credits_acquired", "credits_used"], drift, missing)


def wallets(conn: psycopg.Connection, rng: random.Random) -> World:
    """numeric(30,5) wallets, integer enums, naive timestamps, a derived balance_cents."""
    drift = {}
    for wallet in range(1, 21):
        rate = Decimal(rng.randint(5000, 20000)) / 10000
        balance, charged = Decimal(0), Decimal(0)
        conn.execute(
            "INSERT INTO wallets (id, customer, conversion_rate) VALUES (%s, %s, %s)",
            (wallet, f"c{wallet}", rate),
        )
        for _ in range(rng.randint(1, 6)):
            amount = Decimal(rng.randint(1, 10**7)) / 10**5
            direction, status = rng.choice([1, 1, 2]), rng.choice([1, 1, 1, 0, 2])
            if status == 1:
                balance += amount if direction == 1 else -amount
                charged += amount if direction == 2 else 0
            conn.execute(
                "INSERT INTO wallet_transactions (wallet_id, credit_amount, direction,"
                " transaction_status, reason, created_at) VALUES (%s, %s, %s, %s, 'top-up', %s)",
                (
                    wallet,
                    amount,
                    direction,
                    status,
                    (NOW - rng.randint(2, 60) * DAY).replace(tzinfo=None),
                ),
            )
        cached = balance - (Decimal("0.00001") if wallet % 7 == 0 else 0)
        cents = (cached * rate * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
        conn.execute(
            "UPDATE wallets SET credit_balance = %s, balance_cents = %s WHERE id = %s",
            (cached, cents, wallet),
        )
        if cached != balance:
            drift[str(wallet)] = {"tokens_remaining": balance, "tokens_used": charged}
    return World("wallets", "id", ["credit_balance", "balance_cents"], drift, {})


def soft_deletes(conn: psycopg.Connection, rng: random.Random) -> World:
    """A varchar key, numeric(20,9), soft deletes on both tables, pending entries."""
    drift = {}
    for n in range(20):
        handle, archived = f"writer-{n}", n % 5 == 4
        balance, spent = Decimal(0), Decimal(0)
        status = "archived" if archived else "published"
        conn.execute("INSERT INTO accounts (handle, status) VALUES (%s, %s)", (handle, status))
        for _ in range(rng.randint(1, 5)):
            delta = Decimal(rng.randint(-(10**12), 10**12)) / 10**9
            state = rng.choice(["completed", "completed", "pending"])
            entry_status = "archived" if archived or rng.random() < 0.1 else "published"
            if entry_status == "published" and state == "completed":
                balance += delta
                spent += -delta if delta < 0 else 0
            conn.execute(
                "INSERT INTO ledger_entries (account_handle, delta, status, state, created_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (handle, delta, entry_status, state, NOW - rng.randint(2, 30) * DAY),
            )
        cached = balance + (Decimal("0.000000001") if n % 6 == 0 and not archived else 0)
        conn.execute("UPDATE accounts SET balance = %s WHERE handle = %s", (cached, handle))
        if cached != balance:
            drift[handle] = {"tokens_remaining": balance, "tokens_used": spent}
    return World("accounts", "handle", ["balance"], drift, {})


SHAPES: dict[str, Callable[[psycopg.Connection, random.Random], World]] = {
    "credits": credits,
    "acquired-used": acquired_used,
    "wallets": wallets,
    "soft-deletes": soft_deletes,
}


@pytest.fixture(params=sorted(SHAPES))
def shape(request: pytest.FixtureRequest, conn: psycopg.Connection) -> tuple[str, World]:
    name = request.param
    conn.execute((EXAMPLES / name / "schema.sql").read_text())
    return name, SHAPES[name](conn, random.Random(name))


def snapshot(conn: psycopg.Connection, world: World) -> list[tuple[Any, ...]]:
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in [world.key, *world.written])
    statement = sql.SQL("SELECT {} FROM {} ORDER BY 1").format(columns, sql.Identifier(world.table))
    return conn.execute(statement).fetchall()


def test_the_dry_run_finds_exactly_the_injected_drift(
    cli: CliRunner, shape: tuple[str, World]
) -> None:
    name, world = shape
    mapping = str(EXAMPLES / name / "tokenfix.toml")
    result = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", mapping)
    assert result.exit_code == (1 if world.drift or world.missing else 0), result.stderr
    changes = exact(result.stdout)["changes"]
    found = {c["user_id"]: c["expected"] for c in changes if c["status"] == "drift"}
    assert found == world.drift
    missing = {c["user_id"]: c["expected"] for c in changes if c["status"] == "missing_profile"}
    assert missing == world.missing


def test_a_write_run_converges_and_revert_restores_every_written_column(
    cli: CliRunner, conn: psycopg.Connection, shape: tuple[str, World]
) -> None:
    name, world = shape
    mapping = str(EXAMPLES / name / "tokenfix.toml")
    before = snapshot(conn, world)
    extra = ["--create-missing"] if world.missing else []
    run = cli("reconcile", "--all", "--yes", "--json", "--mapping", mapping, *extra)
    assert run.exit_code == 0, run.stderr
    data = exact(run.stdout)
    assert data["users_updated"] == len(world.drift)
    assert data["profiles_created"] == len(world.missing)
    again = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", mapping)
    assert again.exit_code == 0, again.stdout
    assert exact(again.stdout)["changes"] == []
    undo = cli("revert", data["run_id"], "--yes", "--mapping", mapping)
    assert undo.exit_code == 0, undo.stderr + undo.stdout
    assert snapshot(conn, world) == before


def test_doctor_passes_the_mapping_and_names_a_broken_expression(
    cli: CliRunner, shape: tuple[str, World], tmp_path: Path
) -> None:
    name, _ = shape
    mapping = EXAMPLES / name / "tokenfix.toml"
    result = cli("doctor", "--json", "--mapping", str(mapping))
    checks = {c["name"]: c for c in result.json()["checks"]}
    assert result.json()["status"] != "fail", [c for c in checks.values() if c["status"] == "fail"]
    assert all(checks[n]["status"] == "ok" for n in checks if n.startswith("mapping_"))
    broken = tmp_path / "broken.toml"
    text = mapping.read_text()
    amount_line = next(line for line in text.splitlines() if line.startswith("amount = "))
    broken.write_text(text.replace(amount_line, 'amount = "amout + 0"', 1))
    doctor = cli("doctor", "--json", "--mapping", str(broken))
    failing = [c for c in doctor.json()["checks"] if c["status"] == "fail"]
    assert any("amout" in c["message"] and "amount" in c["message"] for c in failing), failing
    run = cli("reconcile", "--all", "--dry-run", "--mapping", str(broken))
    assert run.exit_code == 3
    assert "amout" in run.stderr and "is rejected on table" in run.stderr
