"""Where we are connected, as whom, and through what."""

from __future__ import annotations

from tokenfix import queries
from tokenfix.health.report import Check, Context, Tables, ok, warn


def connection(context: Context) -> list[Check]:
    row = context.conn.execute(queries.get("doctor_server")).fetchone()
    assert row is not None
    keys = (
        "server_version",
        "role",
        "superuser",
        "bypasses_rls",
        "standby",
        "server_port",
        "database",
        "tls",
        "tls_version",
    )
    context.server = dict(zip(keys, row, strict=True))
    context.tables = Tables.load(context.conn, context.mapping)
    s = context.server
    who = (
        "superuser"
        if s["superuser"]
        else ("bypasses RLS" if s["bypasses_rls"] else "subject to RLS")
    )
    tls = f"TLS {s['tls_version']}" if s["tls"] else "no TLS"
    message = (
        f"PostgreSQL {s['server_version']}, database {s['database']}, role {s['role']} ({who}), "
        f"{tls}"
    )
    if s["standby"]:
        return [
            warn(
                "connection",
                message + "; this is a read-only standby",
                "dry runs work here; connect to the primary to write",
            )
        ]
    return [ok("connection", message)]


def pooler(context: Context) -> list[Check]:
    # What the connection really dialled: the URL may be empty when PG* variables route us.
    dialled = str(context.conn.info.port)
    server_port = context.server.get("server_port")
    host = context.conn.info.host
    if dialled == "6543":
        found = "Supabase's transaction pooler (port 6543)"
    elif server_port is not None and not host.startswith("/") and str(server_port) != dialled:
        found = f"a pooler or proxy (dialled port {dialled}, the server listens on {server_port})"
    else:
        return [ok("pooler", "no connection pooler detected (direct connection)")]
    return [
        ok(
            "pooler",
            f"{found}: supported — tokenfix uses no prepared statements, sets "
            "timeouts per transaction and locks with a lease row",
        )
    ]
