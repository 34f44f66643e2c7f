"""Which way tokenfix gives way in a lock cycle with the app (docs/safety.md, yielding.py)."""

from __future__ import annotations

from tokenfix.db import yielding
from tokenfix.health.report import Check, Context, ok


def deadlock_victim(context: Context) -> list[Check]:
    way = yielding.decide(context.conn, context.settings)
    message = way.describe()
    if way.strategy == "lock_timeout" and context.conn.info.server_version >= 150000:
        message += (
            "; GRANT SET ON PARAMETER deadlock_timeout TO this role lets PostgreSQL pick "
            "tokenfix as the victim directly"
        )
    # Either way the app is never the victim: a note, not a warning.
    return [ok("deadlock_victim", message)]
