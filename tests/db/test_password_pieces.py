"""No part of a password, ever (docs/configuration.md): a URL whose password holds an unescaped
`@` is exit 2 asking to percent-encode it, printing none of it; otherwise every piece of the
password is redacted, whatever its length, from what libpq parsed and from the raw text alike,
as whole tokens (the `p` inside `app` is not a piece of the password `p@ss`)."""

from __future__ import annotations

import uuid

import pytest

from tests.support.clirunner import CliRunner, Result
from tokenfix.config.redact import redact, scrub


@pytest.fixture
def tokenfix(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    return CliRunner(capsys)


def one_error(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# (password, written unencoded in the URL; pieces of it that must never be shown)
AT_SIGNS = [
    ("p@ss:w/rd?#%&=Zq", ["p@ss", "ss:w", "w/rd", "Zq", "#%&", "odd@ss", "'ss'"]),
    ("a1@b2:c3/d4", ["a1@b2", "'b2'", "b2:c3", "c3/d4", "d4"]),
    ("p@ss", ["p@ss", "ss@127", "'ss'", "ap***"]),
]


@pytest.mark.parametrize(("password", "pieces"), AT_SIGNS)
@pytest.mark.parametrize(
    "command",
    [
        ["reconcile", "--all", "--dry-run", "--json"],
        ["diagnose", str(uuid.UUID(int=1)), "--json"],
        ["doctor", "--json"],
    ],
)
def test_an_unescaped_at_sign_is_bad_input_asking_to_percent_encode(
    tokenfix: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    password: str,
    pieces: list[str],
    command: list[str],
) -> None:
    monkeypatch.setenv("TOKENFIX_DATABASE_URL", f"postgresql://odd:{password}@127.0.0.1:9/db")
    result = tokenfix(*command)
    assert result.exit_code == 2, result.stderr
    line = one_error(result)
    assert "percent-encode" in line and "%40" in line, line
    shown = result.stdout + result.stderr
    for piece in [password, *pieces]:
        assert piece not in shown, (piece, shown)


@pytest.mark.parametrize(("password", "pieces"), AT_SIGNS)
def test_config_shows_no_piece_of_it_either(
    tokenfix: CliRunner, monkeypatch: pytest.MonkeyPatch, password: str, pieces: list[str]
) -> None:
    monkeypatch.setenv("TOKENFIX_DATABASE_URL", f"postgresql://odd:{password}@127.0.0.1:9/db")
    for args in (["config"], ["config", "--json"]):
        result = tokenfix(*args)
        shown = result.stdout + result.stderr
        for piece in [password, *pieces]:
            assert piece not in shown, (piece, shown)
        assert "percent-encode" in shown


def test_a_percent_encoded_at_sign_is_fine(
    tokenfix: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENFIX_DATABASE_URL", "postgresql://odd:p%40ss@127.0.0.1:9/db")
    data = tokenfix("config", "--json").json()
    assert data["connection"]["target"] == "odd@127.0.0.1:9/db"
    assert data["settings"]["database_url"]["value"] == "postgresql://odd:***@127.0.0.1:9/db"


def test_short_pieces_are_redacted_as_whole_tokens_only() -> None:
    dsn = "postgresql://app:a1:b2/c3@127.0.0.1:9/db"
    assert scrub("failed to resolve host 'b2' for user \"app\"", dsn) == (
        "failed to resolve host '***' for user \"app\""
    )
    assert scrub('invalid port "b2/c3@127.0.0.1:9"', dsn) == 'invalid port "***@127.0.0.1:9"'
    password_p = "postgresql://app:p@127.0.0.1:9/db"
    assert scrub('role "app" on host p, port 9', password_p) == 'role "app" on host ***, port 9'
    assert redact(password_p) == "postgresql://app:***@127.0.0.1:9/db"


def test_the_password_libpq_parsed_is_redacted_too() -> None:
    dsn = "postgresql://app@127.0.0.1:9/db?password=x%2Fy"
    assert scrub("the password x/y was refused", dsn) == "the password *** was refused"
