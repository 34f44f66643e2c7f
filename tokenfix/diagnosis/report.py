"""One owner's report (docs/commands.md diagnose): ledger summary, cached row, expected values,
causes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg.rows import dict_row

from tokenfix.base.records import Amount, Pair, Status, exact
from tokenfix.config.settings import Settings
from tokenfix.db.session import Connection, transaction
from tokenfix.diagnosis.causes import Cause, Evidence, StoppedUpdating, likely_causes
from tokenfix.ledger import keys, lotstream, visibility
from tokenfix.ledger.model import BalanceModel, Selection, out_of_range_names_the_tables
from tokenfix.ledger.model import load as load_model
from tokenfix.mapping.types import Mapping


@dataclass(frozen=True)
class Profile:
    tokens_remaining: Amount | None
    """None: NULL (drift, whatever the ledger says), or a side the mapping does not read."""
    tokens_used: Amount | None
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True)
class Usage:
    total_records: int
    total_tokens_logged: Amount
    failed_records: int
    zero_token_records: int
    invalid_records: int
    ignored_records: int
    records_before_profile: int
    grant_records: int
    granted_tokens: Amount
    deduct_records: int
    deducted_tokens: Amount
    charge_records: int
    charged_tokens: Amount
    override_records: int
    override_token_difference: Amount
    first_activity: datetime | None
    last_activity: datetime | None
    out_of_period_records: int = 0
    """Rows outside the owner's period (mappings with periods): no effect."""


@dataclass(frozen=True)
class Period:
    """The owner's period (mappings with periods): rows with start <= at < end count."""

    start: datetime | None
    end: datetime | None


@dataclass(frozen=True)
class LotState:
    """One lot after the fold (mappings with lots): consumed + forfeited + remaining = amount."""

    name: str
    id: Any
    amount: Amount
    at: datetime | None
    expires_at: datetime | None
    consumed: Amount
    forfeited: Amount
    remaining: Amount


@dataclass(frozen=True)
class SourceUsage:
    """One ledger source's part of the usage (when a mapping has several)."""

    name: str
    usage: Usage


@dataclass(frozen=True)
class LedgerEntry:
    source: str
    id: Any
    created_at: datetime
    action_type: str | None
    model_used: str | None
    tokens_used: Amount | None
    success: bool | None
    row_class: str
    effective: Amount
    expected_remaining: Amount


@dataclass(frozen=True)
class Diagnosis:
    user_id: str
    status: Status
    profile: Profile | None = None
    usage: Usage | None = None
    sources: tuple[SourceUsage, ...] = ()
    expected: Pair | None = None
    overdrawn: bool = False
    drift: Pair | None = None
    causes: tuple[Cause, ...] = ()
    ledger: tuple[LedgerEntry, ...] | None = None
    reads_used: bool = True
    """Whether the mapping has a `used` side (if not, used is neither compared nor shown)."""
    balance_table: str = "user_profiles"
    period: Period | None = None
    lots: tuple[LotState, ...] | None = None
    """Every lot of the owner, folded (mappings with lots)."""
    warnings: tuple[str, ...] = ()
    """Things the reader should know before trusting the report (row-level security)."""


_USAGE = tuple(f.name for f in fields(Usage))


