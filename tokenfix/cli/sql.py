"""`tokenfix sql [NAME]`: the SQL shipped with the tool, for psql runbooks."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tokenfix.base.exitcodes import ExitCode
from tokenfix.cli.app import app, enable_debug
from tokenfix.cli.options import DebugOption, examples


@app.command(
    epilog=examples(
        "tokenfix sql",
        'tokenfix sql record_counts | psql "$TOKENFIX_DATABASE_URL" -v user_id="$USER_ID" -f -',
        "tokenfix sql fix-user-token-balance > fix-user-token-balance.sql",
        'psql -f "$(tokenfix sql schema --path)"   # load the schema into an empty database',
    ),
)
def sql(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="[NAME]", help="A file to print (see the list).", show_default=False
        ),
    ] = None,
    path: Annotated[
        bool, typer.Option("--path", help="Print the file's path instead of its text.")
    ] = False,
    debug: DebugOption = False,
) -> None:
    """List the SQL files shipped with tokenfix (the schema, the diagnostic queries, the
    runbook script), or print one, so an installed tool carries its psql fallback too.

    A printed script has its includes written in place: it runs as it is, saved anywhere or
    piped to `psql -f -`. Unknown NAME: exit 2.
    """
    enable_debug(debug)
    from tokenfix.base.errors import BadInput
    from tokenfix.base.resources import SQL_FILES, find_sql, standalone_text

    if name is None:
        width = max(len(item.name) for item in SQL_FILES)
        for item in SQL_FILES:
            shown = str(item.path) if path else item.purpose
            sys.stdout.write(f"{item.name:<{width}}  {shown}\n")
        raise typer.Exit(ExitCode.OK)
    found = find_sql(name)
    if found is None:
        names = ", ".join(item.name for item in SQL_FILES)
        raise BadInput(f"no SQL file called {name!r}; the files are: {names}")
    sys.stdout.write(f"{found.path}\n" if path else standalone_text(found))
    raise typer.Exit(ExitCode.OK)
