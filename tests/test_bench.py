"""`make bench` at a tiny scale: the benchmark runs end to end and reports every SPEC §8 figure.

Its numbers are not asserted here (performance is measured, not unit-tested); the full-scale
figures live in BENCHMARKS.md.
"""

from __future__ import annotations

from pathlib import Path

from bench.__main__ import main
from tokenfix.pgserver import Server


def test_the_benchmark_runs_and_reports_every_target(pg_server: Server, tmp_path: Path) -> None:
    output = tmp_path / "bench.md"
    code = main([
        "--users", "300", "--rows", "20000", "--repeat", "1", "--sample", "5",
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
        "fixing the 1% drift",
        "hash-partitioned",
        "tool with 3,000 users (same rows)",
        "| tool ÷ physical floor |",
        "| peak RSS with 10× users ÷ peak RSS |",
    ):
        assert line in report, line
