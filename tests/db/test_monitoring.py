"""docs/monitoring.md for cron and monitors: --format jsonl, the JSON error object, --metrics-file,
--fail-on and --threshold, --exclude-file."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner

ENVELOPE = {"generated_at", "duration_s", "tool_version", "target"}
UNREACHABLE = "postgresql://cron:s3cr3t-pw@127.0.0.1:9/billing"


def explained(ledger: Ledger) -> uuid.UUID:
    """A grant of 1,000 the cache never got: cause grants_not_applied."""
    user = ledger.profile(ledger.user(), remaining=-100, used=100)
    ledger.row(user, 1000, action="admin_grant")
    ledger.row(user, 100)
    return user


def unexplained(ledger: Ledger, off_by: int = 11) -> uuid.UUID:
    """Off by a few tokens no cause explains."""
    user = ledger.profile(ledger.user(), remaining=-100 + off_by, used=100 - off_by)
    ledger.row(user, 100)
    return user


# -- --format jsonl and the error object ----------------------------------------------------


def test_jsonl_appended_by_two_runs_parses_line_by_line_summary_last(
    cli: CliRunner, ledger: Ledger, tmp_path: Path
) -> None:
    explained(ledger)
    unexplained(ledger)
    log = tmp_path / "tokenfix.jsonl"
    for _ in range(2):
        result = cli("reconcile", "--all", "--dry-run", "--format", "jsonl")
        assert result.exit_code == 1
        with log.open("a") as file:
            file.write(result.stdout)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["type"] for line in lines] == ["change", "change", "summary"] * 2
    summary = lines[2]
    assert summary.keys() >= ENVELOPE
    assert summary["users_with_drift"] == 2 and summary["summary"]["unexplained_users"] == 1
    assert {"user_id", "status", "causes", "drift"} <= lines[0].keys()


def test_jsonl_carries_warnings_as_lines_before_the_summary(cli: CliRunner, ledger: Ledger) -> None:
    for _ in range(5):
        user = ledger.profile(ledger.user(), remaining=900, used=100)
        ledger.row(user, 100)
    lines = [json.loads(x) for x in cli("reconcile", "--all", "--dry-run", "--format", "jsonl")
             .stdout.splitlines()]  # fmt: skip
    assert [line["type"] for line in lines] == ["warning"] + ["change"] * 5 + ["summary"]
    assert "starting balance" in lines[0]["message"]


@pytest.mark.parametrize("output", [["--json"], ["--format", "jsonl"]], ids=["json", "jsonl"])
def test_a_run_that_cannot_connect_prints_one_json_error_object(
    cli: CliRunner, output: list[str]
) -> None:
    result = cli("reconcile", "--all", "--dry-run", *output, "-d", UNREACHABLE)
    assert result.exit_code == 3
    (line,) = result.stdout.splitlines() if output[0] == "--format" else [result.stdout]
    found = json.loads(line)
    assert found["error"]["exit_code"] == 3
    assert found["error"]["message"].startswith("cannot connect to cron@127.0.0.1:9/billing")
    assert found.keys() >= ENVELOPE and found["target"] == "cron@127.0.0.1:9/billing"
    assert found.get("type") == ("error" if output[0] == "--format" else None)
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: ")
    assert "s3cr3t" not in result.stdout + result.stderr


def test_every_json_output_carries_the_envelope(cli: CliRunner, ledger: Ledger) -> None:
    user = explained(ledger)
    outputs = {
        "diagnose": cli("diagnose", str(user), "--json").json(),
        "reconcile": cli("reconcile", "--all", "--dry-run", "--json").json(),
        "history": cli("history", "--json").json(),
        "doctor": cli("doctor", "--json").json(),
    }
    for command, data in outputs.items():
        assert data.keys() >= ENVELOPE, command
        assert data["target"].startswith("postgres@127.0.0.1:"), command


# -- --metrics-file -------------------------------------------------------------------------


def metrics(path: Path) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of the file, by metric name and labels (parsed the way Prometheus does)."""
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_the_metrics_file_has_every_section_12_metric_with_help_and_type(
    cli: CliRunner, ledger: Ledger, tmp_path: Path
) -> None:
    explained(ledger)
    unexplained(ledger)
    missing = ledger.user()
    ledger.row(missing, 5)
    path = tmp_path / "textfile" / "tokenfix.prom"
    result = cli("reconcile", "--all", "--dry-run", "--metrics-file", str(path))
    assert result.exit_code == 1
    found = metrics(path)
    assert found["tokenfix_users_checked"] == {(): 3}
    assert found["tokenfix_users_drifting"] == {(): 2}
    assert found["tokenfix_missing_profiles"] == {(): 1}
    assert found["tokenfix_drift_users"] == {
        (("cause", "grants_not_applied"),): 1, (("cause", "unexplained"),): 1,
    }  # fmt: skip
    assert found["tokenfix_exit_code"] == {(): 1}
    assert found["tokenfix_run_duration_seconds"][()] > 0
    assert found["tokenfix_last_success_timestamp_seconds"][()] > 1.7e9
    text = path.read_text()
    for name in found:
        assert f"# HELP {name} " in text and f"# TYPE {name} gauge" in text
    assert [p.name for p in path.parent.iterdir()] == ["tokenfix.prom"]  # no temporary left


