"""Errors a user can cause or meet, each carrying its §5 exit code and a one-line message."""

from __future__ import annotations

from typing import ClassVar

import psycopg
from psycopg import errors as pg_errors

from tokenfix.exitcodes import ExitCode


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


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else text.strip()


def _primary(exc: psycopg.Error) -> str:
    primary = exc.diag.message_primary if exc.diag else None
    return first_line(primary or str(exc))


def from_database_error(exc: psycopg.Error) -> TokenfixError:
    """Translate a psycopg error into the message an operator can act on."""
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
    if isinstance(exc, psycopg.OperationalError):
        return DatabaseProblem(f"lost the connection to the database: {primary}")
    sqlstate = f" [{exc.sqlstate}]" if exc.sqlstate else ""
    return DatabaseProblem(f"database error{sqlstate}: {primary}")
