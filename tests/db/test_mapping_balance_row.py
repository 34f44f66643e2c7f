"""A ledger- or lot-side expression may name the owner's balance row as `balance.column`
(docs/mapping.md, "Expressions"): with snapshots the chosen row (`ledger.at <= balance.at`),
for an owner with no balance row NULLs. Unqualified names still mean the expression's own row,
even where the balance table has a column of the same name. doctor, diagnose, dry runs (all
owners, --since, a list), writes, revert and the lots stream compile one and the same text; a
wrong `balance.column` is exit 3 naming the file, the `[section] key` and the expression."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tests.db.test_mapping_periods import MAPPING as PERIODS
from tests.db.test_mapping_periods import build as build_periods
from tests.db.test_mapping_shapes import EXAMPLES
from tests.support.clirunner import CliRunner, exact

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)


def _write(tmp_path: Path, text: str, name: str = "mapping.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# -- snapshots: the rows up to the chosen snapshot's time make its balance -------------------

SNAPSHOT_SCHEMA = """
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
    at          timestamptz NOT NULL
);
CREATE INDEX ON usage_records (owner_id, at);
"""

# `at` and `owner_id` are columns of both tables: unqualified, they are the ledger row's.
SNAPSHOT_MAPPING = """
[balance]
table = "balance_snapshots"
key = "owner_id"
where = "deleted_at IS NULL"
latest = "at DESC, id DESC"
row_id = "id"
remaining = "balance"
starting = "0"

[balance.write]
balance = "expected_remaining"

