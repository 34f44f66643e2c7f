"""The metrics file tells the truth through failures (docs/monitoring.md): every exit writes it,
a failed run keeps the drift it did not measure, and what pages is what the exit policy judged."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

import pytest

from tests.db.test_monitoring import UNREACHABLE, explained, metrics, unexplained
from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner
from tests.support.processes import finish, run_waiting_on

KEPT = (
    "tokenfix_users_checked",
    "tokenfix_users_drifting",
    "tokenfix_missing_profiles",
    "tokenfix_drift_users",
    "tokenfix_alerting_users",
)


def test_a_failed_run_keeps_the_drift_gauges_and_says_it_failed(
    cli: CliRunner, ledger: Ledger, tmp_path: Path
) -> None:
    explained(ledger)
    unexplained(ledger)
    path = tmp_path / "tokenfix.prom"
    assert cli("reconcile", "--all", "--dry-run", "--metrics-file", str(path)).exit_code == 1
    before = metrics(path)
    assert before["tokenfix_last_run_success"] == {(): 1}
    assert before["tokenfix_alerting_users"] == {(): 2}
    failed = cli("reconcile", "--all", "--dry-run", "--metrics-file", str(path),
                 "-d", UNREACHABLE)  # fmt: skip
    assert failed.exit_code == 3
    after = metrics(path)
    for name in KEPT:
        assert after[name] == before[name], name
    last_success = "tokenfix_last_success_timestamp_seconds"
    assert after[last_success] == before[last_success]
    assert after["tokenfix_exit_code"] == {(): 3}
    assert after["tokenfix_last_run_success"] == {(): 0}


def test_a_first_run_that_fails_writes_no_drift_it_never_measured(
    cli: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "tokenfix.prom"
    result = cli("reconcile", "--all", "--dry-run", "--metrics-file", str(path), "-d", UNREACHABLE)
    assert result.exit_code == 3
    found = metrics(path)
    assert not set(KEPT) & found.keys()
    assert found["tokenfix_last_run_success"] == {(): 0}
    assert found["tokenfix_last_success_timestamp_seconds"] == {(): 0}


def test_drift_the_threshold_ignores_does_not_alert(
    cli: CliRunner, ledger: Ledger, tmp_path: Path
) -> None:
    unexplained(ledger, off_by=3)
    path = tmp_path / "tokenfix.prom"
    result = cli("reconcile", "--all", "--dry-run", "--threshold", "5",
                 "--metrics-file", str(path))  # fmt: skip
    assert result.exit_code == 0
    found = metrics(path)
    assert found["tokenfix_users_drifting"] == {(): 1}  # seen, and shown
    assert found["tokenfix_alerting_users"] == {(): 0}  # but not what the policy counts


def test_alerting_users_counts_only_what_fail_on_unexplained_counts(
    cli: CliRunner, ledger: Ledger, tmp_path: Path
) -> None:
    explained(ledger)
    unexplained(ledger)
    unexplained(ledger, off_by=20)
    path = tmp_path / "tokenfix.prom"
    result = cli("reconcile", "--all", "--yes", "--settle", "0", "--fail-on", "unexplained",
                 "--metrics-file", str(path))  # fmt: skip
    assert result.exit_code == 1
    assert metrics(path)["tokenfix_alerting_users"] == {(): 2}


def test_without_a_policy_a_write_that_fixed_everything_alerts_on_nobody(
    cli: CliRunner, ledger: Ledger, tmp_path: Path
) -> None:
    explained(ledger)
    unexplained(ledger)
    path = tmp_path / "tokenfix.prom"
    dry = cli("reconcile", "--all", "--dry-run", "--metrics-file", str(path))
    assert (dry.exit_code, metrics(path)["tokenfix_alerting_users"]) == (1, {(): 2})
    wrote = cli("reconcile", "--all", "--yes", "--settle", "0", "--metrics-file", str(path))
    assert wrote.exit_code == 0
    found = metrics(path)
    assert found["tokenfix_users_drifting"] == {(): 2}
    assert found["tokenfix_alerting_users"] == {(): 0}


@pytest.mark.parametrize(
    "mistake",
    [
        ["--dry-rnu"],
        ["--dry-run", "--fail-on", "sometimes"],
        ["--dry-run", "--env-file", "missing.env"],
        ["--dry-run", "--env-file", "."],
    ],
    ids=["mistyped-flag", "bad-fail-on", "missing-env-file", "env-file-a-directory"],
)
def test_a_usage_error_still_writes_exit_code_2(
    cli: CliRunner, tmp_path: Path, mistake: list[str]
) -> None:
    path = tmp_path / "textfile" / "tokenfix.prom"
    result = cli("reconcile", "--all", *mistake, "--metrics-file", str(path))
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: ")
    found = metrics(path)
    assert found["tokenfix_exit_code"] == {(): 2}
    assert found["tokenfix_last_run_success"] == {(): 0}


def test_a_usage_error_before_the_flag_still_finds_the_metrics_file(
    cli: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "tokenfix.prom"
    result = cli("reconcile", "--all", "--metrics-file=" + str(path), "--no-such-flag")
    assert result.exit_code == 2
    assert metrics(path)["tokenfix_exit_code"] == {(): 2}


@pytest.mark.parametrize("failing", [False, True], ids=["success", "failure"])
def test_the_metrics_file_is_readable_by_the_collector_whatever_the_umask(
    cli: CliRunner, ledger: Ledger, tmp_path: Path, failing: bool
) -> None:
    unexplained(ledger)
    path = tmp_path / "tokenfix.prom"
    extra = ["-d", UNREACHABLE] if failing else []
    old = os.umask(0o077)
    try:
        cli("reconcile", "--all", "--dry-run", "--metrics-file", str(path), *extra)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["tokenfix.prom"]


def test_a_signal_writes_its_exit_code_and_keeps_the_drift(
    cli: CliRunner, db_url: str, ledger: Ledger, tmp_path: Path
) -> None:
    user = unexplained(ledger)
    path = tmp_path / "tokenfix.prom"
    assert cli("reconcile", "--all", "--dry-run", "--metrics-file", str(path)).exit_code == 1
    with run_waiting_on(db_url, user, "reconcile", "--all", "--yes", "--settle", "0",
                        "--metrics-file", str(path)) as held:  # fmt: skip
        held.process.send_signal(signal.SIGTERM)
        code, _, _ = finish(held.process)
    assert code == 143
    found = metrics(path)
    assert found["tokenfix_exit_code"] == {(): 143}
    assert found["tokenfix_last_run_success"] == {(): 0}
    assert found["tokenfix_alerting_users"] == {(): 1}
