"""`tokenfix mapping` and `tokenfix init`: the mapping in effect, and a draft for a new schema."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tokenfix.base.errors import BadInput
from tokenfix.base.exitcodes import ExitCode
from tokenfix.cli.app import app, enable_debug
from tokenfix.cli.options import (
    DatabaseUrlOption,
    DebugOption,
    EnvFileOption,
    MappingOption,
    examples,
    inputs,
    load,
    note_line,
)


@app.command(
    name="mapping",
    epilog=examples(
        "tokenfix mapping                     # the default mapping, from the TOKENFIX_* settings",
        "tokenfix mapping > tokenfix.toml     # a file to edit, then picked up from this directory",
        "tokenfix mapping --mapping wallets.toml",
    ),
)
def mapping_command(
    mapping: MappingOption = None,
    env_file: EnvFileOption = None,
    debug: DebugOption = False,
) -> None:
    """Print the mapping in effect as TOML: where the balances and the ledger live
    (docs/mapping.md).

    Whatever its source (--mapping, TOKENFIX_MAPPING, ./tokenfix.toml, or the TOKENFIX_*
    settings), with comments saying where it came from. Needs no database.
    """
    enable_debug(debug)
    from tokenfix.mapping.file import to_toml

    settings, the_mapping, _ = inputs(mapping, env_file=env_file)
    sys.stdout.write(to_toml(the_mapping, settings))
    raise typer.Exit(ExitCode.OK)


@app.command(
    epilog=examples(
        "tokenfix init                        # a draft on stdout",
        "tokenfix init --output tokenfix.toml # then edit it; tokenfix picks it up from here",
    ),
)
def init(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="PATH", help="Write the draft here instead of stdout."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite --output if it exists.")
    ] = False,
    database_url: DatabaseUrlOption = None,
    env_file: EnvFileOption = None,
    debug: DebugOption = False,
) -> None:
    """Read the catalogs and draft a mapping for this database, every guess marked as one.

    Finds the likely balance table (numeric columns named like credits, balance, tokens,
    quota, remaining or used, and a unique key) and the likely ledger tables (a column that
    matches the key, an amount, a time), with guessed expressions for the operator to check.
    Exit 0 with a draft, 1 when no plausible balance table exists, 2 if --output exists.
    """
    enable_debug(debug)
    from tokenfix.db import session
    from tokenfix.mapping.draft import draft

    if output is not None and output.exists() and not force:
        raise BadInput(f"{output} exists; pass --force to overwrite it")
    settings = load(env_file=env_file, database_url=database_url)
    with session.connect(settings) as conn:
        found = draft(conn, settings)
    if found is None:
        sys.stderr.write(
            "no plausible balance table found: no table has a unique key and a numeric column "
            "named like a balance (credits, balance, tokens, quota, remaining, used)\n"
        )
        raise typer.Exit(ExitCode.ATTENTION)
    if output is None:
        sys.stdout.write(found)
    else:
        output.write_text(found, encoding="utf-8")
        note_line(f"wrote a draft mapping to {output}: check every line marked 'guess'")
    raise typer.Exit(ExitCode.OK)
