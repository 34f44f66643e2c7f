"""What every `tokenfix` process pays before it touches the database (docs/performance.md).

    flock /work/wt/bench.lock .venv/bin/python -m bench.startup            # 10 runs each
    flock /work/wt/bench.lock .venv/bin/python -m bench.startup --repeat 20 --url postgresql://…

Times, as separate processes taken in turn (a, b, c, a, b, c, ...), `tokenfix --version`,
`tokenfix reconcile --help` and a cold `tokenfix diagnose USER --json` against a throwaway
database with the demo's sample (a server it starts itself, or the one --url names, where it
creates and drops the database `tokenfix_startup`), the package's bytecode compiled first as
an install does. Prints the median, the fastest and the slowest of each, as a Markdown table.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

from bench.measure import Run, interleaved, run_process
from tokenfix.base.resources import sql_file
from tokenfix.demo.pgserver import start_server
from tokenfix.demo.sample import STARTING_BALANCE, build_sample, telling_users

DATABASE = "tokenfix_startup"


def tokenfix_command() -> list[str]:
    """The installed script beside this interpreter, as an operator runs it."""
    script = Path(sys.executable).parent / "tokenfix"
    if script.exists():
        return [str(script)]
    found = shutil.which("tokenfix")
    return [found] if found else [sys.executable, "-m", "tokenfix"]


def with_database(admin_url: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(DATABASE)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    url = psycopg.conninfo.make_conninfo(admin_url, dbname=DATABASE)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql_file("schema.sql").read_text(encoding="utf-8"))
        build_sample(conn, users=200)
    return url


def drop_database(admin_url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(DATABASE)))


def measure(url: str, times: int) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENFIX_")}
    env |= {"TOKENFIX_DATABASE_URL": url, "TOKENFIX_STARTING_BALANCE": str(STARTING_BALANCE)}
    tool = tokenfix_command()
    user = str(next(iter(telling_users().values())))

    def once(*args: str) -> Callable[[], Run]:
        return lambda: run_process([*tool, *args], env=env)

    once("diagnose", user, "--json")()  # the server's own first-touch costs are not start-up
    found = interleaved(
        times,
        version=("`tokenfix --version`", once("--version")),
        help=("`tokenfix reconcile --help`", once("reconcile", "--help")),
        diagnose=("cold `tokenfix diagnose USER --json`", once("diagnose", user, "--json")),
    )
    lines = ["| command | median | fastest | slowest |", "|---|---:|---:|---:|"]
    for measurement in found.values():
        seconds = sorted(run.seconds for run in measurement.runs)
        median = (
            seconds[len(seconds) // 2]
            if len(seconds) % 2
            else sum(seconds[len(seconds) // 2 - 1 : len(seconds) // 2 + 1]) / 2
        )
        lines.append(
            f"| {measurement.name} | {median * 1000:.0f} ms | {seconds[0] * 1000:.0f} ms "
            f"| {seconds[-1] * 1000:.0f} ms |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="runs of each command")
    parser.add_argument("--url", help="an admin URL of a server to use instead of starting one")
    args = parser.parse_args()
    # An installed tool has its bytecode compiled at install time (pip does it); a source
    # checkout under PYTHONDONTWRITEBYTECODE would compile every module on every run.
    compileall.compile_dir(Path(__file__).resolve().parent.parent / "tokenfix", quiet=1)
    server = start_server(args.url)
    try:
        url = with_database(server.url)
        try:
            print(f"{args.repeat} runs each, {' '.join(tokenfix_command())}")
            print(measure(url, args.repeat))
        finally:
            drop_database(server.url)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
