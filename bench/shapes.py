"""The periods and `each` benchmarks (docs/performance.md): a dry run under each mapping
against the bare GROUP BY of its ledger, measured in the same run.

    python -m bench.shapes                                  # 100k owners, 10M ledger rows
    python -m bench.shapes --owners 2000 --rows 200000      # a quick run
    python -m bench.shapes --only periods                   # the periods cases alone

- periods: examples/periods (a monthly allowance that resets; only the current period's
  events count) filled with generate_series, events spread over three periods; its floor is
  bench/sql/floor_periods.sql (`select entitlement_id, sum(value), count(*) from events
  group by entitlement_id`, work_mem 64MB). Measured twice: with the schema's foreign key from
  events.entitlement_id to the balance key, then without it (dropped; the index on
  (entitlement_id, created_at) stays), each case interleaved with its own rounds of the floor
  (`--without-foreign-key`: the second case only).
- each: bench/each.toml, one event row drawing from one or two balances through a jsonb list
  (`each = "jsonb_array_elements(deductions)"`); its floor is bench/sql/floor_each.sql (the
  same GROUP BY over the unnested elements).

The caches are set to what the tool expects, then 1 % off by one, so the dry run reports
about 1 % of the owners (as the main benchmark does). Both sides run through a child process
(psql for the floors), interleaved; the tool's peak RSS comes from wait4().
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import psycopg
from psycopg import sql

from bench.generate import create_database
from bench.measure import Measurement, Run, interleaved, run_process
from tokenfix.demo.pgserver import find_program, start_server

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
PERIODS = ROOT / "examples" / "periods"
EACH = HERE / "each.toml"
SERVER_SETTINGS = {"max_parallel_workers_per_gather": "0", "shared_buffers": "1GB"}
SHAPES = ("periods", "each")

FILL_PERIODS = """
INSERT INTO customer_entitlements (id, customer_id, feature_id, allowance, balance,
                                   next_reset_at, reset_interval)
SELECT 'cus_' || n || ':ai_tokens', 'cus_' || n, 'ai_tokens', 100000, 0,
       now() + (1 + n %% 29) * interval '1 day', interval '30 days'
FROM generate_series(1, %(owners)s) AS n;
INSERT INTO events (entitlement_id, value, status, created_at)
SELECT 'cus_' || (1 + n %% %(owners)s) || ':ai_tokens', 1 + n %% 97,
       CASE WHEN n %% 50 = 0 THEN 'failed' ELSE 'completed' END,
       now() - ((n::bigint * 7919) %% 7776000) * interval '1 second'
FROM generate_series(1, %(rows)s) AS n;
ANALYZE customer_entitlements; ANALYZE events;
UPDATE customer_entitlements AS e SET balance = e.allowance - coalesce(u.used, 0)
FROM customer_entitlements AS c
LEFT JOIN (
    SELECT v.entitlement_id, sum(v.value) AS used
    FROM events AS v JOIN customer_entitlements AS p ON p.id = v.entitlement_id
    WHERE v.status = 'completed' AND v.created_at >= p.next_reset_at - p.reset_interval
      AND v.created_at < p.next_reset_at
    GROUP BY v.entitlement_id
) AS u ON u.entitlement_id = c.id
WHERE e.id = c.id;
UPDATE customer_entitlements SET balance = balance + 1 WHERE random() < 0.01;
VACUUM ANALYZE customer_entitlements;
"""

FILL_EACH = """
CREATE TABLE feature_balances (
    id         text PRIMARY KEY,
    allowance  numeric NOT NULL,
    balance    numeric NOT NULL
);
CREATE TABLE deduction_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id text NOT NULL,
    deductions  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON deduction_events (created_at);
INSERT INTO feature_balances (id, allowance, balance)
SELECT 'bal_' || n, 1000000, 0 FROM generate_series(1, %(owners)s) AS n;
INSERT INTO deduction_events (customer_id, deductions, created_at)
SELECT 'cus_' || n %% %(owners)s,
       CASE WHEN n %% 3 = 0
            THEN jsonb_build_array(
                     jsonb_build_object('balance_id', 'bal_' || (1 + n %% %(owners)s),
                                        'value', n %% 50),
                     jsonb_build_object('balance_id', 'bal_' || (1 + (n + 7) %% %(owners)s),
                                        'value', 1 + n %% 13))
            ELSE jsonb_build_array(
                     jsonb_build_object('balance_id', 'bal_' || (1 + n %% %(owners)s),
                                        'value', 1 + n %% 50)) END,
       now() - ((n::bigint * 7919) %% 7776000) * interval '1 second'
