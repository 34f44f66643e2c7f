"""`history RUN_ID` read at 80 columns (piped, or a narrow terminal): every key whole, every
value beside its column's name, amounts written one way."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import psycopg
import pytest
from rich.console import Console

from tests.db.test_mapping_names import ALICE, CREDITS, credits_db  # noqa: F401
from tests.support.clirunner import CliRunner


def test_history_of_a_run_at_80_columns_keeps_keys_whole_and_names_the_values(
    cli: CliRunner,
    credits_db: None,  # noqa: F811
    conn: psycopg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn.execute("ALTER TABLE profiles ADD COLUMN credits_usd numeric(12,2)")
    conn.execute("UPDATE profiles SET credits = credits + 1000, credits_usd = 2000")
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        CREDITS.replace(
            'credits = "expected_remaining"',
            'credits = "expected_remaining"\ncredits_usd = "expected_remaining * 2.00"',
        )
    )
    run = cli("reconcile", "--all", "--yes", "--json", "--mapping", str(mapping))
    assert run.exit_code == 0, run.stderr
    # A terminal 80 columns wide (off a terminal, the output is 160 wide).
    monkeypatch.setattr(
        "tokenfix.render.console.make_consoles",
        lambda: (Console(width=80, file=sys.stdout), Console(width=80, file=sys.stderr)),
    )
    shown = cli("history", run.json()["run_id"], "--mapping", str(mapping))
    assert shown.exit_code == 0, shown.stderr
    table = [line for line in shown.stdout.splitlines() if "│" in line or "┃" in line]
    assert table and all(len(line) <= 80 for line in table), shown.stdout
    assert str(ALICE) in shown.stdout, shown.stdout
    rows = [re.split(r"\s*│\s*", line.strip()) for line in table if "│" in line]
    assert rows[:2] == [
        [str(ALICE), "update", "credits", "1,110", "105"],
        ["", "", "credits_usd", "2,000.00", "210.00"],
    ], shown.stdout
    amounts = [cell for row in rows for cell in row[3:]]
    assert not any(re.search(r"\d{4}", cell) for cell in amounts), amounts  # 1,000 2,000.00
