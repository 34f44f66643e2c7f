"""The lots shape on Citus (docs/citus.md): examples/lots filled as tests/e2e/test_citus_shapes.py
fills it, at a larger scale, distributed with examples/lots/citus.sql on a coordinator and two
workers on loopback (the test suite's fixture), and the same data on one server (a database of
the coordinator, not distributed).

- the lots stream (the statement a lots dry run reads) as it runs now on Citus, pushed down to
  the shards, against the same statement with its OFFSET 0 fences (as one server runs it),
  which Citus plans by gathering every lot and ledger row on the coordinator; in one session,
  in turn, the rows compared;
- `reconcile --all --dry-run` as a process on Citus and on one server, in turn.

On a shared machine run it under the lock:

    flock /work/wt/bench.lock .venv/bin/python -m bench.citus_lots --accounts 20000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.measure import Run, interleaved, run_process
from tests.e2e.test_citus_shapes import FILL_LOTS, NOW, _script
from tests.support.citus import CitusCluster, missing_reason, start_cluster
from tokenfix.config.settings import Settings
from tokenfix.ledger.model import Selection
from tokenfix.ledger.model import load as load_model
from tokenfix.mapping.file import load_file

ROOT = Path(__file__).resolve().parent.parent
LOTS = ROOT / "examples" / "lots"
MAPPING = LOTS / "tokenfix.toml"
FENCE = "    OFFSET 0\n"


def _database(cluster: CitusCluster, name: str, accounts: int, usage: int, citus: bool) -> str:
    url = cluster.create_database(name)
    fill = FILL_LOTS.replace("12 * %(owners)s", str(usage))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((LOTS / "schema.sql").read_text())
        _script(conn, fill, now=NOW, owners=accounts)
        if citus:
            _script(conn, (LOTS / "citus.sql").read_text())
        conn.execute("VACUUM ANALYZE")
    return url


def _stream(url: str, times: int) -> dict[str, list[float]]:
    """The lots stream pushed down, and fenced as on one server, in one session, in turn."""
    settings = Settings.model_validate({"database_url": url})
    with psycopg.connect(url, autocommit=True) as conn:
        model = load_model(conn, settings, load_file(MAPPING))
        assert model.sharded
        statement, params = model.lots_stream(Selection(), timedelta(0))
        pushed = statement.as_string(conn)
        assert FENCE not in pushed
        fenced = pushed.replace("    \n) AS r", FENCE + ") AS r").replace(
            "    \n) AS l", FENCE + ") AS l"
        )
        assert fenced.count(FENCE) == 2
        taken: dict[str, list[float]] = {"pushed": [], "fenced": []}
        found: dict[str, list[Any]] = {}
        for _ in range(times):
            for name, text in (("pushed", pushed), ("fenced", fenced)):
                started = time.perf_counter()
                found[name] = conn.execute(text, params).fetchall()
                taken[name].append(time.perf_counter() - started)
        assert found["pushed"] == found["fenced"]
    return taken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.citus_lots")
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--usage", type=int, default=0, help="usage rows (default 25 per account)")
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args(argv)
    reason = missing_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    usage = options.usage or 25 * options.accounts
    cluster = start_cluster()
    try:
        print(f"filling {options.accounts:,} accounts, {usage:,} usage rows", file=sys.stderr)
        on_citus = _database(cluster, "bench_lots_citus", options.accounts, usage, True)
        alone = _database(cluster, "bench_lots_plain", options.accounts, usage, False)
        streams = _stream(on_citus, options.repeat)
        base = {k: v for k, v in os.environ.items() if not k.startswith("TOKENFIX_")}

        def dry_run(url: str) -> Run:
            return run_process(
                [sys.executable, "-m", "tokenfix", "reconcile", "--all", "--dry-run", "--json",
                 "--mapping", str(MAPPING)],
                env={**base, "TOKENFIX_DATABASE_URL": url, "TOKENFIX_STATEMENT_TIMEOUT": "0"},
            )  # fmt: skip

        found = interleaved(
            options.repeat,
            citus=("lots dry run on Citus", lambda: dry_run(on_citus)),
            plain=("lots dry run on one server", lambda: dry_run(alone)),
        )
        median = {k: statistics.median(v) for k, v in streams.items()}
        print(
            f"lots on Citus, {options.accounts:,} accounts, {usage:,} usage rows: the lots stream "
            f"pushed down {median['pushed']:.2f} s, fenced (every row on the coordinator) "
            f"{median['fenced']:.2f} s; reconcile --all --dry-run {found['citus'].seconds:.2f} s "
            f"(peak RSS {found['citus'].peak_rss_mb:.0f} MB), on one server "
            f"{found['plain'].seconds:.2f} s ({found['plain'].peak_rss_mb:.0f} MB); owners "
            f"drifting: most (the generated caches are arbitrary); os.getloadavg() "
            f"{os.getloadavg()[0]:.2f}"
        )
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
