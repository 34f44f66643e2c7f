"""List-valued ledger rows (docs/mapping.md, `each`) in the all-owners pass: an element's amount
is an expression over `item`, computed once per row beneath the row's class
(source_rows_each.sql), and the classes are those of the same rows read from a plain table
(grants, deducts, charges, failed charges, zero, negative, invalid and NULL amounts or kinds),
down to the causes of each drift."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.support.clirunner import CliRunner, exact
from tokenfix.config.settings import Settings
from tokenfix.db.session import connect
from tokenfix.ledger.model import Selection
from tokenfix.ledger.model import load as load_model
from tokenfix.mapping.file import load_file

SCHEMA = """
CREATE TABLE wallets (id text PRIMARY KEY, allowance numeric NOT NULL, balance numeric);
CREATE TABLE events (
    id         bigint PRIMARY KEY,
    lines      jsonb NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE event_lines (
    event_id   bigint NOT NULL,
    wallet_id  text,
    value      numeric,
    kind       text,
    ok         boolean,
    created_at timestamptz NOT NULL
);
"""

AMOUNT = "(item->>'value')::numeric"

EACH = f"""
[balance]
table = "wallets"
key = "id"
remaining = "balance"
starting = "allowance"

[balance.write]
balance = "expected_remaining"

[[ledger]]
name = "lines"
table = "events"
each = "jsonb_array_elements(lines)"
key = "item->>'wallet_id'"
at = "created_at"
amount = "{AMOUNT}"
kind = "item->>'kind'"
counted = "(item->>'ok')::boolean"
id = "id"
"""

# The same elements, one row each: the plain source_rows.sql reads them.
PLAIN = """
[balance]
table = "wallets"
key = "id"
remaining = "balance"
starting = "allowance"

[balance.write]
balance = "expected_remaining"

[[ledger]]
name = "lines"
table = "event_lines"
key = "wallet_id"
at = "created_at"
amount = "value"
kind = "kind"
counted = "ok"
id = "event_id"
"""

KINDS = ["grant", "deduct", "charge", "charge", "charge", "refund", None]
OKS = [True, True, True, False, None]
VALUES = ["12.5", "3", "40", "0", "-2", None, "7.25", "1"]
START = datetime(2026, 11, 1, tzinfo=UTC)


def _build(conn: psycopg.Connection) -> None:
    """Twenty wallets; 300 events, each drawing from up to four distinct wallets with every
    class of element; then caches as the plain table's rows say, some drifting like a cache
    that stopped updating, some off by other amounts."""
    conn.execute(SCHEMA)
    rng = random.Random(1919)
    wallets = [f"w{n}" for n in range(20)]
    for event in range(1, 301):
        at = START + timedelta(minutes=event)
        lines: list[dict[str, Any]] = []
        for wallet in rng.sample(wallets, rng.randint(0, 4)):
            line = {"wallet_id": wallet, "value": rng.choice(VALUES),
                    "kind": rng.choice(KINDS), "ok": rng.choice(OKS)}  # fmt: skip
            lines.append({k: v for k, v in line.items() if v is not None or rng.random() < 0.5})
            conn.execute(
                "INSERT INTO event_lines VALUES (%s, %s, %s, %s, %s, %s)",
                (event, wallet, line["value"], line["kind"], line["ok"], at),
            )
        conn.execute("INSERT INTO events VALUES (%s, %s, %s)", (event, json.dumps(lines), at))
    conn.execute(
        "INSERT INTO wallets SELECT w, 1000, 1000 FROM unnest(%s::text[]) AS w", (wallets,)
    )


@pytest.fixture
def mappings(conn: psycopg.Connection, tmp_path: Path) -> tuple[str, str]:
    _build(conn)
    each, plain = tmp_path / "each.toml", tmp_path / "plain.toml"
    each.write_text(EACH)
    plain.write_text(PLAIN)
    return str(each), str(plain)


def _dry_run(cli: CliRunner, mapping: str) -> dict[str, Any]:
    result = cli("reconcile", "--all", "--dry-run", "--json", "--mapping", mapping)
    assert result.exit_code in (0, 1), result.stderr
    data = exact(result.stdout)
    return {k: data[k] for k in ("users_checked", "users_with_drift", "summary", "changes")}


def test_each_rows_are_classed_as_the_same_rows_of_a_plain_table(
    cli: CliRunner, conn: psycopg.Connection, mappings: tuple[str, str]
) -> None:
    each, plain = mappings
    # Caches as the plain rows say (the pass over them decides), then drifts of every shape.
    first = cli("reconcile", "--all", "--yes", "--json", "--mapping", plain)
    assert first.exit_code in (0, 1), first.stderr
    newest = conn.execute(
        "SELECT value FROM event_lines WHERE wallet_id = 'w1' AND kind = 'charge' AND ok"
        " AND value > 0 ORDER BY created_at DESC LIMIT 1"
    ).fetchone()
    assert newest is not None
    # w1: its newest charge never reached the cache (stopped_updating)
    conn.execute("UPDATE wallets SET balance = balance + %s WHERE id = 'w1'", newest)
    conn.execute("UPDATE wallets SET balance = balance + 40 WHERE id = 'w2'")
    conn.execute("UPDATE wallets SET balance = balance - 12.5 WHERE id = 'w3'")
    conn.execute("UPDATE wallets SET balance = balance + 1 WHERE id IN ('w4', 'w5', 'w6')")
    conn.execute("UPDATE wallets SET balance = NULL WHERE id = 'w7'")
    from_plain = _dry_run(cli, plain)
    assert from_plain["users_with_drift"] == 7
    assert from_plain["summary"]["causes"], from_plain["summary"]
    assert _dry_run(cli, each) == from_plain


def _balances_statement(db_url: str, mapping: str) -> str:
    settings = Settings(database_url=db_url)
    with connect(settings) as tool:
        model = load_model(tool, settings, load_file(Path(mapping)))
        statement, _ = model.balances(Selection())
        text = statement.as_string(tool)
    return "\n".join(line.split("--")[0] for line in text.splitlines())  # no comments


def test_an_elements_amount_is_computed_once_per_row(
    db_url: str, mappings: tuple[str, str]
) -> None:
    """The pass used to evaluate `(item->>'value')::numeric` for the row's class and again
    for its value: a lookup in the element and a parse to numeric, twice per element."""
    each, _ = mappings
    assert _balances_statement(db_url, each).count(AMOUNT) == 1


EVIDENCE = "The evidence the likely causes"  # the opening words of fleet_evidence.sql


@pytest.fixture
def memoize_seen(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """enable_memoize as the all-owners pass (streamed) and the causes' second read (the
    evidence statement) each ran under, on their own connection and transaction."""
    seen: dict[str, str] = {}
    stream, execute = psycopg.Cursor.stream, psycopg.Connection.execute

    def setting(conn: psycopg.Connection[Any]) -> str:
        row = execute(conn, "SHOW enable_memoize").fetchone()
        assert row is not None
        return str(row[0])

    def watching_stream(self: psycopg.Cursor[Any], *args: Any, **kwargs: Any) -> Any:
        seen["pass"] = setting(self.connection)
        return stream(self, *args, **kwargs)

    def watching(self: psycopg.Connection[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        text = query.as_string(self) if isinstance(query, sql.Composable) else str(query)
        if EVIDENCE in text:
            seen["causes"] = setting(self)
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "stream", watching_stream)
    monkeypatch.setattr(psycopg.Connection, "execute", watching)
    return seen


def test_lists_are_unnested_without_memoize(
    cli: CliRunner, mappings: tuple[str, str], memoize_seen: dict[str, str]
) -> None:
    """The planner puts a Memoize, keyed on the whole list, between each ledger row and its
    unnesting: hashing and copying every list cost more than unnesting it again, even where
    lists repeat (docs/performance.md). Other mappings keep the server's setting."""
    each, plain = mappings
    assert _dry_run(cli, each)["users_with_drift"] > 0
    assert memoize_seen == {"pass": "off", "causes": "off"}
    memoize_seen.clear()
    assert _dry_run(cli, plain)["users_with_drift"] > 0
    assert memoize_seen == {"pass": "on", "causes": "on"}


def test_the_causes_second_read_does_not_number_the_elements(
    db_url: str, mappings: tuple[str, str]
) -> None:
    """The evidence rows' id is the ledger row's (evidence_rows.sql): numbering each list's
    elements (a window over every unnested row) was work thrown away."""
    each, _ = mappings
    settings = Settings(database_url=db_url)
    with connect(settings) as tool:
        model = load_model(tool, settings, load_file(Path(each)))
        statement, _ = model.fleet_evidence()
        assert "row_number()" not in statement.as_string(tool)
