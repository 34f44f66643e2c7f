"""The two rich consoles: stdout for results, stderr for the rest."""

from __future__ import annotations

from rich.console import Console


def make_consoles() -> tuple[Console, Console]:
    """stdout for results, stderr for the rest; 160 columns off a terminal (logs, pipes)."""
    out, err = Console(), Console(stderr=True)
    for console in (out, err):
        if not console.is_terminal:
            console.width = max(console.width, 160)
    return out, err
