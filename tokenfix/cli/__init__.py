"""The command line: parse options, call the core, render. No SQL here."""

from tokenfix.cli import (  # noqa: F401  (registers them)
    adjust,
    config,
    demo,
    diagnose,
    doctor,
    mapping,
    reconcile,
    runs,
    sql,
)
from tokenfix.cli.app import app, main, run

__all__ = ["app", "main", "run"]
