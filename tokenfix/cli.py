"""The command line: parse options, call the core, render. No SQL here."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn

import typer

from tokenfix import __version__
from tokenfix.exitcodes import ExitCode, exit_code_for

app = typer.Typer(
    name="tokenfix",
    help="Diagnose and safely reconcile cached token balances against their usage ledger.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

_state: dict[str, bool] = {"debug": False}

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        "-d",
        help="PostgreSQL URL (default: TOKENFIX_DATABASE_URL, DATABASE_URL, or .env). "
        "Prefer .env: a URL on the command line ends up in shell history.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine output (JSON) on stdout.")]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No human output; the exit code tells.")
]
StartingBalanceOption = Annotated[
    int | None,
    typer.Option(
        "--starting-balance",
        help="Tokens every user starts with (default: TOKENFIX_STARTING_BALANCE, else 0).",
        show_default=False,
    ),
]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks.", hidden=True)]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tokenfix {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """tokenfix: when a cached balance and its ledger disagree on a live Postgres.

    Exit codes: 0 nothing needs attention, 1 attention needed, 2 bad input, 3 environment.
    """
    _state["debug"] = _state["debug"] or debug


def _settings(**flags: Any) -> Any:
    from tokenfix.settings import load_settings

    return load_settings(**flags)


@app.command(
    epilog="[bold]Examples[/bold]\n\n"
    "  tokenfix diagnose 3f0c…-…-…\n\n"
    "  tokenfix diagnose $USER_ID --ledger 20\n\n"
    "  tokenfix diagnose $USER_ID --json | jq .drift",
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
    _state["debug"] = _state["debug"] or debug
    from tokenfix import db
    from tokenfix.diagnose import diagnose as run_diagnosis
    from tokenfix.diagnose import parse_user_id
    from tokenfix.render import diagnosis_json, dump_json, make_consoles, render_diagnosis

    uid = parse_user_id(user_id)
    settings = _settings(database_url=database_url, starting_balance=starting_balance)
    with db.connect(settings) as conn:
        result = run_diagnosis(conn, settings, uid, ledger_rows=ledger)
    out, _ = make_consoles()
    if json_output:
        sys.stdout.write(dump_json(diagnosis_json(result)) + "\n")
    if result.status == "not_found":
        _error_line(f"user {uid} not found: no profile row and no ledger rows")
        raise typer.Exit(ExitCode.BAD_INPUT)
    if not json_output and not quiet:
        render_diagnosis(out, result)
    raise typer.Exit(ExitCode.OK if result.status == "ok" else ExitCode.ATTENTION)


def _error_line(message: str) -> None:
    # Plain write, not rich: one line, never wrapped, never read as markup.
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    sys.stderr.flush()


def _click_exception_base() -> type[BaseException]:
    # Typer vendors click in some versions; find its base exception without importing privately.
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == "ClickException":
            return cls
    return Exception  # pragma: no cover


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code; every failure ends as one line on stderr."""
    _state["debug"] = False
    args = list(sys.argv[1:] if argv is None else argv)
    click_error = _click_exception_base()
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="tokenfix", standalone_mode=False)
    except click_error as exc:
        return _usage_error(exc)
    except (KeyboardInterrupt, typer.Abort):
        _error_line("interrupted")
        return 130
    except Exception as exc:
        return _failure(exc)
    return int(result) if isinstance(result, int) else ExitCode.OK


def _usage_error(exc: BaseException) -> int:
    if type(exc).__name__ == "NoArgsIsHelpError":
        return ExitCode.BAD_INPUT
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    context = getattr(exc, "ctx", None)
    where = f" (see '{context.command_path} --help')" if context is not None else ""
    _error_line(f"{message}{where}")
    return int(getattr(exc, "exit_code", ExitCode.BAD_INPUT))


def _failure(exc: Exception) -> int:
    import psycopg

    from tokenfix.errors import TokenfixError, from_database_error

    shown: Exception = from_database_error(exc) if isinstance(exc, psycopg.Error) else exc
    if _state["debug"]:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(shown, TokenfixError):
        _error_line(str(shown))
    else:
        _error_line(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
    return exit_code_for(shown)


def main() -> NoReturn:
    sys.exit(run())
