"""The `tokenfix` command: signals first, then everything else.

The signal handlers are installed before Typer, rich and psycopg are imported, so a Ctrl-C
or a SIGTERM at any moment of the run, start-up included, ends in one line and 128 + N.
"""

from __future__ import annotations

import sys

from tokenfix import signals


def main() -> None:  # never returns (sys.exit); no typing import on the way to the handlers
    signals.install()
    try:
        from tokenfix.cli import run

        code = run()
    except signals.Interrupted as exc:  # during start-up, before the CLI could catch it
        sys.stderr.write(f"error: {exc}\n")
        code = exc.exit_code
    sys.exit(code)
