"""The CLI's own surface: --help with examples on every command, --version, completion."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.clirunner import CliRunner
from tokenfix import __version__
from tokenfix.cli import app
from tokenfix.cli.app import run

COMMANDS = sorted(command.name or command.callback.__name__ for command in app.registered_commands)  # type: ignore[union-attr]


def test_the_commands_are_the_ones_the_spec_names() -> None:
    assert COMMANDS == [
        "config", "deduct", "demo", "diagnose", "doctor", "grant", "history", "init", "mapping",
        "reconcile", "revert", "sql",
    ]  # fmt: skip


@pytest.mark.parametrize("command", ["diagnose", "reconcile", "history", "revert", "doctor"])
def test_every_database_command_takes_a_mapping(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run([command, "--help"])
    assert "--mapping" in capsys.readouterr().out


@pytest.mark.parametrize(
    "command",
    ["config", "diagnose", "doctor", "history", "init", "mapping", "reconcile", "revert"],
)
def test_every_command_that_reads_settings_takes_an_env_file(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run([command, "--help"])
    assert "--env-file" in capsys.readouterr().out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Examples" in out
    assert f"tokenfix {command}" in out.split("Examples", 1)[1]


@pytest.mark.parametrize("command", ["diagnose", "reconcile", "history", "revert", "doctor"])
def test_every_database_command_takes_the_common_options(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run([command, "--help"])
    out = capsys.readouterr().out
    for option in ("--database-url", "--json", "--quiet"):
        assert option in out


def test_version_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"tokenfix {__version__}"


def test_no_arguments_shows_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run([]) == 2
    assert "Usage" in capsys.readouterr().out


def test_shell_completion_script_is_available() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tokenfix", "--show-completion", "bash"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "SHELL": "/bin/bash",
            "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1",
        },
    )
    assert done.returncode == 0, done.stderr
    assert "complete" in done.stdout and "tokenfix" in done.stdout


def test_an_unknown_command_exits_2_with_one_line(cli: CliRunner) -> None:
    result = cli("reconcilee", "--all")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
