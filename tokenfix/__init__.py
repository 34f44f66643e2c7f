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

__version__ = "0.1.0"

_EXPORTS = {
    # settings, connections, the mapping
    "Settings": "tokenfix.settings",
    "load_settings": "tokenfix.settings",
    "Connection": "tokenfix.db",
    "connect": "tokenfix.db",
    "transaction": "tokenfix.db",
    "Mapping": "tokenfix.mapping",
    "default_mapping": "tokenfix.mapping",
    "load_mapping": "tokenfix.mapping_file",
    # diagnose
    "diagnose": "tokenfix.diagnosis",
    "Diagnosis": "tokenfix.diagnosis",
    # reconcile: plan, dry run, write
    "reconcile": "tokenfix.reconciliation",
    "plan": "tokenfix.reconciliation",
    "Request": "tokenfix.planning",
    "Plan": "tokenfix.planning",
    "Outcome": "tokenfix.planning",
    "Selection": "tokenfix.model",
    # history and revert
    "history": "tokenfix.audit",
    "RunSummary": "tokenfix.audit",
    "owner_history": "tokenfix.lookups",
    "OwnerHistory": "tokenfix.lookups",
    "run_history": "tokenfix.lookups",
    "RunHistory": "tokenfix.lookups",
    "revert": "tokenfix.reverting",
    "RevertOutcome": "tokenfix.reverting",
    # doctor
    "doctor": "tokenfix.health.doctor",
    "Report": "tokenfix.health.doctor",
    "Check": "tokenfix.health.doctor",
    # the records
    "Amount": "tokenfix.records",
    "Pair": "tokenfix.records",
    "Candidate": "tokenfix.records",
    "Change": "tokenfix.records",
    "Counts": "tokenfix.records",
    "RevertChange": "tokenfix.records",
    "AuditedChange": "tokenfix.records",
    # errors and exit codes
    "TokenfixError": "tokenfix.errors",
    "BadInput": "tokenfix.errors",
    "DatabaseProblem": "tokenfix.errors",
    "MissingObject": "tokenfix.errors",
    "LockHeld": "tokenfix.errors",
    "LeaseLost": "tokenfix.errors",
    "Declined": "tokenfix.errors",
    "exit_code_for": "tokenfix.errors",
    "Interrupted": "tokenfix.signals",
    "ExitCode": "tokenfix.exitcodes",
}
_RENAMED = {"load_mapping": "load_file", "doctor": "run_doctor"}

__all__ = [
    "Amount",
    "AuditedChange",
    "BadInput",
    "Candidate",
    "Change",
    "Check",
    "Connection",
    "Counts",
    "DatabaseProblem",
    "Declined",
    "Diagnosis",
    "ExitCode",
    "Interrupted",
    "LeaseLost",
    "LockHeld",
    "Mapping",
    "MissingObject",
    "Outcome",
    "OwnerHistory",
    "Pair",
    "Plan",
    "Report",
    "Request",
    "RevertChange",
    "RevertOutcome",
    "RunHistory",
    "RunSummary",
    "Selection",
    "Settings",
    "TokenfixError",
    "__version__",
    "connect",
    "default_mapping",
    "diagnose",
    "doctor",
    "exit_code_for",
    "history",
    "load_mapping",
    "load_settings",
    "owner_history",
    "plan",
    "reconcile",
    "revert",
    "run_history",
    "transaction",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tokenfix' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from tokenfix.audit import RunSummary, history
    from tokenfix.db import Connection, connect, transaction
    from tokenfix.diagnosis import Diagnosis, diagnose
    from tokenfix.errors import (
        BadInput,
        DatabaseProblem,
        Declined,
        LeaseLost,
        LockHeld,
        MissingObject,
        TokenfixError,
        exit_code_for,
    )
    from tokenfix.exitcodes import ExitCode
    from tokenfix.health.doctor import Check, Report
    from tokenfix.health.doctor import run_doctor as doctor
    from tokenfix.lookups import OwnerHistory, RunHistory, owner_history, run_history
    from tokenfix.mapping import Mapping, default_mapping
    from tokenfix.mapping_file import load_file as load_mapping
    from tokenfix.model import Selection
    from tokenfix.planning import Outcome, Plan, Request
    from tokenfix.reconciliation import plan, reconcile
    from tokenfix.records import (
        Amount,
        AuditedChange,
        Candidate,
        Change,
        Counts,
        Pair,
        RevertChange,
    )
    from tokenfix.reverting import RevertOutcome, revert
    from tokenfix.settings import Settings, load_settings
    from tokenfix.signals import Interrupted
