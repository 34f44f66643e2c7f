"""Files shipped beside the package: the user-facing SQL of sql/ (schema, diagnostics, scripts)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def sql_file(relative: str) -> Path:
    """`sql/<relative>`: inside the wheel (tokenfix/_sql), or in a source checkout."""
    for root in (HERE / "_sql", HERE.parent / "sql"):
        candidate = root / relative
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"sql/{relative} is not installed with this copy of tokenfix")
