"""Options every command shares (SPEC §4), and the small helpers commands use."""

from __future__ import annotations

import select
import sys
from typing import Annotated, Any

import typer

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        "-d",
        help="PostgreSQL URL (default: TOKENFIX_DATABASE_URL, DATABASE_URL, or .env). "
        "Prefer .env: a URL on the command line ends up in shell history.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine output (JSON) on stdout.")]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No human output; the exit code tells.")
]
StartingBalanceOption = Annotated[
    int | None,
    typer.Option(
        "--starting-balance",
        help="Tokens every user starts with (default: TOKENFIX_STARTING_BALANCE, else 0).",
        show_default=False,
    ),
]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks.", hidden=True)]


def stdin_is_interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def ask(question: str, *, timeout: float) -> bool:
    """A yes/no question on the terminal; no answer within `timeout` seconds is a no."""
    from tokenfix.errors import Declined

    sys.stderr.write(f"{question} [y/N]: ")
    sys.stderr.flush()
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if not ready:
        sys.stderr.write("\n")
        raise Declined(f"no answer within {timeout:g}s; nothing was written")
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def load(**flags: Any) -> Any:
    from tokenfix.settings import load_settings

    return load_settings(**flags)


def examples(*commands: str) -> str:
    """A command's help epilog: its example invocations as a code block."""
    return "**Examples**\n\n```\n" + "\n".join(commands) + "\n```"
