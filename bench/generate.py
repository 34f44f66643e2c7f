"""Build a benchmark database with generate_series: schema, ledger, overrides, profiles, drift."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tokenfix.base.resources import sql_file
from tokenfix.config.settings import Settings
from tokenfix.demo.sample import set_caches_from_ledger
from tokenfix.ledger.model import Selection
from tokenfix.ledger.model import load as load_model
from tokenfix.mapping.file import load_file

HERE = Path(__file__).resolve().parent
STARTING_BALANCE = 1000


def _statements(path: Path) -> list[str]:
    """The statements of a file, one by one (each may take parameters)."""
    text = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("--"))
    return [part.strip() for part in text.split(";\n") if part.strip()]


def create_database(admin_url: str, name: str) -> str:
    from psycopg.conninfo import make_conninfo

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_conninfo(admin_url, dbname=name)


def generate(url: str, *, users: int, rows: int, log: Any = print) -> float:
    """Fill an empty database; returns the seconds it took."""
    started = time.perf_counter()
    params = {"users": users, "rows": rows}
    with psycopg.connect(url, autocommit=True) as conn:
        # A bulk load: no index maintenance, no WAL waits; the indexes come after.
        conn.execute(sql_file("schema.sql").read_text())
        conn.execute("DROP INDEX token_usage_user_id_idx, token_usage_created_at_idx")
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET maintenance_work_mem = '512MB'")
        log(f"  generating {rows:,} ledger rows for {users:,} users…")
        for statement in _statements(HERE / "sql" / "generate_ledger.sql"):
            conn.execute(statement, params)
        log("  setting every cache from the ledger, then 1% wrong…")
        _set_caches(conn, url)
        for statement in _statements(HERE / "sql" / "finish.sql"):
            conn.execute(statement, params)  # params: so that %% reads as %
        conn.execute("VACUUM (ANALYZE) token_usage, user_profiles, ai_action_token_overrides")
    return time.perf_counter() - started


def run_script(url: str, path: Path) -> None:
    """The statements of a bench/sql/ file, each in its own transaction (VACUUM included)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in _statements(path):
            conn.execute(statement, {})  # params: so that %% reads as %


def _set_caches(conn: psycopg.Connection[Any], url: str) -> None:
    settings = Settings.model_validate({"database_url": url, "starting_balance": STARTING_BALANCE})
    set_caches_from_ledger(conn, settings)


def two_sources(url: str, mapping: Path, *, users: int, rows: int) -> float:
    """credit_transactions and bench_wallets (bench/sql/generate_credits.sql): the wallets set
    from both sources by the tool's own model under `mapping`, then 1% wrong."""
    started = time.perf_counter()
    params = {"users": users, "rows": rows}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET maintenance_work_mem = '512MB'")
        for statement in _statements(HERE / "sql" / "generate_credits.sql"):
            conn.execute(statement, params)
        conn.execute("ANALYZE credit_transactions, bench_wallets")
        settings = Settings.model_validate(
            {"database_url": url, "starting_balance": STARTING_BALANCE}
        )
        model = load_model(conn, settings, load_file(mapping))
        balances, balance_params = model.balances(Selection())
        conn.execute(
            sql.SQL(
                "UPDATE bench_wallets AS w SET credits_remaining = b.expected_remaining,"
                " credits_used = b.expected_used FROM ({}) AS b WHERE w.user_id = b.key"
            ).format(balances),
            balance_params,
        )
        for statement in _statements(HERE / "sql" / "finish_credits.sql"):
            conn.execute(statement, params)
        conn.execute("VACUUM (ANALYZE) credit_transactions, bench_wallets")
    return time.perf_counter() - started


def partitioned_copy(url: str, partitions: int = 8) -> float:
    """token_usage_part: the same rows, hash-partitioned on user_id (as Citus would shard)."""
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS token_usage_part")
        conn.execute(
            "CREATE TABLE token_usage_part (LIKE token_usage INCLUDING DEFAULTS)"
            " PARTITION BY HASH (user_id)"
        )
        for remainder in range(partitions):
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} PARTITION OF token_usage_part"
                    " FOR VALUES WITH (MODULUS {}, REMAINDER {})"
                ).format(
                    sql.Identifier(f"token_usage_part_{remainder}"),
                    sql.Literal(partitions),
                    sql.Literal(remainder),
                )
            )
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("INSERT INTO token_usage_part SELECT * FROM token_usage")
        conn.execute("CREATE INDEX ON token_usage_part (user_id)")
        conn.execute("CREATE INDEX ON token_usage_part (created_at)")
        conn.execute("VACUUM (ANALYZE) token_usage_part")
    return time.perf_counter() - started
