"""Bad input before anything exists (docs/safety.md): exclude files, key lists and durations
are read and validated before the audit schema is created or the lease taken; each bad one is
exit 2 naming the file and line, or the option."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner, Result


@pytest.fixture
def drifting(ledger: Ledger) -> uuid.UUID:
    user = ledger.profile(ledger.user(), remaining=900)
    ledger.row(user, 100)
    return user


def one_error(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def nothing_exists(conn: psycopg.Connection) -> None:
    schema = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'tokenfix'")
    assert schema.fetchone() == (0,), "the audit schema was created"


@pytest.mark.parametrize(
    ("content", "line", "what"),
    [
        (b"# deleted upstream\n{ok}\nnot-a-key\n", 3, "not-a-key"),
        (b"{ok}\n\n{ok}x\x00y\n", 3, "NUL"),
        (b"{ok}\ncaf\xe9\n", 2, "UTF-8"),
    ],
)
def test_a_bad_exclude_file_is_named_before_the_audit_schema_or_the_lease(
    cli: CliRunner,
    conn: psycopg.Connection,
    drifting: uuid.UUID,
    tmp_path: Path,
    content: bytes,
    line: int,
    what: str,
) -> None:
    path = tmp_path / "deleted.txt"
    path.write_bytes(content.replace(b"{ok}", str(uuid.uuid4()).encode()))
    for mode in ("--yes", "--dry-run"):
        result = cli("reconcile", "--all", mode, "--settle", "0", "--exclude-file", str(path))
        assert result.exit_code == 2, result.stderr
        message = one_error(result)
        assert f"--exclude-file {path}, line {line}" in message, message
        assert what in message, message
        nothing_exists(conn)


def test_a_good_exclude_file_still_keeps_its_owners_out(
    cli: CliRunner, drifting: uuid.UUID, tmp_path: Path
) -> None:
    path = tmp_path / "deleted.txt"
    path.write_text(f"# gone\n {drifting} \n")
    result = cli("reconcile", "--all", "--dry-run", "--json", "--exclude-file", str(path))
    assert result.exit_code == 0, result.stderr
    assert result.json()["changes"] == []


@pytest.mark.parametrize(
    "option", [["--since", "99999999999d"], ["--settle", "99999999999d"], ["--since", "99999999h"]]
)
def test_a_duration_that_does_not_fit_is_bad_input_naming_the_option(
    cli: CliRunner, conn: psycopg.Connection, drifting: uuid.UUID, option: list[str]
) -> None:
    result = cli("reconcile", "--all", "--yes", *option)
    assert result.exit_code == 2, result.stderr
    message = one_error(result)
    assert f"{option[0]} {option[1]!r}" in message, message
    nothing_exists(conn)


def test_a_long_but_sane_duration_is_accepted(cli: CliRunner, drifting: uuid.UUID) -> None:
    result = cli("reconcile", "--all", "--dry-run", "--since", "3650d", "--settle", "0")
    assert result.exit_code == 1, result.stderr


def test_a_key_on_stdin_that_is_not_utf8_names_its_line(
    cli: CliRunner, conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = io.BytesIO(f"{uuid.uuid4()}\n\xe9t\xe9\n".encode("latin-1"))
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(raw, encoding="utf-8"))
    result = cli("reconcile", "-", "--yes")
    assert result.exit_code == 2, result.stderr
    assert "stdin line 2" in one_error(result)
    nothing_exists(conn)


def test_a_key_with_a_nul_byte_is_bad_input(cli: CliRunner, conn: psycopg.Connection) -> None:
    result = cli("reconcile", "abc\x00def", "--yes")
    assert result.exit_code == 2, result.stderr
    one_error(result)
    nothing_exists(conn)
