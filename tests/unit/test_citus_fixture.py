"""The Citus tests skip, with one line saying how to build the extension, where the local
PostgreSQL has no citus.so (docs/citus.md); with it, they run."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.support import citus


def _server_binaries(base: Path, *, with_citus: bool) -> Path:
    """A bin directory whose pg_config points at a lib and share directory under `base`."""
    bindir, libdir, sharedir = base / "bin", base / "lib", base / "share"
    for folder in (bindir, libdir, sharedir / "extension"):
        folder.mkdir(parents=True)
    pg_config = bindir / "pg_config"
    pg_config.write_text(
        f'#!/bin/sh\ncase "$1" in --pkglibdir) echo {libdir};; --sharedir) echo {sharedir};; esac\n'
    )
    pg_config.chmod(pg_config.stat().st_mode | stat.S_IEXEC)
    if with_citus:
        (libdir / "citus.so").write_bytes(b"")
        (sharedir / "extension" / "citus.control").write_text("")
    return bindir


def test_without_citus_the_reason_is_one_line_saying_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = _server_binaries(tmp_path, with_citus=False)
    monkeypatch.setattr(citus, "find_local_bindir", lambda: bindir)
    reason = citus.missing_reason()
    assert reason is not None
    assert "\n" not in reason
    assert "https://github.com/citusdata/citus" in reason and citus.CITUS_TAG in reason
    assert "postgresql-server-dev-15" in reason and "./configure" in reason


def test_with_citus_installed_nothing_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = _server_binaries(tmp_path, with_citus=True)
    monkeypatch.setattr(citus, "find_local_bindir", lambda: bindir)
    assert citus.missing_reason() is None
