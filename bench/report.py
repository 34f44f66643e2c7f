"""The benchmark's results as markdown: the machine, every measurement, the SPEC §8 ratios."""

from __future__ import annotations

import argparse
import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.measure import Measurement

START, END = "<!-- bench-results:start -->", "<!-- bench-results:end -->"


def machine() -> str:
    cpu = "unknown CPU"
    memory = ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        found = re.search(r"model name\s*:\s*(.+)", info)
        cpu = found.group(1).strip() if found else cpu
        total = re.search(r"MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text())
        memory = f", {int(total.group(1)) / 1024**2:.0f} GiB RAM" if total else ""
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores{memory}, {platform.system()} {platform.release()}"


def _seconds(value: float) -> str:
    if value >= 120:
        return f"{value:,.0f} s ({value / 60:.0f} min)"
    if value >= 1:
        return f"{value:.2f} s"
    return f"{value * 1000:.1f} ms"


def _verdict(ok: bool) -> str:
    return "✅" if ok else "❌"


def ratios(m: dict[str, Measurement]) -> list[tuple[str, str, str, bool]]:
    """(what, measured, SPEC §8 target, met) for every target the run can judge."""
    tool = m["tool"].seconds
    rows = [
        ("tool ÷ physical floor", f"{tool / m['floor'].seconds:.2f}×", "≤ 2×",
         tool <= 2 * m["floor"].seconds),
        ("hand-written statement ÷ tool", f"{m['handwritten'].seconds / tool:.1f}×", "≥ 4×",
         m["handwritten"].seconds >= 4 * tool),
        ("psql once per user ÷ tool", f"{m['psql_per_user'].seconds / tool:.0f}×", "≥ 50×",
         m["psql_per_user"].seconds >= 50 * tool),
        ("per-user loop in one session ÷ tool", f"{m['loop_per_user'].seconds / tool:.1f}×",
         "≥ 15×", m["loop_per_user"].seconds >= 15 * tool),
        ("tool peak RSS", f"{m['tool'].peak_rss_mb:.0f} MB", "< 150 MB",
         m["tool"].peak_rss_mb < 150),
        ("diagnose, database time", _seconds(m["diagnose_db"].seconds), "< 100 ms",
         m["diagnose_db"].seconds < 0.1),
        ("--since 1h ÷ full run (user_id index)", f"{100 * m['since'].seconds / tool:.1f} %",
         "< 10 %", m["since"].seconds < 0.1 * tool),
    ]  # fmt: skip
    if "since_covering" in m:
        covered = m["since_covering"].seconds
        rows.append(("--since 1h ÷ full run (covering user_id index)",
                     f"{100 * covered / tool:.1f} %", "< 10 %", covered < 0.1 * tool))  # fmt: skip
    if "tool_wide" in m:
        wide, narrow = m["tool_wide"].peak_rss_mb, m["tool"].peak_rss_mb
        flat = wide < 150 and wide < 1.25 * narrow
        rows.append(("peak RSS with 10× users ÷ peak RSS", f"{wide / narrow:.2f}×",
                     "flat (< 150 MB)", flat))  # fmt: skip
    return rows


def render(results: dict[str, Any], options: argparse.Namespace) -> str:
    m: dict[str, Measurement] = results["measurements"]
    lines = [
        f"Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {options.users:,} users, "
        f"{options.rows:,} ledger rows, median of {options.repeat} runs each.",
        "",
        f"- Machine: {machine()}",
        f"- PostgreSQL {results.get('postgres', '?')} ({results['server']}), "
        "`max_parallel_workers_per_gather = 0`, `shared_buffers = 1GB`",
        f"- Data generated in {_seconds(results['generate_seconds'])} (`bench/sql/`)",
        "",
        "| measurement | median | peak RSS | note |",
        "|---|---:|---:|---|",
    ]
    for measurement in m.values():
        rss = f"{measurement.peak_rss_mb:.0f} MB" if measurement.peak_rss_mb else ""
        note = measurement.note
        if measurement.extrapolated_from:
            note = f"{note}, timed on {measurement.extrapolated_from} users".strip(", ")
        lines.append(f"| {measurement.name} | {_seconds(measurement.seconds)} | {rss} | {note} |")
    lines += ["", "| SPEC §8 target | measured | target | met |", "|---|---:|---:|:-:|"]
    for what, measured, target, met in ratios(m):
        lines.append(f"| {what} | {measured} | {target} | {_verdict(met)} |")
    return "\n".join(lines)


def write(path: Path, table: str, *, full: bool) -> None:
    """Full-scale runs replace the results section of BENCHMARKS.md; others write a file."""
    if full and path.exists() and START in path.read_text():
        text = path.read_text()
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        path.write_text(f"{before}{START}\n{table}\n{END}{after}")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# tokenfix benchmark\n\n{table}\n")
