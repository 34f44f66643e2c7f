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


STARTUP_ALLOWANCE = 0.5  # SPEC §8: --since may add this much process start-up to its floor


def _since(what: str, since: Measurement, floor: Measurement | None) -> tuple[str, str, str, bool]:
    """--since within 2x the same-run floor for those users, plus the start-up allowance."""
    if floor is None:
        return (what, _seconds(since.seconds), "≤ 2× its floor + 0.5 s", False)
    limit = 2 * floor.seconds + STARTUP_ALLOWANCE
    return (
        what,
        _seconds(since.seconds),
        f"≤ 2 × {_seconds(floor.seconds)} + 0.5 s = {_seconds(limit)}",
        since.seconds <= limit,
    )


def _to_floor(
    what: str, tool: Measurement, floor: Measurement, limit: float
) -> tuple[str, str, str, bool]:
    ratio = tool.seconds / floor.seconds
    return (what, f"{ratio:.2f}×", f"≤ {limit:g}×", ratio <= limit)


def _causes(what: str, causes: Measurement, tool: Measurement) -> tuple[str, str, str, bool]:
    """docs/monitoring.md: what the causes add to a dry run, against the dry run without them."""
    added = causes.seconds
    rest = tool.seconds - added
    return (what, f"{100 * added / rest:.1f} %", "≤ 25 %", added <= 0.25 * rest)


def ratios(m: dict[str, Measurement]) -> list[tuple[str, str, str, bool]]:
    """(what, measured, SPEC target, met) for every target the run can judge (§8 unless
    named)."""
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
        _since("--since 1h (user_id index)", m["since"], m.get("floor_since")),
    ]  # fmt: skip
    if "since_covering" in m:
        rows.append(_since("--since 1h (covering user_id index)", m["since_covering"],
                           m.get("floor_since_covering")))  # fmt: skip
    if "causes" in m:
        rows.append(_causes("causes ÷ the dry run without them (§12)", m["causes"], m["tool"]))
    rows.append(_to_floor("dry run ÷ physical floor, 1% drifting (§12)", m["tool"], m["floor"],
                          1.5))  # fmt: skip
    if "tool_incident" in m:
        rows.append(_to_floor("dry run ÷ physical floor, 10% drifting (§12)", m["tool_incident"],
                              m["floor_incident"], 2))  # fmt: skip
        rows.append(_causes("causes ÷ the dry run without them, 10% drifting (§12)",
                            m["causes_incident"], m["tool_incident"]))  # fmt: skip
        rows.append(_since("--since 1h, every selected user drifting (§12)", m["since_incident"],
                           m.get("floor_since_incident")))  # fmt: skip
    if "tool_two_sources" in m:
        two, floors = m["tool_two_sources"].seconds, m["floor_two_sources"].seconds
        rows.append(("two-source mapping ÷ the sum of each source's floor",
                     f"{two / floors:.2f}×", "≤ 2×", two <= 2 * floors))  # fmt: skip
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
    lines += ["", "| SPEC target (§8 unless named) | measured | target | met |"]
    lines += ["|---|---:|---:|:-:|"]
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
