"""Errors a user can cause or meet, each carrying its exit code and a one-line message."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from tokenfix.base.exitcodes import ExitCode
from tokenfix.base.signals import Interrupted

if TYPE_CHECKING:
    import psycopg


class TokenfixError(Exception):
    """An error with a message fit for one line on stderr."""

    exit_code: ClassVar[ExitCode] = ExitCode.ENVIRONMENT

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class BadInput(TokenfixError):
    """Malformed argument, bad option mix, bad setting, unknown user or run."""

    exit_code = ExitCode.BAD_INPUT


class DatabaseProblem(TokenfixError):
    """The database is unreachable, incomplete, locked or refuses us."""

    exit_code = ExitCode.ENVIRONMENT


class MissingObject(DatabaseProblem):
    """A table or column the tool needs does not exist."""


class LockHeld(DatabaseProblem):
    """Another writing run holds the single-writer lease."""


class LeaseLost(DatabaseProblem):
    """Our lease expired and another run took it: stop writing."""


class Declined(TokenfixError):
    """The operator answered no (or nothing) at the confirmation prompt: nothing written."""

    exit_code = ExitCode.ATTENTION


def exit_code_for(exc: BaseException) -> int:
    """The exit code for an exception that ended a command (the one table of them).

    Our own errors carry their code, a signal is 128 + its number; anything else that
    escapes a command (a database error we did not anticipate, an OS error) is trouble with
    the environment.
    """
    if isinstance(exc, Interrupted):
        return exc.exit_code
    if isinstance(exc, TokenfixError):
        return exc.exit_code
    return ExitCode.ENVIRONMENT


_BY_SQLSTATE: dict[str, tuple[str, str | None]] = {
    "53100": ("the database server is out of disk space", "free disk space on the server"),
    "53200": ("the database server is out of memory", "lower TOKENFIX_WORK_MEM or retry"),
    "53300": ("the database server has no free connection slots", "retry later"),
    # pg_terminate_backend, a pooler dropping its server connection and a fast shutdown all
    # say 57P01; what we know is that our connection ended, not that the server did.
    "57P01": (
        "our connection was terminated (by an administrator or a pooler)",
        "re-run; if the server is restarting, re-run when it is back",
    ),
    "57P02": ("the server crashed", "re-run when it is back"),
    "57P03": ("the server is not accepting connections yet", "retry in a moment"),
    "25P03": (
        "the server ended the transaction after it sat idle past TOKENFIX_IDLE_TIMEOUT",
        "the tool was stopped or too slow; re-run",
    ),
    "22003": (
        "a number is out of range for its column type",
        "a balance or amount does not fit its column; check the values (and"
        " --starting-balance) against the column types ('tokenfix doctor')",
    ),
}


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else text.strip()


def _primary(exc: psycopg.Error) -> str:
    primary = exc.diag.message_primary if exc.diag else None
    return first_line(primary or str(exc))


def from_database_error(exc: psycopg.Error) -> TokenfixError:
    """Translate a psycopg error into the message an operator can act on."""
    # Imported here so that `--help` and the error classes never load psycopg.
    import psycopg
    from psycopg import errors as pg_errors

    primary = _primary(exc)
    if isinstance(exc, pg_errors.UndefinedTable | pg_errors.UndefinedColumn):
        return MissingObject(
            primary,
            hint="check the TOKENFIX_*_TABLE / *_COLUMN settings, or run 'tokenfix doctor'",
        )
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return DatabaseProblem(
            f"permission denied: {primary}",
            hint="connect as a role with the needed privileges; 'tokenfix doctor' lists them",
        )
    if isinstance(exc, pg_errors.LockNotAvailable):
        return DatabaseProblem(
            f"lock timeout: {primary}",
            hint="another session holds the rows; retry later or raise TOKENFIX_LOCK_TIMEOUT",
        )
    if isinstance(exc, pg_errors.QueryCanceled):
        return DatabaseProblem(
            f"statement cancelled: {primary}",
            hint="raise TOKENFIX_STATEMENT_TIMEOUT or narrow the run with --since / user ids",
        )
    if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
        return DatabaseProblem(
            f"the database is read-only: {primary}", hint="connect to the primary to write"
        )
    by_state = _BY_SQLSTATE.get(exc.sqlstate or "")
    if by_state is not None:
        what, hint = by_state
        return DatabaseProblem(f"{what}: {primary}", hint=hint)
    if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
        return DatabaseProblem(
            f"lost the connection to the database: {primary}",
            hint="the server restarted, the network dropped, or the tool was stopped for longer "
            "than TOKENFIX_IDLE_TIMEOUT; re-run",
        )
    sqlstate = f" [{exc.sqlstate}]" if exc.sqlstate else ""
    return DatabaseProblem(f"database error{sqlstate}: {primary}")
