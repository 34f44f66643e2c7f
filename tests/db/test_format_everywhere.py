"""`--format table|json|jsonl|csv` on every command that prints results (docs/output.md):
`--format json` is `--json`, jsonl lines each stand alone, csv parses, and `--json` with
another format is bad input."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.db.test_monitoring import ENVELOPE, explained, unexplained
from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner

VOLATILE = ("generated_at", "duration_s")


def commands(cli: CliRunner, ledger: Ledger) -> dict[str, list[str]]:
    """Each command that prints results, with arguments that give it something to print."""
    user = explained(ledger)
    wrote = cli("reconcile", "--all", "--yes", "--settle", "0", "--json").json()
    run_id = wrote["run_id"]
    unexplained(ledger)  # something left for the dry run to list
    return {
        "diagnose": ["diagnose", str(user)],
        "history": ["history"],
        "history-run": ["history", run_id],
        "history-user": ["history", "--user", str(user)],
        "revert": ["revert", run_id, "--dry-run"],
        "doctor": ["doctor", "--no-probe"],
        "config": ["config"],
        "reconcile": ["reconcile", "--all", "--dry-run"],
    }


def steady(document: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in document.items() if key not in VOLATILE}


NAMES = ["diagnose", "history", "history-run", "history-user", "revert", "doctor", "config",
         "reconcile"]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_format_json_is_the_json_flag(cli: CliRunner, ledger: Ledger, name: str) -> None:
    args = commands(cli, ledger)[name]
    flag, option = cli(*args, "--json"), cli(*args, "--format", "json")
    assert option.exit_code == flag.exit_code
    assert steady(option.json()) == steady(flag.json())


@pytest.mark.parametrize("name", NAMES)
def test_format_jsonl_lines_stand_alone(cli: CliRunner, ledger: Ledger, name: str) -> None:
    args = commands(cli, ledger)[name]
    result = cli(*args, "--format", "jsonl")
    assert result.exit_code in (0, 1), result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines
    for line in lines:
        assert {"type", "generated_at", "target"} <= line.keys()
    assert lines[-1].keys() >= ENVELOPE


@pytest.mark.parametrize("name", NAMES)
def test_format_csv_parses_with_a_header(cli: CliRunner, ledger: Ledger, name: str) -> None:
    args = commands(cli, ledger)[name]
    result = cli(*args, "--format", "csv")
    assert result.exit_code in (0, 1), result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows and all(None not in row for row in rows)  # no row longer than the header


@pytest.mark.parametrize("name", NAMES)
def test_format_table_is_the_default(cli: CliRunner, ledger: Ledger, name: str) -> None:
    args = commands(cli, ledger)[name]
    default, table = cli(*args), cli(*args, "--format", "table")
    assert table.exit_code == default.exit_code
    assert table.stdout.splitlines()[:3] == default.stdout.splitlines()[:3]


@pytest.mark.parametrize("name", NAMES)
def test_json_with_another_format_is_bad_input(cli: CliRunner, ledger: Ledger, name: str) -> None:
    args = commands(cli, ledger)[name]
    result = cli(*args, "--json", "--format", "csv")
    assert result.exit_code == 2
    assert "--json and --format csv disagree" in result.stderr