[[ledger]]
name = "usage"
table = "usage_records"
key = "owner_id"
where = "ledger.at <= balance.at"
at = "at"
amount = "amount"
kind = "CASE kind WHEN 'grant' THEN 'grant' WHEN 'usage' THEN 'charge' END"
id = "id"
"""

SNAPSHOTS = "SELECT id, owner_id, balance FROM balance_snapshots ORDER BY id"


@pytest.fixture
def snapshots(conn: psycopg.Connection) -> None:
    """ent_a: the chosen snapshot (10 days ago) holds 70 = 100 - 20 - 10; a usage of 7 five
    days ago is after it. ent_b: chosen snapshot 40, but 50 - 5 = 45 before it (3 after).
    ent_c: ledger rows, no balance row at all. Each also has an older snapshot (history)
    and a newer deleted one."""
    conn.execute(SNAPSHOT_SCHEMA)
    usage = {
        "ent_a": [("grant", 100, 30), ("usage", 20, 20), ("usage", 10, 11), ("usage", 7, 5)],
        "ent_b": [("grant", 50, 30), ("usage", 5, 15), ("usage", 3, 2)],
        "ent_c": [("grant", 9, 30), ("usage", 1, 3)],
    }
    for owner, rows in usage.items():
        for kind, amount, days in rows:
            conn.execute(
                "INSERT INTO usage_records (owner_id, kind, amount, at) VALUES (%s, %s, %s, %s)",
                (owner, kind, amount, NOW - days * DAY),
            )
    for owner, cached in (("ent_a", 70), ("ent_b", 40)):
        for days, value, deleted in ((40, 999, None), (10, cached, None), (1, 123, NOW)):
            conn.execute(
                "INSERT INTO balance_snapshots (owner_id, balance, at, deleted_at)"
                " VALUES (%s, %s, %s, %s)",
                (owner, value, NOW - days * DAY, deleted),
            )


def test_a_snapshot_counts_the_rows_up_to_its_own_time_in_every_command(
    cli: CliRunner, conn: psycopg.Connection, snapshots: None, tmp_path: Path
) -> None:
    mapping = _write(tmp_path, SNAPSHOT_MAPPING)
    checks = cli("doctor", "--json", "--mapping", mapping).json()["checks"]
    bad = [c for c in checks if c["name"].startswith("mapping_") and c["status"] != "ok"]
    assert bad == []
    for selection in (("--all",), ("--all", "--since", "60d"), ("ent_a", "ent_b")):
        dry = cli("reconcile", *selection, "--dry-run", "--json", "--mapping", mapping)
        assert dry.exit_code == 1, dry.stderr
        changes = exact(dry.stdout)["changes"]
        # ent_c: no balance row, so `balance.at` is NULL and the filter keeps none of its rows
        # (named alone, it is an unknown owner).
        assert {c["user_id"]: c["expected"]["tokens_remaining"] for c in changes} == {
            "ent_b": 45
        }, selection
    shown = cli("diagnose", "ent_b", "--json", "--mapping", mapping)
    assert shown.exit_code == 1, shown.stderr
    data = exact(shown.stdout)
    assert data["expected"]["tokens_remaining"] == 45
    assert data["drift"]["tokens_remaining"] == -5
    assert cli("diagnose", "ent_a", "--json", "--mapping", mapping).json()["status"] == "ok"
    before = conn.execute(SNAPSHOTS).fetchall()
    run = cli("reconcile", "--all", "--yes", "--json", "--mapping", mapping)
    assert run.exit_code == 0, run.stderr + run.stdout
    assert run.json()["users_updated"] == 1
    chosen = conn.execute(
        "SELECT balance FROM balance_snapshots WHERE owner_id = 'ent_b' AND deleted_at IS NULL"
        " ORDER BY at DESC LIMIT 1"
    ).fetchone()
    assert chosen == (45,)
    again = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", mapping)
    assert again.exit_code == 0 and again.json()["changes"] == [], again.stdout
    undo = cli("revert", run.json()["run_id"], "--yes", "--mapping", mapping)
    assert undo.exit_code == 0, undo.stderr + undo.stdout
    assert conn.execute(SNAPSHOTS).fetchall() == before


# -- one row per owner: a ledger filter on a balance column -----------------------------------

CREDITS = (EXAMPLES / "credits" / "tokenfix.toml").read_text()
ALICE, BOB, CAROL = (uuid.UUID(int=n) for n in (1, 2, 3))


@pytest.fixture
def credits_db(conn: psycopg.Connection) -> None:
    """Alice's plan started on day 3: only her rows from then count (100 - 5 - 4 = 91, cached
    95). Bob's plan started before all his rows (100 - 10 = 90, cached right). Carol has rows
    but no profile."""
    conn.execute((EXAMPLES / "credits" / "schema.sql").read_text())
    conn.execute("ALTER TABLE profiles ADD COLUMN plan_started_at timestamptz")
    conn.execute("ALTER TABLE credit_transactions DROP CONSTRAINT credit_transactions_user_id_fkey")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    profiles = [(ALICE, 95, start + 3 * DAY), (BOB, 90, start)]
    for user, cached, plan_started in profiles:
        conn.execute(
            "INSERT INTO profiles (id, email, credits, created_at, plan_started_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (user, f"{user}@example.com", cached, start, plan_started),
        )
    moves = {
        ALICE: [(-30, 1), (-20, 2), (-5, 4), (-4, 5)],
        BOB: [(-10, 1)],
        CAROL: [(-7, 1)],
    }
    for user, rows in moves.items():
        for amount, day in rows:
            conn.execute(
                "INSERT INTO credit_transactions (user_id, amount, type, created_at)"
                " VALUES (%s, %s, 'usage', %s)",
                (user, amount, start + day * DAY),
            )


# `created_at` is a column of both tables: unqualified, it is the ledger row's.
PLAN = CREDITS.replace(
    'key = "user_id"', 'key = "user_id"\nwhere = "created_at >= balance.plan_started_at"', 1
)


def test_a_ledger_filter_on_a_balance_column_is_one_text_for_every_command(
    cli: CliRunner, conn: psycopg.Connection, credits_db: None, tmp_path: Path
) -> None:
    mapping = _write(tmp_path, PLAN)
    checks = cli("doctor", "--json", "--mapping", mapping).json()["checks"]
    bad = [c for c in checks if c["name"].startswith("mapping_") and c["status"] != "ok"]
    assert bad == []
    for selection in (("--all",), (str(ALICE), str(BOB))):
        dry = cli("reconcile", *selection, "--dry-run", "--json", "--mapping", mapping)
        assert dry.exit_code == 1, dry.stderr
        changes = exact(dry.stdout)["changes"]
        assert {c["user_id"]: c["expected"]["tokens_remaining"] for c in changes} == {
            str(ALICE): 91
        }, selection
    # Carol has no profile: `balance.plan_started_at` is NULL, the filter keeps none of her
    # rows, and named alone she is an unknown owner.
    carol = cli("reconcile", str(CAROL), "--dry-run", "--mapping", mapping)
    assert carol.exit_code == 2 and str(CAROL) in carol.stderr, carol.stderr
    shown = cli("diagnose", str(ALICE), "--json", "--ledger", "10", "--mapping", mapping)
    assert shown.exit_code == 1, shown.stderr
    assert exact(shown.stdout)["drift"]["tokens_remaining"] == 4
    run = cli("reconcile", "--all", "--yes", "--json", "--mapping", mapping)
    assert run.exit_code == 0, run.stderr + run.stdout
    assert conn.execute("SELECT credits FROM profiles WHERE id = %s", (ALICE,)).fetchone() == (91,)
    undo = cli("revert", run.json()["run_id"], "--yes", "--mapping", mapping)
    assert undo.exit_code == 0, undo.stderr + undo.stdout
    assert conn.execute("SELECT credits FROM profiles WHERE id = %s", (ALICE,)).fetchone() == (95,)


@pytest.mark.parametrize(
    ("key", "old", "new"),
    [
        ("[[ledger]] 'credit_transactions' where", 'key = "user_id"',
         'key = "user_id"\nwhere = "created_at >= balance.nosuch"'),
        ("[[ledger]] 'credit_transactions' amount", 'amount = "abs(amount)"',
         'amount = "abs(amount) + balance.nosuch"'),
    ],
)  # fmt: skip
def test_a_wrong_balance_column_is_named_by_doctor_and_every_command(
    cli: CliRunner, credits_db: None, tmp_path: Path, key: str, old: str, new: str
) -> None:
    mapping = _write(tmp_path, CREDITS.replace(old, new, 1))
    for command in (
        ("reconcile", "--all", "--dry-run"),
        ("reconcile", str(ALICE), "--dry-run"),
        ("reconcile", "--all", "--since", "3650d", "--dry-run"),
        ("diagnose", str(ALICE)),
        ("reconcile", "--all", "--yes"),
    ):
        result = cli(*command, "--mapping", mapping)
        assert result.exit_code == 3, (command, result.stderr)
        line = result.stderr.strip()
        assert len(line.splitlines()) == 1, line
        assert mapping in line and key in line and "balance.nosuch" in line, line
        assert "TOKENFIX_" not in line, line
    failing = [
        c for c in cli("doctor", "--json", "--mapping", mapping).json()["checks"]
        if c["status"] == "fail"
    ]  # fmt: skip
    assert any(key in c["message"] and "balance.nosuch" in c["message"] for c in failing), failing


# -- lots: a lot-side and a ledger-side expression naming the balance row ---------------------


LOTS = (
    (EXAMPLES / "lots" / "tokenfix.toml")
    .read_text()
    .replace('where = "deleted_at IS NULL"', 'where = "effective_at >= balance.opened_at"', 1)
    .replace(
        "kind = \"'charge'\"", 'kind = "\'charge\'"\nwhere = "created_at >= balance.opened_at"', 1
    )
)


def test_the_lots_stream_sees_the_balance_row(
    cli: CliRunner, conn: psycopg.Connection, tmp_path: Path
) -> None:
    """A grant of 500 and a usage of 200 from before the account was opened do not count:
    1000 - 300 = 700, cached 650 (all rows: 1500 - 500 = 1000)."""
    conn.execute((EXAMPLES / "lots" / "schema.sql").read_text())
    conn.execute("ALTER TABLE accounts ADD COLUMN opened_at timestamptz")
    owner = uuid.UUID(int=7)
    conn.execute(
        "INSERT INTO accounts (id, credits, opened_at) VALUES (%s, 650, %s)",
        (owner, NOW - 30 * DAY),
    )
    for amount, days in ((500, 40), (1000, 20)):
        conn.execute(
            "INSERT INTO credit_grants (account_id, source, amount, effective_at)"
            " VALUES (%s, 'plan', %s, %s)",
            (owner, amount, NOW - days * DAY),
        )
    for credits, days in ((200, 35), (300, 10)):
        conn.execute(
            "INSERT INTO usage_events (account_id, credits, model, created_at)"
            " VALUES (%s, %s, 'm', %s)",
            (owner, credits, NOW - days * DAY),
        )
    assert LOTS.count("balance.opened_at") == 2
    mapping = _write(tmp_path, LOTS)
    checks = cli("doctor", "--json", "--mapping", mapping).json()["checks"]
    bad = [c for c in checks if c["name"].startswith("mapping_") and c["status"] != "ok"]
    assert bad == []
    dry = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", mapping)
    assert dry.exit_code == 1, dry.stderr
    changes = exact(dry.stdout)["changes"]
    assert [(c["user_id"], c["expected"]["tokens_remaining"]) for c in changes] == [
        (str(owner), 700)
    ]
    shown = cli("diagnose", str(owner), "--json", "--mapping", mapping)
    assert shown.exit_code == 1, shown.stderr
    lots = exact(shown.stdout)["lots"]
    assert [(x["amount"], x["consumed"], x["remaining"]) for x in lots] == [(1000, 300, 700)]


# -- periods: the period join and the balance row in one statement ------------------------


def test_periods_and_their_causes_read_the_same_with_a_filter_on_the_balance_row(
    cli: CliRunner, conn: psycopg.Connection, tmp_path: Path
) -> None:
    periods = build_periods(conn, random.Random("periods"))
    text = PERIODS.read_text()
    named = text.replace(
        'counted = "status', 'where = "balance.feature_id = \'ai_tokens\'"\ncounted = "status', 1
    )
    assert named != text
    plain, filtered = str(PERIODS), _write(tmp_path, named)
    runs = [
        exact(cli("reconcile", "--all", "--dry-run", "--json", "--mapping", m).stdout)
        for m in (plain, filtered)
    ]
    assert runs[0]["changes"] == runs[1]["changes"]
    assert runs[0]["summary"]["causes"] == runs[1]["summary"]["causes"]
    assert {c["user_id"] for c in runs[1]["changes"]} == set(periods.drift)
    key = sorted(periods.not_reset)[0]
    shown = [
        exact(cli("diagnose", key, "--json", "--ledger", "50", "--mapping", m).stdout)
        for m in (plain, filtered)
    ]
    assert shown[0]["causes"] == shown[1]["causes"]
    assert shown[0]["ledger"] == shown[1]["ledger"]
    assert "period_not_reset" in {c["code"] for c in shown[1]["causes"]}
