"""`python -m bench.lots` and `python -m bench.shapes` at a tiny scale: each runs end to end
and prints its figures (not asserted: performance is measured, docs/performance.md)."""

from __future__ import annotations

import pytest

from bench import lots, shapes
from tokenfix.demo.pgserver import Server


def test_the_lots_benchmark_runs(pg_server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    code = lots.main(
        ["--accounts", "30", "--lots", "200", "--rows", "2000", "--repeat", "1",
         "--database-url", pg_server.url]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    for accounts in ("30 accounts", "300 accounts"):
        line = next(x for x in out.splitlines() if accounts in x)
        assert "floor" in line and "lots dry run" in line and "peak RSS" in line, out


def test_the_periods_and_each_benchmark_runs(
    pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    code = shapes.main(
        ["--owners", "30", "--rows", "2000", "--repeat", "1", "--database-url", pg_server.url]
    )
    assert code == 0
    out = capsys.readouterr().out
    for name in ("periods (foreign key)", "periods (no foreign key)", "each"):
        line = next(x for x in out.splitlines() if x.startswith(f"{name}:"))
        assert "bare GROUP BY" in line and "dry run" in line, out
    assert "load average" in out


def test_the_periods_benchmark_runs_alone_without_the_foreign_key(
    pg_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    code = shapes.main(
        ["--owners", "30", "--rows", "2000", "--repeat", "1", "--database-url", pg_server.url,
         "--only", "periods", "--without-foreign-key"]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "periods (no foreign key):" in out, out
    assert "periods (foreign key):" not in out and "each:" not in out, out
