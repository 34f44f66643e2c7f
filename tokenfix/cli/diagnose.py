"""`tokenfix diagnose USER_ID`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tokenfix.cli.app import app, enable_debug, error_line
from tokenfix.cli.options import (
    DatabaseUrlOption,
    DebugOption,
    JsonOption,
    QuietOption,
    StartingBalanceOption,
    examples,
    load,
)
from tokenfix.exitcodes import ExitCode


@app.command(
    epilog=examples(
        "tokenfix diagnose 3f0c…-…-…",
        "tokenfix diagnose $USER_ID --ledger 20",
        "tokenfix diagnose $USER_ID --json | jq .drift",
    ),
)
def diagnose(
    user_id: Annotated[
        str, typer.Argument(metavar="USER_ID", help="The user's id (a UUID).", show_default=False)
    ],
    ledger: Annotated[
        int,
        typer.Option(
            "--ledger", min=0, help="Also show the last N ledger rows with a running balance."
        ),
    ] = 0,
    database_url: DatabaseUrlOption = None,
    starting_balance: StartingBalanceOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """What the ledger says, what the cache says, how they differ, and why.

    Exit 0 when the balance is right, 1 on drift or a missing profile row,
    2 for a malformed or unknown user id, 3 when the database cannot be used.
    """
    enable_debug(debug)
    from tokenfix import db
    from tokenfix.diagnose import diagnose as run_diagnosis
    from tokenfix.diagnose import parse_user_id
    from tokenfix.render import dump_json, make_consoles
    from tokenfix.render.diagnosis import diagnosis_json, render_diagnosis

    uid = parse_user_id(user_id)
    settings = load(database_url=database_url, starting_balance=starting_balance)
    with db.connect(settings) as conn:
        result = run_diagnosis(conn, settings, uid, ledger_rows=ledger)
    out, _ = make_consoles()
    if json_output:
        sys.stdout.write(dump_json(diagnosis_json(result)) + "\n")
    if result.status == "not_found":
        error_line(f"user {uid} not found: no profile row and no ledger rows")
        raise typer.Exit(ExitCode.BAD_INPUT)
    if not json_output and not quiet:
        render_diagnosis(out, result)
    raise typer.Exit(ExitCode.OK if result.status == "ok" else ExitCode.ATTENTION)
