"""The lots benchmark (docs/performance.md): a lots dry run against its floor.

    python -m bench.lots                                   # 100k accounts, 1M lots, 10M usage
    python -m bench.lots --accounts 10000 --lots 100000 --rows 1000000   # a quick run

examples/lots's schema filled with generate_series; measured in the same run, interleaved:
the floor (the same rows read in key, time order by one `COPY (… ORDER BY key, at) TO
STDOUT` through psql into /dev/null) and `tokenfix reconcile --all --dry-run --json` under
examples/lots/tokenfix.toml, its peak RSS from wait4(); then the same again with ten times
the accounts over the same rows (memory must stay flat: one owner at a time).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg

from bench.generate import create_database
from bench.measure import Measurement, Run, interleaved, run_process
from tokenfix.demo.pgserver import find_program, start_server

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "lots"
SERVER_SETTINGS = {"max_parallel_workers_per_gather": "0", "shared_buffers": "1GB"}

GENERATE = """
INSERT INTO accounts (id, credits)
SELECT md5('a' || n)::uuid, 0 FROM generate_series(1, %(accounts)s) AS n;
INSERT INTO credit_grants (account_id, source, amount, priority, effective_at, expires_at,
                           voided_at)
SELECT md5('a' || (1 + n %% %(accounts)s))::uuid,
       CASE WHEN n %% 4 = 0 THEN 'top_up' ELSE 'plan' END,
       (100 + n %% 900)::numeric,
       CASE WHEN n %% 4 = 0 THEN 10 ELSE 0 END,
       now() - (n %% 365) * interval '1 day',
       CASE WHEN n %% 4 = 0 THEN NULL ELSE now() - (n %% 365) * interval '1 day'
                                            + interval '30 days' END,
       CASE WHEN n %% 97 = 0 THEN now() - (n %% 300) * interval '1 day' END
FROM generate_series(1, %(lots)s) AS n;
INSERT INTO usage_events (account_id, credits, model, created_at)
SELECT md5('a' || (1 + n %% %(accounts)s))::uuid, ((n %% 5000) / 100.0)::numeric, 'm',
       now() - (n %% 31536000) * interval '1 second'
FROM generate_series(1, %(rows)s) AS n;
ANALYZE accounts; ANALYZE credit_grants; ANALYZE usage_events;
"""

FLOOR = """
COPY (
    SELECT key, at FROM (
        SELECT id AS key, NULL::timestamptz AS at, credits AS amount FROM accounts
        UNION ALL
        SELECT account_id, effective_at, amount FROM credit_grants WHERE deleted_at IS NULL
        UNION ALL
        SELECT account_id, created_at, credits FROM usage_events
    ) AS s
    ORDER BY key, at NULLS FIRST
) TO STDOUT
"""


def _fill(url: str, accounts: int, lots: int, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((EXAMPLE / "schema.sql").read_text())
        conn.execute("SET work_mem = '256MB'")
        for statement in GENERATE.split(";\n"):
            if statement.strip():
                conn.execute(statement, {"accounts": accounts, "lots": lots, "rows": rows})


def _settle_caches(url: str) -> None:
    """Every cache as the fold says, then 1% off by one credit (as in the main benchmark)."""
    from tokenfix.config.settings import Settings
    from tokenfix.db.session import connect, transaction
    from tokenfix.ledger import lotstream
    from tokenfix.ledger.model import Selection
    from tokenfix.ledger.model import load as load_model
    from tokenfix.mapping.file import load_file

    settings = Settings(database_url=url, statement_timeout="0")
    mapping = load_file(EXAMPLE / "tokenfix.toml")
    conn = connect(settings)
    with conn:
        model = load_model(conn, settings, mapping)
        with transaction(conn, settings, read_only=True):
            found = [
                (owner.key, str(owner.expected_remaining))
                for owner in lotstream.owners(conn, model, Selection())
            ]
    with psycopg.connect(url, autocommit=True) as plain:
        plain.execute(
            "UPDATE accounts AS a SET credits = v.credits::numeric"
            " FROM unnest(%s::uuid[], %s::text[]) AS v (id, credits) WHERE a.id = v.id",
            ([k for k, _ in found], [c for _, c in found]),
        )
        plain.execute("UPDATE accounts SET credits = credits + 1 WHERE random() < 0.01")
        plain.execute("VACUUM ANALYZE accounts")


def _in_child(work: Callable[..., None], *args: object) -> None:
    child = multiprocessing.get_context("spawn").Process(target=work, args=args)
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"{work.__name__} failed (exit {child.exitcode})")


def _measure(url: str, repeat: int) -> dict[str, Measurement]:
    psql = find_program("psql")
    assert psql, "psql is needed for the floor"
    floor = [str(psql), url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", FLOOR, "-o", "/dev/null"]
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TOKENFIX_")},
        "TOKENFIX_DATABASE_URL": url,
        "TOKENFIX_STATEMENT_TIMEOUT": "0",
    }
    tool = [sys.executable, "-m", "tokenfix", "reconcile", "--all", "--dry-run", "--json",
            "--mapping", str(EXAMPLE / "tokenfix.toml")]  # fmt: skip

    def run_floor() -> Run:
        return run_process(floor)

    def run_tool() -> Run:
        return run_process(tool, env=environment)

    return interleaved(
        repeat,
        floor=("COPY … ORDER BY key, at (floor)", run_floor),
        tool=("reconcile --all --dry-run (lots)", run_tool),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lots")
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--lots", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", help="admin URL of a server to use (else a throwaway)")
    options = parser.parse_args(argv)
    server = start_server(options.database_url, options=SERVER_SETTINGS)
    try:
        lines = [f"server: {server.description}"]
        for accounts in (options.accounts, options.accounts * 10):
            url = create_database(server.url, f"bench_lots_{accounts}")
            print(f"filling {accounts:,} accounts, {options.lots:,} lots, {options.rows:,} rows",
                  file=sys.stderr, flush=True)  # fmt: skip
            # In a child of its own: the tool's peak RSS comes from wait4(), and Linux keeps a
            # process's high-water mark across exec, so a child forked from a parent grown
            # by the caches' lists (100k-1M keys) would report the parent's size, not its own.
            _in_child(_fill, url, accounts, options.lots, options.rows)
            _in_child(_settle_caches, url)
            found = _measure(url, options.repeat)
            floor, tool = found["floor"], found["tool"]
            lines.append(
                f"{accounts:>9,} accounts, {options.lots:,} lots, {options.rows:,} usage rows: "
                f"floor {floor.seconds:.2f} s, lots dry run {tool.seconds:.2f} s "
                f"({tool.seconds / floor.seconds:.2f}x), peak RSS {tool.peak_rss_mb:.0f} MB"
            )
            print(lines[-1], file=sys.stderr, flush=True)
        print("\n".join(lines))
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
