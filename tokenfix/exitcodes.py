"""Exit codes (SPEC §5) and the one function that maps an exception to its code."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    """Nothing needs attention."""
    ATTENTION = 1
    """Drift or missing profiles found and not (all) fixed; doctor: warnings only."""
    BAD_INPUT = 2
    """Malformed UUID, unknown user or run, bad option or setting, refusing to write."""
    ENVIRONMENT = 3
    """Cannot connect, missing table/column, permission denied, lock held, timeout."""


def exit_code_for(exc: BaseException) -> ExitCode:
    """The §5 exit code for an exception that ended a command.

    Our own errors carry their code; anything else that escapes a command (a database
    error we did not anticipate, an OS error) is trouble with the environment.
    """
    from tokenfix.errors import TokenfixError

    if isinstance(exc, TokenfixError):
        return exc.exit_code
    return ExitCode.ENVIRONMENT
