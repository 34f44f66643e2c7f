"""Every `--format jsonl` line stands alone (docs/monitoring.md): `type`, `run_id`,
`generated_at` and `target` on each, `change` and `warning` lines included, and an `error` line
names the run it ended."""

from __future__ import annotations

import json

from tests.db.test_monitoring import explained, unexplained
from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner

STANDALONE = ("type", "run_id", "generated_at", "target")


def lines(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_every_line_of_a_dry_run_carries_when_and_where(cli: CliRunner, ledger: Ledger) -> None:
    for _ in range(5):  # a starting-balance warning line too
        user = ledger.profile(ledger.user(), remaining=900, used=100)
        ledger.row(user, 100)
    found = lines(cli("reconcile", "--all", "--dry-run", "--format", "jsonl").stdout)
    assert [line["type"] for line in found] == ["warning"] + ["change"] * 5 + ["summary"]
    for line in found:
        assert list(line)[: len(STANDALONE)] == list(STANDALONE), line["type"]
        assert line["run_id"] is None  # a dry run records no run
        assert str(line["target"]).startswith("postgres@127.0.0.1:")
    assert len({line["generated_at"] for line in found}) == 1


def test_the_change_lines_of_a_write_run_name_its_run(cli: CliRunner, ledger: Ledger) -> None:
    explained(ledger)
    unexplained(ledger)
    found = lines(cli("reconcile", "--all", "--yes", "--settle", "0", "--format", "jsonl").stdout)
    run_id = found[-1]["run_id"]
    assert run_id is not None
    assert [(line["type"], line["run_id"]) for line in found] == [
        ("change", run_id), ("change", run_id), ("summary", run_id),
    ]  # fmt: skip
    recorded = ledger.conn.execute("SELECT run_id::text FROM tokenfix.runs").fetchone()
    assert recorded == (run_id,)


def test_an_error_line_names_the_run_it_ended(cli: CliRunner, ledger: Ledger) -> None:
    user = ledger.profile(ledger.user(), remaining=0)
    ledger.row(user, 40)  # expected remaining -40: the constraint below rejects the write
    ledger.conn.execute(
        "ALTER TABLE user_profiles ADD CONSTRAINT no_debt CHECK (vibe_assistant_tokens_remaining >= 0)"
    )
    result = cli("reconcile", "--all", "--yes", "--settle", "0", "--format", "jsonl")
    assert result.exit_code == 3
    (line,) = lines(result.stdout)
    assert line["type"] == "error" and line["error"]["exit_code"] == 3  # type: ignore[index]
    recorded = ledger.conn.execute("SELECT run_id::text, status FROM tokenfix.runs").fetchone()
    assert recorded == (line["run_id"], "failed")
    assert list(line)[: len(STANDALONE)] == list(STANDALONE)


def test_an_error_before_any_run_has_no_run_id(cli: CliRunner) -> None:
    result = cli("reconcile", "--all", "--dry-run", "--format", "jsonl", "--threshold", "-1")
    (line,) = lines(result.stdout)
    assert (line["type"], line["run_id"]) == ("error", None)
