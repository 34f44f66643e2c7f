"""doctor as the trust-boundary tests run it: its checks by name, its exit code matching its status."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from tests.support.clirunner import CliRunner

EXIT_FOR_STATUS = {"ok": 0, "warn": 1, "fail": 3}


@dataclass(frozen=True)
class Users:
    """The probe's own owner and another one, as the trust tests build them."""

    owner: uuid.UUID  # remaining 100
    other: uuid.UUID  # remaining 50


def doctor_checks(cli: CliRunner, *args: str) -> dict[str, dict[str, Any]]:
    """`doctor --json` run in process: every check by its name (the exit code must be the one
    its overall status promises)."""
    result = cli("doctor", "--json", *args)
    data = result.json()
    assert result.exit_code == EXIT_FOR_STATUS[data["status"]], result.stderr
    return {check["name"]: check for check in data["checks"]}
