"""`tokenfix history` and `tokenfix revert RUN_ID`: the audit trail of writing runs."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tokenfix.cli.app import app, enable_debug
from tokenfix.cli.options import (
    DatabaseUrlOption,
    DebugOption,
    EnvFileOption,
    JsonOption,
    MappingOption,
    QuietOption,
    ask,
    examples,
    inputs,
    note_line,
    stdin_is_interactive,
)
from tokenfix.errors import BadInput
from tokenfix.exitcodes import ExitCode
from tokenfix.words import plural

UserOption = Annotated[
    str | None,
    typer.Option(
        "--user",
        metavar="KEY",
        help="One owner (a user id by default; the mapping's key otherwise).",
        show_default=False,
    ),
]


@app.command(
    epilog=examples(
        "tokenfix history",
        "tokenfix history --limit 5 --json | jq '.runs[0].run_id'",
    ),
)
def history(
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many runs to list.")] = 20,
    mapping: MappingOption = None,
    database_url: DatabaseUrlOption = None,
    env_file: EnvFileOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """List past writing runs (reconcile and revert), newest first, from the audit trail."""
    enable_debug(debug)
    from tokenfix import audit, db

    settings, _, _ = inputs(mapping, database_url=database_url, env_file=env_file)
    with db.connect(settings) as conn:
        runs = audit.history(conn, settings, limit)
    if json_output:
        from tokenfix.cli.envelope import envelope
        from tokenfix.render import json

        sys.stdout.write(json.dumps(json.history(runs, envelope())) + "\n")
    elif not quiet:
        from tokenfix.render.console import make_consoles
        from tokenfix.render.runs import render_history

        render_history(make_consoles()[0], runs)
    raise typer.Exit(ExitCode.OK)


@app.command(
    epilog=examples(
        "tokenfix revert 0b9d5c1e-…  # asks first on a terminal",
        "tokenfix revert $RUN_ID --dry-run          # what it would put back, and leave alone",
        "tokenfix revert $RUN_ID --user $USER_ID --yes --json",
    ),
)
def revert(
    run_id: Annotated[
        str, typer.Argument(metavar="RUN_ID", help="A run id from 'tokenfix history'.")
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Revert without asking.")] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Show what would be put back and what left alone (and why); write nothing, "
            "take no lock (works on a standby).",
        ),
    ] = False,
    user: UserOption = None,
    mapping: MappingOption = None,
    database_url: DatabaseUrlOption = None,
    env_file: EnvFileOption = None,
    json_output: JsonOption = False,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """Put back the values a run replaced, where the rows still hold what it wrote.

    Rows changed since the run are reported and left alone; a profile the run created is
    deleted under the same rule. The revert is itself audited. --user reverts one owner's
    rows only (an owner the run never changed: exit 2). --dry-run applies the same checks
    read-only. Exit 0 when every row was (or would be) reverted, 1 when some were (or would
    be) left alone, 2 for an unknown run, 3 for database trouble.
    """
    enable_debug(debug)
    from tokenfix import db
    from tokenfix.reverting import parse_run_id
    from tokenfix.reverting import revert as run_revert

    target = parse_run_id(run_id)
    if not dry_run and not yes and not stdin_is_interactive():
        raise BadInput(
            "refusing to write without --yes when not on a terminal"
            " (--dry-run shows what it would do)"
        )
    settings, the_mapping, _ = inputs(mapping, database_url=database_url, env_file=env_file)

    def confirm(rows: int) -> bool:
        whose = f" of user {user}" if user is not None else ""
        sys.stderr.write(f"Run {target} wrote {plural(rows, 'row')}{whose}.\n")
        return ask("Put back the values it replaced?", timeout=settings.prompt_timeout)

    with db.connect(settings) as conn:
        outcome = run_revert(
            conn,
            settings,
            target,
            mapping=the_mapping,
            confirm=None if yes or dry_run else confirm,
            dry_run=dry_run,
            user=user,
        )
    if outcome.already_reverted_by and not quiet:
        note_line(f"run {target} was already reverted by run {outcome.already_reverted_by}")
    if json_output:
        from tokenfix.cli.envelope import envelope
        from tokenfix.render import json

        json.write_revert(sys.stdout, outcome, envelope())
    elif not quiet:
        from tokenfix.render.console import make_consoles
        from tokenfix.render.runs import render_revert

        render_revert(make_consoles()[0], outcome)
    outcome.close()
    raise typer.Exit(ExitCode.ATTENTION if outcome.rows_left_alone else ExitCode.OK)
