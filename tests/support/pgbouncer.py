"""A real PgBouncer in transaction mode in front of the test server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tokenfix.demo.pgserver import free_port, unprivileged_prefix

INSTALL_HINT = "PgBouncer is not installed: 'apt-get install pgbouncer' (.ci/run does this)"


def find_pgbouncer() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if Path(p).exists()), None
    )


@contextmanager
def pgbouncer(server_url: str, users: list[str]) -> Iterator[int]:
    """Start PgBouncer (transaction pooling) for `server_url`; yields its port."""
    program = find_pgbouncer()
    assert program, INSTALL_HINT
    server = conninfo_to_dict(server_url)
    base = Path(tempfile.mkdtemp(prefix="tfpgb-", dir="/tmp"))
    base.chmod(0o755)
    port = free_port()
    (base / "userlist.txt").write_text("".join(f'"{user}" ""\n' for user in users))
    (base / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={server.get("host")} port={server.get("port")}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {base}/userlist.txt
pool_mode = transaction
default_pool_size = 4
max_client_conn = 100
ignore_startup_parameters = extra_float_digits
logfile = {base}/pgbouncer.log
admin_users = postgres
"""
    )
    # PgBouncer refuses to run as root: the same unprivileged wrapper as the test server.
    prefix = unprivileged_prefix(base)
    for path in base.iterdir():
        path.chmod(0o644)
    process = subprocess.Popen(
        [*prefix, program, str(base / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, process, base)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], base: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (base / "pgbouncer.log").read_text() if (base / "pgbouncer.log").exists() else ""
            raise AssertionError(f"pgbouncer exited: {log}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("pgbouncer did not start listening")


def through(url: str, port: int) -> str:
    return make_conninfo(url, host="127.0.0.1", port=str(port))


def pool_mode(port: int) -> str:
    """Ask PgBouncer's admin console how it pools (proof the tests use transaction mode)."""
    with psycopg.connect(
        host="127.0.0.1", port=port, user="postgres", dbname="pgbouncer", autocommit=True
    ) as admin:
        rows = admin.execute("SHOW CONFIG").fetchall()
    return next(str(row[1]) for row in rows if row[0] == "pool_mode")
