"""The Citus benchmark (docs/citus.md): a coordinator and two workers on loopback (the test
suite's fixture), the generator's data distributed with sql/citus/distribute.sql.

- a dry run against a bare GROUP BY of the ledger on the same cluster, both as processes, in
  turn (the figure the target is about);
- where the dry run's time goes, in one session, in turn with the same bare GROUP BY: the
  all-owners pass (one statement, pushed down to the shards) and the causes' evidence of the
  drifting owners; the rest of the process is start-up, catalogs and rendering; and, for
  comparison, one server's shape of the pass (the comparison of every owner an intermediate
  result on the coordinator, read twice: the candidates, then the totals);
- a write of the 1 % wrong owners (and the missing profiles) and its revert, timed.

Prints the figures BENCHMARKS.md records. On a shared machine run it under the lock, at the
size where one server's 2x is measured (docs/performance.md: start-up amortised; 5 to 8
minutes, most of it generating and distributing the rows) and at the small one:

    flock /work/wt/bench.lock .venv/bin/python -m bench.citus \
        --users 100000 --rows 10000000 --times 3
    flock /work/wt/bench.lock .venv/bin/python -m bench.citus --users 20000 --rows 1000000
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from bench.generate import generate
from bench.measure import Run, interleaved, run_process, timed
from tests.support.citus import missing_reason, start_cluster
from tokenfix.config.settings import Settings
from tokenfix.demo.pgserver import find_program
from tokenfix.ledger.model import Selection
from tokenfix.ledger.model import load as load_model
from tokenfix.reconciliation.plan import Request, causes, plan

ROOT = Path(__file__).resolve().parent.parent
FLOOR = ROOT / "bench" / "sql" / "floor.sql"
DISTRIBUTE = ROOT / "sql" / "citus" / "distribute.sql"
STARTING = 1000


def _median(runs: list[Run]) -> float:
    return statistics.median(r.seconds for r in runs)


def _in_session(url: str, times: int) -> dict[str, list[Run]]:
    """The floor statement, the all-owners pass, the causes' evidence and one server's shape
    of the pass, in one session and in turn (what a dry run's process spends in the
    database)."""
    settings = Settings.model_validate({"database_url": url, "starting_balance": STARTING})
    floor = [s for s in FLOOR.read_text().split(";\n") if s.strip()][-1]
    taken: dict[str, list[Run]] = {"floor": [], "pass": [], "causes": [], "read_twice": []}
    with psycopg.connect(url, autocommit=True) as conn:
        model = load_model(conn, settings)
        request = Request(selection=Selection())

        def the_floor() -> None:
            with conn.transaction():
                conn.execute("SET LOCAL work_mem = '64MB'")
                conn.execute(floor).fetchall()

        # One server's shape of the pass, for comparison: the comparison of every owner an
        # intermediate result on the coordinator, read twice (candidates, totals).
        twice, twice_params = model.with_recent("candidates", Selection(), request.settle)

        def the_statement_read_twice() -> None:
            with conn.transaction():
                conn.execute("SET LOCAL work_mem = '64MB'")
                conn.execute(twice, twice_params).fetchall()

        for _ in range(times):
            taken["floor"].append(timed(the_floor))
            started = time.perf_counter()
            found = plan(conn, model, request)
            taken["pass"].append(Run(time.perf_counter() - started, 0.0, 0))
            started = time.perf_counter()
            causes(conn, model, list(found.candidates))
            taken["causes"].append(Run(time.perf_counter() - started, 0.0, 0))
            found.close()
            taken["read_twice"].append(timed(the_statement_read_twice))
    return taken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--times", type=int, default=5)
    options = parser.parse_args()
    reason = missing_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    psql = find_program("psql")
    assert psql, "psql is needed for the floor"
    # Compiled once, so no run counts compiling the package as the tool's start-up.
    compileall.compile_dir(ROOT / "tokenfix", quiet=1)
    load = os.getloadavg()
    cores = os.cpu_count()
    print(f"load average before: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} ({cores} cores)")
    cluster = start_cluster()
    try:
        url = cluster.create_database("tokenfix_bench")
        seconds = generate(url, users=options.users, rows=options.rows, log=lambda *_: None)
        print(f"generated {options.users:,} users, {options.rows:,} rows in {seconds:.1f} s")
        with psycopg.connect(url, autocommit=True) as conn:
            started = time.perf_counter()
            conn.execute(DISTRIBUTE.read_text())
            conn.execute("VACUUM (ANALYZE) token_usage, user_profiles")
            print(f"distributed in {time.perf_counter() - started:.1f} s")
        env = {**os.environ, "TOKENFIX_DATABASE_URL": url, "TOKENFIX_STARTING_BALANCE": "1000"}
        tool = [sys.executable, "-m", "tokenfix"]
        floor_argv = [str(psql), url, "-qAt", "-o", "/dev/null", "-f", str(FLOOR)]
        dry_argv = [*tool, "reconcile", "--all", "--dry-run", "--format", "json"]
        pairs: dict[str, tuple[str, Callable[[], Run]]] = {
            "floor": ("bare GROUP BY user_id (psql)", lambda: run_process(floor_argv)),
            "dry_run": ("reconcile --all --dry-run", lambda: run_process(dry_argv, env)),
            "start": (
                "start-up (tokenfix reconcile --help)",
                lambda: run_process([*tool, "reconcile", "--help"], env),
            ),
        }
        taken = interleaved(options.times, **pairs)
        for m in taken.values():
            runs = ", ".join(f"{r.seconds:.2f}" for r in m.runs)
            print(f"{m.name}: median {m.seconds:.2f} s ({runs})")
        print(f"ratio (processes): {taken['dry_run'].seconds / taken['floor'].seconds:.1f}x")

        inside = _in_session(url, options.times)
        for name, label in (
            ("floor", "in session: bare GROUP BY"),
            ("pass", "in session: the all-owners pass"),
            ("causes", "in session: the causes' evidence"),
            ("read_twice", "in session: one server's statement (the comparison read twice)"),
        ):
            runs = ", ".join(f"{r.seconds:.2f}" for r in inside[name])
            print(f"{label}: median {_median(inside[name]):.2f} s ({runs})")
        print(
            f"ratio (the pass to the GROUP BY, in session): "
            f"{_median(inside['pass']) / _median(inside['floor']):.1f}x"
        )

        def once(*args: str) -> tuple[float, dict[str, object]]:
            started = time.perf_counter()
            done = subprocess.run([*tool, *args], env=env, capture_output=True, text=True)
            if done.returncode not in (0, 1):
                raise RuntimeError(f"tokenfix {' '.join(args)}: {done.stderr[-800:]}")
            return time.perf_counter() - started, json.loads(done.stdout or "{}")

        _, before = once("reconcile", "--all", "--dry-run", "--json")
        write_s, written = once(
            "reconcile", "--all", "--create-missing", "--yes", "--max-changes", "0", "--json"
        )
        print(
            f"write: {write_s:.2f} s, {written.get('users_updated')} updated, "
            f"{written.get('profiles_created')} created"
        )
        revert_s, _ = once("revert", str(written["run_id"]), "--yes", "--json")
        print(f"revert: {revert_s:.2f} s")
        _, after = once("reconcile", "--all", "--dry-run", "--json")
        same = after.get("changes") == before.get("changes")
        drifting = after.get("users_with_drift")
        print(f"after the revert: {drifting} with drift (the same changes as before: {same})")
        load = os.getloadavg()
        print(f"load average after: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
