"""tokenfix: diagnose and safely reconcile cached balances against their ledger.

The command line is one client of this API; a script or a notebook is another::

    import tokenfix

    settings = tokenfix.load_settings(database_url="postgresql://…")
    with tokenfix.connect(settings) as conn:
        report = tokenfix.diagnose(conn, settings, "6513270e-269e-4d37-b2a7-4de452e6b438")
        outcome = tokenfix.reconcile(conn, settings, tokenfix.Request(tokenfix.Selection()))
        for change in outcome.changes:
            print(change.key, change.drift)

Names load on first use (so `import tokenfix` costs nothing, and no part of the command-line
stack, Typer or rich, is ever loaded by the API).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tokenfix.base.version import __version__

_EXPORTS = {
    # settings, connections, the mapping
    "Settings": "tokenfix.config.settings",
    "load_settings": "tokenfix.config.settings",
    "Connection": "tokenfix.db.session",
    "connect": "tokenfix.db.session",
    "transaction": "tokenfix.db.session",
    "Mapping": "tokenfix.mapping.types",
    "default_mapping": "tokenfix.mapping.types",
    "load_mapping": "tokenfix.mapping.file",
    # diagnose
    "diagnose": "tokenfix.diagnosis.report",
    "Diagnosis": "tokenfix.diagnosis.report",
    # reconcile: plan, dry run, write
    "reconcile": "tokenfix.reconciliation.run",
    "plan": "tokenfix.reconciliation.run",
    "Request": "tokenfix.reconciliation.plan",
    "Plan": "tokenfix.reconciliation.plan",
    "Outcome": "tokenfix.reconciliation.plan",
    "Selection": "tokenfix.ledger.model",
    # history and revert
    "history": "tokenfix.audit.trail",
    "RunSummary": "tokenfix.audit.trail",
    "owner_history": "tokenfix.audit.history",
    "OwnerHistory": "tokenfix.audit.history",
    "run_history": "tokenfix.audit.history",
    "RunHistory": "tokenfix.audit.history",
    "revert": "tokenfix.audit.revert",
    "RevertOutcome": "tokenfix.audit.revert",
    # doctor
    "doctor": "tokenfix.health.run",
    "Report": "tokenfix.health.run",
    "Check": "tokenfix.health.run",
    # the records
    "Amount": "tokenfix.base.records",
    "Pair": "tokenfix.base.records",
    "Candidate": "tokenfix.base.records",
    "Change": "tokenfix.base.records",
    "Counts": "tokenfix.base.records",
    "RevertChange": "tokenfix.base.records",
    "AuditedChange": "tokenfix.base.records",
    # errors and exit codes
    "TokenfixError": "tokenfix.base.errors",
    "BadInput": "tokenfix.base.errors",
    "DatabaseProblem": "tokenfix.base.errors",
    "MissingObject": "tokenfix.base.errors",
    "LockHeld": "tokenfix.base.errors",
    "LeaseLost": "tokenfix.base.errors",
    "Declined": "tokenfix.base.errors",
    "exit_code_for": "tokenfix.base.errors",
    "Interrupted": "tokenfix.base.signals",
    "ExitCode": "tokenfix.base.exitcodes",
}
_RENAMED = {"load_mapping": "load_file", "doctor": "run_doctor"}

# The public names: the keys above, written once.
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tokenfix' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from tokenfix.audit.history import OwnerHistory, RunHistory, owner_history, run_history
    from tokenfix.audit.revert import RevertOutcome, revert
    from tokenfix.audit.trail import RunSummary, history
    from tokenfix.base.errors import (
        BadInput,
        DatabaseProblem,
        Declined,
        LeaseLost,
        LockHeld,
        MissingObject,
        TokenfixError,
        exit_code_for,
    )
    from tokenfix.base.exitcodes import ExitCode
    from tokenfix.base.records import (
        Amount,
        AuditedChange,
        Candidate,
        Change,
        Counts,
        Pair,
        RevertChange,
    )
    from tokenfix.base.signals import Interrupted
    from tokenfix.config.settings import Settings, load_settings
    from tokenfix.db.session import Connection, connect, transaction
    from tokenfix.diagnosis.report import Diagnosis, diagnose
    from tokenfix.health.run import Check, Report
    from tokenfix.health.run import run_doctor as doctor
    from tokenfix.ledger.model import Selection
    from tokenfix.mapping.file import load_file as load_mapping
    from tokenfix.mapping.types import Mapping, default_mapping
    from tokenfix.reconciliation.plan import Outcome, Plan, Request
    from tokenfix.reconciliation.run import plan, reconcile