def test_a_failing_run_writes_its_exit_code_and_keeps_the_last_success(
    cli: CliRunner, ledger: Ledger, tmp_path: Path
) -> None:
    path = tmp_path / "tokenfix.prom"
    assert cli("reconcile", "--all", "--dry-run", "--metrics-file", str(path)).exit_code == 0
    last_success = metrics(path)["tokenfix_last_success_timestamp_seconds"][()]
    failed = cli("reconcile", "--all", "--dry-run", "--metrics-file", str(path),
                 "-d", UNREACHABLE)  # fmt: skip
    assert failed.exit_code == 3
    found = metrics(path)
    assert found["tokenfix_exit_code"] == {(): 3}
    assert found["tokenfix_last_success_timestamp_seconds"] == {(): last_success}
    assert found["tokenfix_users_checked"] == {(): 0}  # kept from the run that measured it


def test_bad_input_is_a_failure_in_the_metrics_too(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "tokenfix.prom"
    result = cli("reconcile", "--all", "--dry-run", "--threshold", "-1", "--metrics-file",
                 str(path))  # fmt: skip
    assert result.exit_code == 2
    assert metrics(path)["tokenfix_exit_code"] == {(): 2}
    # Never a success: 0, so that "no success for 26 h" fires without an absent() rule.
    assert metrics(path)["tokenfix_last_success_timestamp_seconds"] == {(): 0}


# -- --fail-on and --threshold --------------------------------------------------------------


@pytest.mark.parametrize(
    ("fail_on", "only_explained", "code"),
    [
        (None, False, 0),  # docs/output.md: everything asked for was written
        ("any", True, 1),
        ("unexplained", False, 1),
        ("unexplained", True, 0),
        ("never", False, 0),
    ],
)
def test_a_write_run_is_judged_on_the_drift_it_found(
    cli: CliRunner, ledger: Ledger, fail_on: str | None, only_explained: bool, code: int
) -> None:
    explained(ledger)
    if not only_explained:
        unexplained(ledger)
    policy = ["--fail-on", fail_on] if fail_on else []
    result = cli("reconcile", "--all", "--yes", "--settle", "0", "--json", *policy)
    assert result.json()["users_updated"] == (1 if only_explained else 2)
    assert result.exit_code == code


def test_never_exits_0_on_a_dry_run_with_drift(cli: CliRunner, ledger: Ledger) -> None:
    unexplained(ledger)
    assert cli("reconcile", "--all", "--dry-run", "--fail-on", "never").exit_code == 0


@pytest.mark.parametrize(("threshold", "code"), [("10", 1), ("11", 0), ("10.5", 1), ("11.0", 0)])
def test_the_threshold_ignores_drift_up_to_n_on_either_side(
    cli: CliRunner, ledger: Ledger, threshold: str, code: int
) -> None:
    unexplained(ledger, off_by=11)
    result = cli("reconcile", "--all", "--dry-run", "--threshold", threshold)
    assert result.exit_code == code


def test_the_threshold_never_ignores_a_null_cache_or_a_missing_profile(
    cli: CliRunner, ledger: Ledger
) -> None:
    ledger.conn.execute(
        "ALTER TABLE user_profiles ALTER vibe_assistant_tokens_remaining DROP NOT NULL"
    )
    user = ledger.profile(ledger.user())
    ledger.conn.execute(
        "UPDATE user_profiles SET vibe_assistant_tokens_remaining = NULL WHERE user_id = %s",
        (user,),
    )
    assert cli("reconcile", "--all", "--dry-run", "--threshold", "1000000").exit_code == 1
    ledger.conn.execute("DELETE FROM user_profiles")
    ledger.row(ledger.user(), 1)
    assert cli("reconcile", "--all", "--dry-run", "--threshold", "1000000").exit_code == 1


@pytest.mark.parametrize("threshold", ["-1", "-0.5", "lots"])
def test_a_negative_or_malformed_threshold_is_bad_input(cli: CliRunner, threshold: str) -> None:
    result = cli("reconcile", "--all", "--dry-run", "--threshold", threshold)
    assert (result.exit_code, result.stdout) == (2, "")
    assert len(result.stderr.splitlines()) == 1 and "--threshold" in result.stderr


# -- --exclude-file -------------------------------------------------------------------------


def test_owners_deleted_upstream_stay_out_of_checks_and_writes(
    cli: CliRunner, ledger: Ledger, tmp_path: Path
) -> None:
    deleted = ledger.user()
    ledger.row(deleted, 40)  # rows left behind, the profile gone: missing_profile forever
    drifting = unexplained(ledger)
    excluded = tmp_path / "deleted-users.txt"
    excluded.write_text(f"# deleted in the app on 2026-11-30\n{deleted}\n\n{drifting}  # GDPR\n")
    before = ledger.cached(drifting)
    dry = cli("reconcile", "--all", "--dry-run", "--json", "--exclude-file", str(excluded))
    assert (dry.exit_code, dry.json()["changes"], dry.json()["missing_profiles"]) == (0, [], 0)
    wrote = cli("reconcile", "--all", "--yes", "--create-missing", "--json",
                "--exclude-file", str(excluded))  # fmt: skip
    assert (wrote.exit_code, wrote.json()["users_updated"]) == (0, 0)
    assert ledger.cached(drifting) == before and ledger.cached(deleted) is None
    assert cli("reconcile", "--all", "--dry-run").exit_code == 1  # without the file: both back


def test_an_unreadable_exclude_file_is_bad_input(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("reconcile", "--all", "--dry-run", "--exclude-file", str(tmp_path / "none"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot read --exclude-file ")
