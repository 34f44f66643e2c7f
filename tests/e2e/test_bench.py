"""`make bench` at a tiny scale: the benchmark runs end to end and reports every docs/performance.md figure.

Its numbers are not asserted here (performance is measured, not unit-tested); the full-scale
figures live in BENCHMARKS.md.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

import bench.__main__ as bench_main
from bench.__main__ import main
from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner
from tokenfix.demo.pgserver import Server


def test_the_benchmark_runs_and_reports_every_target(
    pg_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every figure once: the --since runs' 9 repeats (for a steadier median) prove nothing more
    # here, where the numbers are not asserted.
    monkeypatch.setattr(bench_main, "SINCE_REPEAT", 1)
    output = tmp_path / "bench.md"
    code = main([
        "--users", "300", "--rows", "6000", "--repeat", "1", "--sample", "5",
        "--database-url", pg_server.url, "--output", str(output),
    ])  # fmt: skip
    assert code == 0
    report = output.read_text()
    for line in (
        "tokenfix reconcile --all --dry-run --json",
        "physical floor",
        "hand-written statement",
        "psql once per user",
        "looped in one session",
        "diagnose, database time",
        "--since 1h",
        "floor of --since 1h",
        "causes of the",
        "fixing the 1% drift",
        "hash-partitioned",
        "two-source mapping",
        "floor of the two sources",
        "tool with 3,000 users (same rows)",
        "| tool ÷ physical floor |",
        "| causes ÷ the dry run without them |",
        "| two-source mapping ÷ the sum of each source's floor |",
        "| peak RSS with 10× users ÷ peak RSS |",
        "10% of users drifting",
        "drifting users, 10% case",
        "every selected user drifting",
        "| dry run ÷ physical floor, 1% drifting |",
        "| dry run ÷ physical floor, 10% drifting |",
        "| causes ÷ the dry run without them, 10% drifting |",
        "| --since 1h, every selected user drifting |",
    ):
        assert line in report, line


def test_the_loop_peer_runs_exactly_the_shipped_per_user_query(
    cli: CliRunner, conn: psycopg.Connection, ledger: Ledger
) -> None:
    from bench.__main__ import per_user_query

    ledger.override("chat_conversation", 40, model="gpt-4")
    user = ledger.profile(ledger.user(), remaining=5)
    ledger.row(user, 100)
    ledger.row(user, 1000, action="admin_grant")
    row = conn.execute(
        per_user_query(),
        {
            "user_id": user,
            "starting_balance": 10,
            "grant_actions": "{admin_grant}",
            "deduct_actions": "{admin_deduct}",
        },
    ).fetchone()
    expected = cli("diagnose", str(user), "--json", "--starting-balance", "10").json()["expected"]
    assert row is not None
    assert (row[5], row[6]) == (expected["tokens_remaining"], expected["tokens_used"]) == (970, 40)
