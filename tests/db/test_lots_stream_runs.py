"""The lots stream on PostgreSQL (tokenfix/queries/lots_stream.sql) sums each owner's
charges and deducts between two consecutive lot events into one row. Checked against the
fold of every row one by one (each row read here with a plain query, folded with
tokenfix.ledger.lots): random histories with ties at one instant, lots and ledger grants
starting, expiring and voided at the instants of charges, future lots and charges, failed
and zero rows, a negative and a positive starting balance, owners without a balance row.
Each owner must come out the same: every lot's consumed, forfeited and remaining, the
forfeits, the overage, expected remaining and used, and the settle window's `recent`."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tokenfix.config.settings import Settings
from tokenfix.db.session import connect, transaction
from tokenfix.ledger import lotstream
from tokenfix.ledger.lots import Lot, Spend
from tokenfix.ledger.model import Selection
from tokenfix.ledger.model import load as load_model
from tokenfix.mapping.file import load_file

HOUR = timedelta(hours=1)
SETTLE = timedelta(minutes=30)

SCHEMA = """
CREATE TABLE wallets (id bigint PRIMARY KEY, credits numeric, allowance numeric);
CREATE TABLE grants (id text PRIMARY KEY, wallet bigint, amount numeric, at timestamptz,
                     expires timestamptz, voided timestamptz, rank integer, gone boolean);
CREATE TABLE moves (id bigint PRIMARY KEY, wallet bigint, kind text, amount numeric,
                    ok boolean, at timestamptz);
CREATE TABLE refunds (id bigint PRIMARY KEY, wallet bigint, amount numeric, at timestamptz);
"""

MAPPING = """
[balance]
table = "wallets"
key = "id"
remaining = "credits"
starting = "allowance"

[balance.write]
credits = "expected_remaining"

[[ledger]]
name = "moves"
table = "moves"
key = "wallet"
at = "at"
amount = "amount"
kind = "kind"
counted = "ok"
id = "id"

[[ledger]]
name = "refunds"
table = "refunds"
key = "wallet"
at = "at"
amount = "amount"
kind = "'grant'"
id = "id"

