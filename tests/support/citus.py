"""A Citus cluster on loopback for the tests that need one: a coordinator and two workers,
each a throwaway PostgreSQL started with the local binaries and shared_preload_libraries='citus'
(docs/citus.md). No package registry ships Citus, so where the extension is not installed the
tests skip with one line saying how to build it."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tokenfix.demo.pgserver import (
    THROWAWAY_SERVER_OPTIONS,
    LocalCluster,
    NoServerAvailable,
    find_local_bindir,
)

CITUS_TAG = "v12.1.12"
BUILD_HINT = (
    "Citus is not installed for the local PostgreSQL: to run these tests build it from "
    f"https://github.com/citusdata/citus tag {CITUS_TAG} (Debian build deps: "
    "postgresql-server-dev-15 libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev "
    "libssl-dev), then ./configure && make && sudo make install"
)
CITUS_OPTIONS = {
    **THROWAWAY_SERVER_OPTIONS,
    "shared_preload_libraries": "citus",
    "max_connections": "100",
    "max_prepared_transactions": "100",
    # Small and quick on a shared machine: fewer shards, no background chatter.
    "citus.shard_count": "8",
    "citus.max_adaptive_executor_pool_size": "4",
    "shared_buffers": "64MB",
}


def missing_reason() -> str | None:
    """None when the local PostgreSQL has Citus installed; else the one line to build it."""
    bindir = find_local_bindir()
    if bindir is None:
        return "no local PostgreSQL server binaries; " + BUILD_HINT
    pg_config = bindir / "pg_config"
    try:
        libdir = subprocess.run(
            [str(pg_config), "--pkglibdir"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        sharedir = subprocess.run(
            [str(pg_config), "--sharedir"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return BUILD_HINT
    installed = (Path(libdir) / "citus.so").exists() and (
        Path(sharedir) / "extension" / "citus.control"
    ).exists()
    return None if installed else BUILD_HINT


@dataclass
class CitusCluster:
    coordinator_url: str
    worker_urls: list[str]
    _clusters: list[LocalCluster] = field(repr=False, default_factory=list)

    def stop(self) -> None:
        for cluster in self._clusters:
            cluster.stop()

    def create_database(self, name: str) -> str:
        """A database holding the extension on every node, the workers added: its URL on the
        coordinator."""
        for url in [self.coordinator_url, *self.worker_urls]:
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            with psycopg.connect(make_conninfo(url, dbname=name), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION citus")
        url = make_conninfo(self.coordinator_url, dbname=name)
        with psycopg.connect(url, autocommit=True) as conn:
            port = int(conninfo_to_dict(self.coordinator_url)["port"] or 5432)
            conn.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", (port,))
            for worker in self.worker_urls:
                wport = int(conninfo_to_dict(worker)["port"] or 5432)
                conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (wport,))
        return url

    def drop_database(self, name: str) -> None:
        for url in [self.coordinator_url, *self.worker_urls]:
            with (
                contextlib.suppress(psycopg.Error),
                psycopg.connect(url, autocommit=True) as admin,
            ):
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def start_cluster() -> CitusCluster:
    """A coordinator and two workers on loopback (raises NoServerAvailable)."""
    bindir = find_local_bindir()
    if bindir is None:
        raise NoServerAvailable("no local PostgreSQL server binaries")
    started: list[LocalCluster] = []
    urls: list[str] = []
    try:
        for label in ("citus coordinator", "citus worker 1", "citus worker 2"):
            cluster = LocalCluster(bindir, label=label)
            started.append(cluster)
            urls.append(cluster.start(options=CITUS_OPTIONS).url)
    except BaseException:
        for cluster in started:
            cluster.stop()
        raise
    return CitusCluster(coordinator_url=urls[0], worker_urls=urls[1:], _clusters=started)


@contextlib.contextmanager
def running_cluster() -> Iterator[CitusCluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()
