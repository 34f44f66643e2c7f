"""Likely causes of a drift (docs/commands.md): each named only when it explains the whole drift
exactly.

Each cause is a hypothesis about what the cache missed or applied wrongly; it is reported
when the drift it predicts equals the observed drift in both columns, to the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tokenfix.base.records import Amount


@dataclass(frozen=True)
class Cause:
    code: str
    message: str


@dataclass(frozen=True)
class StoppedUpdating:
    since: datetime
    charges: int
    tokens: Amount


@dataclass(frozen=True)
class Evidence:
    """What the ledger says about one user, beside the drift (cached - expected)."""

    drift_remaining: Amount
    drift_used: Amount | None
    """None: the mapping has no `used` side; causes are judged on remaining alone."""
    starting_balance: Amount
    granted: Amount
    deducted: Amount
    override_records: int
    override_difference: Amount
    """Σ (override price - tokens_used) over charges priced by an override."""
    before_profile_records: int
    before_profile_remaining: Amount
    """What the rows created before the profile row did to the remaining balance."""
    before_profile_used: Amount
    failed_charge_tokens: Amount
    failed_charge_tokens_priced: Amount
    stopped_updating: StoppedUpdating | None
    has_pricing: bool = True
    has_created_at: bool = True


def _rows(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _drift_is(evidence: Evidence, remaining: Amount, used: Amount) -> bool:
    if evidence.drift_used is None:  # no `used` side: remaining tells alone
        return remaining != 0 and evidence.drift_remaining == remaining
    return (remaining, used) != (0, 0) and (evidence.drift_remaining, evidence.drift_used) == (
        remaining,
        used,
    )


def likely_causes(e: Evidence) -> list[Cause]:
    causes: list[Cause] = []
    if e.has_created_at and _drift_is(e, -e.before_profile_remaining, -e.before_profile_used):
        causes.append(
            Cause(
                "before_profile",
                f"{_rows(e.before_profile_records, 'ledger row')} created before the profile "
                "row existed never reached the cached balance",
            )
        )
    stopped = e.stopped_updating
    if stopped is not None and _drift_is(e, stopped.tokens, -stopped.tokens):
        causes.append(
            Cause(
                "stopped_updating",
                f"the balance stopped updating at {stopped.since.isoformat()}: "
                f"{_rows(stopped.charges, 'charge')} since then ({stopped.tokens} tokens) "
                "never reached the cached balance",
            )
        )
    d = e.override_difference
    if e.has_pricing and _drift_is(e, d, -d):
        causes.append(
            Cause(
                "overrides_not_applied",
                f"the cache charged raw tokens_used for {_rows(e.override_records, 'row')} "
                f"priced by an override instead of the override price ({d:+} tokens)",
            )
        )
    charged_failures = {e.failed_charge_tokens, e.failed_charge_tokens_priced}
    if any(_drift_is(e, -tokens, tokens) for tokens in charged_failures):
        tokens = -e.drift_remaining
        causes.append(
            Cause(
                "failed_rows_charged",
                f"failed calls (success = false, {tokens} tokens) were charged to the cached "
                "balance, though failed calls cost nothing",
            )
        )
    if _drift_is(e, -e.granted, 0):
        causes.append(
            Cause(
                "grants_not_applied",
                f"the grants ({e.granted} tokens) were never added to the cached remaining balance",
            )
        )
    if _drift_is(e, e.deducted, 0):
        causes.append(
            Cause(
                "deducts_not_applied",
                f"the deducts ({e.deducted} tokens) were never taken off the cached remaining "
                "balance",
            )
        )
    if _drift_is(e, -e.starting_balance, 0):
        causes.append(
            Cause(
                "starting_balance",
                f"the cached balance lacks the starting balance of {e.starting_balance} tokens "
                "(or TOKENFIX_STARTING_BALANCE does not apply to this user)",
            )
        )
    return causes
