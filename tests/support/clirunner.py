"""Run the real CLI entry point in-process and keep stdout and stderr apart."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from tokenfix.cli import run


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class CliRunner:
    def __init__(self, capsys: pytest.CaptureFixture[str]):
        self.capsys = capsys

    def __call__(self, *args: str) -> Result:
        self.capsys.readouterr()
        code = run(list(args))
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)


def exact(stdout: str) -> Any:
    """A command's JSON with its amounts exact: fractions as Decimal, never float."""
    return json.loads(stdout, parse_float=Decimal)
