"""The alert rules shipped in monitoring/ (docs/monitoring.md): valid for Prometheus, their
lifecycle (drift, fix, failure during drift, first run failing) checked by `promtool test
rules`, and naming only metrics tokenfix writes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.db.test_monitoring import metrics, unexplained
from tests.support.builders import Ledger
from tests.support.clirunner import CliRunner

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
RULES = MONITORING / "tokenfix.rules.yml"
RULE_TESTS = MONITORING / "tokenfix.rules.test.yml"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        hint = "promtool not installed: apt-get install prometheus (Debian) provides it"
        if os.environ.get("CI"):  # .ci/run installs it: there a missing promtool is a failure
            pytest.fail(hint, pytrace=False)
        pytest.skip(hint)
    return found


def rules() -> dict[str, dict[str, str]]:
    """Each alert's top-level keys (`expr`, `for`, …) as text; promtool checks the YAML itself."""
    found: dict[str, dict[str, str]] = {}
    for block in RULES.read_text(encoding="utf-8").split("- alert: ")[1:]:
        name, _, body = block.partition("\n")
        found[name.strip()] = dict(re.findall(r"^ {8}(\w+): (.*)$", body, re.M))
    return found


def test_promtool_accepts_the_rules() -> None:
    done = subprocess.run([promtool(), "check", "rules", str(RULES)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules_lifecycle_holds_under_promtool_test_rules() -> None:
    done = subprocess.run([promtool(), "test", "rules", str(RULE_TESTS)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_drift_alert_pages_on_what_the_exit_policy_counted_and_waits() -> None:
    drift = rules()["TokenfixDrift"]
    assert drift["expr"] == "tokenfix_alerting_users > 0"
    assert drift.get("for")


def test_a_failure_has_its_own_alert_and_every_alert_waits() -> None:
    found = rules()
    failing = found["TokenfixRunFailing"]["expr"]
    assert "tokenfix_exit_code >= 2" in failing and "tokenfix_last_run_success == 0" in failing
    assert "tokenfix_last_success_timestamp_seconds" in found["TokenfixNoSuccessfulRun"]["expr"]
    assert all(rule.get("for") for rule in found.values())


def test_the_lifecycle_tests_cover_every_rule() -> None:
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text(encoding="utf-8")))
    assert tested == set(rules())


def test_every_metric_the_rules_and_their_tests_name_is_one_tokenfix_writes(
    cli: CliRunner, ledger: Ledger, tmp_path: Path
) -> None:
    text = RULES.read_text(encoding="utf-8") + RULE_TESTS.read_text(encoding="utf-8")
    named = set(re.findall(r"\btokenfix_[a-z_]+\b", text))
    unexplained(ledger)
    path = tmp_path / "tokenfix.prom"
    cli("reconcile", "--all", "--dry-run", "--metrics-file", str(path))
    assert named <= metrics(path).keys()