def diagnose(
    conn: Connection,
    settings: Settings,
    user_id: str | uuid.UUID | int,
    *,
    ledger_rows: int = 0,
    mapping: Mapping | None = None,
    starting_balance: Amount | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Diagnosis:
    """Everything docs/commands.md lists for one owner, read in one snapshot. `on_warning` hears
    each warning as soon as it is known, before the ledger is read."""
    warnings = visibility.read_warnings(conn, settings, mapping)
    for warning in warnings:
        if on_warning is not None:
            on_warning(warning)
    model = load_model(conn, settings, mapping, starting_balance=starting_balance)
    with transaction(conn, settings, read_only=True, isolation="repeatable read"):
        key = keys.check(conn, [str(user_id)], model.shape.key)[0]
        with out_of_range_names_the_tables(model):
            found = _diagnose(conn, model, key, ledger_rows)
    return replace(found, warnings=tuple(warnings))


def _diagnose(conn: Connection, model: BalanceModel, key: str, ledger_rows: int) -> Diagnosis:
    b = model.mapping.balance
    params = {**model.params(), "key": key}
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(model.balance_row(), params).fetchone()
    profile = None
    period: Period | None = Period(None, None) if b.has_periods else None
    starting, tolerance = model.starting_balance, 0
    if row is not None:
        profile = Profile(
            exact(row["tokens_remaining"]),
            exact(row["tokens_used"]),
            row["created_at"],
            row["updated_at"],
        )
        if row["starting"] is not None and model.starting_override is None:
            starting = row["starting"]
        tolerance = row["tolerance"] or 0
        if b.has_periods:
            period = Period(row["period_start"], row["period_end"])
    params |= {"profile_created_at": profile.created_at if profile else None, "starting": starting}
    statement, detail_params = model.owner_statement("owner_usage")
    with conn.cursor(row_factory=dict_row) as cur:
        per_source = cur.execute(statement, {**params, **detail_params}).fetchall()
    if profile is None and not per_source:
        return Diagnosis(user_id=key, status="not_found", balance_table=str(b.table))
    usage = _total(per_source)
    expected = Pair.of(
        starting + usage.granted_tokens - usage.deducted_tokens - usage.charged_tokens,
        usage.charged_tokens,
    )
    folded = _lots(conn, model, key) if model.mapping.lots else None
    if folded is not None:  # the fold's balance, not the sum's
        expected = Pair.of(folded.expected_remaining, usage.charged_tokens)
    drift = None
    causes: tuple[Cause, ...] = ()
    status: Status = "missing_profile"
    if profile is not None:
        drift = Pair.of(
            _minus(profile.tokens_remaining, expected.tokens_remaining) if b.remaining else None,
            _minus(profile.tokens_used, expected.tokens_used) if b.used else None,
        )
        status = "drift" if _needs_attention(drift, model, tolerance) else "ok"
        if status == "drift" and folded is not None:
            causes = _expiry_not_applied(folded, drift)
        elif (
            status == "drift"
            and drift.tokens_remaining is not None
            and not (b.used and drift.tokens_used is None)
        ):
            evidence = _evidence(conn, model, params, per_source, drift, starting)
            causes = tuple(likely_causes(evidence))
        if status == "drift" and row is not None and row["period_length"] is not None:
            causes += _period_not_reset(conn, model, params, profile, starting, row)
    ledger = _ledger(conn, model, params, ledger_rows) if ledger_rows > 0 else None
    several = len(model.mapping.ledgers) > 1
    return Diagnosis(
        user_id=key,
        status=status,
        profile=profile,
        usage=usage,
        sources=tuple(SourceUsage(r["source"], _usage(r)) for r in per_source) if several else (),
        expected=expected,
        overdrawn=expected.tokens_remaining is not None and expected.tokens_remaining < 0,
        drift=drift,
        causes=causes,
        ledger=ledger,
        reads_used=b.used is not None,
        balance_table=str(b.table),
        period=period,
        lots=_lot_states(folded) if folded is not None else None,
    )


def _lots(conn: Connection, model: BalanceModel, key: str) -> lotstream.Owner | None:
    found = lotstream.owners(conn, model, Selection(keys=(key,)), stream=False)
    owner = next(found, None)
    if owner is None:  # no balance row, lot nor ledger row: only `starting` (or nothing)
        owner = lotstream.fold_alone(model, key)
    return owner


def _lot_states(owner: lotstream.Owner) -> tuple[LotState, ...]:
    assert owner.folded is not None
    return tuple(
        LotState(
            lot.name, lot.id, exact(lot.amount), lot.at, lot.expires_at,
            exact(lot.consumed), exact(lot.forfeited), exact(lot.remaining),
        )
        for lot in owner.folded.lots
    )  # fmt: skip


def _expiry_not_applied(owner: lotstream.Owner, drift: Pair) -> tuple[Cause, ...]:
    """expiry_not_applied: the drift is what one or more expired or voided lots forfeited
    (the latest ones, or any single one): the cache never took those remainders off."""
    missing = drift.tokens_remaining
    if not lotstream.expiry_not_applied(owner, missing, drift.tokens_used):
        return ()
    return (
        Cause(
            lotstream.EXPIRY_NOT_APPLIED,
            f"the cached balance still holds {missing} that expired or voided lots forfeited: "
            "their expiry never reached it",
        ),
    )


def _period_not_reset(
    conn: Connection,
    model: BalanceModel,
    params: dict[str, Any],
    profile: Profile | None,
    starting: Amount,
    row: dict[str, Any],
) -> tuple[Cause, ...]:
    """period_not_reset: the cache holds what the previous period's rows alone give (the
    allowance minus their charges): the reset at period_start never reached it."""
    if profile is None or profile.tokens_remaining is None or row["period_start"] is None:
        return ()
    statement, detail_params = model.owner_statement("owner_previous_period")
    found = conn.execute(
        statement,
        {
            **params,
            **detail_params,
            "period_start": row["period_start"],
            "period_length": row["period_length"],
        },
    ).fetchone()
    assert found is not None
    delta, charged, charges = found
    previous = exact(starting + delta)
    if charges == 0 or profile.tokens_remaining != previous:
        return ()
    if model.mapping.balance.used is not None and profile.tokens_used != exact(charged):
        return ()
    return (
        Cause(
            "period_not_reset",
            f"the cached balance ({previous}) is what the previous period's "
            f"{charges} charge{'s' if charges != 1 else ''} left: the reset at "
            f"{row['period_start'].isoformat()} never reached it",
        ),
    )


def _needs_attention(drift: Pair, model: BalanceModel, tolerance: Amount) -> bool:
    """A side the mapping reads that is NULL, or off by more than the tolerance."""
    b = model.mapping.balance
    sides: list[tuple[bool, Amount | None]] = [
        (b.remaining is not None, drift.tokens_remaining),
        (b.used is not None, drift.tokens_used),
    ]
    return any(read and (d is None or _beyond(d, tolerance)) for read, d in sides)


def _beyond(drift: Amount, tolerance: Amount) -> bool:
    return abs(Decimal(drift)) > Decimal(tolerance)


def _usage(row: dict[str, Any]) -> Usage:
    times = ("first_activity", "last_activity")
    return Usage(**{name: row[name] if name in times else exact(row[name]) for name in _USAGE})


def _total(rows: list[dict[str, Any]]) -> Usage:
    """The usage over every source (exact: ints and Decimals add up exactly)."""
    total: dict[str, Any] = {}
    for name in _USAGE:
        values = [row[name] for row in rows if row[name] is not None]
        if name == "first_activity":
            total[name] = min(values, default=None)
        elif name == "last_activity":
            total[name] = max(values, default=None)
        else:
            total[name] = exact(sum(values))
    return Usage(**total)


def _minus(cached: Amount | None, expected: Amount | None) -> Amount | None:
    return None if cached is None or expected is None else cached - expected


def _evidence(
    conn: Connection,
    model: BalanceModel,
    params: dict[str, Any],
    rows: list[dict[str, Any]],
    drift: Pair,
    starting: Amount,
) -> Evidence:
    def total(name: str) -> Any:
        return sum(row[name] for row in rows)

    assert drift.tokens_remaining is not None
    return Evidence(
        drift_remaining=drift.tokens_remaining,
        drift_used=drift.tokens_used,
        starting_balance=starting,
        granted=total("granted_tokens"),
        deducted=total("deducted_tokens"),
        override_records=total("override_records"),
        override_difference=total("override_token_difference"),
        before_profile_records=total("records_before_profile"),
        before_profile_remaining=total("granted_before_profile")
        - total("deducted_before_profile")
        - total("charged_before_profile"),
        before_profile_used=total("charged_before_profile"),
        failed_charge_tokens=total("failed_charge_tokens"),
        failed_charge_tokens_priced=total("failed_charge_tokens_priced"),
        stopped_updating=_stopped_updating(conn, model, params, drift),
        has_pricing=model.mapping.pricing is not None and bool(model.prices),
        has_created_at=model.mapping.balance.created_at is not None,
    )


def _stopped_updating(
    conn: Connection, model: BalanceModel, params: dict[str, Any], drift: Pair
) -> StoppedUpdating | None:
    # Only a cache that missed charges shows more remaining and exactly that much less used.
    missing = drift.tokens_remaining
    if missing is None or missing <= 0:
        return None
    if drift.tokens_used is not None and drift.tokens_used != -missing:
        return None
    statement, detail_params = model.owner_statement("stopped_updating")
    found = conn.execute(statement, {**params, **detail_params, "missing": missing}).fetchone()
    return StoppedUpdating(since=found[0], charges=found[1], tokens=found[2]) if found else None


def _ledger(
    conn: Connection, model: BalanceModel, params: dict[str, Any], limit: int
) -> tuple[LedgerEntry, ...]:
    statement, detail_params = model.owner_statement("owner_ledger")
    rows = conn.execute(statement, {**params, **detail_params, "limit": limit}).fetchall()
    entries = []
    for source, ident, at, action, model_used, amount, counted, cls, effective, after in rows:
        entries.append(
            LedgerEntry(
                source,
                ident,
                at,
                action,
                model_used,
                exact(amount),
                counted,
                cls,
                exact(effective),
                exact(after),
            )
        )
    return tuple(entries)
