"""Timing: wall clock and peak memory of a child process, medians over repeated runs."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mb: float
    exit_code: int


@dataclass
class Measurement:
    name: str
    runs: list[Run] = field(default_factory=list)
    note: str = ""
    extrapolated_from: int | None = None  # sample size, for per-user peers

    @property
    def seconds(self) -> float:
        return statistics.median(run.seconds for run in self.runs)

    @property
    def peak_rss_mb(self) -> float:
        return max(run.peak_rss_mb for run in self.runs)


def run_process(argv: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Run a command with its output discarded; its own peak RSS comes from wait4()."""
    started = time.perf_counter()
    process = subprocess.Popen(
        list(argv), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.stderr is not None:
        error = process.stderr.read().decode(errors="replace")
        process.stderr.close()
        if process.returncode not in (0, 1):
            raise RuntimeError(f"{' '.join(argv[:4])}… exited {process.returncode}: {error[-800:]}")
    return Run(seconds=elapsed, peak_rss_mb=usage.ru_maxrss / 1024, exit_code=process.returncode)


def repeat(name: str, times: int, once: Callable[[], Run], *, note: str = "") -> Measurement:
    measurement = Measurement(name=name, note=note)
    for _ in range(times):
        measurement.runs.append(once())
    return measurement


def interleaved(times: int, **pairs: tuple[str, Callable[[], Run]]) -> dict[str, Measurement]:
    """Several measurements taken in turn (a, b, a, b, ...): on a shared machine a slow
    minute then slows each of them alike, so their ratio is fair."""
    measurements = {key: Measurement(name=name) for key, (name, _) in pairs.items()}
    for _ in range(times):
        for key, (_, once) in pairs.items():
            measurements[key].runs.append(once())
    return measurements


def timed(action: Callable[[], object]) -> Run:
    started = time.perf_counter()
    action()
    return Run(seconds=time.perf_counter() - started, peak_rss_mb=0.0, exit_code=0)
