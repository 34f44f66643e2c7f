"""The command line: parse options, call the core, render. No SQL here."""

from tokenfix.cli import demo, diagnose, doctor, reconcile, runs  # noqa: F401  (registers them)
from tokenfix.cli.app import app, main, run

__all__ = ["app", "main", "run"]
