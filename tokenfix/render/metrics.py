"""`--metrics-file PATH` (docs/monitoring.md): the run in the Prometheus text format, for
node_exporter's textfile collector, written atomically (a temporary file renamed over the old
one) and readable by the collector (mode 0644 whatever the umask) on every exit.

A failed run keeps what it did not measure: the drift gauges and the last success time of the
file it replaces, so that a drift alert stays firing through a failed run and "no successful
run for 26 h" sees through the failures; `tokenfix_last_run_success 0` says it failed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

LAST_SUCCESS = "tokenfix_last_success_timestamp_seconds"
MODE = 0o644
"""The collector runs as another user (Debian: `prometheus`)."""

# What a run measures, and a failed run therefore keeps from the file before it.
DRIFT_GAUGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "tokenfix_users_checked": ("Users checked by the last run that measured them.", ()),
    "tokenfix_users_drifting": ("Users found with drift by the last run that measured them.", ()),
    "tokenfix_missing_profiles": ("Users with ledger rows but no balance row.", ()),
    "tokenfix_drift_users": (
        "Drifting users by cause code (unexplained: no cause explains the drift).",
        ("cause",),
    ),
    "tokenfix_alerting_users": (
        "Users the exit policy counted for exit 1 (--fail-on, --threshold; without them, "
        "users left drifting after the run).",
        (),
    ),
}

Samples = dict[str, list[tuple[dict[str, str], float]]]


def previous(path: Path) -> Samples:
    """The samples of an earlier file, by metric name ({} when there is none to read)."""
    found: Samples = {}
    with contextlib.suppress(OSError, ValueError):
        for family in text_string_to_metric_families(path.read_text(encoding="utf-8")):
            for sample in family.samples:
                found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def previous_success(path: Path) -> float | None:
    """The last success time recorded in an earlier file, if there is one."""
    samples = previous(path).get(LAST_SUCCESS)
    return samples[0][1] if samples else None


def write(
    path: Path,
    *,
    exit_code: int,
    duration_s: float,
    outcome: Any | None = None,
    alerting_users: int | None = None,
) -> None:
    """The run's metrics; `outcome` is None when it ended before there was one, and then the
    previous file's drift gauges are kept."""
    registry = CollectorRegistry()
    earlier = previous(path)

    def gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, documentation, labels, registry=registry)

    gauge("tokenfix_exit_code", "Exit code of the last reconcile run (docs/output.md).").set(
        exit_code
    )
    gauge("tokenfix_run_duration_seconds", "Wall time of the last reconcile run.").set(duration_s)
    success = exit_code in (0, 1)  # a run that ended: attention is news, not a failure
    gauge("tokenfix_last_run_success", "1 when the last run ended 0 or 1, else 0.").set(
        1 if success else 0
    )
    kept = earlier.get(LAST_SUCCESS)
    last = time.time() if success else (kept[0][1] if kept else 0)
    gauge(LAST_SUCCESS, "When a reconcile run last ended 0 or 1 (Unix time; 0: never).").set(last)
    if outcome is not None:
        drift = {name: gauge(name, doc, labels) for name, (doc, labels) in DRIFT_GAUGES.items()}
        counts, summary = outcome.counts, outcome.summary
        drift["tokenfix_users_checked"].set(counts.users_checked)
        drift["tokenfix_users_drifting"].set(counts.users_with_drift)
        drift["tokenfix_missing_profiles"].set(counts.missing_profiles)
        by_cause = drift["tokenfix_drift_users"]
        for code, totals in summary.causes.items():
            by_cause.labels(cause=code).set(totals.users)
        by_cause.labels(cause="unexplained").set(summary.unexplained_users)
        drift["tokenfix_alerting_users"].set(alerting_users or 0)
    else:  # only what an earlier run measured: a gauge never set would read 0
        for name, (doc, label_names) in DRIFT_GAUGES.items():
            if name in earlier:
                metric = gauge(name, doc, label_names)
                for labels, value in earlier[name]:
                    (metric.labels(**labels) if labels else metric).set(value)
    _write_atomically(path, generate_latest(registry))


def _write_atomically(path: Path, text: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), MODE)  # mkstemp makes 0600; the umask plays no part
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
