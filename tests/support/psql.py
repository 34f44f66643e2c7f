"""Run the shipped SQL files with the real psql, as an operator would."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tokenfix.demo.pgserver import find_program

ROOT = Path(__file__).resolve().parents[2]


def psql(
    url: str, script: str, *variables: str, tuples_only: bool = True
) -> subprocess.CompletedProcess[str]:
    program = find_program("psql")
    assert program is not None, "psql is needed to test the shipped SQL files"
    args = [str(program), url, "-X", "-v", "ON_ERROR_STOP=1"]
    if tuples_only:
        args += ["-A", "-t", "-F", "|"]
    for variable in variables:
        args += ["-v", variable]
    args += ["-f", str(ROOT / script)]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def rows(url: str, script: str, *variables: str) -> list[list[str]]:
    done = psql(url, script, *variables)
    assert done.returncode == 0, done.stderr
    return [line.split("|") for line in done.stdout.splitlines() if line.strip()]
