"""When a reconcile run needs attention (exit 1): docs/output.md, and the monitors' policy of
docs/monitoring.md.

Without --fail-on, exit 1 means what says: drift or missing profiles found and not (all)
fixed. With --fail-on, the run is judged on the owners it *found*, fixed or not, so that a
cron job that fixes drift still alerts: `any` on any of them, `unexplained` on drift no cause
explains (deferred owners never count), `never` on nothing. --threshold N ignores owners whose
largest absolute drift is at most N (a NULL cache, or a missing profile, is never ignored).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from tokenfix.base.errors import BadInput
from tokenfix.base.records import Amount, Change

FailOn = Literal["any", "unexplained", "never"]


@dataclass(frozen=True)
class ExitPolicy:
    fail_on: FailOn | None = None
    threshold: Amount = 0

    def __post_init__(self) -> None:
        if self.threshold < 0:
            raise BadInput(f"--threshold {self.threshold} is negative: give 0 or more")

    def ignored(self, change: Change) -> bool:
        drift = change.drift
        if drift is None or change.status != "drift" or change.null_cache:
            return False
        sides = [d for d in (drift.tokens_remaining, drift.tokens_used) if d is not None]
        return bool(sides) and max(abs(Decimal(d)) for d in sides) <= Decimal(self.threshold)

    def attention(self, changes: Iterable[Change]) -> bool:
        return any(self.counts(change) for change in changes)

    def counted(self, changes: Iterable[Change]) -> int:
        """The owners that make exit 1: what `tokenfix_alerting_users` reports."""
        return sum(1 for change in changes if self.counts(change))

    def counts(self, change: Change) -> bool:
        """Whether this owner, on its own, makes the run exit 1."""
        if self.ignored(change):
            return False
        if self.fail_on is None:
            return not change.resolved
        if self.fail_on == "any":
            return True
        return self.fail_on == "unexplained" and _unexplained(change)


def _unexplained(change: Change) -> bool:
    if change.skipped == "edited_after_ledger":  # a human looks, whatever the evidence says
        return True
    return change.status == "drift" and not change.causes and change.skipped != "recent_activity"
