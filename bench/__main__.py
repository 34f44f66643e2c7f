"""Benchmark `tokenfix reconcile` against the physical floor and its peers (docs/performance.md).

    python -m bench                          # 100k users, 10M ledger rows (make bench-full)
    python -m bench --users 2000 --rows 200000   # a quick run (make bench)

Generates its own data with generate_series, measures everything in one run on the same
database (the median of --repeat runs), prints a table of ratios and writes it, with the
machine description, to --output (the results section of BENCHMARKS.md for full runs).
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import sys
import time
import uuid
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from bench import generate, report
from bench.measure import Measurement, Run, interleaved, repeat, run_process, timed
from tokenfix.config.settings import Settings
from tokenfix.demo.pgserver import Server, find_program, start_server
from tokenfix.ledger.model import Selection

ROOT = Path(__file__).resolve().parent.parent
SQL = Path(__file__).resolve().parent / "sql"
FLOOR = SQL / "floor.sql"
FLOOR_SINCE = SQL / "floor_since.sql"
FLOOR_TWO_SOURCES = SQL / "floor_two_sources.sql"
TWO_SOURCES = Path(__file__).resolve().parent / "two_sources.toml"
STARTING = generate.STARTING_BALANCE
SINCE_REPEAT = 9

# Like the orientation figures of the performance issue: no parallel workers, so that the
# floor and every peer use one core the same way; the data set fits in memory.
SERVER_SETTINGS = {"max_parallel_workers_per_gather": "0", "shared_buffers": "1GB"}


def main(argv: list[str] | None = None) -> int:
    options = _parse(argv)
    server = _server(options)
    try:
        results = run_benchmark(server, options)
    finally:
        server.stop()
    table = report.render(results, options)
    print(table)
    if options.output:
        report.write(Path(options.output), table, full=options.users >= 100_000)
        print(f"\nwritten to {options.output}")
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--sample", type=int, default=100, help="users timed for per-user peers")
    parser.add_argument("--database-url", help="admin URL of a server to use (else a throwaway)")
    parser.add_argument(
        "--output", help="markdown file for the results (BENCHMARKS.md: its section)"
    )
    parser.add_argument("--no-wide", action="store_true", help="skip the 10x-users memory check")
    parser.add_argument("--no-partitioned", action="store_true", help="skip the partitioned table")
    parser.add_argument("--no-two-sources", action="store_true", help="skip the two-source mapping")
    return parser.parse_args(argv)


def _server(options: argparse.Namespace) -> Server:
    if options.database_url:
        return start_server(options.database_url)
    return start_server(options=SERVER_SETTINGS)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def tool(url: str, *args: str, **env: str) -> Run:
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TOKENFIX_")},
        "TOKENFIX_DATABASE_URL": url,
        "TOKENFIX_STARTING_BALANCE": str(generate.STARTING_BALANCE),
        **env,
    }
    return run_process([sys.executable, "-m", "tokenfix", *args], env=environment)


def psql(url: str, script: Path, *variables: str) -> Run:
    program = find_program("psql")
    assert program, "psql is needed for the floor and the peers"
    argv = [str(program), url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-o", "/dev/null"]
    for variable in variables:
        argv += ["-v", variable]
    return run_process([*argv, "-f", str(script)])


def run_benchmark(server: Server, options: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"server": server.description, "measurements": {}}
    m: dict[str, Measurement] = results["measurements"]
    n = options.repeat
    # An installed tool has its bytecode compiled at install time (pip does it); a source
    # checkout under PYTHONDONTWRITEBYTECODE would compile every changed module on every run
    # and count that as the tool's start-up.
    compileall.compile_dir(ROOT / "tokenfix", quiet=1)
    log(f"database 'bench' ({options.users:,} users, {options.rows:,} rows):")
    url = generate.create_database(server.url, "bench")
    results["generate_seconds"] = generate.generate(
        url, users=options.users, rows=options.rows, log=log
    )
    results["postgres"] = _server_version(url)
    dry_run = ("reconcile", "--all", "--dry-run", "--json")
    since = (*dry_run, "--since", "1h")
    starting = f"starting_balance={generate.STARTING_BALANCE}"

    log("measuring the tool, the floor and the hand-written statement…")
    m |= interleaved(
        n,
        tool=("tokenfix " + " ".join(dry_run), lambda: tool(url, *dry_run)),
        floor=("physical floor (psql, seq scan + hash aggregate)", lambda: psql(url, FLOOR)),
    )
    m["handwritten"] = repeat(
        "hand-written statement (LATERAL override lookup, psql)",
        n,
        lambda: psql(url, SQL / "handwritten.sql", starting),
    )

    log("measuring the causes of the drifting users (docs/monitoring.md)…")
    m["causes"] = _causes_in_process(url, n)

    sample = _sample_users(url, options.sample, options.users)
    log(f"measuring the per-user peers on {len(sample)} users…")
    m["psql_per_user"] = _psql_per_user(url, sample, options.users)
    m["loop_per_user"] = _loop_per_user(url, sample, options.users)

    log("measuring diagnose, --since 1h and a write run…")
    m["diagnose_db"] = _diagnose_in_process(url, sample[:20])
    m["diagnose_cold"] = repeat(
        "tokenfix diagnose USER_ID --json (cold process, wall)",
        n,
        lambda: tool(url, "diagnose", str(sample[0]), "--json"),
    )
    # About a second each: more runs, taken in turn with their floor (docs/performance.md compares
    # them).
    quick = max(n, SINCE_REPEAT)
    m |= interleaved(
        quick,
        since=("tokenfix " + " ".join(since), lambda: tool(url, *since)),
        floor_since=(
            "floor of --since 1h (those users' history by the index, psql)",
            lambda: psql(url, FLOOR_SINCE),
        ),
    )
    m |= _incident(url, n, quick)

    log("the covering index doctor suggests for a large ledger…")
    _create_covering_index(url)
    m |= interleaved(
        quick,
        since_covering=(
            "the same --since 1h, with the covering user_id index",
            lambda: tool(url, *since),
        ),
        floor_since_covering=(
            "floor of --since 1h, with the covering index",
            lambda: psql(url, FLOOR_SINCE),
        ),
    )
    for key in ("since", "floor_since", "since_covering", "floor_since_covering"):
        m[key].note = f"median of {quick}, taken in turn with its floor"
    m["write"] = _write_runs(url, n)

    if not options.no_partitioned:
        log("a hash-partitioned copy of the ledger…")
        generate.partitioned_copy(url)
        partitioned = {"TOKENFIX_USAGE_TABLE": "token_usage_part"}
        m["tool_partitioned"] = repeat(
            "tool on token_usage hash-partitioned by user_id (8)",
            n,
            lambda: tool(url, *dry_run, **partitioned),
        )
        m["floor_partitioned"] = repeat(
            "floor on the partitioned table", n, lambda: _floor_partitioned(url)
        )
    if not options.no_two_sources:
        log(f"a second ledger source ({options.rows:,} credit transactions) and its wallets…")
        generate.two_sources(url, TWO_SOURCES, users=options.users, rows=options.rows)
        mapped = (*dry_run, "--mapping", str(TWO_SOURCES))
        m |= interleaved(
            n,
            tool_two_sources=(
                "tool with a two-source mapping (credits + usage, bench/two_sources.toml)",
                lambda: tool(url, *mapped),
            ),
            floor_two_sources=(
                "floor of the two sources (a bare GROUP BY key over each)",
                lambda: psql(url, FLOOR_TWO_SOURCES),
            ),
        )
    if not options.no_wide:
        wide_users = options.users * 10
        log(f"database 'bench_wide' ({wide_users:,} users over the same {options.rows:,} rows):")
        wide = generate.create_database(server.url, "bench_wide")
        generate.generate(wide, users=wide_users, rows=options.rows, log=log)
        m["tool_wide"] = repeat(
            f"tool with {wide_users:,} users (same rows)", n, lambda: tool(wide, *dry_run)
        )
        m["floor_wide"] = repeat("floor with 10x users", n, lambda: psql(wide, FLOOR))
    return results


def _incident(url: str, n: int, quick: int) -> dict[str, Measurement]:
    """The night of an incident (docs/monitoring.md): 10% of owners drifting by varied
    amounts, and every owner `--since 1h` selects drifting (bench/sql/incident.sql); the
    caches are put back after, so the later measurements see the 1% case."""
    dry_run = ("reconcile", "--all", "--dry-run", "--json")
    since = (*dry_run, "--since", "1h")
    log("the incident case: 10% of owners drifting…")
    generate.run_script(url, SQL / "incident.sql")
    try:
        m = interleaved(
            n,
            tool_incident=(
                "tokenfix " + " ".join(dry_run) + ", 10% of users drifting",
                lambda: tool(url, *dry_run),
            ),
            floor_incident=(
                "physical floor, taken in turn with the 10% case",
                lambda: psql(url, FLOOR),
            ),
        )
        m["causes_incident"] = _causes_in_process(url, n, "10% case")
        m |= interleaved(
            quick,
            since_incident=(
                "tokenfix " + " ".join(since) + ", every selected user drifting",
                lambda: tool(url, *since),
            ),
            floor_since_incident=(
                "floor of --since 1h, taken in turn with the drifting case",
                lambda: psql(url, FLOOR_SINCE),
            ),
        )
        for key in ("since_incident", "floor_since_incident"):
            m[key].note = f"median of {quick}, taken in turn with its floor"
    finally:
        generate.run_script(url, SQL / "incident_end.sql")
    return m


def _create_covering_index(url: str) -> None:
    from tokenfix.health.schema import PER_USER_COLUMNS

    columns = ", ".join(PER_USER_COLUMNS[1:])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute(
            "CREATE INDEX IF NOT EXISTS token_usage_user_id_covering_idx"
            f" ON token_usage (user_id) INCLUDE ({columns})"
        )
        conn.execute("VACUUM (ANALYZE) token_usage")


def _server_version(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT current_setting('server_version')").fetchone()
    return str(row[0]) if row else "?"


def _sample_users(url: str, size: int, users: int) -> list[uuid.UUID]:
    """Users spread evenly over the set (every k-th), so the sample is a fair one."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT user_id FROM bench_users WHERE n %% %s = 1 ORDER BY n LIMIT %s",
            (max(1, users // max(size, 1)), size),
        ).fetchall()
    return [row[0] for row in rows]


EXPECTED_BALANCE = ROOT / "sql" / "diagnostics" / "expected_balance.sql"


def _extrapolated(name: str, seconds: float, sample: int, users: int) -> Measurement:
    per_user = seconds / sample
    return Measurement(
        name=f"{name} (extrapolated)",
        runs=[Run(per_user * users, 0.0, 0)],
        note=f"{per_user * 1000:.2f} ms a user",
        extrapolated_from=sample,
    )


def _psql_per_user(url: str, sample: list[uuid.UUID], users: int) -> Measurement:
    started = time.perf_counter()
    for user in sample:
        psql(url, EXPECTED_BALANCE, f"user_id={user}", f"starting_balance={STARTING}")
    elapsed = time.perf_counter() - started
    return _extrapolated("per-user SQL script, psql once per user", elapsed, len(sample), users)


def per_user_query() -> str:
    """The query of sql/diagnostics/expected_balance.sql with its psql variables as parameters:
    the loop peer runs exactly what the script runs, minus psql."""
    text = EXPECTED_BALANCE.read_text()
    query = text[text.index("WITH ledger AS") : text.index("\\if :capture")]
    found = re.search(r"\\set tf_overrides '(\(SELECT o\.id.*?\))'\n", text)
    assert found, "expected_balance.sql no longer defines tf_overrides as the loop expects"
    overrides = found.group(1).replace("''", "'")
    for variable, parameter in (
        (":'user_id'", "%(user_id)s"),
        (":'starting_balance'", "%(starting_balance)s"),
        (":'grant_actions'", "%(grant_actions)s"),
        (":'deduct_actions'", "%(deduct_actions)s"),
        (":tf_overrides", overrides),
    ):
        query = query.replace(variable, parameter)
    assert not re.search(r"(?<![:\w]):'?\w", query), "a psql variable is left in the query"
    return query


def _loop_per_user(url: str, sample: list[uuid.UUID], users: int) -> Measurement:
    statement = per_user_query()
    params = {"starting_balance": STARTING, "grant_actions": "{admin_grant}"}
    params["deduct_actions"] = "{admin_deduct}"
    with psycopg.connect(url, prepare_threshold=None) as conn:
        conn.execute("SELECT 1")
        started = time.perf_counter()
        for user in sample:
            conn.execute(statement, {**params, "user_id": user}).fetchall()
        elapsed = time.perf_counter() - started
    return _extrapolated("per-user query looped in one session", elapsed, len(sample), users)


def _diagnose_in_process(url: str, sample: list[uuid.UUID]) -> Measurement:
    from tokenfix.db import session
    from tokenfix.diagnosis.report import diagnose

    settings = Settings.model_validate(
        {"database_url": url, "starting_balance": generate.STARTING_BALANCE}
    )
    measurement = Measurement(name="diagnose, database time (warm connection, median of 20 users)")
    with session.connect(settings) as conn:
        diagnose(conn, settings, sample[0])
        for user in sample:
            measurement.runs.append(timed(partial(diagnose, conn, settings, user)))
    return measurement


def _causes_in_process(url: str, times: int, case: str = "1% case") -> Measurement:
    """The cause codes of the drifting users (docs/monitoring.md), as a dry run computes them
    after its pass: from the sums each candidate carries, plus one statement for the owners
    whose rows are read again (planning.causes), on a warm connection. The sums themselves
    ride in the pass (a few aggregates more per row): the dry run against the floor counts
    them."""
    from tokenfix.db import session
    from tokenfix.ledger.model import load
    from tokenfix.reconciliation.plan import Request, causes, plan

    settings = Settings.model_validate(
        {"database_url": url, "starting_balance": generate.STARTING_BALANCE}
    )
    with session.connect(settings) as conn:
        model = load(conn, settings)
        the_plan = plan(conn, model, Request(selection=Selection()))
        candidates = list(the_plan.candidates)
        the_plan.close()
        explained: dict[str, tuple[str, ...]] = {}

        def all_candidates() -> None:
            explained.update(causes(conn, model, candidates))

        measurement = repeat("", times, lambda: timed(all_candidates))
    drifting = sum(1 for c in candidates if c.has_profile)
    measurement.name = (
        f"causes of the {drifting:,} drifting users, {case} (in-process, warm connection)"
    )
    measurement.note = (
        f"after the pass: at most one statement; {len(explained):,} users with a cause"
    )
    return measurement


def _write_runs(url: str, times: int) -> Measurement:
    """Fix the 1% drift, then revert it to measure again."""
    measurement = Measurement(name="tokenfix reconcile --all --yes (fixing the 1% drift)")
    for _ in range(times):
        measurement.runs.append(tool(url, "reconcile", "--all", "--yes", "--max-changes", "0"))
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT run_id FROM tokenfix.runs ORDER BY started_at DESC LIMIT 1"
            ).fetchone()
        assert row is not None
        tool(url, "revert", str(row[0]), "--yes")
    return measurement


def _floor_partitioned(url: str) -> Run:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(
            (SQL / "floor.sql").read_text().replace("from token_usage", "from token_usage_part")
        )
        script.flush()
        return psql(url, Path(script.name))


if __name__ == "__main__":
    raise SystemExit(main())
