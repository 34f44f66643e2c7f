"""What an operator's cron job pays on every call: the JSON, JSON Lines and CSV paths never
load the terminal renderer (rich, and the tool's own table renderers) nor what rich brings
(pygments, markdown-it). Typer and psycopg they need; rich costs tens of milliseconds of
start-up on each call (docs/performance.md). Which modules load, not how long: a run's time
is measured by bench, never asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.builders import Ledger

# What `tokenfix ARGS` loaded by the time it exited, printed on stderr as JSON.
LOADED = """
import atexit, json, sys
atexit.register(lambda: sys.stderr.write(json.dumps(sorted(sys.modules)) + '\\n'))
sys.argv = ['tokenfix', *sys.argv[1:]]
from tokenfix.entry import main
main()
"""

TERMINAL_ONLY = {
    "rich",
    "pygments",
    "markdown_it",
    "typer.rich_utils",
    "tokenfix.render.console",
    "tokenfix.render.diagnosis",
    "tokenfix.render.reconcile",
    "tokenfix.render.runs",
}


def loaded_by(db_url: str, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENFIX_")}
    done = subprocess.run(
        [sys.executable, "-c", LOADED, *args], capture_output=True, text=True, timeout=120,
        env={**env, "TOKENFIX_DATABASE_URL": db_url, "TOKENFIX_STARTING_BALANCE": "0"},
    )  # fmt: skip
    names = set(json.loads(done.stderr.strip().splitlines()[-1]))
    return done, {name for name in names if name.split(".")[0] in ("rich", "pygments",
                  "markdown_it") or name in TERMINAL_ONLY}  # fmt: skip


@pytest.fixture
def drifted(ledger: Ledger) -> str:
    user = ledger.profile(ledger.user(), remaining=5)
    ledger.row(user, 40, at=datetime.now(UTC) - timedelta(hours=1))
    return str(user)


def test_diagnose_json_loads_no_terminal_renderer(db_url: str, drifted: str) -> None:
    done, loaded = loaded_by(db_url, "diagnose", drifted, "--json")
    assert json.loads(done.stdout)["user_id"] == drifted  # the path really ran
    assert loaded == set()


@pytest.mark.parametrize(
    "output", [["--json"], ["--format", "jsonl"], ["--format", "csv"]], ids=lambda o: o[-1]
)
def test_a_dry_run_for_a_machine_loads_no_terminal_renderer(
    db_url: str, drifted: str, output: list[str]
) -> None:
    done, loaded = loaded_by(db_url, "reconcile", "--all", "--dry-run", *output)
    assert drifted in done.stdout, done.stderr  # the path really ran and found the drift
    assert loaded == set()


def test_history_json_loads_no_terminal_renderer(db_url: str) -> None:
    done, loaded = loaded_by(db_url, "history", "--json")
    assert done.returncode == 0, done.stderr
    assert loaded == set()


def test_the_table_does_load_it(db_url: str, drifted: str) -> None:
    # The check above can see rich: the terminal path loads it.
    done, loaded = loaded_by(db_url, "diagnose", drifted)
    assert drifted in done.stdout
    assert {"rich", "tokenfix.render.console"} <= loaded
