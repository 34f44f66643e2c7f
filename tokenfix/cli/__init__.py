"""The command line: parse options, call the core, render. No SQL here."""

from tokenfix.cli import diagnose, doctor, reconcile, runs  # noqa: F401  (registers the commands)
from tokenfix.cli.app import app, main, run

__all__ = ["app", "main", "run"]
