"""`--metrics-file PATH` (docs/monitoring.md): the run in the Prometheus text format, for
node_exporter's
textfile collector, written atomically (prometheus_client writes a temporary file and renames
it) on success and on failure. A failed run keeps the last success time of the file it
replaces, so that an alert on "no successful run for 26 h" sees through the failures.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile
from prometheus_client.parser import text_string_to_metric_families

LAST_SUCCESS = "tokenfix_last_success_timestamp_seconds"


def previous_success(path: Path) -> float | None:
    """The last success time recorded in an earlier file, if there is one."""
    with contextlib.suppress(OSError, ValueError):
        for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
            if family.name == LAST_SUCCESS and family.samples:
                return float(family.samples[0].value)
    return None


def write(
    path: Path,
    *,
    exit_code: int,
    duration_s: float,
    outcome: Any | None = None,
) -> None:
    """The run's metrics; `outcome` is None when it failed before there was one."""
    registry = CollectorRegistry()

    def gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, documentation, labels, registry=registry)

    gauge("tokenfix_exit_code", "Exit code of the last reconcile run (docs/output.md).").set(
        exit_code
    )
    gauge("tokenfix_run_duration_seconds", "Wall time of the last reconcile run.").set(duration_s)
    success = exit_code in (0, 1)  # a run that ended: attention is news, not a failure
    last = time.time() if success else previous_success(path)
    last_success = gauge(
        LAST_SUCCESS, "When a reconcile run last ended 0 or 1 (Unix time; 0: never)."
    )
    if last is not None:
        last_success.set(last)
    if outcome is not None:
        counts, summary = outcome.counts, outcome.summary
        gauge("tokenfix_users_checked", "Users checked by the last run.").set(counts.users_checked)
        gauge("tokenfix_users_drifting", "Users found with drift by the last run.").set(
            counts.users_with_drift
        )
        gauge("tokenfix_missing_profiles", "Users with ledger rows but no balance row.").set(
            counts.missing_profiles
        )
        by_cause = gauge(
            "tokenfix_drift_users",
            "Drifting users by cause code (unexplained: no cause explains the drift).",
            ("cause",),
        )
        for code, totals in summary.causes.items():
            by_cause.labels(cause=code).set(totals.users)
        by_cause.labels(cause="unexplained").set(summary.unexplained_users)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
