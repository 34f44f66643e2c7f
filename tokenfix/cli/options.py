"""Options every command shares (docs/commands.md), and the small helpers commands use."""

from __future__ import annotations

import select
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from tokenfix.base.records import Amount
    from tokenfix.config.settings import Settings
    from tokenfix.mapping.types import Mapping

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        "-d",
        metavar="URL",
        help="PostgreSQL URL (default: TOKENFIX_DATABASE_URL, DATABASE_URL, from the "
        "environment or an env file; else libpq's PGHOST, PGSERVICE, …). Prefer an env file: "
        "a URL on the command line ends up in shell history.",
        show_default=False,
    ),
]
EnvFileOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--env-file",
        metavar="PATH",
        help="Read settings from this env file instead of ./.env (repeatable: a later file "
        "wins over an earlier one; the environment and flags win over files).",
        show_default=False,
        dir_okay=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine output (JSON) on stdout.")]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No human output; the exit code tells.")
]
StartingBalanceOption = Annotated[
    str | None,
    typer.Option(
        "--starting-balance",
        metavar="N",
        help="Tokens every user starts with (default: TOKENFIX_STARTING_BALANCE, else 0); "
        "overrides the mapping's starting expression.",
        show_default=False,
    ),
]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks.", hidden=True)]
MappingOption = Annotated[
    Path | None,
    typer.Option(
        "--mapping",
        metavar="PATH",
        help="A mapping file (TOML) saying where the balances and the ledger live "
        "(default: TOKENFIX_MAPPING, else ./tokenfix.toml, else the TOKENFIX_* settings).",
        show_default=False,
        dir_okay=False,
    ),
]


def stdin_is_interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def ask(question: str, *, timeout: float) -> bool:
    """A yes/no question on the terminal; no answer within `timeout` seconds is a no."""
    from tokenfix.base.errors import Declined

    sys.stderr.write(f"{question} [y/N]: ")
    sys.stderr.flush()
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if not ready:
        sys.stderr.write("\n")
        raise Declined(f"no answer within {timeout:g}s; nothing was written")
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def load(env_file: list[Path] | None = None, **flags: Any) -> Settings:
    """Settings from the flags, the environment and the env files (./.env by default)."""
    from tokenfix.cli.envelope import remember_target
    from tokenfix.config.settings import load_settings

    settings = load_settings(env_files=env_file, given_as="flag", **flags)
    remember_target(settings)
    return settings


def note_line(message: str) -> None:
    sys.stderr.write(f"note: {message}\n")
    sys.stderr.flush()


def warning_line(message: str) -> None:
    sys.stderr.write(f"warning: {' '.join(message.split())}\n")
    sys.stderr.flush()


def inputs(
    mapping: Path | None, starting_balance: str | None = None, **flags: Any
) -> tuple[Settings, Mapping, Amount | None]:
    """Settings, the mapping in effect and the --starting-balance override, from the flags."""
    from tokenfix.base.errors import BadInput
    from tokenfix.config.settings import exact_amount
    from tokenfix.db.target import connection_note
    from tokenfix.mapping.choice import resolve

    settings = load(**flags)
    note = connection_note(settings)
    if note is not None:
        note_line(note)
    starting = None
    if starting_balance is not None:
        try:
            starting = exact_amount(starting_balance)
        except ValueError as exc:
            raise BadInput(f"--starting-balance {starting_balance!r}: {exc}") from None
    return settings, resolve(settings, mapping, note=note_line), starting


def examples(*commands: str) -> str:
    """A command's help epilog: its example invocations as a code block."""
    return "**Examples**\n\n```\n" + "\n".join(commands) + "\n```"
