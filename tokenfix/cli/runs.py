"""`tokenfix history` and `tokenfix revert RUN_ID`: the audit trail of writing runs."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from tokenfix.base.errors import BadInput
from tokenfix.base.exitcodes import ExitCode
from tokenfix.base.words import plural
from tokenfix.cli.app import app, enable_debug
from tokenfix.cli.formats import Format, FormatOption, chosen, write
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
    warning_line,
)

if TYPE_CHECKING:
    import uuid

    from tokenfix.config.settings import Settings
    from tokenfix.mapping.types import Mapping

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
        "tokenfix history --user $USER_ID          # every change to one user, newest first",
        "tokenfix history $RUN_ID --json | jq '.changes[].user_id'",
    ),
)
def history(
    run_id: Annotated[
        str | None,
        typer.Argument(
            metavar="[RUN_ID]",
            help="Show the rows this run wrote (with --user: that owner's only).",
            show_default=False,
        ),
    ] = None,
    user: UserOption = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            min=1,
            help="How many runs to list (default 20); with RUN_ID or --user, how many rows "
            "(default all).",
            show_default=False,
        ),
    ] = None,
    mapping: MappingOption = None,
    database_url: DatabaseUrlOption = None,
    env_file: EnvFileOption = None,
    json_output: JsonOption = False,
    output_format: FormatOption = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> None:
    """List past writing runs (reconcile and revert), newest first, from the audit trail.

    With --user, every change the tool made to that owner instead, newest first, reverts
    included: run, when, the written columns before and after, and which revert put it back.
    With RUN_ID, the rows that run wrote. Read-only (a standby serves it). Exit 0; 2 for a
    malformed key or run id, or an unknown run.
    """
    enable_debug(debug)
    from tokenfix.db import session

    fmt = chosen(json_output, output_format)
    json_output = fmt is Format.json
    target = None
    if run_id is not None:
        from tokenfix.audit.revert import parse_run_id

        target = parse_run_id(run_id)
    settings, the_mapping, _ = inputs(mapping, database_url=database_url, env_file=env_file)
    if target is not None:
        _run_history(settings, the_mapping, target, user, limit, fmt, quiet)
    elif user is not None:
        _owner_history(settings, the_mapping, user, limit, fmt, quiet)
    else:
        from tokenfix.audit import trail

        with session.connect(settings) as conn:
            runs = trail.history(conn, settings, limit or 20)
        if json_output:
            from tokenfix.cli.envelope import envelope
            from tokenfix.render import json

            sys.stdout.write(json.dumps(json.history(runs, envelope())) + "\n")
        elif fmt is not Format.table:
            from tokenfix.cli.envelope import envelope
            from tokenfix.render import json

            write(fmt, envelope(), (json.run_entry(run) for run in runs), line_type="run")
        elif not quiet:
            from tokenfix.render.console import make_consoles
            from tokenfix.render.runs import render_history

            render_history(make_consoles()[0], runs)
    raise typer.Exit(ExitCode.OK)


def _owner_history(
    settings: Settings,
    the_mapping: Mapping,
    user: str,
    limit: int | None,
    fmt: Format,
    quiet: bool,
) -> None:
    from tokenfix.audit.history import owner_history
    from tokenfix.db import session

    with session.connect(settings) as conn:
        found = owner_history(conn, settings, user, mapping=the_mapping, limit=limit)
    if found.elsewhere and not quiet:
        shown = ", ".join(f"{table} ({count})" for table, count in found.elsewhere.items())
        note_line(
            f"changes to key {found.key} in other balance tables are not shown: {shown}; "
            "they are another owner's (see them with --mapping)"
        )
    if fmt is Format.json:
        from tokenfix.cli.envelope import envelope
        from tokenfix.render import json

        json.write_owner_history(sys.stdout, found, envelope())
    elif fmt is not Format.table:
        from tokenfix.cli.envelope import envelope
        from tokenfix.render import json

        head = {**envelope(), "user_id": found.key}
        write(fmt, head, (json.audited_change(c) for c in found.changes), line_type="change")
    elif not quiet:
        from tokenfix.render.console import make_consoles
        from tokenfix.render.runs import render_owner_history

        render_owner_history(make_consoles()[0], found)


def _run_history(
    settings: Settings,
    the_mapping: Mapping,
    run_id: uuid.UUID,
    user: str | None,
    limit: int | None,
    fmt: Format,
    quiet: bool,
) -> None:
    from tokenfix.audit.history import run_history
    from tokenfix.db import session

    with session.connect(settings) as conn:
        found = run_history(conn, settings, run_id, user=user, mapping=the_mapping, limit=limit)
    try:
        if fmt is Format.json:
            from tokenfix.cli.envelope import envelope
            from tokenfix.render import json

            json.write_run_history(sys.stdout, found, envelope())
        elif fmt is not Format.table:
            from tokenfix.cli.envelope import envelope
            from tokenfix.render import json

            head = {**envelope(), "run": json.run_entry(found.run), "user_id": found.key}
            changes = (json.audited_change(c) for c in found.changes)
            write(fmt, head, changes, line_type="change")
        elif not quiet:
            from tokenfix.render.console import make_consoles
            from tokenfix.render.runs import render_run_history

            render_run_history(make_consoles()[0], found)
    finally:
        found.close()


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
    output_format: FormatOption = None,
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
    from tokenfix.audit.revert import parse_run_id
    from tokenfix.audit.revert import revert as run_revert
    from tokenfix.db import session

    fmt = chosen(json_output, output_format)
    json_output = fmt is Format.json
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

    with session.connect(settings) as conn:
        outcome = run_revert(
            conn,
            settings,
            target,
            mapping=the_mapping,
            confirm=None if yes or dry_run else confirm,
            dry_run=dry_run,
            user=user,
        )
    for warning in outcome.warnings:
        warning_line(warning)
    if outcome.already_reverted_by and not quiet:
        note_line(f"run {target} was already reverted by run {outcome.already_reverted_by}")
    if json_output:
        from tokenfix.cli.envelope import envelope
        from tokenfix.render import json

        json.write_revert(sys.stdout, outcome, envelope())
    elif fmt is not Format.table:
        from tokenfix.cli.envelope import envelope
        from tokenfix.render import json

        changes = (json.revert_change(c) for c in outcome.changes)
        write(fmt, json.revert_head(outcome, envelope()), changes, line_type="change")
    elif not quiet:
        from tokenfix.render.console import make_consoles
        from tokenfix.render.runs import render_revert

        render_revert(make_consoles()[0], outcome)
    outcome.close()
    raise typer.Exit(ExitCode.ATTENTION if outcome.rows_left_alone else ExitCode.OK)
