"""Why the fleet drifted (docs/monitoring.md): the cause codes of every drifting owner, and the
summary.

The evidence the causes are tested against comes with each candidate, summed by the pass that
computed its balance (balances.sql: grants, deducts, the override difference, failed charges,
the starting balance): explaining a drift reads no ledger row again. Only two causes need an
owner's rows themselves, and only for the owners that may show them: rows older than the
balance row (`before_profile`, owners with such rows) and the charges in time order
(`stopped_updating`, owners whose drift has that shape); those are read by one set-based
statement for all of them (fleet_evidence.sql), never one per batch of owners. Across the
fleet, many owners sharing one remaining-only drift point at the starting balance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tokenfix.base.records import Amount, Candidate, Change, LedgerSums, Pair, exact
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
    whole drift exactly; none: unexplained), from the sums its candidate carries, and for the
    owners that need their rows read again, one statement for all of them, whatever their
    number. Run inside the caller's transaction."""
    # Only the owners that have codes are kept, and the drift and sums of those waiting for
    # the second read: the memory this takes grows with the drifting owners, never with the
    # fleet.
    reads_used = model.mapping.balance.used is not None
    found: dict[str, tuple[str, ...]] = {}
    waiting: dict[str, tuple[Pair, LedgerSums]] = {}
    early: list[str] = []
    stopped: dict[str, Pair] = {}
    for c in candidates:
        if not explainable(c) or c.drift is None or c.sums is None:
            continue
        if c.sums.early or stops_like_a_cache(c.drift, reads_used):
            waiting[c.key] = (c.drift, c.sums)
            if c.sums.early:
                early.append(c.key)
            if stops_like_a_cache(c.drift, reads_used):
                stopped[c.key] = c.drift
            continue
        _keep(found, c.key, _evidence(c.drift, c.sums, model))
    if not waiting:
        return found
    statement, params = model.fleet_evidence()
    params |= {
        "early": early,
        "stopped": list(stopped),
        "stopped_drifts": [_text(d.tokens_remaining) for d in stopped.values()],
    }
    for row in conn.execute(statement, params):
        key = str(row[0])
        drift, sums = waiting.pop(key)
        _keep(found, key, _evidence(drift, sums, model, row))
    for key, (drift, sums) in waiting.items():  # nothing older, no suffix: the sums alone
        _keep(found, key, _evidence(drift, sums, model))
    return found


def _keep(found: dict[str, tuple[str, ...]], key: str, evidence: Evidence) -> None:
    codes = tuple(c.code for c in likely_causes(evidence))
    if codes:
        found[key] = codes


def _evidence(drift: Pair, sums: LedgerSums, model: BalanceModel, row: Any = None) -> Evidence:
    """`row`: what fleet_evidence.sql read again for this owner (None: nothing)."""
    before_records, before_remaining, before_used = 0, 0, 0
    stopped = None
    if row is not None:
        (_, before_records, before_remaining, before_used, stopped_at, stopped_charges,
         stopped_tokens) = row  # fmt: skip
        if stopped_at is not None:
            stopped = StoppedUpdating(stopped_at, stopped_charges, exact(stopped_tokens))
    assert drift.tokens_remaining is not None  # explainable
    reads_used = model.mapping.balance.used is not None
    return Evidence(
        drift_remaining=drift.tokens_remaining,
        drift_used=drift.tokens_used if reads_used else None,
        starting_balance=sums.starting,
        granted=sums.granted,
        deducted=sums.deducted,
        override_records=0,  # only a message counts them; the codes never do
        override_difference=sums.override_difference,
        before_profile_records=before_records,
        before_profile_remaining=exact(before_remaining),
        before_profile_used=exact(before_used),
        failed_charge_tokens=sums.failed_charge_tokens,
        failed_charge_tokens_priced=sums.failed_charge_tokens_priced,
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
