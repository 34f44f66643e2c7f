"""List-valued ledger rows (docs/mapping.md, `each`): one event row draws from several
balances (Autumn's `events.deductions`, a jsonb list of {balance_id, value}); the row counts
once per element, whatever the list's length, the element seen as `item`."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.clirunner import CliRunner, exact

SCHEMA = """
CREATE TABLE customer_entitlements (
    id          text PRIMARY KEY,
    customer_id text NOT NULL,
    allowance   numeric NOT NULL,
    balance     numeric NOT NULL
);
CREATE TABLE events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id text NOT NULL,
    deductions  jsonb NOT NULL DEFAULT '[]',
    created_at  timestamptz NOT NULL DEFAULT now()
);
"""

MAPPING = """
[balance]
table = "customer_entitlements"
key = "id"
remaining = "balance"                  # a column named like the alias: still the column
starting = "customer_entitlements.allowance"

[balance.write]
balance = "expected_remaining"

[[ledger]]
name = "deductions"
table = "events"
each = "jsonb_array_elements(deductions)"
key = "item->>'balance_id'"
at = "ledger.created_at"
amount = "(item->>'value')::numeric"
kind = "'charge'"
id = "id"
"""


def _build(conn: psycopg.Connection) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """Entitlements e0..e11 with allowances; events deducting from 0 to 7 of them at once
    (some twice in one list). Returns the true balances and the drifting ones."""
    conn.execute(SCHEMA)
    rng = random.Random(19)
    truth = {f"e{n}": Decimal(1000 + n) for n in range(12)}
    allowance = dict(truth)
    for _ in range(60):
        entries: list[dict[str, Any]] = []
        for _ in range(rng.randint(0, 7)):
            target = f"e{rng.randrange(12)}"
            value = Decimal(rng.randint(1, 2000)) / 100
            entries.append({"balance_id": target, "value": str(value)})
            truth[target] -= value
        conn.execute(
            "INSERT INTO events (customer_id, deductions, created_at)"
            " VALUES ('c', %s, now() - interval '2 days')",
            (json.dumps(entries),),
        )
    drift = {}
    for n, (key, value) in enumerate(sorted(truth.items())):
        cached = value + (Decimal("0.5") if n % 4 == 0 else 0)
        conn.execute(
            "INSERT INTO customer_entitlements VALUES (%s, 'c', %s, %s)",
            (key, allowance[key], cached),
        )
        if cached != value:
            drift[key] = value
    return truth, drift


@pytest.fixture
def each_mapping(tmp_path: Path) -> str:
    path = tmp_path / "each.toml"
    path.write_text(MAPPING)
    return str(path)


def test_every_element_of_every_list_counts_once(
    cli: CliRunner, conn: psycopg.Connection, each_mapping: str
) -> None:
    truth, drift = _build(conn)
    dry = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", each_mapping)
    assert dry.exit_code == 1, dry.stderr
    found = {c["user_id"]: c["expected"]["tokens_remaining"] for c in exact(dry.stdout)["changes"]}
    assert found == drift
    assert exact(dry.stdout)["users_checked"] == len(truth)


def test_diagnose_lists_each_element_as_row_id_and_ordinal(
    cli: CliRunner, conn: psycopg.Connection, each_mapping: str
) -> None:
    conn.execute(SCHEMA)
    conn.execute("INSERT INTO customer_entitlements VALUES ('a', 'c', 100, 100)")
    conn.execute(
        "INSERT INTO events (customer_id, deductions) VALUES ('c', %s)",
        (
            json.dumps(
                [
                    {"balance_id": "a", "value": 1},
                    {"balance_id": "b", "value": 2},
                    {"balance_id": "a", "value": 3},
                    {"balance_id": "a", "value": 4},
                ]
            ),
        ),
    )
    result = cli("diagnose", "a", "--json", "--ledger", "10", "--mapping", each_mapping)
    assert result.exit_code == 1, result.stderr
    data = exact(result.stdout)
    assert data["expected"]["tokens_remaining"] == 92
    assert [(r["id"], r["tokens_used"]) for r in data["ledger"]] == [
        ("1:1", 1),
        ("1:3", 3),
        ("1:4", 4),
    ]


def test_a_write_run_converges_revert_restores_and_doctor_passes(
    cli: CliRunner, conn: psycopg.Connection, each_mapping: str
) -> None:
    _, drift = _build(conn)
    before = conn.execute("SELECT id, balance FROM customer_entitlements ORDER BY id").fetchall()
    run = cli("reconcile", "--all", "--yes", "--json", "--mapping", each_mapping)
    assert run.exit_code == 0, run.stderr
    assert run.json()["users_updated"] == len(drift)
    again = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", each_mapping)
    assert again.exit_code == 0 and again.json()["changes"] == []
    undo = cli("revert", run.json()["run_id"], "--yes", "--mapping", each_mapping)
    assert undo.exit_code == 0, undo.stderr
    after = conn.execute("SELECT id, balance FROM customer_entitlements ORDER BY id").fetchall()
    assert after == before
    doctor = cli("doctor", "--json", "--mapping", each_mapping)
    checks = {c["name"]: c for c in doctor.json()["checks"]}
    assert all(checks[n]["status"] == "ok" for n in checks if n.startswith("mapping_")), checks
    assert checks["index_deductions_key"]["status"] == "warn"
    assert "CREATE INDEX" not in (checks["index_deductions_key"]["fix"] or "")


def test_a_rejected_each_is_named(cli: CliRunner, conn: psycopg.Connection, tmp_path: Path) -> None:
    conn.execute(SCHEMA)
    path = tmp_path / "bad.toml"
    path.write_text(
        MAPPING.replace("jsonb_array_elements(deductions)", "jsonb_array_elements(deduction)")
    )
    result = cli("reconcile", "--all", "--dry-run", "--mapping", str(path))
    assert result.exit_code == 3
    assert "[[ledger]] 'deductions' each" in result.stderr and str(path) in result.stderr
