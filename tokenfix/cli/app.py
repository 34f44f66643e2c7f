"""The Typer application, and `run()`: every failure ends as one line on stderr and its code."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import Annotated, NoReturn

import typer

from tokenfix import __version__
from tokenfix.base.exitcodes import ExitCode
from tokenfix.base.signals import Interrupted
from tokenfix.cli import envelope, helptext, metricsfile

app = typer.Typer(
    name="tokenfix",
    help="Diagnose and safely reconcile cached token balances against their usage ledger.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)

helptext.install()

_state: dict[str, bool] = {"debug": False}


def enable_debug(debug: bool) -> None:
    _state["debug"] = _state["debug"] or debug


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
    enable_debug(debug)


def error_line(message: str) -> None:
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
    envelope.start(args)
    metricsfile.start(args)
    code = _command(args)
    metricsfile.finish(code)  # every exit, a usage error included (docs/monitoring.md)
    return code


def _command(args: list[str]) -> int:
    quiet_library_logs("--debug" in args)
    click_error = _click_exception_base()
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="tokenfix", standalone_mode=False)
        # Output still buffered must meet a closed pipe here, not at interpreter exit.
        sys.stdout.flush()
    except click_error as exc:
        return _usage_error(exc)
    except Interrupted as exc:
        return fail(f"{exc}; {exc.detail}" if exc.detail else str(exc), exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        error_line("interrupted by SIGINT")
        return ExitCode.SIGNAL_BASE + signal.SIGINT
    except BrokenPipeError:
        return stdout_closed()
    except SystemExit as exc:
        # Typer turns a closed stdout into sys.exit(1) from inside its handler of the
        # BrokenPipeError: the exception it handled is the one to judge by.
        if isinstance(exc.__context__, BrokenPipeError):
            return stdout_closed()
        raise
    except Exception as exc:
        return _failure(exc)
    return int(result) if isinstance(result, int) else ExitCode.OK


def stdout_closed() -> int:
    """The reader of stdout went away (`| head`): end quietly, as a shell expects.

    128 + SIGPIPE (141) is what a shell reports for a program its pipe ended, so `set -o
    pipefail` scripts see the output was cut. Python ignores SIGPIPE, so we say it ourselves,
    and point stdout at /dev/null so nothing buffered complains at exit.
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return ExitCode.SIGNAL_BASE + signal.SIGPIPE


def quiet_library_logs(debug: bool) -> None:
    """psycopg logs what it ignores while unwinding (a rollback on a connection an interrupt
    left mid-statement): internals, not news for the operator. Shown with --debug."""
    logger = logging.getLogger("psycopg")
    logger.propagate = debug
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())


def fail(message: str, code: int) -> int:
    """One line on stderr; with --json or --format jsonl also one JSON object on stdout, so
    that a log a cron job appends to shows the failure too (docs/monitoring.md)."""
    error_line(message)
    output = envelope.mode()
    if output is not None:
        from tokenfix.render import json

        shown = " ".join(message.split())
        line = output == "jsonl"
        found = json.error(shown, code, envelope.envelope(), line=line, run_id=envelope.run_id())
        sys.stdout.write(found + "\n")
        sys.stdout.flush()
    return code


def declined(message: str, code: int) -> int:
    """The operator said no at the prompt: not an error, one plain line (and the JSON object
    a --json or jsonl reader expects)."""
    sys.stderr.write(f"{' '.join(message.split())}\n")
    sys.stderr.flush()
    output = envelope.mode()
    if output is not None:
        from tokenfix.render import json

        line = output == "jsonl"
        found = json.error(message, code, envelope.envelope(), line=line, run_id=envelope.run_id())
        sys.stdout.write(found + "\n")
        sys.stdout.flush()
    return code


def _usage_error(exc: BaseException) -> int:
    if type(exc).__name__ == "NoArgsIsHelpError":
        return ExitCode.BAD_INPUT
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    context = getattr(exc, "ctx", None)
    where = f" (see '{context.command_path} --help')" if context is not None else ""
    return fail(f"{message}{where}", int(getattr(exc, "exit_code", ExitCode.BAD_INPUT)))


def _failure(exc: Exception) -> int:
    import psycopg

    from tokenfix.base.errors import Declined, TokenfixError, exit_code_for, from_database_error

    shown: Exception = from_database_error(exc) if isinstance(exc, psycopg.Error) else exc
    if _state["debug"]:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(shown, Declined):
        return declined(str(shown), exit_code_for(shown))
    if isinstance(shown, TokenfixError):
        return fail(str(shown), exit_code_for(shown))
    message = f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)"
    return fail(message, exit_code_for(shown))


def main() -> NoReturn:
    sys.exit(run())
