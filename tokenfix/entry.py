"""The `tokenfix` command: signals first, then everything else.

The signal handlers are installed before Typer, rich and psycopg are imported, so a Ctrl-C
or a SIGTERM at any moment of the run, start-up included, ends in one line and 128 + N.
`tokenfix --version` answers before any of them is imported: monitoring and install checks
call it often, and it needs none of them.
"""

from __future__ import annotations

import sys

from tokenfix import signals


def main() -> None:  # never returns (sys.exit); no typing import on the way to the handlers
    signals.install()
    if sys.argv[1:] == ["--version"]:
        from tokenfix import __version__

        sys.stdout.write(f"tokenfix {__version__}\n")  # what the CLI's own --version prints
        sys.exit(0)
    try:
        from tokenfix.cli import run

        code = run()
    except signals.Interrupted as exc:  # during start-up, before the CLI could catch it
        sys.stderr.write(f"error: {exc}\n")
        code = exc.exit_code
    sys.exit(code)
