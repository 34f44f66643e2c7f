"""tokenfix: diagnose and safely reconcile cached token balances against their ledger."""

__version__ = "0.1.0"
