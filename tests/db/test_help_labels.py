"""`--help` reads as prose (docs/commands.md): no `<bool>`, `<list[str]>` or other type labels
of the Python signature, and every environment variable it names shown whole, at 80 columns."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import typer

from tokenfix.cli import app

TYPE_LABEL = re.compile(r"<[a-z][\w\[\]|, ]*>")
GROUP = typer.main.get_command(app)
COMMANDS = sorted(GROUP.commands)  # type: ignore[attr-defined]


def help_text(command: str) -> str:
    """What a person sees in an 80-column terminal (rich's own layout, not a test double)."""
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    done = subprocess.run([sys.executable, "-m", "tokenfix", command, "--help"], env=env,
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return done.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_the_help_has_no_type_labels_and_whole_variable_names(command: str) -> None:
    shown = help_text(command)
    assert TYPE_LABEL.findall(shown) == []
    assert not re.findall(r"TOKENFIX_[A-Z_]*…", shown)
    named = {
        name
        for param in GROUP.commands[command].params  # type: ignore[attr-defined]
        for name in re.findall(r"TOKENFIX_[A-Z_]*[A-Z]", getattr(param, "help", None) or "")
    }
    for name in named:
        assert name in shown, name


def test_the_reconcile_help_names_starting_balance_whole() -> None:
    assert "TOKENFIX_STARTING_BALANCE" in help_text("reconcile")
