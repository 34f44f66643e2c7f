"""docs/output.md: never a password, however malformed the connection string that carries it."""

from __future__ import annotations

import uuid

import pytest

from tests.support.clirunner import CliRunner
from tokenfix.config.redact import redact, scrub

# (connection string, the secret pieces that must never be shown)
MALFORMED = [
    ("postgresql://postgres:Zq9 SecretXy@127.0.0.1:9/db", ["Zq9", "SecretXy"]),
    ("postgresql://postgres:pa@ss@word9@127.0.0.1:9/db", ["pa@ss", "ss@word9", "word9"]),
    ("postgresql://postgres:p%zzSecret@127.0.0.1:9/db", ["zzSecret", "%zzSecret"]),
    ("postgresql://postgres:Sec:ret/Pw@127.0.0.1:9/db", ["Sec:ret", "ret/Pw", "Sec"]),
    ("postgresql://postgres:Secret#Pw1@127.0.0.1:9/db", ["Secret", "Pw1"]),
    ("postgresql://postgres:Secret?Pw1@127.0.0.1:9/db", ["Secret", "Pw1"]),
    ("postgresql://u@127.0.0.1:9/db?password=Zq9 SecretXy", ["Zq9", "SecretXy"]),
    ("host=127.0.0.1 port=9 password=Zq9 SecretXy dbname=db", ["Zq9", "SecretXy"]),
    ("host=127.0.0.1 port=9 password='Zq9 Sec\\'retXy' dbname=db", ["Zq9", "retXy"]),
    ("host=127.0.0.1 port=nine password=TopSecret1", ["TopSecret1"]),
    ("postgresql://postgres:TopSecret1@127.0.0.1:notaport/db", ["TopSecret1"]),
    ("postgresql://postgres:TopSecret1@[::1/db", ["TopSecret1"]),
]


@pytest.mark.parametrize(("dsn", "secrets"), MALFORMED)
def test_a_malformed_connection_string_never_shows_its_password(
    cli: CliRunner, dsn: str, secrets: list[str]
) -> None:
    result = cli("diagnose", str(uuid.uuid4()), "-d", dsn)
    assert result.exit_code in (2, 3)
    shown = result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for secret in secrets:
        assert secret not in shown, (secret, shown)


@pytest.mark.parametrize(("dsn", "secrets"), MALFORMED)
def test_doctor_never_shows_it_either(cli: CliRunner, dsn: str, secrets: list[str]) -> None:
    result = cli("doctor", "--json", "-d", dsn)
    shown = result.stdout + result.stderr
    for secret in secrets:
        assert secret not in shown, (secret, shown)


@pytest.mark.parametrize(("dsn", "secrets"), MALFORMED)
def test_redact_and_scrub_hide_every_piece(dsn: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in redact(dsn)
        assert secret not in scrub(f"could not parse {dsn!r}: near {secret!r}", dsn)


def test_redact_keeps_what_is_not_secret() -> None:
    assert redact("postgresql://alice:s3cret@db.example.com:5432/app?sslmode=require") == (
        "postgresql://alice:***@db.example.com:5432/app?sslmode=require"
    )
    assert redact("host=db user=alice password=s3cret dbname=app") == (
        "host=db user=alice password=*** dbname=app"
    )
