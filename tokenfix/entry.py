"""The `tokenfix` command: signals first, then everything else.

The signal handlers are installed before Typer, rich and psycopg are imported, so a Ctrl-C
or a SIGTERM at any moment of the run, start-up included, ends in one line and 128 + N.
`tokenfix --version` answers before any of them is imported: monitoring and install checks
call it often, and it needs none of them.
"""

from __future__ import annotations

import sys

from tokenfix.base import signals


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
    _end(code)


def _end(code: int) -> None:
    """Exit without the interpreter's teardown when nothing needs it.

    Tearing down ~470 modules (pydantic, psycopg, asyncio, Typer) takes 0.1-0.2 s on a small
    VM: a tenth of a `--since` run from cron (docs/performance.md). By now the command has closed
    its
    connections, released its lease and written its files (atomically, and closed); the
    atexit handlers (logging's flush, any a library registered) still run and the standard
    streams are flushed. A thread still alive, which the ordinary exit would wait for, gets
    the ordinary exit.
    """
    import atexit
    import contextlib
    import os

    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
    except OSError:  # a closed pipe: what run() reports for one
        code = code or 141
    with contextlib.suppress(OSError):
        sys.stderr.flush()
    os._exit(code)