FROM generate_series(1, %(rows)s) AS n;
ANALYZE feature_balances; ANALYZE deduction_events;
UPDATE feature_balances AS b SET balance = b.allowance - u.used
FROM (
    SELECT item->>'balance_id' AS id, sum((item->>'value')::numeric) AS used
    FROM deduction_events CROSS JOIN LATERAL jsonb_array_elements(deductions) AS item
    WHERE (item->>'value')::numeric > 0
    GROUP BY 1
) AS u
WHERE u.id = b.id;
UPDATE feature_balances SET balance = balance + 1 WHERE random() < 0.01;
VACUUM ANALYZE feature_balances;
"""


def _run_script(url: str, script: str, owners: int, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET work_mem = '256MB'")
        for statement in script.split(";\n"):
            if statement.strip():
                conn.execute(statement, {"owners": owners, "rows": rows})


def _fill(url: str, owners: int, rows: int, shapes: tuple[str, ...]) -> None:
    if "periods" in shapes:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute((PERIODS / "schema.sql").read_text())
        _run_script(url, FILL_PERIODS, owners, rows)
    if "each" in shapes:
        _run_script(url, FILL_EACH, owners, rows)


def _drop_foreign_key(url: str) -> None:
    """events without its foreign key to customer_entitlements: an owner may then have rows and
    no balance row, as far as the tool can tell."""
    with psycopg.connect(url, autocommit=True) as conn:
        for (name,) in conn.execute(
            "SELECT conname FROM pg_constraint"
            " WHERE conrelid = 'events'::regclass AND contype = 'f'"
        ).fetchall():
            conn.execute(
                sql.SQL("ALTER TABLE events DROP CONSTRAINT {}").format(sql.Identifier(name))
            )


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def _line(name: str, mine: Measurement, bare: Measurement, owners: int, rows: int) -> str:
    return (
        f"{name}: {owners:,} owners, {rows:,} rows: bare GROUP BY "
        f"{bare.seconds:.2f} s, dry run {mine.seconds:.2f} s "
        f"({mine.seconds / bare.seconds:.2f}x), peak RSS {mine.peak_rss_mb:.0f} MB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shapes")
    parser.add_argument("--owners", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", help="admin URL of a server to use (else a throwaway)")
    parser.add_argument("--only", choices=SHAPES, help="measure this shape alone")
    parser.add_argument(
        "--without-foreign-key",
        action="store_true",
        help="periods: only the case without the foreign key from events to the balance key",
    )
    options = parser.parse_args(argv)
    shapes = (options.only,) if options.only else SHAPES
    psql = find_program("psql")
    assert psql, "psql is needed for the floors"
    server = start_server(options.database_url, options=SERVER_SETTINGS)
    try:
        url = create_database(server.url, "bench_shapes")
        print(f"filling {options.owners:,} owners, {options.rows:,} rows per ledger",
              file=sys.stderr, flush=True)  # fmt: skip
        _fill(url, options.owners, options.rows, shapes)
        environment = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TOKENFIX_")},
            "TOKENFIX_DATABASE_URL": url,
            "TOKENFIX_STATEMENT_TIMEOUT": "0",
        }

        def tool(mapping: Path) -> Run:
            return run_process(
                [sys.executable, "-m", "tokenfix", "reconcile", "--all", "--dry-run", "--json",
                 "--mapping", str(mapping)],
                env=environment,
            )  # fmt: skip

        def floor(script: str) -> Run:
            return run_process(
                [str(psql), url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-o", "/dev/null",
                 "-f", str(HERE / "sql" / script)]
            )  # fmt: skip

        def periods_case(label: str) -> tuple[Measurement, Measurement]:
            found = interleaved(
                options.repeat,
                mine=(f"periods dry run ({label})", lambda: tool(PERIODS / "tokenfix.toml")),
                bare=("bare GROUP BY (floor_periods.sql)", lambda: floor("floor_periods.sql")),
            )
            return found["mine"], found["bare"]

        lines = [f"server: {server.description}", f"before: {_load()}"]
        size = (options.owners, options.rows)
        if "periods" in shapes:
            if not options.without_foreign_key:
                fk = "periods (foreign key)"
                lines.append(_line(fk, *periods_case("foreign key"), *size))
            _drop_foreign_key(url)
            nofk = "periods (no foreign key)"
            lines.append(_line(nofk, *periods_case("no foreign key"), *size))
        if "each" in shapes:
            found = interleaved(
                options.repeat,
                each=("each dry run (bench/each.toml)", lambda: tool(EACH)),
                each_floor=("bare GROUP BY (floor_each.sql)", lambda: floor("floor_each.sql")),
            )
            lines.append(_line("each", found["each"], found["each_floor"], *size))
        lines.append(f"after: {_load()}")
        print("\n".join(lines))
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
