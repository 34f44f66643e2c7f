"""Why the fleet drifted (docs/monitoring.md): the cause codes of every drifting owner, and the
summary.

Causes are computed for the drifting owners only, all of them in one set-based statement
(fleet_evidence.sql) that reads their ledger rows once by index: no statement per batch of
owners, no per-owner round trip, so explaining an incident's drift costs about what reading
those owners' rows costs. Across the fleet, many owners sharing one remaining-only drift point
at the starting balance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tokenfix.base.records import Amount, Candidate, Change, Pair, exact
from tokenfix.db.session import Connection
from tokenfix.diagnosis.causes import Evidence, StoppedUpdating, likely_causes
from tokenfix.ledger.model import BalanceModel

STARTING_BALANCE = "starting_balance"
# A drift shared by at least this many owners, and half of the drifting ones, is the fleet's.
SHARED_AT_LEAST = 5


def _text(value: Amount | None) -> str | None:
    return None if value is None else str(value)


def explainable(c: Candidate) -> bool:
    """A drift of known size on every side the mapping reads (a NULL cache has none)."""
    return (
        c.has_profile
        and not c.null_cache
        and c.drift is not None
        and c.drift.tokens_remaining is not None
    )


def stops_like_a_cache(drift: Pair, reads_used: bool) -> bool:
    """A drift a cache that stopped updating would leave: remaining too high by what the
    latest charges cost, used too low by as much."""
    remaining = drift.tokens_remaining
    if remaining is None or remaining <= 0:
        return False
    return not reads_used or drift.tokens_used == -remaining


def causes_for(
    conn: Connection, model: BalanceModel, candidates: Iterable[Candidate]
) -> dict[str, tuple[str, ...]]:
    """The cause codes of each explainable drifting candidate (every code that explains its
    whole drift exactly; none: unexplained), in one statement for all of them, whatever
    their number. Run inside the caller's transaction."""
    # Only each owner's drift is kept (not the candidate), and only the owners that have codes
    # are returned: the memory this takes grows with the drifting owners, never with the fleet.
    drifts = {c.key: c.drift for c in candidates if explainable(c) and c.drift is not None}
    if not drifts:
        return {}
    reads_used = model.mapping.balance.used is not None
    stopped = {k: d for k, d in drifts.items() if stops_like_a_cache(d, reads_used)}
    statement, params = model.fleet_evidence()
    params |= {
        "keys": list(drifts),
        "stopped": list(stopped),
        "stopped_drifts": [_text(d.tokens_remaining) for d in stopped.values()],
    }
    found: dict[str, tuple[str, ...]] = {}
    for row in conn.execute(statement, params):
        key = str(row[0])
        codes = tuple(c.code for c in likely_causes(_evidence(drifts[key], row, model)))
        if codes:
            found[key] = codes
    return found


def _evidence(drift: Pair, row: Any, model: BalanceModel) -> Evidence:
    (_, starting, granted, deducted, override_records, override_difference, before_records,
     before_remaining, before_used, failed, failed_priced, stopped_at, stopped_charges,
     stopped_tokens) = row  # fmt: skip
    stopped = (
        StoppedUpdating(stopped_at, stopped_charges, exact(stopped_tokens))
        if stopped_at is not None
        else None
    )
    assert drift.tokens_remaining is not None  # explainable
    reads_used = model.mapping.balance.used is not None
    return Evidence(
        drift_remaining=drift.tokens_remaining,
        drift_used=drift.tokens_used if reads_used else None,
        starting_balance=exact(starting),
        granted=exact(granted),
        deducted=exact(deducted),
        override_records=override_records,
        override_difference=exact(override_difference),
        before_profile_records=before_records,
        before_profile_remaining=exact(before_remaining),
        before_profile_used=exact(before_used),
        failed_charge_tokens=exact(failed),
        failed_charge_tokens_priced=exact(failed_priced),
        stopped_updating=stopped,
        has_pricing=model.mapping.pricing is not None and bool(model.prices),
        has_created_at=model.mapping.balance.created_at is not None,
    )


@dataclass
class SharedDrift:
    """Counts the remaining-only drifts of a plan, to find one most owners share."""

    counts: Counter[Amount] = field(default_factory=Counter)

    def see(self, c: Candidate) -> None:
        d = c.drift
        if d is not None and d.tokens_remaining and not d.tokens_used:
            self.counts[d.tokens_remaining] += 1

    def winner(self, drifting: int) -> Amount | None:
        if not self.counts:
            return None
        value, users = self.counts.most_common(1)[0]
        return value if users >= SHARED_AT_LEAST and 2 * users >= drifting else None


@dataclass
class CauseTotals:
    users: int = 0
    remaining: Amount = 0
    used: Amount = 0


@dataclass
class Summary:
    """The run's `summary` (docs/monitoring.md): drift by cause, unexplained owners, the totals."""

    causes: dict[str, CauseTotals] = field(default_factory=dict)
    unexplained_users: int = 0
    edited_users: int = 0
    """Left alone by --defer-edited: a cache edited after the ledger (unexplained too)."""
    cached_total: Pair = field(default_factory=lambda: Pair(0, 0))
    expected_total: Pair = field(default_factory=lambda: Pair(0, 0))

    def add(self, change: Change) -> None:
        if change.status != "drift":
            return
        drift = change.drift or Pair(None, None)
        for code in change.causes:
            totals = self.causes.setdefault(code, CauseTotals())
            totals.users += 1
            totals.remaining += drift.tokens_remaining or 0
            totals.used += drift.tokens_used or 0
        if change.skipped == "edited_after_ledger":
            self.edited_users += 1
            self.unexplained_users += 1
        elif not change.causes and change.skipped != "recent_activity":
            self.unexplained_users += 1


def with_causes(change: Change, codes: tuple[str, ...], shared: Amount | None) -> Change:
    """The change with its codes, and `starting_balance` when it drifts by the fleet's shared
    remaining-only drift."""
    d = change.drift
    if shared is not None and d is not None and d.tokens_remaining == shared and not d.tokens_used:
        codes = codes if STARTING_BALANCE in codes else (*codes, STARTING_BALANCE)
    return change.but(causes=codes) if codes else change
