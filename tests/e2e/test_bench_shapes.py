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
    for name in ("periods", "each"):
        line = next(x for x in out.splitlines() if x.startswith(f"{name}:"))
        assert "bare GROUP BY" in line and "dry run" in line, out


def test_one_case_runs_alone(pg_server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    code = shapes.main(
        ["--owners", "30", "--rows", "2000", "--repeat", "1", "--only", "each",
         "--database-url", pg_server.url]
    )  # fmt: skip
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert [x.split(":")[0] for x in lines if not x.startswith("server:")] == ["each"], lines
