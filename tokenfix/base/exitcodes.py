"""Exit codes (docs/output.md). The one mapping from an exception to its code is
errors.exit_code_for."""

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
    SIGNAL_BASE = 128
    """Ended by signal N: 128 + N (SIGHUP 129, SIGINT 130, SIGTERM 143)."""
