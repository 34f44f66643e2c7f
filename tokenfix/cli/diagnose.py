"""`tokenfix diagnose USER_ID`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tokenfix.base.exitcodes import ExitCode
from tokenfix.cli.app import app, enable_debug, error_line
from tokenfix.cli.formats import Format, FormatOption, chosen, write
from tokenfix.cli.options import (
    DatabaseUrlOption,
    DebugOption,
    EnvFileOption,
    JsonOption,
    MappingOption,
    QuietOption,
    StartingBalanceOption,
    examples,
    inputs,
    warning_line,
)


@app.command(
    epilog=examples(
        "tokenfix diagnose 3f0c…-…-…",
        "tokenfix diagnose $USER_ID --ledger 20",
        "tokenfix diagnose $USER_ID --json | jq .drift",
    ),
)
def diagnose(
    user_id: Annotated[
        str,
        typer.Argument(
            metavar="USER_ID", help="The owner's key (a UUID by default).", show_default=False
        ),
    ],
    ledger: Annotated[
        int,
        typer.Option(
            "--ledger", min=0, help="Also show the last N ledger rows with a running balance."
        ),
    ] = 0,
    mapping: MappingOption = None,
    database_url: DatabaseUrlOption = None,
    env_file: EnvFileOption = None,
    starting_balance: StartingBalanceOption = None,
    json_output: JsonOption = False,
    output_format: FormatOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """What the ledger says, what the cache says, how they differ, and why.

    Exit 0 when the balance is right, 1 on drift or a missing profile row,
    2 for a malformed or unknown user id, 3 when the database cannot be used.
    """
    enable_debug(debug)
    from tokenfix.audit.adjust import adjustments_of
    from tokenfix.db import session
    from tokenfix.diagnosis.report import diagnose as run_diagnosis
    from tokenfix.render.adjust import adjustments_json, adjustments_lines

    fmt = chosen(json_output, output_format)
    json_output = fmt is Format.json

    settings, the_mapping, starting = inputs(
        mapping, starting_balance, database_url=database_url, env_file=env_file
    )
    with session.connect(settings) as conn:
        result = run_diagnosis(
            conn,
            settings,
            user_id,
            ledger_rows=ledger,
            mapping=the_mapping,
            starting_balance=starting,
            on_warning=None if quiet else warning_line,
        )
        found = (
            adjustments_of(conn, settings, result.user_id) if result.status != "not_found" else []
        )
    if json_output:
        from tokenfix.cli.envelope import envelope
        from tokenfix.render import json

        document = json.diagnosis(result, envelope())
        if found:  # support adjustments with their reasons, where the audit knows them
            document["adjustments"] = adjustments_json(found)
        sys.stdout.write(json.dumps(document) + "\n")
    elif fmt in (Format.jsonl, Format.csv):
        from tokenfix.cli.envelope import envelope
        from tokenfix.render import json

        write(fmt, json.diagnosis(result, envelope()), line_type="diagnosis")
    if result.status == "not_found":
        error_line(f"user {result.user_id} not found: no profile row and no ledger rows")
        raise typer.Exit(ExitCode.BAD_INPUT)
    if fmt is Format.table and not quiet:
        from tokenfix.render.console import make_consoles
        from tokenfix.render.diagnosis import render_diagnosis

        render_diagnosis(make_consoles()[0], result)
        for line in adjustments_lines(found):
            sys.stdout.write(line + "\n")
    raise typer.Exit(ExitCode.OK if result.status == "ok" else ExitCode.ATTENTION)
