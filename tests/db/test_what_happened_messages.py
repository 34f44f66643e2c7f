"""Messages say what happened (docs/output.md): a terminated backend is our connection being
terminated, not a server shutdown; a mapping function that writes is the expression trying to
write (exit 2), not a read-only database."""

from __future__ import annotations

import psycopg
import pytest

from tokenfix.base.errors import from_database_error
from tokenfix.base.exitcodes import ExitCode
from tokenfix.config.settings import Settings
from tokenfix.db.session import connect


def test_a_terminated_backend_is_our_connection_terminated(
    conn: psycopg.Connection, settings: Settings
) -> None:
    with connect(settings) as tool:
        pid = tool.info.backend_pid
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(psycopg.Error) as raised:
            tool.execute("SELECT 1")
    error = from_database_error(raised.value)
    assert error.exit_code == ExitCode.ENVIRONMENT
    assert error.message.startswith(
        "our connection was terminated (by an administrator or a pooler)"
    ), error.message
    assert "shut down" not in error.message
