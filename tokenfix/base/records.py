"""The typed records that cross module boundaries: amounts, balances, the changes a run makes.

Amounts are `int` (integer and bigint columns) or `Decimal` (numeric), exactly as the
database computed them; nothing here goes through a float.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Literal, overload

Amount = int | Decimal
Status = Literal["ok", "drift", "missing_profile", "not_found"]
Skip = Literal[
    "dry_run",
    "recent_activity",
    "changed_concurrently",
    "no_create_missing",
    "edited_after_ledger",
    "newer_snapshot",
    "unwritable",
]
RevertSkip = Literal["dry_run", "changed_since", "already_restored", "referenced", "unverifiable"]
"""Why revert left a row alone ("dry_run": it would not, a dry run writes nothing)."""


@overload
def exact(value: Amount) -> Amount: ...
@overload
def exact(value: object) -> Amount | None: ...
def exact(value: object) -> Amount | None:
    """An amount as the database computed it; a whole Decimal without decimals (a sum that
    went through numeric) as an int, so integer balances read as ints. `12.50000` stays a
    Decimal with its five places."""
    if isinstance(value, Decimal) and value.is_finite() and value.as_tuple().exponent == 0:
        return int(value)
    return value  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Pair:
    """A balance as remaining and used; None where a side is NULL or not part of the mapping."""

    tokens_remaining: Amount | None
    tokens_used: Amount | None

    @classmethod
    def of(cls, remaining: object, used: object) -> Pair:
        return cls(exact(remaining), exact(used))


@dataclass(frozen=True, slots=True)
class LedgerSums:
    """What the pass that computes an owner's balance also sums for the causes of its drift
    (docs/monitoring.md): gathered in the same scan, so explaining a drift reads no row again."""

    starting: Amount
    granted: Amount
    deducted: Amount
    override_difference: Amount
    """The sum of (override price - amount) over the charges an override prices."""
    failed_charge_tokens: Amount
    failed_charge_tokens_priced: Amount
    early: bool
    """Some ledger row is older than the balance row (rows that may predate the profile)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """An owner whose status is not ok, as one statement saw it (the plan, or a re-read)."""

    key: str
    """The owner's key as text (its SQL type is the mapping's key type)."""
    has_profile: bool
    current: Pair | None
    expected: Pair
    drift: Pair | None
    recent: bool
    """Ledger rows inside the settle window: the app may not have applied them yet."""
    null_cache: bool = False
    """A side the mapping reads holds NULL (drift of no known size)."""
    row_id: str | None = None
    """Snapshots: the row read as the owner's balance (its newest)."""
    causes: tuple[str, ...] = ()
    """Cause codes the pass itself named (lots: the fold knows what expired)."""
    sums: LedgerSums | None = None
    """The causes' evidence from the same pass (None where that pass gathers none)."""

    @property
    def status(self) -> Status:
        return "drift" if self.has_profile else "missing_profile"


@dataclass(frozen=True, slots=True)
class Change:
    """One `changes` entry of reconcile (docs/output.md): an owner not ok, and what the run did."""

    key: str
    status: Status
    current: Pair | None
    expected: Pair
    drift: Pair | None
    applied: bool
    skipped: Skip | None
    stored: Pair | None = None
    """What the database kept, when a trigger or rule stored something else than written."""
    causes: tuple[str, ...] = ()
    null_cache: bool = False
    reason: str | None = None
    """Why an `unwritable` owner could not be written (the column and its type)."""

    @classmethod
    def of(cls, candidate: Candidate, *, applied: bool = False, skipped: Skip | None) -> Change:
        return cls(
            key=candidate.key,
            status=candidate.status,
            current=candidate.current,
            expected=candidate.expected,
            drift=candidate.drift,
            applied=applied,
            skipped=skipped,
            null_cache=candidate.null_cache,
        )

    def but(self, **changes: object) -> Change:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def resolved(self) -> bool:
        """Written, and the database stored what was written."""
        return self.applied and self.stored is None


@dataclass
class Counts:
    users_checked: int = 0
    users_with_drift: int = 0
    missing_profiles: int = 0
    users_updated: int = 0
    profiles_created: int = 0
    users_deferred: int = 0
    users_changed: int = 0

    def tally(self, change: Change) -> None:
        if change.applied:
            if change.status == "drift":
                self.users_updated += 1
            else:
                self.profiles_created += 1
        elif change.skipped == "recent_activity":
            self.users_deferred += 1
        elif change.skipped in ("changed_concurrently", "newer_snapshot"):
            self.users_changed += 1


@dataclass(frozen=True, slots=True)
class RevertChange:
    """One audit row of a reverted run, and what the revert did with it."""

    key: str
    action: Literal["restore", "delete", "insert"]
    run_left: dict[str, object] | None
    """The written columns as the run left them (None: the run left no row)."""
    current: dict[str, object] | None
    restore_to: dict[str, object] | None
    applied: bool
    skipped: RevertSkip | None

    @property
    def reverted(self) -> bool:
        """Put back, or (a dry run) would be."""
        return self.applied or self.skipped == "dry_run"


@dataclass(frozen=True, slots=True)
class AuditedChange:
    """One row the tool wrote, as the audit trail keeps it (`history RUN_ID`, `--user`)."""

    run_id: uuid.UUID
    command: str
    """The run's: reconcile or revert."""
    key: str
    action: Literal["update", "insert", "delete", "restore"]
    changed_at: datetime
    before: dict[str, object] | None
    """The written columns as the run found them (None: no row)."""
    after: dict[str, object] | None
    """As the run left them (None: it deleted the row)."""
    reverts_run_id: uuid.UUID | None
    """For a revert's row: the run it put back."""
    reverted_by: uuid.UUID | None
    """The latest revert that put this row back, if any."""
