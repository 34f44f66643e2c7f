"""Snapshots (docs/balance-model.md): many balance rows per owner, the newest live one current
(OpenMeter's balance_snapshots). No unique key on the owner is needed; writes compare-and-set
on the chosen row by row_id; history rows are never compared nor written; a newer row that
appears during the run leaves the owner for the next run (newer_snapshot)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.clirunner import CliRunner, exact
from tokenfix.reconciliation import writer

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)

SCHEMA = """
CREATE TABLE balance_snapshots (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id    text NOT NULL,
    balance     numeric(20, 6) NOT NULL,
    at          timestamptz NOT NULL,
    deleted_at  timestamptz
);
CREATE INDEX ON balance_snapshots (owner_id, at);
CREATE TABLE usage_records (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id    text NOT NULL,
    kind        text NOT NULL,
    amount      numeric(20, 6) NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX ON usage_records (owner_id, created_at);
"""

MAPPING = """
[balance]
table = "balance_snapshots"
key = "owner_id"
where = "deleted_at IS NULL"
latest = "at DESC, id DESC"
row_id = "id"
remaining = "balance"

[balance.write]
balance = "expected_remaining"

[[ledger]]
name = "usage"
table = "usage_records"
key = "owner_id"
at = "created_at"
amount = "amount"
kind = "CASE kind WHEN 'grant' THEN 'grant' WHEN 'usage' THEN 'charge' END"
id = "id"
"""


def build(conn: psycopg.Connection) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """Twelve owners, each with a history of snapshots (older rows, a deleted newer row)
    and a ledger; the newest live snapshot drifts for some."""
    conn.execute(SCHEMA)
    rng = random.Random("snapshots")
    truth, drift = {}, {}
    for n in range(12):
        owner = f"ent_{n:02d}"
        balance = Decimal(0)
        for _ in range(rng.randint(1, 8)):
            kind = rng.choice(["grant", "usage", "usage"])
            amount = Decimal(rng.randint(1, 10**7)) / 10**4
            balance += amount if kind == "grant" else -amount
            conn.execute(
                "INSERT INTO usage_records (owner_id, kind, amount, created_at)"
                " VALUES (%s, %s, %s, %s)",
                (owner, kind, amount, NOW - rng.randint(2, 60) * DAY),
            )
        cached = balance + (Decimal("0.25") if n % 3 == 0 else 0)
        for days, value, deleted in (
            (40, Decimal(999), None),  # history
            (20, Decimal(-5), None),  # history
            (10, cached, None),  # the current balance
            (1, Decimal(123456), NOW),  # newer, but deleted: not a balance
        ):
            conn.execute(
                "INSERT INTO balance_snapshots (owner_id, balance, at, deleted_at)"
                " VALUES (%s, %s, %s, %s)",
                (owner, value, NOW - days * DAY, deleted),
            )
        truth[owner] = balance
        if cached != balance:
            drift[owner] = balance
    return truth, drift


@pytest.fixture
def mapping(tmp_path: Path) -> str:
    path = tmp_path / "snapshots.toml"
    path.write_text(MAPPING)
    return str(path)


SNAPSHOT = "SELECT id, owner_id, balance FROM balance_snapshots ORDER BY id"


def test_the_newest_live_row_is_the_balance_and_history_is_never_written(
    cli: CliRunner, conn: psycopg.Connection, mapping: str
) -> None:
    truth, drift = build(conn)
    dry = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", mapping)
    assert dry.exit_code == 1, dry.stderr
    data = exact(dry.stdout)
    assert data["users_checked"] == len(truth)
    assert {c["user_id"]: c["expected"]["tokens_remaining"] for c in data["changes"]} == drift
    before = conn.execute(SNAPSHOT).fetchall()
    run = cli("reconcile", "--all", "--yes", "--json", "--mapping", mapping)
    assert run.exit_code == 0, run.stdout
    assert run.json()["users_updated"] == len(drift)
    after = conn.execute(SNAPSHOT).fetchall()
    changed = {row[0] for row in after} - {row[0] for row in before} | {
        a[0] for a, b in zip(after, before, strict=True) if a != b
    }
    chosen = conn.execute(
        "SELECT DISTINCT ON (owner_id) id FROM balance_snapshots WHERE deleted_at IS NULL"
        " AND owner_id = ANY(%s) ORDER BY owner_id, at DESC, id DESC",
        (list(drift),),
    ).fetchall()
    assert changed == {row[0] for row in chosen}
    again = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", mapping)
    assert again.exit_code == 0 and again.json()["changes"] == []
    shown = cli("diagnose", sorted(drift)[0], "--json", "--mapping", mapping)
    assert shown.json()["status"] == "ok"
    undo = cli("revert", run.json()["run_id"], "--yes", "--mapping", mapping)
    assert undo.exit_code == 0, undo.stderr + undo.stdout
    assert conn.execute(SNAPSHOT).fetchall() == before


def test_a_newer_row_during_the_run_leaves_the_owner_for_the_next_run(
    cli: CliRunner,
    conn: psycopg.Connection,
    db_url: str,
    mapping: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, drift = build(conn)
    late = sorted(drift)[0]
    lock = writer.Writer._lock

    def app_writes_a_snapshot_first(self: writer.Writer, keys: list[str]) -> Any:
        with psycopg.connect(db_url, autocommit=True) as app:
            app.execute(
                "INSERT INTO balance_snapshots (owner_id, balance, at) VALUES (%s, 42, now())",
                (late,),
            )
        return lock(self, keys)

    monkeypatch.setattr(writer.Writer, "_lock", app_writes_a_snapshot_first)
    run = cli("reconcile", "--all", "--yes", "--json", "--mapping", mapping)
    changes = {c["user_id"]: c for c in run.json()["changes"]}
    assert changes[late]["status"] == "drift"
    assert (changes[late]["applied"], changes[late]["skipped"]) == (False, "newer_snapshot")
    assert all(c["applied"] for key, c in changes.items() if key != late)
    assert run.exit_code == 1
    newest = conn.execute(
        "SELECT balance FROM balance_snapshots WHERE owner_id = %s ORDER BY id DESC LIMIT 1",
        (late,),
    ).fetchone()
    assert newest == (42,)


def test_doctor_checks_row_id_and_never_advises_a_key_that_breaks_history(
    cli: CliRunner, conn: psycopg.Connection, mapping: str, tmp_path: Path
) -> None:
    build(conn)
    checks = {c["name"]: c for c in cli("doctor", "--json", "--mapping", mapping).json()["checks"]}
    assert checks["mapping_key"]["status"] == "ok" and "id" in checks["mapping_key"]["message"]
    assert all(checks[n]["status"] == "ok" for n in checks if n.startswith("mapping_")), checks
    bad = tmp_path / "bad.toml"
    bad.write_text(MAPPING.replace('row_id = "id"', 'row_id = "at"'))
    found = {c["name"]: c for c in cli("doctor", "--json", "--mapping", str(bad)).json()["checks"]}
    assert found["mapping_key"]["status"] == "fail"
    assert "ADD PRIMARY KEY" not in found["mapping_key"]["fix"]
    assert "UNIQUE (owner_id)" not in found["mapping_key"]["fix"]
    refused = cli("reconcile", "--all", "--yes", "--mapping", str(bad))
    assert refused.exit_code == 3
    assert "balance_snapshots.at (row_id) has no unique index" in refused.stderr
    assert "ADD PRIMARY KEY" not in refused.stderr, refused.stderr
    plain = tmp_path / "plain.toml"  # without latest: the advice says what a key would cost
    plain.write_text(MAPPING.replace('latest = "at DESC, id DESC"\nrow_id = "id"\n', ""))
    key = {c["name"]: c for c in cli("doctor", "--json", "--mapping", str(plain)).json()["checks"]}
    assert key["mapping_key"]["status"] == "fail"
    assert "latest" in key["mapping_key"]["fix"] and "history" in key["mapping_key"]["fix"]


def test_a_row_id_unique_beside_the_owner_key_names_the_row(
    cli: CliRunner, conn: psycopg.Connection, mapping: str
) -> None:
    """The primary key (owner_id, id), as Citus needs it (docs/citus.md: a unique key must hold
    the distribution column): the writes name the owner and the row together, so the pair
    names one row. doctor passes it; a write converges and its revert restores."""
    _, drift = build(conn)
    conn.execute("ALTER TABLE balance_snapshots DROP CONSTRAINT balance_snapshots_pkey")
    conn.execute("ALTER TABLE balance_snapshots ADD PRIMARY KEY (owner_id, id)")
    checks = {c["name"]: c for c in cli("doctor", "--json", "--mapping", mapping).json()["checks"]}
    assert checks["mapping_key"]["status"] == "ok", checks["mapping_key"]
    assert "owner_id, id" in checks["mapping_key"]["message"]
    dry = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", mapping)
    assert dry.exit_code == 1 and dry.stderr == "", dry.stderr
    before = conn.execute(SNAPSHOT).fetchall()
    run = cli("reconcile", "--all", "--yes", "--json", "--mapping", mapping)
    assert run.exit_code == 0, run.stderr
    assert run.json()["users_updated"] == len(drift)
    again = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", mapping)
    assert again.exit_code == 0 and again.json()["changes"] == []
    undo = cli("revert", run.json()["run_id"], "--yes", "--mapping", mapping)
    assert undo.exit_code == 0, undo.stderr
    assert conn.execute(SNAPSHOT).fetchall() == before
    # a unique key on the owner and another column is no row id
    conn.execute("ALTER TABLE balance_snapshots DROP CONSTRAINT balance_snapshots_pkey")
    conn.execute("ALTER TABLE balance_snapshots ADD UNIQUE (owner_id, at, id)")
    checks = {c["name"]: c for c in cli("doctor", "--json", "--mapping", mapping).json()["checks"]}
    assert checks["mapping_key"]["status"] == "fail"