[[lots]]
name = "grants"
table = "grants"
key = "wallet"
where = "NOT gone"
amount = "amount"
at = "at"
expires_at = "expires"
voided_at = "voided"
priority = "rank"
id = "id"
"""


def fill(conn: psycopg.Connection[Any], rng: random.Random, now: datetime) -> None:
    conn.execute(SCHEMA)
    instants = [now + k * HOUR for k in range(-30, 4)] + [now - 10 * timedelta(minutes=1)]
    ids = iter(range(1, 10**6))
    for wallet in range(1, 41):
        if wallet % 13 != 0:  # a few owners have rows but no balance row
            allowance = rng.choice([0, 0, 100, Decimal("12.5"), -40])
            conn.execute("INSERT INTO wallets VALUES (%s, 0, %s)", (wallet, allowance))
        for _ in range(rng.randint(0, 6)):
            conn.execute(
                "INSERT INTO grants VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (f"g{next(ids)}", wallet, rng.choice([50, 120, Decimal("7.25"), 0, -3, None]),
                 rng.choice([*instants, None]), rng.choice([None, None, *instants]),
                 rng.choice([None, None, None, *instants]), rng.randint(0, 2),
                 rng.random() < 0.1),
            )  # fmt: skip
        for _ in range(rng.randint(0, 40)):
            conn.execute(
                "INSERT INTO moves VALUES (%s, %s, %s, %s, %s, %s)",
                (next(ids), wallet, rng.choice(["charge"] * 6 + ["deduct", "grant", "other"]),
                 rng.choice([1, 5, 30, Decimal("0.75"), 0, -2, None]),
                 rng.choice([True] * 8 + [False, None]), rng.choice(instants)),
            )  # fmt: skip
        for _ in range(rng.randint(0, 2)):
            conn.execute(
                "INSERT INTO refunds VALUES (%s, %s, %s, %s)",
                (next(ids), wallet, rng.choice([10, 25]), rng.choice(instants)),
            )


def one_by_one(
    conn: Any, model: Any, now: datetime, statement_time: datetime
) -> dict[str, lotstream.Owner]:
    """Every row read as it is and folded one by one (what the stream did before runs)."""
    found: dict[str, lotstream.Owner] = {}

    def owner(key: object) -> lotstream.Owner:
        return found.setdefault(str(key), lotstream.Owner(key=str(key)))

    recent = statement_time - SETTLE
    for key, credits, allowance in conn.execute("SELECT id, credits, allowance FROM wallets"):
        o = owner(key)
        o.has_profile, o.current_remaining, o.starting = True, credits, allowance
    for key, ident, amount, at, expires, voided, rank in conn.execute(
        "SELECT wallet, id, amount, at, expires, voided, rank FROM grants WHERE NOT gone"
    ):
        o = owner(key)
        if at is not None and recent < at <= statement_time:
            o.recent = True
        if amount is not None and amount > 0 and at is not None:
            o.lots.append(Lot("grants", ident, amount, at, expires, voided, rank))
    rows = conn.execute(
        "SELECT 'moves', wallet, id, kind, amount, ok, at FROM moves"
        " UNION ALL SELECT 'refunds', wallet, id, 'grant', amount, true, at FROM refunds"
    ).fetchall()
    for source, key, ident, kind, amount, ok, at in rows:
        if not ok or amount is None or amount <= 0 or kind not in ("grant", "deduct", "charge"):
            continue
        o = owner(key)
        o.recent = o.recent or at > recent
        if kind == "grant":
            o.lots.append(Lot(source, ident, amount, at))
            continue
        o.spends.append(Spend(at=at, amount=amount, id=ident, order=(source,)))
        if kind == "charge":
            o.charged += amount
    return {k: lotstream._folded(o, model, now) for k, o in found.items()}


def summary(o: lotstream.Owner) -> tuple[Any, ...]:
    assert o.folded is not None
    lots = sorted(
        (x.name, str(x.id), x.amount, x.consumed, x.forfeited, x.remaining, x.spendable)
        for x in o.folded.lots
    )
    return (o.has_profile, o.current_remaining, lots, sorted(o.folded.forfeits),
            o.folded.overage, o.expected_remaining, o.charged, o.recent)  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_the_stream_in_runs_folds_every_owner_as_its_rows_one_by_one(
    db_url: str,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
    seed: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if seed % 2:  # an older libpq: a server-side cursor read in pages instead of chunks
        monkeypatch.setattr(lotstream, "CHUNKED_LIBPQ", 10**9)
        monkeypatch.setattr(lotstream, "PAGE", 7)
    now = datetime.now(UTC).replace(microsecond=0)
    fill(conn, random.Random(seed), now)
    path = tmp_path / "tokenfix.toml"
    path.write_text(MAPPING)
    settings = Settings(database_url=db_url)
    tool = connect(settings)
    with tool:
        model = load_model(tool, settings, load_file(path))
        with transaction(tool, settings, read_only=True):
            streamed = list(lotstream.owners(tool, model, Selection(), SETTLE))
            row = tool.execute("SELECT now(), statement_timestamp()").fetchone()
            assert row is not None
            alone = one_by_one(tool, model, *row)
            one = next(lotstream.owners(tool, model, Selection(keys=("7",)), SETTLE, stream=False))
    assert [o.key for o in streamed] == sorted(alone, key=int)
    assert {o.key: summary(o) for o in streamed} == {k: summary(o) for k, o in alone.items()}
    assert summary(one) == summary(alone["7"])  # diagnose's path: one owner, no cursor
    # The runs are what makes the stream cheap: fewer spends than charge and deduct rows.
    assert sum(len(o.spends) for o in streamed) < sum(len(o.spends) for o in alone.values())
